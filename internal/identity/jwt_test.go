package identity

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

type jwtFixture struct {
	clock          *fakeClock
	rsaKey, ec, ed signingKey
	jwks           *jwksServer
	w              *warden
	logs           *bytes.Buffer
}

func newJWTFixture(t testing.TB, tweak func(*Config)) *jwtFixture {
	t.Helper()
	f := &jwtFixture{clock: newFakeClock(), rsaKey: newRSAKey(t, "rsa-1"), ec: newECKey(t, "ec-1"), ed: newEdKey(t, "ed-1"), logs: &bytes.Buffer{}}
	f.jwks = newJWKSServer(t, f.rsaKey, f.ec, f.ed)
	cfg := Config{JWT: &JWTConfig{Issuer: testIssuer, Audience: testAudience, JWKSURL: f.jwks.URL + "/jwks",
		TenantClaim: "tenant", ClearanceClaim: "clearance"}}
	if tweak != nil {
		tweak(&cfg)
	}
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: f.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.w = newWarden(t, cfg, Options{Now: f.clock.Now, Logger: logger})
	return f
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestJWTAccepted(t *testing.T) {
	f := newJWTFixture(t, nil)
	now := f.clock.Now()
	for _, k := range []signingKey{f.rsaKey, f.ec, f.ed} {
		t.Run(k.alg.Alg(), func(t *testing.T) {
			got := f.w.call(t, bearer(k.sign(t, validClaims(now)))).principal(t)
			if got.ID != "alice" || got.Method != MethodJWT || got.Tenant != "acme" || got.Clearance != "confidential" {
				t.Errorf("principal %+v", got)
			}
			if diff := cmp.Diff([]string{"support-agent", "reader"}, got.Roles); diff != "" {
				t.Errorf("roles (-want +got):\n%s", diff)
			}
			if got.Claims["jti"] != "jti-1" || got.Claims["iss"] != testIssuer {
				t.Errorf("claims %v do not keep the token's claims", got.Claims)
			}
		})
	}
	t.Run("roles as a space-separated string", func(t *testing.T) {
		c := validClaims(now)
		c["roles"] = "support-agent  reader"
		got := f.w.call(t, bearer(f.rsaKey.sign(t, c))).principal(t)
		if diff := cmp.Diff([]string{"support-agent", "reader"}, got.Roles); diff != "" {
			t.Errorf("roles (-want +got):\n%s", diff)
		}
	})
	t.Run("within clock skew", func(t *testing.T) {
		c := validClaims(now)
		c["exp"] = now.Add(-50 * time.Second).Unix()
		c["nbf"] = now.Add(50 * time.Second).Unix()
		f.w.call(t, bearer(f.rsaKey.sign(t, c))).principal(t)
	})
	if n := f.jwks.hits.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times, want once (cached)", n)
	}
}

