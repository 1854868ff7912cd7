package verify_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wardenmcp/warden/pkg/verify"
)

const (
	testIssuer   = "https://warden.test"
	testAudience = "orders"
	testTool     = "get_order"
)

var testArgs = []byte(`{"order_id":"12345"}`)

// fakeClock is a settable clock safe for concurrent reads.
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

// signer mints credentials the way Warden does, independently of Warden's
// own minting code, so these tests pin the wire format.
type signer struct {
	kid  string
	priv ed25519.PrivateKey
}

func newSigner(t testing.TB, kid string) signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return signer{kid: kid, priv: priv}
}

func (s signer) public() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }

func (s signer) jwk() verify.JWK {
	return verify.JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(s.public()), Kid: s.kid, Use: "sig", Alg: "EdDSA"}
}

var nextID atomic.Int64

func validClaims(now time.Time) *verify.Claims {
	return &verify.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    testIssuer,
			Audience:  jwt.ClaimStrings{testAudience},
			Subject:   "alice",
			ID:        fmt.Sprintf("cred-%d", nextID.Add(1)),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(30 * time.Second)),
		},
		Task:       "grant-1",
		Tool:       testTool,
		ArgsDigest: verify.ArgsDigest(testArgs),
		Scope:      map[string]any{"order_id": "12345"},
		Op:         "tools/call",
	}
}

