package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

const (
	testIssuer   = "https://issuer.test"
	testAudience = "https://warden.test/mcp"
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

// signingKey is a key pair the test issuer signs with.
type signingKey struct {
	kid    string
	alg    jwt.SigningMethod
	signer crypto.Signer
}

func newRSAKey(t testing.TB, kid string) signingKey {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, alg: jwt.SigningMethodRS256, signer: priv}
}

func newECKey(t testing.TB, kid string) signingKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, alg: jwt.SigningMethodES256, signer: priv}
}

func newEdKey(t testing.TB, kid string) signingKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, alg: jwt.SigningMethodEdDSA, signer: priv}
}

// jwk is the key's public half as a JWKS entry.
func (k signingKey) jwk(t testing.TB) map[string]string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	switch pub := k.signer.Public().(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": k.kid, "use": "sig", "alg": "RS256",
			"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}
	case *ecdsa.PublicKey:
		raw, err := pub.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{"kty": "EC", "kid": k.kid, "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:])}
	case ed25519.PublicKey:
		return map[string]string{"kty": "OKP", "kid": k.kid, "crv": "Ed25519", "x": b64(pub)}
	}
	t.Fatalf("unexpected key type %T", k.signer.Public())
	return nil
}

// sign makes a JWT with claims, signed by k and naming k's kid.
func (k signingKey) sign(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(k.alg, claims)
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.signer)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss":       testIssuer,
		"aud":       []string{testAudience, "other"},
		"sub":       "alice",
		"exp":       now.Add(5 * time.Minute).Unix(),
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"jti":       "jti-1",
		"roles":     []string{"support-agent", "reader"},
		"tenant":    "acme",
		"clearance": "confidential",
	}
}

// jwksServer is a real issuer key endpoint on loopback.
type jwksServer struct {
	*httptest.Server
	mu           sync.Mutex
	keys         []map[string]string
	cacheControl string
	status       int
	hits         atomic.Int32
}

func newJWKSServer(t testing.TB, keys ...signingKey) *jwksServer {
	t.Helper()
	s := &jwksServer{cacheControl: "max-age=600", status: http.StatusOK}
	for _, k := range keys {
		s.keys = append(s.keys, k.jwk(t))
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.status != http.StatusOK {
			w.WriteHeader(s.status)
			return
		}
		w.Header().Set("Cache-Control", s.cacheControl)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": s.keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) publish(t testing.TB, k signingKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, k.jwk(t))
}

func (s *jwksServer) setCacheControl(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cacheControl = v
}

func (s *jwksServer) setStatus(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = status
}

// warden is the middleware in front of a handler that reports what it saw.
type warden struct {
	*httptest.Server
	auth *Authenticator
}

// seen is what the protected handler reports.
type seen struct {
	Principal  Principal `json:"principal"`
	Found      bool      `json:"found"`
	Credential bool      `json:"credential"` // a credential header reached the handler
}

func newWarden(t testing.TB, cfg Config, opts Options) *warden {
	t.Helper()
	a, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle(MetadataPath, a.MetadataHandler())
	mux.Handle(MetadataPath+"/", a.MetadataHandler())
	mux.Handle("/mcp", a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := FromContext(r.Context())
		cred := r.Header.Get("Authorization") != "" || r.Header.Get("X-API-Key") != ""
		_ = json.NewEncoder(w).Encode(seen{Principal: p, Found: ok, Credential: cred})
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &warden{Server: srv, auth: a}
}

// response is what a client got back.
type response struct {
	status    int
	challenge string
	body      []byte
}

func (w *warden) call(t testing.TB, header http.Header) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, w.URL+"/mcp", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := w.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, challenge: resp.Header.Get("WWW-Authenticate"), body: body}
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// principal decodes an accepted response.
func (r response) principal(t testing.TB) Principal {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200; challenge %q; body %s", r.status, r.challenge, r.body)
	}
	var s seen
	if err := json.Unmarshal(r.body, &s); err != nil {
		t.Fatal(err)
	}
	if !s.Found {
		t.Fatal("no principal in the request context")
	}
	if s.Credential {
		t.Error("a credential header reached the protected handler")
	}
	return s.Principal
}

// wantRefused checks a refusal: its status, its exact challenge and its
// JSON body.
func (r response) wantRefused(t testing.TB, status int, challenge, wantError, wantDesc string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; challenge %q; body %s", r.status, status, r.challenge, r.body)
	}
	if r.challenge != challenge {
		t.Errorf("WWW-Authenticate:\n got %s\nwant %s", r.challenge, challenge)
	}
	var body map[string]string
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", r.body, err)
	}
	if body["error"] != wantError || body["error_description"] != wantDesc {
		t.Errorf("body %v, want error %q description %q", body, wantError, wantDesc)
	}
}

func challengeFor(w *warden, code, desc string) string {
	c := `Bearer realm="warden", resource_metadata="` + w.URL + `/.well-known/oauth-protected-resource/mcp"`
	if code != "" {
		c += `, error="` + code + `", error_description="` + desc + `"`
	}
	return c
}