func TestJWTRefused(t *testing.T) {
	f := newJWTFixture(t, nil)
	now := f.clock.Now()
	other := newRSAKey(t, "rsa-1") // same kid as the issuer's key, different key
	rsaPEM := func() []byte {
		der, err := x509.MarshalPKIXPublicKey(f.rsaKey.signer.Public())
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()
	with := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := validClaims(now)
		edit(c)
		return c
	}
	for _, tc := range []struct {
		name  string
		token func(t *testing.T) string
		desc  string
	}{
		{"expired", func(t *testing.T) string {
			return f.rsaKey.sign(t, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-2 * time.Minute).Unix() }))
		}, "token has expired"},
		{"not yet valid", func(t *testing.T) string {
			return f.ec.sign(t, with(func(c jwt.MapClaims) { c["nbf"] = now.Add(2 * time.Minute).Unix() }))
		}, "token is not yet valid"},
		{"issued in the future", func(t *testing.T) string {
			return f.ed.sign(t, with(func(c jwt.MapClaims) { c["iat"] = now.Add(2 * time.Minute).Unix() }))
		}, "token was issued in the future"},
		{"wrong audience", func(t *testing.T) string {
			return f.rsaKey.sign(t, with(func(c jwt.MapClaims) { c["aud"] = "https://elsewhere.test" }))
		}, "token audience does not include this resource"},
		{"no audience", func(t *testing.T) string {
			return f.rsaKey.sign(t, with(func(c jwt.MapClaims) { delete(c, "aud") }))
		}, "token has no aud claim"},
		{"wrong issuer", func(t *testing.T) string {
			return f.rsaKey.sign(t, with(func(c jwt.MapClaims) { c["iss"] = "https://evil.test" }))
		}, "token issuer is not trusted"},
		{"no expiry", func(t *testing.T) string {
			return f.rsaKey.sign(t, with(func(c jwt.MapClaims) { delete(c, "exp") }))
		}, "token has no exp claim"},
		{"no subject", func(t *testing.T) string {
			return f.rsaKey.sign(t, with(func(c jwt.MapClaims) { delete(c, "sub") }))
		}, "token has no sub claim"},
		{"roles of the wrong type", func(t *testing.T) string {
			return f.rsaKey.sign(t, with(func(c jwt.MapClaims) { c["roles"] = []any{"a", 7} }))
		}, "token roles claim is not a list of strings"},
		{"tenant of the wrong type", func(t *testing.T) string {
			return f.rsaKey.sign(t, with(func(c jwt.MapClaims) { c["tenant"] = map[string]any{"id": "acme"} }))
		}, "token tenant claim is not a string"},
		{"signed by another key", func(t *testing.T) string {
			return other.sign(t, validClaims(now))
		}, "token signature is invalid"},
		{"payload altered after signing", func(t *testing.T) string {
			tok := f.rsaKey.sign(t, validClaims(now))
			parts := strings.Split(tok, ".")
			forged, _ := json.Marshal(with(func(c jwt.MapClaims) { c["sub"] = "root" }))
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(forged) + "." + parts[2]
		}, "token signature is invalid"},
		{"alg none", func(t *testing.T) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, validClaims(now))
			tok.Header["kid"] = "rsa-1"
			s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, "token algorithm is not allowed"},
		{"HS256 with the RSA public key as secret", func(t *testing.T) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, validClaims(now))
			tok.Header["kid"] = "rsa-1"
			s, err := tok.SignedString(rsaPEM)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, "token algorithm is not allowed"},
		{"algorithm allowed but not this key's", func(t *testing.T) string {
			// A valid ES256 signature, but the kid names the RSA key.
			k := f.ec
			k.kid = "rsa-1"
			return k.sign(t, validClaims(now))
		}, "token algorithm does not match its signing key"},
		{"RS256 naming an EC key that has no alg", func(t *testing.T) string {
			k := f.rsaKey
			k.kid = "ec-1"
			return k.sign(t, validClaims(now))
		}, "token algorithm does not match its signing key"},
		{"no kid", func(t *testing.T) string {
			k := f.rsaKey
			k.kid = ""
			tok := jwt.NewWithClaims(k.alg, validClaims(now))
			s, err := tok.SignedString(k.signer)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, "token signing key is unknown"},
		{"malformed", func(t *testing.T) string { return "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln" }, "token is malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token := tc.token(t)
			f.w.call(t, bearer(token)).wantRefused(t, http.StatusUnauthorized,
				challengeFor(f.w, "invalid_token", tc.desc), "invalid_token", tc.desc)
			if strings.Contains(f.logs.String(), token) {
				t.Error("the token was written to the log")
			}
		})
	}
}

func TestJWTNotConfigured(t *testing.T) {
	w := newWarden(t, Config{APIKeys: []APIKey{{ID: "ci", Hash: HashAPIKey("k"), Principal: Principal{ID: "ci"}}}}, Options{})
	key := newEdKey(t, "ed-1")
	desc := "JWT bearer tokens are not accepted here"
	w.call(t, bearer(key.sign(t, validClaims(time.Now())))).wantRefused(t, http.StatusUnauthorized,
		challengeFor(w, "invalid_token", desc), "invalid_token", desc)
}

