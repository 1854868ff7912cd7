package seal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 7, 28, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func newTestSealer(t testing.TB, clock *fakeClock) *Sealer {
	t.Helper()
	s, err := New(testKey(1), Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealOpenRoundTrip(t *testing.T) {
	clock := newFakeClock()
	s := newTestSealer(t, clock)
	payload := []byte(`{"step":2,"call":"shop.refund_order"}`)
	token, err := s.Seal("request-state", payload, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, "v4.local.") {
		t.Errorf("token %q is not PASETO v4.local", token)
	}
	if strings.Contains(token, "refund") {
		t.Error("token shows its payload")
	}
	got, err := s.Open("request-state", token)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Errorf("Open = %s, want %s", got, payload)
	}

	// Two seals of the same payload differ (random nonce).
	again, err := s.Seal("request-state", payload, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if again == token {
		t.Error("sealing twice gave the same token")
	}
}

func TestSealJSONRoundTrip(t *testing.T) {
	clock := newFakeClock()
	s := newTestSealer(t, clock)
	type approval struct {
		ID     string `json:"id"`
		Digest string `json:"digest"`
	}
	in := approval{ID: "apr-1", Digest: "abc"}
	token, err := s.SealJSON("approval", in, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var out approval
	if err := s.OpenJSON("approval", token, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Errorf("OpenJSON = %+v, want %+v", out, in)
	}
	if _, err := s.SealJSON("approval", func() {}, time.Hour); err == nil {
		t.Error("SealJSON accepted a value JSON cannot encode")
	}
}

func TestOpenRejects(t *testing.T) {
	tests := []struct {
		name    string
		purpose string
		token   func(t *testing.T, s *Sealer, clock *fakeClock) string
		want    error
	}{
		{"expired", "request-state", func(t *testing.T, s *Sealer, clock *fakeClock) string {
			token := seal(t, s, "request-state", time.Minute)
			clock.Advance(time.Minute)
			return token
		}, ErrExpired},
		{"wrong purpose", "approval", func(t *testing.T, s *Sealer, clock *fakeClock) string {
			return seal(t, s, "request-state", time.Minute)
		}, ErrPurpose},
		{"purpose swapped in the footer", "approval", func(t *testing.T, s *Sealer, clock *fakeClock) string {
			token := seal(t, s, "request-state", time.Minute)
			parts := strings.Split(token, ".")
			foot, _ := base64.RawURLEncoding.DecodeString(parts[3])
			foot = []byte(strings.Replace(string(foot), "request-state", "approval", 1))
			parts[3] = base64.RawURLEncoding.EncodeToString(foot)
			return strings.Join(parts, ".")
		}, ErrInvalid},
		{"wrong key", "request-state", func(t *testing.T, s *Sealer, clock *fakeClock) string {
			other, err := New(testKey(2), Options{Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			return seal(t, other, "request-state", time.Minute)
		}, ErrWrongKey},
		{"tampered ciphertext", "request-state", func(t *testing.T, s *Sealer, clock *fakeClock) string {
			token := seal(t, s, "request-state", time.Minute)
			parts := strings.Split(token, ".")
			body, _ := base64.RawURLEncoding.DecodeString(parts[2])
			body[len(body)/2] ^= 0x01
			parts[2] = base64.RawURLEncoding.EncodeToString(body)
			return strings.Join(parts, ".")
		}, ErrInvalid},
		{"truncated", "request-state", func(t *testing.T, s *Sealer, clock *fakeClock) string {
			token := seal(t, s, "request-state", time.Minute)
			return token[:strings.LastIndex(token, ".")]
		}, ErrMalformed},
		{"ciphertext shorter than a nonce", "request-state", func(t *testing.T, s *Sealer, clock *fakeClock) string {
			token := seal(t, s, "request-state", time.Minute)
			parts := strings.Split(token, ".")
			parts[2] = parts[2][:20]
			return strings.Join(parts, ".")
		}, ErrMalformed},
		{"truncated ciphertext", "request-state", func(t *testing.T, s *Sealer, clock *fakeClock) string {
			token := seal(t, s, "request-state", time.Minute)
			parts := strings.Split(token, ".")
			body, _ := base64.RawURLEncoding.DecodeString(parts[2])
			parts[2] = base64.RawURLEncoding.EncodeToString(body[:len(body)-6])
			return strings.Join(parts, ".")
		}, ErrInvalid},
		{"cut mid-character", "request-state", func(t *testing.T, s *Sealer, clock *fakeClock) string {
			token := seal(t, s, "request-state", time.Minute)
			cut := strings.LastIndex(token, ".") - 3
			return token[:cut] + token[cut+1:]
		}, ErrMalformed},
		{"another PASETO version", "request-state", func(t *testing.T, s *Sealer, clock *fakeClock) string {
			return strings.Replace(seal(t, s, "request-state", time.Minute), "v4.local.", "v2.local.", 1)
		}, ErrMalformed},
		{"not a token", "request-state", func(t *testing.T, s *Sealer, clock *fakeClock) string {
			return "hello"
		}, ErrMalformed},
		{"empty", "request-state", func(t *testing.T, s *Sealer, clock *fakeClock) string {
			return ""
		}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			s := newTestSealer(t, clock)
			_, err := s.Open(tt.purpose, tt.token(t, s, clock))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open error = %v, want %v", err, tt.want)
			}
		})
	}
}

func seal(t *testing.T, s *Sealer, purpose string, ttl time.Duration) string {
	t.Helper()
	token, err := s.Seal(purpose, []byte("payload"), ttl)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func TestOpenJustBeforeExpiry(t *testing.T) {
	clock := newFakeClock()
	s := newTestSealer(t, clock)
	token := seal(t, s, "approval", time.Minute)
	clock.Advance(time.Minute - time.Millisecond)
	if _, err := s.Open("approval", token); err != nil {
		t.Fatalf("Open before expiry: %v", err)
	}
}

func TestPreviousKeysOpenButDoNotSeal(t *testing.T) {
	clock := newFakeClock()
	old := newTestSealer(t, clock)
	token := seal(t, old, "approval", time.Minute)

	rotated, err := New(testKey(3), Options{Previous: [][]byte{testKey(1)}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rotated.Open("approval", token); err != nil {
		t.Fatalf("Open a token sealed with the previous key: %v", err)
	}
	fresh := seal(t, rotated, "approval", time.Minute)
	if _, err := old.Open("approval", fresh); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("old sealer opened a token sealed with the new key: %v", err)
	}
}

func TestSealRejectsBadInput(t *testing.T) {
	s := newTestSealer(t, newFakeClock())
	for name, call := range map[string]func() error{
		"empty purpose":   func() error { _, err := s.Seal("", nil, time.Minute); return err },
		"spaced purpose":  func() error { _, err := s.Seal("a b", nil, time.Minute); return err },
		"long purpose":    func() error { _, err := s.Seal(strings.Repeat("p", 65), nil, time.Minute); return err },
		"zero ttl":        func() error { _, err := s.Seal("p", nil, 0); return err },
		"negative ttl":    func() error { _, err := s.Seal("p", nil, -time.Second); return err },
		"open no purpose": func() error { _, err := s.Open("", "v4.local.x"); return err },
	} {
		if call() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for _, n := range []int{0, 16, 31, 33} {
		if _, err := New(make([]byte, n), Options{}); err == nil {
			t.Errorf("New accepted a %d-byte key", n)
		}
	}
	if _, err := New(testKey(1), Options{Previous: [][]byte{{1, 2, 3}}}); err == nil {
		t.Error("New accepted a short previous key")
	}
}

func TestLoadOrCreate(t *testing.T) {
	clock := newFakeClock()
	path := filepath.Join(t.TempDir(), "state", "seal.key")
	s, err := LoadOrCreate(path, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", info.Mode().Perm())
	}
	token := seal(t, s, "approval", time.Minute)

	// A restart opens what was sealed before it.
	reloaded, err := LoadOrCreate(path, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := reloaded.Open("approval", token); err != nil || string(got) != "payload" {
		t.Fatalf("Open after reload = %q, %v", got, err)
	}

	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(path, Options{}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("group-readable key file: error = %v", err)
	}

	bad := filepath.Join(t.TempDir(), "bad.key")
	if err := os.WriteFile(bad, []byte("zz\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(bad, Options{}); err == nil {
		t.Error("non-hex key file accepted")
	}
	short := filepath.Join(t.TempDir(), "short.key")
	if err := os.WriteFile(short, []byte("0011\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(short, Options{}); err == nil {
		t.Error("short key file accepted")
	}
}

func BenchmarkSealOpen(b *testing.B) {
	s := newTestSealer(b, newFakeClock())
	payload := bytes.Repeat([]byte("x"), 256)
	b.ReportAllocs()
	for b.Loop() {
		token, err := s.Seal("request-state", payload, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Open("request-state", token); err != nil {
			b.Fatal(err)
		}
	}
}