func (s signer) sign(t testing.TB, claims *verify.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = s.kid
	tok.Header["typ"] = verify.TokenType
	out, err := tok.SignedString(s.priv)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func newStaticVerifier(t testing.TB, clock *fakeClock, signers ...signer) *verify.Verifier {
	t.Helper()
	keys := map[string]ed25519.PublicKey{}
	for _, s := range signers {
		keys[s.kid] = s.public()
	}
	v, err := verify.New(verify.Options{Issuer: testIssuer, Audience: testAudience, Keys: keys, Now: clock.Now},
		verify.NewMemoryReplayCache(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerifyAcceptsValidCredential(t *testing.T) {
	clock := newFakeClock()
	s := newSigner(t, "k1")
	v := newStaticVerifier(t, clock, s)
	want := validClaims(clock.Now())
	token := s.sign(t, want)

	got, err := v.Verify(context.Background(), token, verify.Expect{Tool: testTool, Op: "tools/call", Args: testArgs})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got.Subject != "alice" || got.Task != "grant-1" || got.ID != want.ID || got.Scope["order_id"] != "12345" {
		t.Errorf("claims = %+v, want subject alice, task grant-1, id %s, scope order_id 12345", got, want.ID)
	}

	// The precomputed digest is accepted the same way.
	again := validClaims(clock.Now())
	if _, err := v.Verify(context.Background(), s.sign(t, again), verify.Expect{Tool: testTool, ArgsDigest: verify.ArgsDigest(testArgs)}); err != nil {
		t.Errorf("Verify with ArgsDigest: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	s := newSigner(t, "k1")
	other := newSigner(t, "k1") // same kid, different key
	expect := verify.Expect{Tool: testTool, Args: testArgs}

	tests := []struct {
		name   string
		token  func(t *testing.T, now time.Time) string
		expect verify.Expect
		want   error
	}{
		{"expired", func(t *testing.T, now time.Time) string {
			c := validClaims(now.Add(-time.Minute))
			return s.sign(t, c)
		}, expect, verify.ErrExpired},
		{"expired beyond leeway", func(t *testing.T, now time.Time) string {
			c := validClaims(now.Add(-36 * time.Second))
			return s.sign(t, c)
		}, expect, verify.ErrExpired},
		{"not yet valid", func(t *testing.T, now time.Time) string {
			c := validClaims(now)
			c.NotBefore = jwt.NewNumericDate(now.Add(time.Minute))
			return s.sign(t, c)
		}, expect, verify.ErrNotYetValid},
		{"issued in the future", func(t *testing.T, now time.Time) string {
			return s.sign(t, validClaims(now.Add(time.Minute)))
		}, expect, verify.ErrNotYetValid},
		{"wrong audience", func(t *testing.T, now time.Time) string {
			c := validClaims(now)
			c.Audience = jwt.ClaimStrings{"billing"}
			return s.sign(t, c)
		}, expect, verify.ErrAudience},
		{"wrong issuer", func(t *testing.T, now time.Time) string {
			c := validClaims(now)
			c.Issuer = "https://evil.test"
			return s.sign(t, c)
		}, expect, verify.ErrIssuer},
		{"wrong digest", func(t *testing.T, now time.Time) string {
			return s.sign(t, validClaims(now))
		}, verify.Expect{Tool: testTool, Args: []byte(`{"order_id":"99999"}`)}, verify.ErrDigest},
		{"reencoded arguments", func(t *testing.T, now time.Time) string {
			return s.sign(t, validClaims(now))
		}, verify.Expect{Tool: testTool, Args: []byte(`{"order_id": "12345"}`)}, verify.ErrDigest},
		{"wrong tool", func(t *testing.T, now time.Time) string {
			return s.sign(t, validClaims(now))
		}, verify.Expect{Tool: "refund_order", Args: testArgs}, verify.ErrTool},
		{"wrong operation", func(t *testing.T, now time.Time) string {
			return s.sign(t, validClaims(now))
		}, verify.Expect{Tool: testTool, Op: "resources/read", Args: testArgs}, verify.ErrOperation},
		{"tampered payload", func(t *testing.T, now time.Time) string {
			token := s.sign(t, validClaims(now))
			parts := strings.Split(token, ".")
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			payload = []byte(strings.Replace(string(payload), `"alice"`, `"admin"`, 1))
			parts[1] = base64.RawURLEncoding.EncodeToString(payload)
			return strings.Join(parts, ".")
		}, expect, verify.ErrSignature},
		{"signed by another key with the same kid", func(t *testing.T, now time.Time) string {
			return other.sign(t, validClaims(now))
		}, expect, verify.ErrSignature},
		{"alg none", func(t *testing.T, now time.Time) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, validClaims(now))
			tok.Header["kid"] = s.kid
			tok.Header["typ"] = verify.TokenType
			out, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return out
		}, expect, verify.ErrAlgorithm},
		{"HS256 keyed with the public key", func(t *testing.T, now time.Time) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, validClaims(now))
			tok.Header["kid"] = s.kid
			tok.Header["typ"] = verify.TokenType
			out, err := tok.SignedString([]byte(s.public()))
			if err != nil {
				t.Fatal(err)
			}
			return out
		}, expect, verify.ErrAlgorithm},
		{"wrong token type", func(t *testing.T, now time.Time) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, validClaims(now))
			tok.Header["kid"] = s.kid
			out, err := tok.SignedString(s.priv)
			if err != nil {
				t.Fatal(err)
			}
			return out
		}, expect, verify.ErrType},
		{"unknown kid", func(t *testing.T, now time.Time) string {
			return newSigner(t, "k9").sign(t, validClaims(now))
		}, expect, verify.ErrUnknownKey},
		{"missing jti", func(t *testing.T, now time.Time) string {
			c := validClaims(now)
			c.ID = ""
			return s.sign(t, c)
		}, expect, verify.ErrClaims},
		{"missing exp", func(t *testing.T, now time.Time) string {
			c := validClaims(now)
			c.ExpiresAt = nil
			return s.sign(t, c)
		}, expect, verify.ErrClaims},
		{"missing iat", func(t *testing.T, now time.Time) string {
			c := validClaims(now)
			c.IssuedAt = nil
			return s.sign(t, c)
		}, expect, verify.ErrClaims},
		{"lifetime too long", func(t *testing.T, now time.Time) string {
			c := validClaims(now)
			c.ExpiresAt = jwt.NewNumericDate(now.Add(24 * time.Hour))
			return s.sign(t, c)
		}, expect, verify.ErrLifetime},
		{"not a JWT", func(t *testing.T, now time.Time) string { return "not.a.jwt" }, expect, verify.ErrMalformed},
		{"oversized", func(t *testing.T, now time.Time) string { return strings.Repeat("a", 20000) }, expect, verify.ErrMalformed},
		{"empty", func(t *testing.T, now time.Time) string { return "" }, expect, verify.ErrMissing},
		{"no tool expected", func(t *testing.T, now time.Time) string {
			return s.sign(t, validClaims(now))
		}, verify.Expect{Args: testArgs}, verify.ErrExpectations},
		{"no arguments expected", func(t *testing.T, now time.Time) string {
			return s.sign(t, validClaims(now))
		}, verify.Expect{Tool: testTool}, verify.ErrExpectations},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			v := newStaticVerifier(t, clock, s)
			_, err := v.Verify(context.Background(), tt.token(t, clock.Now()), tt.expect)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyAcceptsWithinLeeway(t *testing.T) {
	clock := newFakeClock()
	s := newSigner(t, "k1")
	v := newStaticVerifier(t, clock, s)
	token := s.sign(t, validClaims(clock.Now()))
	clock.Advance(30*time.Second + verify.DefaultLeeway - time.Second)
	if _, err := v.Verify(context.Background(), token, verify.Expect{Tool: testTool, Args: testArgs}); err != nil {
		t.Fatalf("Verify within leeway: %v", err)
	}
}

func TestVerifyRejectsReplay(t *testing.T) {
	clock := newFakeClock()
	s := newSigner(t, "k1")
	v := newStaticVerifier(t, clock, s)
	token := s.sign(t, validClaims(clock.Now()))
	expect := verify.Expect{Tool: testTool, Args: testArgs}
	if _, err := v.Verify(context.Background(), token, expect); err != nil {
		t.Fatalf("first Verify: %v", err)
	}
	if _, err := v.Verify(context.Background(), token, expect); !errors.Is(err, verify.ErrReplayed) {
		t.Fatalf("second Verify error = %v, want ErrReplayed", err)
	}
}

func TestVerifyFailedCheckDoesNotConsume(t *testing.T) {
	clock := newFakeClock()
	s := newSigner(t, "k1")
	v := newStaticVerifier(t, clock, s)
	token := s.sign(t, validClaims(clock.Now()))
	if _, err := v.Verify(context.Background(), token, verify.Expect{Tool: "other", Args: testArgs}); !errors.Is(err, verify.ErrTool) {
		t.Fatalf("Verify with the wrong tool error = %v, want ErrTool", err)
	}
	if _, err := v.Verify(context.Background(), token, verify.Expect{Tool: testTool, Args: testArgs}); err != nil {
		t.Fatalf("Verify after a failed check: %v", err)
	}
}

// jwksServer serves a JWKS that tests can change, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu           sync.Mutex
	keys         []verify.JWK
	status       int
	cacheControl string
	fetches      atomic.Int64
}

func newJWKSServer(t *testing.T, keys ...verify.JWK) *jwksServer {
	t.Helper()
	js := &jwksServer{keys: keys, status: http.StatusOK, cacheControl: "max-age=60"}
	js.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		js.fetches.Add(1)
		js.mu.Lock()
		defer js.mu.Unlock()
		if js.status != http.StatusOK {
			http.Error(w, "unavailable", js.status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", js.cacheControl)
		_ = json.NewEncoder(w).Encode(verify.JWKSet{Keys: js.keys})
	}))
	t.Cleanup(js.Close)
	return js
}