func TestJWKSUnknownKidRefreshesOnce(t *testing.T) {
	f := newJWTFixture(t, nil)
	f.w.call(t, bearer(f.rsaKey.sign(t, validClaims(f.clock.Now())))).principal(t)
	if n := f.jwks.hits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", n)
	}

	f.clock.Advance(time.Minute) // past the refetch interval, within max-age
	stranger := newEdKey(t, "ed-unknown")
	desc := "token signing key is unknown"
	f.w.call(t, bearer(stranger.sign(t, validClaims(f.clock.Now())))).wantRefused(t, http.StatusUnauthorized,
		challengeFor(f.w, "invalid_token", desc), "invalid_token", desc)
	if n := f.jwks.hits.Load(); n != 2 {
		t.Fatalf("after an unknown kid: JWKS fetched %d times, want 2 (one refresh)", n)
	}
	// More unknown kids at once: rate-limited, no further fetch.
	for range 3 {
		f.w.call(t, bearer(stranger.sign(t, validClaims(f.clock.Now())))).wantRefused(t, http.StatusUnauthorized,
			challengeFor(f.w, "invalid_token", desc), "invalid_token", desc)
	}
	if n := f.jwks.hits.Load(); n != 2 {
		t.Fatalf("after repeated unknown kids: JWKS fetched %d times, want still 2", n)
	}

	// The issuer rotates in a new key; once the interval has passed, a
	// token signed with it is accepted after one refresh.
	rotated := newECKey(t, "ec-2")
	f.jwks.publish(t, rotated)
	f.clock.Advance(minJWKSRefresh)
	if got := f.w.call(t, bearer(rotated.sign(t, validClaims(f.clock.Now())))).principal(t); got.ID != "alice" {
		t.Errorf("principal %q after rotation", got.ID)
	}
	if n := f.jwks.hits.Load(); n != 3 {
		t.Errorf("after rotation: JWKS fetched %d times, want 3", n)
	}
}

func TestJWKSMaxAgeAndOutage(t *testing.T) {
	f := newJWTFixture(t, nil)
	f.jwks.setCacheControl("public, max-age=120")
	sign := func() string { return f.ed.sign(t, validClaims(f.clock.Now())) }
	f.w.call(t, bearer(sign())).principal(t)

	f.clock.Advance(119 * time.Second)
	f.w.call(t, bearer(sign())).principal(t)
	if n := f.jwks.hits.Load(); n != 1 {
		t.Fatalf("within max-age: JWKS fetched %d times, want 1", n)
	}
	f.clock.Advance(2 * time.Second)
	f.w.call(t, bearer(sign())).principal(t)
	if n := f.jwks.hits.Load(); n != 2 {
		t.Fatalf("past max-age: JWKS fetched %d times, want 2", n)
	}

	// The issuer goes down and the cached keys expire: fail closed, with a
	// 503 rather than a challenge (a new token would not help).
	f.jwks.setStatus(http.StatusInternalServerError)
	f.clock.Advance(121 * time.Second)
	resp := f.w.call(t, bearer(sign()))
	resp.wantRefused(t, http.StatusServiceUnavailable, "", "temporarily_unavailable",
		"the token issuer's keys are unavailable; try again later")
}

func TestJWKSFile(t *testing.T) {
	ed, ec := newEdKey(t, "ed-file"), newECKey(t, "ec-file")
	path := t.TempDir() + "/jwks.json"
	body, err := json.Marshal(map[string]any{"keys": []any{
		ed.jwk(t),
		ec.jwk(t),
		map[string]string{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},                       // symmetric: skipped
		map[string]string{"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"}, // not for signatures: skipped
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	w := newWarden(t, Config{ResourceURL: testAudience, JWT: &JWTConfig{Issuer: testIssuer, JWKSFile: path}}, Options{Now: clock.Now})
	for _, k := range []signingKey{ed, ec} {
		if got := w.call(t, bearer(k.sign(t, validClaims(clock.Now())))).principal(t); got.ID != "alice" {
			t.Errorf("%s: principal %q", k.kid, got.ID)
		}
	}

	if err := os.WriteFile(path, []byte(`{"keys":[{"kty":"oct","kid":"hmac","k":"c2VjcmV0"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = New(Config{ResourceURL: testAudience, JWT: &JWTConfig{Issuer: testIssuer, JWKSFile: path}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "no usable signing key") {
		t.Errorf("a JWKS without signing keys: err = %v", err)
	}
}
