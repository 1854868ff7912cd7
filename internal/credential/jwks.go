package credential

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// DefaultJWKSMaxAge is the Cache-Control max-age of the JWKS when
// JWKSHandler is given zero.
const DefaultJWKSMaxAge = time.Minute

// JWKSHandler serves the key set's public keys as a JWKS document, with
// Cache-Control max-age so verifiers cache it. Verifiers refetch when they
// meet an unknown key id, and the next key is published before it signs, so
// a short max-age is not needed for rotation.
func JWKSHandler(keys *KeySet, maxAge time.Duration) http.Handler {
	if maxAge <= 0 {
		maxAge = DefaultJWKSMaxAge
	}
	cacheControl := "public, max-age=" + strconv.FormatInt(int64(maxAge/time.Second), 10)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := json.Marshal(keys.JWKS())
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", cacheControl)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}
