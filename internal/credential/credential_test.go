package credential

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenmcp/warden/pkg/verify"
)

const testIssuer = "https://warden.test"

var testArgs = []byte(`{"order_id":"12345"}`)

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

func testClaims() Claims {
	return Claims{
		Subject:    "alice",
		Audience:   "orders",
		Task:       "grant-7",
		Tool:       "get_order",
		Op:         "tools/call",
		ArgsDigest: ArgsDigest(testArgs),
		Scope:      map[string]any{"order_id": "12345"},
	}
}

// fixture is a key set, a minter and a verifier reading the key set's JWKS
// over a real loopback HTTP server, all on one fake clock.
type fixture struct {
	clock    *fakeClock
	keys     *KeySet
	minter   *Minter
	verifier *verify.Verifier
	fetches  *int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clock := newFakeClock()
	keys, err := NewKeySet(KeySetOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	minter, err := NewMinter(keys, MinterOptions{Issuer: testIssuer, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{clock: clock, keys: keys, minter: minter, fetches: new(int)}
	jwks := JWKSHandler(keys, time.Minute)
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		*f.fetches++
		mu.Unlock()
		jwks.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.verifier, err = verify.New(verify.Options{
		Issuer: testIssuer, Audience: "orders", JWKSURL: srv.URL, Now: clock.Now,
		MinRefreshInterval: 5 * time.Second,
	}, verify.NewMemoryReplayCache(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) mint(t *testing.T) string {
	t.Helper()
	token, _, err := f.minter.Mint(testClaims())
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func (f *fixture) verify(token string) (*verify.Claims, error) {
	return f.verifier.Verify(context.Background(), token, verify.Expect{Tool: "get_order", Op: "tools/call", Args: testArgs})
}

func TestMintedCredentialVerifies(t *testing.T) {
	f := newFixture(t)
	token, id, err := f.minter.Mint(testClaims())
	if err != nil {
		t.Fatal(err)
	}
	claims, err := f.verify(token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if claims.ID != id || len(id) != 22 {
		t.Errorf("jti = %q, Mint returned id %q; want equal 22-character ids", claims.ID, id)
	}
	if claims.Issuer != testIssuer || claims.Subject != "alice" || claims.Task != "grant-7" || claims.Tool != "get_order" ||
		claims.Op != "tools/call" || claims.Scope["order_id"] != "12345" || claims.ArgsDigest != ArgsDigest(testArgs) {
		t.Errorf("claims = %+v", claims)
	}
	if got := claims.ExpiresAt.Sub(claims.IssuedAt.Time); got != DefaultLifetime {
		t.Errorf("lifetime = %s, want %s", got, DefaultLifetime)
	}
	if !claims.NotBefore.Equal(f.clock.Now()) {
		t.Errorf("nbf = %s, want %s", claims.NotBefore, f.clock.Now())
	}

	header, _ := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	var h map[string]string
	if err := json.Unmarshal(header, &h); err != nil {
		t.Fatal(err)
	}
	if h["alg"] != "EdDSA" || h["typ"] != verify.TokenType || h["kid"] != f.keys.ActiveKeyID() {
		t.Errorf("header = %v", h)
	}
}

func TestMintedCredentialIsSingleUseAndShortLived(t *testing.T) {
	f := newFixture(t)
	token := f.mint(t)
	if _, err := f.verify(token); err != nil {
		t.Fatal(err)
	}
	if _, err := f.verify(token); !errors.Is(err, verify.ErrReplayed) {
		t.Fatalf("replayed credential error = %v, want ErrReplayed", err)
	}
	late := f.mint(t)
	f.clock.Advance(DefaultLifetime + verify.DefaultLeeway + time.Second)
	if _, err := f.verify(late); !errors.Is(err, verify.ErrExpired) {
		t.Fatalf("late credential error = %v, want ErrExpired", err)
	}
}

func TestMintIDsAreUnique(t *testing.T) {
	f := newFixture(t)
	seen := map[string]bool{}
	for range 1000 {
		_, id, err := f.minter.Mint(testClaims())
		if err != nil {
			t.Fatal(err)
		}
		if seen[id] {
			t.Fatalf("id %s minted twice", id)
		}
		seen[id] = true
	}
}

func TestMintRejectsIncompleteClaims(t *testing.T) {
	f := newFixture(t)
	for name, mutate := range map[string]func(*Claims){
		"no subject":  func(c *Claims) { c.Subject = "" },
		"no audience": func(c *Claims) { c.Audience = "" },
		"no tool":     func(c *Claims) { c.Tool = "" },
		"no op":       func(c *Claims) { c.Op = "" },
		"no digest":   func(c *Claims) { c.ArgsDigest = "" },
		"raw args":    func(c *Claims) { c.ArgsDigest = string(testArgs) },
		"bad scope":   func(c *Claims) { c.Scope = map[string]any{"f": func() {}} },
	} {
		t.Run(name, func(t *testing.T) {
			c := testClaims()
			mutate(&c)
			if token, _, err := f.minter.Mint(c); err == nil {
				t.Fatalf("Mint accepted incomplete claims: %s", token)
			}
		})
	}
}

func TestNewMinterRejectsLifetimeBeyondRetention(t *testing.T) {
	keys, err := NewKeySet(KeySetOptions{Retain: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMinter(keys, MinterOptions{Issuer: testIssuer, Lifetime: 30 * time.Second}); err == nil {
		t.Error("NewMinter accepted a lifetime that outlives a retired key")
	}
	if _, err := NewMinter(keys, MinterOptions{Issuer: testIssuer, Lifetime: 20 * time.Second}); err != nil {
		t.Errorf("NewMinter with a lifetime inside retention: %v", err)
	}
	if _, err := NewMinter(keys, MinterOptions{Lifetime: 20 * time.Second}); err == nil {
		t.Error("NewMinter accepted an empty issuer")
	}
}

func TestRotation(t *testing.T) {
	f := newFixture(t)
	first := f.keys.ActiveKeyID()
	oldUsed, oldKept, oldUnused := f.mint(t), f.mint(t), f.mint(t)
	if _, err := f.verify(oldUsed); err != nil {
		t.Fatalf("Verify before rotation: %v", err)
	}
	if *f.fetches != 1 {
		t.Fatalf("fetches = %d, want 1", *f.fetches)
	}

	// The next key was published before it became active: no refetch.
	if err := f.keys.Rotate(); err != nil {
		t.Fatal(err)
	}
	second := f.keys.ActiveKeyID()
	if second == first {
		t.Fatal("Rotate kept the active key")
	}
	if _, err := f.verify(f.mint(t)); err != nil {
		t.Fatalf("Verify with the new key: %v", err)
	}
	if *f.fetches != 1 {
		t.Fatalf("fetches = %d, want 1 (next key was pre-published)", *f.fetches)
	}

	// A second rotation activates a key the verifier has not seen: one
	// refresh, after which both new and old credentials verify.
	f.clock.Advance(5 * time.Second)
	if err := f.keys.Rotate(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.verify(f.mint(t)); err != nil {
		t.Fatalf("Verify with a key unknown to the cached JWKS: %v", err)
	}
	if *f.fetches != 2 {
		t.Fatalf("fetches = %d, want 2", *f.fetches)
	}
	keys := f.keys.PublicKeys()
	if _, ok := keys[first]; !ok {
		t.Fatal("retired key was dropped before Retain passed")
	}
	if _, err := f.verify(oldKept); err != nil {
		t.Fatalf("Verify with the retired key within its lifetime: %v", err)
	}

	// Past Retain the retired key is gone from the JWKS, and once the
	// verifier's cache expires its credentials fail as unknown-key.
	f.clock.Advance(DefaultRetain)
	if _, ok := f.keys.PublicKeys()[first]; ok {
		t.Fatal("retired key still published after Retain")
	}
	for _, k := range f.keys.JWKS().Keys {
		if k.Kid == first {
			t.Fatal("retired key still in the JWKS after Retain")
		}
	}
	if _, err := f.verify(oldUnused); !errors.Is(err, verify.ErrUnknownKey) {
		t.Fatalf("Verify with a dropped key error = %v, want ErrUnknownKey", err)
	}
	if *f.fetches != 3 {
		t.Fatalf("fetches = %d, want 3 (cache expired)", *f.fetches)
	}
}
