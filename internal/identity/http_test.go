package identity

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

func TestMetadata(t *testing.T) {
	t.Run("derived from the request", func(t *testing.T) {
		f := newJWTFixture(t, nil)
		resp := f.w.call(t, nil)
		// Follow the challenge to the document, as an MCP client does.
		_, url, ok := strings.Cut(resp.challenge, `resource_metadata="`)
		if !ok {
			t.Fatalf("no resource_metadata in %q", resp.challenge)
		}
		url, _, _ = strings.Cut(url, `"`)
		got := getMetadata(t, f.w, url, http.StatusOK)
		want := map[string]any{
			"resource":                 f.w.URL + "/mcp",
			"authorization_servers":    []any{testIssuer},
			"bearer_methods_supported": []any{"header"},
			"resource_name":            "Warden",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("metadata (-want +got):\n%s", diff)
		}
		root := getMetadata(t, f.w, f.w.URL+MetadataPath, http.StatusOK)
		if root["resource"] != f.w.URL {
			t.Errorf("root form: resource %v, want %s", root["resource"], f.w.URL)
		}
	})
	t.Run("configured", func(t *testing.T) {
		w := newWarden(t, Config{ResourceURL: "https://warden.example/mcp",
			AuthorizationServers: []string{"https://idp.example"}, Anonymous: &Principal{ID: "guest"}}, Options{})
		want := map[string]any{
			"resource":                 "https://warden.example/mcp",
			"authorization_servers":    []any{"https://idp.example"},
			"bearer_methods_supported": []any{"header"},
			"resource_name":            "Warden",
		}
		for _, path := range []string{MetadataPath, MetadataPath + "/mcp"} {
			if diff := cmp.Diff(want, getMetadata(t, w, w.URL+path, http.StatusOK)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", path, diff)
			}
		}
		getMetadata(t, w, w.URL+MetadataPath+"/other", http.StatusNotFound)
		getMetadata(t, w, w.URL+MetadataPath+"x", http.StatusNotFound)
		resp := w.call(t, bearer("bad"))
		wantChallenge := `Bearer realm="warden", resource_metadata="https://warden.example/.well-known/oauth-protected-resource/mcp", error="invalid_token", error_description="API key is not recognized"`
		if resp.challenge != wantChallenge {
			t.Errorf("challenge\n got %s\nwant %s", resp.challenge, wantChallenge)
		}
	})
	t.Run("methods", func(t *testing.T) {
		w := newWarden(t, Config{}, Options{})
		resp, err := w.Client().Post(w.URL+MetadataPath, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST: status %d, want 405", resp.StatusCode)
		}
		req, _ := http.NewRequest(http.MethodOptions, w.URL+MetadataPath+"/mcp", nil)
		resp, err = w.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("OPTIONS: status %d, CORS origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	})
}

func getMetadata(t testing.TB, w *warden, url string, wantStatus int) map[string]any {
	t.Helper()
	resp, err := w.Client().Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s: status %d, want %d", url, resp.StatusCode, wantStatus)
	}
	if wantStatus != http.StatusOK {
		return nil
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestSecretsNeverLogged(t *testing.T) {
	f := newJWTFixture(t, func(c *Config) {
		c.APIKeys = []APIKey{{ID: "ci", Hash: HashAPIKey("ci-secret-key"), Principal: Principal{ID: "ci-bot"}}}
	})
	good := f.rsaKey.sign(t, validClaims(f.clock.Now()))
	expired := f.rsaKey.sign(t, jwt.MapClaims{"iss": testIssuer, "aud": testAudience, "sub": "bob", "exp": f.clock.Now().Add(-time.Hour).Unix()})
	f.w.call(t, bearer(good)).principal(t)
	f.w.call(t, bearer("ci-secret-key")).principal(t)
	f.w.call(t, http.Header{"X-Api-Key": {"ci-secret-wrong"}})
	f.w.call(t, bearer(expired))
	logs := f.logs.String()
	for _, secret := range []string{good, expired, "ci-secret-key", "ci-secret-wrong", strings.Split(good, ".")[2]} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains a secret: %q", secret)
		}
	}
	for _, want := range []string{"key_id=ci", "jti=jti-1", "principal=alice", `reason="token has expired"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestLooksLikeJWT(t *testing.T) {
	for token, want := range map[string]bool{
		"eyJh.eyJz.c2ln":     true,
		"eyJh.eyJz.":         true, // alg none
		"wk_live_0123456789": false,
		"a.b":                false,
		"a.b.c.d":            false,
		".b.c":               false,
		"a+b.c.d":            false,
	} {
		if got := looksLikeJWT(token); got != want {
			t.Errorf("looksLikeJWT(%q) = %v, want %v", token, got, want)
		}
	}
}

// FuzzMiddleware holds the front door shut: whatever the credential
// headers hold, the middleware does not panic, and nothing but the one
// configured key gets in.
func FuzzMiddleware(f *testing.F) {
	for _, seed := range []struct{ authz, apiKey string }{
		{"Bearer ci-key", ""},
		{"", "ci-key"},
		{"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", ""},
		{"Bearer a.b.c", ""},
		{"bearer  ci-key", ""},
		{"Basic Y2k6a2V5", ""},
		{"Bearer ", "x"},
	} {
		f.Add(seed.authz, seed.apiKey)
	}
	a, err := New(Config{
		APIKeys:     []APIKey{{ID: "ci", Hash: HashAPIKey("ci-key"), Principal: Principal{ID: "ci-bot"}}},
		ResourceURL: testAudience,
		JWT:         &JWTConfig{Issuer: testIssuer, JWKSURL: "http://127.0.0.1:1/jwks"},
	}, Options{HTTPClient: &http.Client{Transport: failingTransport{}}})
	if err != nil {
		f.Fatal(err)
	}
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	f.Fuzz(func(t *testing.T, authz, apiKey string) {
		req := httptest.NewRequest(http.MethodPost, "http://warden.test/mcp", nil)
		if authz != "" {
			req.Header["Authorization"] = []string{authz}
		}
		if apiKey != "" {
			req.Header["X-Api-Key"] = []string{apiKey}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK {
			single := (authz == "") != (apiKey == "")
			key := apiKey
			if authz != "" {
				_, key, _ = strings.Cut(authz, " ")
				key = strings.TrimLeft(key, " ")
			}
			if !single || key != "ci-key" {
				t.Fatalf("accepted Authorization %q, X-API-Key %q", authz, apiKey)
			}
		}
	})
}

// failingTransport stands in for an unreachable issuer without a network.
type failingTransport struct{}

func (failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("issuer unreachable")
}