func TestConfigValidate(t *testing.T) {
	goodKey := APIKey{ID: "ci", Hash: HashAPIKey("k"), Principal: Principal{ID: "ci-bot"}}
	goodJWT := func() *JWTConfig {
		return &JWTConfig{Issuer: testIssuer, Audience: testAudience, JWKSURL: "https://issuer.test/jwks"}
	}
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string // empty: valid
	}{
		{"empty", Config{}, ""},
		{"api key and jwt", Config{APIKeys: []APIKey{goodKey}, JWT: goodJWT()}, ""},
		{"loopback http jwks", Config{JWT: &JWTConfig{Issuer: "i", Audience: "a", JWKSURL: "http://127.0.0.1:9/jwks"}}, ""},
		{"audience from resource_url", Config{ResourceURL: testAudience, JWT: &JWTConfig{Issuer: "i", JWKSFile: "x.json"}}, ""},
		{"key in clear", Config{APIKeys: []APIKey{{ID: "a", Hash: "s3cret", Principal: Principal{ID: "p"}}}}, `must start with "sha256:"`},
		{"short hash", Config{APIKeys: []APIKey{{ID: "a", Hash: "sha256:abcd", Principal: Principal{ID: "p"}}}}, "64 lower-case hex digits"},
		{"upper-case hash", Config{APIKeys: []APIKey{{ID: "a", Hash: strings.ToUpper(HashAPIKey("k")), Principal: Principal{ID: "p"}}}}, `must start with "sha256:"`},
		{"key without id", Config{APIKeys: []APIKey{{Hash: HashAPIKey("k"), Principal: Principal{ID: "p"}}}}, "id is required"},
		{"key without principal", Config{APIKeys: []APIKey{{ID: "a", Hash: HashAPIKey("k")}}}, "principal.id is required"},
		{"duplicate key id", Config{APIKeys: []APIKey{goodKey, {ID: "ci", Hash: HashAPIKey("other"), Principal: Principal{ID: "p"}}}}, "id appears twice"},
		{"duplicate key hash", Config{APIKeys: []APIKey{goodKey, {ID: "b", Hash: HashAPIKey("k"), Principal: Principal{ID: "p"}}}}, "same key hash as ci"},
		{"anonymous without id", Config{Anonymous: &Principal{}}, "anonymous: id is required"},
		{"relative resource url", Config{ResourceURL: "/mcp"}, "not an absolute http(s) URL"},
		{"resource url with query", Config{ResourceURL: "https://w.test/mcp?x=1"}, "must not carry a query"},
		{"http authorization server", Config{AuthorizationServers: []string{"http://idp.example"}}, "must use https"},
		{"jwt without issuer", Config{JWT: &JWTConfig{Audience: "a", JWKSURL: "https://i/jwks"}}, "issuer is required"},
		{"jwt without audience", Config{JWT: &JWTConfig{Issuer: "i", JWKSURL: "https://i/jwks"}}, "audience is required"},
		{"jwt without keys", Config{JWT: &JWTConfig{Issuer: "i", Audience: "a"}}, "jwks_url or jwks_file is required"},
		{"jwt with both key sources", Config{JWT: &JWTConfig{Issuer: "i", Audience: "a", JWKSURL: "https://i/jwks", JWKSFile: "f"}}, "not both"},
		{"plain http jwks", Config{JWT: &JWTConfig{Issuer: "i", Audience: "a", JWKSURL: "http://idp.example/jwks"}}, "must use https"},
		{"alg none", Config{JWT: &JWTConfig{Issuer: "i", Audience: "a", JWKSURL: "https://i/jwks", Algorithms: []string{"none"}}}, `"none" is not allowed`},
		{"alg HS256", Config{JWT: &JWTConfig{Issuer: "i", Audience: "a", JWKSURL: "https://i/jwks", Algorithms: []string{"HS256"}}}, `"HS256" is not allowed`},
		{"unknown alg", Config{JWT: &JWTConfig{Issuer: "i", Audience: "a", JWKSURL: "https://i/jwks", Algorithms: []string{"RS1"}}}, "not supported"},
		{"negative skew", Config{JWT: &JWTConfig{Issuer: "i", Audience: "a", JWKSURL: "https://i/jwks", ClockSkew: -time.Second}}, "clock_skew"},
		{"huge skew", Config{JWT: &JWTConfig{Issuer: "i", Audience: "a", JWKSURL: "https://i/jwks", ClockSkew: time.Hour}}, "clock_skew"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("Validate accepted the config; want error containing %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("Validate: %v; want error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestConfigYAML(t *testing.T) {
	doc := `
api_keys:
  - id: ci
    hash: ` + HashAPIKey("k") + `
    principal: {id: ci-bot, roles: [deployer], tenant: acme, clearance: internal}
jwt:
  issuer: https://issuer.test
  audience: https://warden.test/mcp
  jwks_url: https://issuer.test/jwks
  clock_skew: 30s
  algorithms: [ES256]
  roles_claim: groups
anonymous: {id: guest}
resource_url: https://warden.test/mcp
`
	var cfg Config
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	want := Config{
		APIKeys: []APIKey{{ID: "ci", Hash: HashAPIKey("k"),
			Principal: Principal{ID: "ci-bot", Roles: []string{"deployer"}, Tenant: "acme", Clearance: "internal"}}},
		JWT: &JWTConfig{Issuer: testIssuer, Audience: testAudience, JWKSURL: "https://issuer.test/jwks",
			ClockSkew: 30 * time.Second, Algorithms: []string{"ES256"}, RolesClaim: "groups"},
		Anonymous:   &Principal{ID: "guest"},
		ResourceURL: testAudience,
	}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("decoded config (-want +got):\n%s", diff)
	}
	if err := yaml.Unmarshal([]byte("jwt: {clock_skew: soon}"), &Config{}); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad duration: err = %v, want one naming line 1", err)
	}
}

func TestContext(t *testing.T) {
	if _, ok := FromContext(context.Background()); ok {
		t.Error("FromContext found a principal in an empty context")
	}
	p := Principal{ID: "me", Method: MethodLocal}
	got, ok := FromContext(NewContext(context.Background(), p))
	if !ok || got.ID != "me" || got.Method != MethodLocal {
		t.Errorf("FromContext = %+v, %v", got, ok)
	}
}