func (js *jwksServer) set(status int, keys ...verify.JWK) {
	js.mu.Lock()
	defer js.mu.Unlock()
	js.status, js.keys = status, keys
}

func newRemoteVerifier(t *testing.T, clock *fakeClock, url string) *verify.Verifier {
	t.Helper()
	v, err := verify.New(verify.Options{
		Issuer: testIssuer, Audience: testAudience, JWKSURL: url, Now: clock.Now,
		MinRefreshInterval: 10 * time.Second, CacheTTL: 5 * time.Minute,
	}, verify.NewMemoryReplayCache(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRemoteKeysRefreshOnUnknownKidIsRateLimited(t *testing.T) {
	clock := newFakeClock()
	k1, k2, k3 := newSigner(t, "k1"), newSigner(t, "k2"), newSigner(t, "k3")
	js := newJWKSServer(t, k1.jwk())
	v := newRemoteVerifier(t, clock, js.URL)
	expect := verify.Expect{Tool: testTool, Args: testArgs}
	ctx := context.Background()

	if _, err := v.Verify(ctx, k1.sign(t, validClaims(clock.Now())), expect); err != nil {
		t.Fatalf("Verify k1: %v", err)
	}
	if _, err := v.Verify(ctx, k1.sign(t, validClaims(clock.Now())), expect); err != nil {
		t.Fatalf("Verify k1 again: %v", err)
	}
	if got := js.fetches.Load(); got != 1 {
		t.Fatalf("fetches after two k1 verifications = %d, want 1 (cached)", got)
	}

	// k2 is published, but the last fetch was just now: no refetch yet.
	js.set(http.StatusOK, k1.jwk(), k2.jwk())
	if _, err := v.Verify(ctx, k2.sign(t, validClaims(clock.Now())), expect); !errors.Is(err, verify.ErrUnknownKey) {
		t.Fatalf("Verify k2 inside the refresh interval error = %v, want ErrUnknownKey", err)
	}
	if got := js.fetches.Load(); got != 1 {
		t.Fatalf("fetches = %d, want 1 (rate-limited)", got)
	}

	clock.Advance(10 * time.Second)
	if _, err := v.Verify(ctx, k2.sign(t, validClaims(clock.Now())), expect); err != nil {
		t.Fatalf("Verify k2 after the refresh interval: %v", err)
	}
	if got := js.fetches.Load(); got != 2 {
		t.Fatalf("fetches = %d, want 2 (one refresh for the unknown kid)", got)
	}

	// A made-up kid right after a refresh costs no fetch.
	if _, err := v.Verify(ctx, k3.sign(t, validClaims(clock.Now())), expect); !errors.Is(err, verify.ErrUnknownKey) {
		t.Fatalf("Verify k3 error = %v, want ErrUnknownKey", err)
	}
	if got := js.fetches.Load(); got != 2 {
		t.Fatalf("fetches = %d, want 2", got)
	}
}

func TestRemoteKeysHonourMaxAge(t *testing.T) {
	clock := newFakeClock()
	k1 := newSigner(t, "k1")
	js := newJWKSServer(t, k1.jwk())
	v := newRemoteVerifier(t, clock, js.URL)
	expect := verify.Expect{Tool: testTool, Args: testArgs}
	ctx := context.Background()

	if _, err := v.Verify(ctx, k1.sign(t, validClaims(clock.Now())), expect); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	clock.Advance(59 * time.Second)
	if _, err := v.Verify(ctx, k1.sign(t, validClaims(clock.Now())), expect); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got := js.fetches.Load(); got != 1 {
		t.Fatalf("fetches within max-age = %d, want 1", got)
	}
	// Past max-age the set is refetched; k1 was withdrawn meanwhile.
	js.set(http.StatusOK)
	clock.Advance(2 * time.Second)
	if _, err := v.Verify(ctx, k1.sign(t, validClaims(clock.Now())), expect); !errors.Is(err, verify.ErrUnknownKey) {
		t.Fatalf("Verify with a withdrawn key error = %v, want ErrUnknownKey", err)
	}
	if got := js.fetches.Load(); got != 2 {
		t.Fatalf("fetches after max-age = %d, want 2", got)
	}
}

func TestRemoteKeysFailClosed(t *testing.T) {
	clock := newFakeClock()
	k1 := newSigner(t, "k1")
	js := newJWKSServer(t, k1.jwk())
	js.set(http.StatusInternalServerError)
	v := newRemoteVerifier(t, clock, js.URL)
	expect := verify.Expect{Tool: testTool, Args: testArgs}
	ctx := context.Background()

	if _, err := v.Verify(ctx, k1.sign(t, validClaims(clock.Now())), expect); !errors.Is(err, verify.ErrKeySource) {
		t.Fatalf("Verify with a failing JWKS error = %v, want ErrKeySource", err)
	}
	// The failure is not retried at once...
	if _, err := v.Verify(ctx, k1.sign(t, validClaims(clock.Now())), expect); !errors.Is(err, verify.ErrKeySource) {
		t.Fatalf("second Verify error = %v, want ErrKeySource", err)
	}
	if got := js.fetches.Load(); got != 1 {
		t.Fatalf("fetches = %d, want 1", got)
	}
	// ...but is once the interval has passed and the endpoint recovered.
	js.set(http.StatusOK, k1.jwk())
	clock.Advance(10 * time.Second)
	if _, err := v.Verify(ctx, k1.sign(t, validClaims(clock.Now())), expect); err != nil {
		t.Fatalf("Verify after recovery: %v", err)
	}
}

func TestJWKSetPublicKeys(t *testing.T) {
	s := newSigner(t, "k1")
	rsa := verify.JWK{Kty: "RSA", Kid: "r1"}
	enc := s.jwk()
	enc.Kid, enc.Use = "enc", "enc"
	keys, err := verify.JWKSet{Keys: []verify.JWK{s.jwk(), rsa, enc}}.PublicKeys()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !keys["k1"].Equal(s.public()) {
		t.Errorf("keys = %v, want only k1", keys)
	}

	short := s.jwk()
	short.X = "AAAA"
	if _, err := (verify.JWKSet{Keys: []verify.JWK{short}}).PublicKeys(); err == nil {
		t.Error("a short x was accepted")
	}
	if _, err := (verify.JWKSet{Keys: []verify.JWK{s.jwk(), s.jwk()}}).PublicKeys(); err == nil {
		t.Error("a repeated kid was accepted")
	}
}

func TestNewRejectsIncompleteOptions(t *testing.T) {
	key := map[string]ed25519.PublicKey{"k1": newSigner(t, "k1").public()}
	cache := verify.NewMemoryReplayCache(nil)
	tests := []struct {
		name  string
		opts  verify.Options
		cache verify.ReplayCache
	}{
		{"no issuer", verify.Options{Audience: "a", Keys: key}, cache},
		{"no audience", verify.Options{Issuer: "i", Keys: key}, cache},
		{"no keys", verify.Options{Issuer: "i", Audience: "a"}, cache},
		{"both key sources", verify.Options{Issuer: "i", Audience: "a", Keys: key, JWKSURL: "https://w.test/jwks"}, cache},
		{"keys and key func", verify.Options{Issuer: "i", Audience: "a", Keys: key, KeyFunc: func(context.Context) (map[string]ed25519.PublicKey, error) { return key, nil }}, cache},
		{"bad URL", verify.Options{Issuer: "i", Audience: "a", JWKSURL: "file:///etc/keys"}, cache},
		{"short key", verify.Options{Issuer: "i", Audience: "a", Keys: map[string]ed25519.PublicKey{"k1": {1, 2}}}, cache},
		{"no replay cache", verify.Options{Issuer: "i", Audience: "a", Keys: key}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := verify.New(tt.opts, tt.cache); err == nil {
				t.Fatal("New accepted incomplete options")
			}
		})
	}
}

func TestMemoryReplayCacheExpires(t *testing.T) {
	clock := newFakeClock()
	c := verify.NewMemoryReplayCache(clock.Now)
	ctx := context.Background()
	exp := clock.Now().Add(time.Minute)
	if err := c.Add(ctx, "a", exp); err != nil {
		t.Fatal(err)
	}
	if err := c.Add(ctx, "a", exp); !errors.Is(err, verify.ErrReplayed) {
		t.Fatalf("second Add error = %v, want ErrReplayed", err)
	}
	if err := c.Add(ctx, "", exp); err == nil {
		t.Fatal("empty id accepted")
	}
	clock.Advance(time.Minute)
	if err := c.Add(ctx, "a", clock.Now().Add(time.Minute)); err != nil {
		t.Fatalf("Add after expiry: %v", err)
	}

	// Expired entries are swept as the cache grows.
	for i := range 2000 {
		if err := c.Add(ctx, fmt.Sprintf("bulk-%d", i), clock.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(2 * time.Second)
	for i := range 2000 {
		if err := c.Add(ctx, fmt.Sprintf("next-%d", i), clock.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.Len(); got > 2100 {
		t.Errorf("Len = %d after the first batch expired, want expired entries swept", got)
	}
}

func TestFromMeta(t *testing.T) {
	if tok, ok := verify.FromMeta(map[string]any{verify.MetaKey: "abc"}); !ok || tok != "abc" {
		t.Errorf("FromMeta = %q, %v", tok, ok)
	}
	for _, meta := range []map[string]any{nil, {}, {verify.MetaKey: ""}, {verify.MetaKey: 42}, {"credential": "abc"}} {
		if tok, ok := verify.FromMeta(meta); ok {
			t.Errorf("FromMeta(%v) = %q, want none", meta, tok)
		}
	}
}

func TestFromRequest(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   string
		ok     bool
	}{
		{"bearer", []string{"Bearer abc.def.ghi"}, "abc.def.ghi", true},
		{"lowercase scheme", []string{"bearer abc"}, "abc", true},
		{"none", nil, "", false},
		{"basic", []string{"Basic dXNlcjpwYXNz"}, "", false},
		{"empty token", []string{"Bearer "}, "", false},
		{"two headers", []string{"Bearer a", "Bearer b"}, "", false},
		{"inner space", []string{"Bearer a b"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
			for _, v := range tt.values {
				r.Header.Add("Authorization", v)
			}
			got, ok := verify.FromRequest(r)
			if got != tt.want || ok != tt.ok {
				t.Errorf("FromRequest = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
	if _, ok := verify.FromRequest(nil); ok {
		t.Error("FromRequest(nil) found a token")
	}
}

func TestRemoteKeysConcurrentFirstUseFetchesOnce(t *testing.T) {
	clock := newFakeClock()
	k1 := newSigner(t, "k1")
	js := newJWKSServer(t, k1.jwk())
	v := newRemoteVerifier(t, clock, js.URL)
	tokens := make([]string, 16)
	for i := range tokens {
		tokens[i] = k1.sign(t, validClaims(clock.Now()))
	}
	errs := make(chan error, len(tokens))
	var wg sync.WaitGroup
	for _, token := range tokens {
		wg.Go(func() {
			_, err := v.Verify(context.Background(), token, verify.Expect{Tool: testTool, Args: testArgs})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
	if got := js.fetches.Load(); got != 1 {
		t.Errorf("fetches = %d, want 1", got)
	}
}

// TestKeyFuncFollowsRotation: a verifier fed by KeyFunc sees each key set the
// function returns, so a key published after the verifier was built is
// accepted and one withdrawn is not.
func TestKeyFuncFollowsRotation(t *testing.T) {
	clock := newFakeClock()
	old, fresh := newSigner(t, "k1"), newSigner(t, "k2")
	var mu sync.Mutex
	published := map[string]ed25519.PublicKey{old.kid: old.public()}
	var sourceErr error
	v, err := verify.New(verify.Options{
		Issuer: testIssuer, Audience: testAudience, Now: clock.Now,
		KeyFunc: func(context.Context) (map[string]ed25519.PublicKey, error) {
			mu.Lock()
			defer mu.Unlock()
			return published, sourceErr
		},
	}, verify.NewMemoryReplayCache(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want := verify.Expect{Tool: testTool, Op: "tools/call", Args: testArgs}

	if _, err := v.Verify(ctx, old.sign(t, validClaims(clock.Now())), want); err != nil {
		t.Fatalf("credential under the published key: %v", err)
	}
	if _, err := v.Verify(ctx, fresh.sign(t, validClaims(clock.Now())), want); !errors.Is(err, verify.ErrUnknownKey) {
		t.Fatalf("credential under an unpublished key: error %v, want ErrUnknownKey", err)
	}

	mu.Lock()
	published = map[string]ed25519.PublicKey{fresh.kid: fresh.public()}
	mu.Unlock()
	if _, err := v.Verify(ctx, fresh.sign(t, validClaims(clock.Now())), want); err != nil {
		t.Fatalf("credential under the rotated-in key: %v", err)
	}
	if _, err := v.Verify(ctx, old.sign(t, validClaims(clock.Now())), want); !errors.Is(err, verify.ErrUnknownKey) {
		t.Fatalf("credential under the withdrawn key: error %v, want ErrUnknownKey", err)
	}

	mu.Lock()
	sourceErr = errors.New("key store unavailable")
	mu.Unlock()
	if _, err := v.Verify(ctx, fresh.sign(t, validClaims(clock.Now())), want); !errors.Is(err, verify.ErrKeySource) {
		t.Fatalf("failing key source: error %v, want ErrKeySource", err)
	}
}
