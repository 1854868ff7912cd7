package identity

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkMiddleware is the per-request cost of identifying the caller,
// with the JWKS already cached.
func BenchmarkMiddleware(b *testing.B) {
	f := newJWTFixture(b, func(c *Config) {
		c.APIKeys = []APIKey{{ID: "ci", Hash: HashAPIKey("ci-key-0123456789"), Principal: Principal{ID: "ci-bot"}}}
	})
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	h := f.w.auth.Middleware(ok)
	for _, bc := range []struct {
		name  string
		token string
	}{
		{"api_key", "ci-key-0123456789"},
		{"jwt_RS256", f.rsaKey.sign(b, validClaims(f.clock.Now()))},
		{"jwt_ES256", f.ec.sign(b, validClaims(f.clock.Now()))},
		{"jwt_EdDSA", f.ed.sign(b, validClaims(f.clock.Now()))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodPost, "http://warden.test/mcp", nil)
			req.Header.Set("Authorization", "Bearer "+bc.token)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
