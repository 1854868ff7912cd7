package verify

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HTTPDoer sends HTTP requests; *http.Client satisfies it.
type HTTPDoer interface {
	Do(*http.Request) (*http.Response, error)
}

// JWK is one public key of a JWKS, as Warden publishes it: an Ed25519 key
// in OKP form (RFC 8037).
type JWK struct {
	Kty string `json:"kty"`           // "OKP"
	Crv string `json:"crv"`           // "Ed25519"
	X   string `json:"x"`             // public key, base64url without padding
	Kid string `json:"kid"`           // key id, the credential's "kid" header
	Use string `json:"use,omitempty"` // "sig"
	Alg string `json:"alg,omitempty"` // "EdDSA"
}

// JWKSet is a JSON Web Key Set document.
type JWKSet struct {
	Keys []JWK `json:"keys"`
}

// maxJWKSBytes bounds how much of a JWKS response is read.
const maxJWKSBytes = 1 << 20

// PublicKeys returns the set's Ed25519 signing keys by key id. Keys of
// other types or uses are skipped; a malformed Ed25519 key or a repeated
// key id is an error.
func (s JWKSet) PublicKeys() (map[string]ed25519.PublicKey, error) {
	keys := make(map[string]ed25519.PublicKey, len(s.Keys))
	for _, k := range s.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" {
			continue
		}
		if (k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != Algorithm) {
			continue
		}
		if k.Kid == "" {
			return nil, errors.New("Ed25519 key without kid")
		}
		if _, dup := keys[k.Kid]; dup {
			return nil, fmt.Errorf("kid %q appears twice", k.Kid)
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("kid %q: x is not a base64url Ed25519 public key", k.Kid)
		}
		keys[k.Kid] = ed25519.PublicKey(x)
	}
	return keys, nil
}

// keySource finds the public key for a key id.
type keySource interface {
	key(ctx context.Context, kid string) (ed25519.PublicKey, error)
}

type staticKeys map[string]ed25519.PublicKey

func newStaticKeys(in map[string]ed25519.PublicKey) (staticKeys, error) {
	keys := make(staticKeys, len(in))
	for kid, k := range in {
		if kid == "" || len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("verify: Options.Keys[%q] is not an Ed25519 public key with a key id", kid)
		}
		keys[kid] = k
	}
	return keys, nil
}

func (s staticKeys) key(_ context.Context, kid string) (ed25519.PublicKey, error) {
	if k, ok := s[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
}

// funcKeys asks a function for the current keys on every lookup.
type funcKeys func(ctx context.Context) (map[string]ed25519.PublicKey, error)

func (f funcKeys) key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	keys, err := f(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeySource, err)
	}
	k, ok := keys[kid]
	if !ok {
		return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
	}
	if len(k) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: kid %q is not an Ed25519 public key", ErrKeySource, kid)
	}
	return k, nil
}

// remoteKeys caches a JWKS fetched over HTTP.
type remoteKeys struct {
	url        string
	client     HTTPDoer
	now        func() time.Time
	cacheTTL   time.Duration
	minRefresh time.Duration

	mu          sync.RWMutex
	keys        map[string]ed25519.PublicKey
	expires     time.Time // zero until the first fetch succeeds
	lastAttempt time.Time
	lastErr     error
}

func newRemoteKeys(opts Options) (*remoteKeys, error) {
	if !strings.HasPrefix(opts.JWKSURL, "https://") && !strings.HasPrefix(opts.JWKSURL, "http://") {
		return nil, fmt.Errorf("verify: Options.JWKSURL %q is not an http(s) URL", opts.JWKSURL)
	}
	r := &remoteKeys{
		url:        opts.JWKSURL,
		client:     opts.HTTPClient,
		now:        opts.Now,
		cacheTTL:   opts.CacheTTL,
		minRefresh: opts.MinRefreshInterval,
	}
	if r.client == nil {
		r.client = &http.Client{Timeout: 10 * time.Second}
	}
	if r.cacheTTL <= 0 {
		r.cacheTTL = DefaultCacheTTL
	}
	if r.minRefresh <= 0 {
		r.minRefresh = DefaultMinRefreshInterval
	}
	r.minRefresh = min(r.minRefresh, r.cacheTTL)
	return r, nil
}

func (r *remoteKeys) key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	now := r.now()
	r.mu.RLock()
	k, ok := r.keys[kid]
	fresh := now.Before(r.expires)
	r.mu.RUnlock()
	if ok && fresh {
		return k, nil
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	// Another caller may have refreshed while this one waited; the attempt
	// time, not success, rate-limits fetches so a failing endpoint is not
	// hammered either.
	if r.lastAttempt.IsZero() || now.Sub(r.lastAttempt) >= r.minRefresh {
		r.lastAttempt = now
		keys, ttl, err := r.fetch(ctx)
		r.lastErr = err
		if err == nil {
			r.keys, r.expires = keys, now.Add(ttl)
		}
	}
	if !now.Before(r.expires) {
		if r.lastErr != nil {
			return nil, fmt.Errorf("%w: %v", ErrKeySource, r.lastErr)
		}
		return nil, fmt.Errorf("%w: cached keys are stale and the next fetch is rate-limited", ErrKeySource)
	}
	if k, ok := r.keys[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
}

func (r *remoteKeys) fetch(ctx context.Context) (map[string]ed25519.PublicKey, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("build JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("fetch JWKS %s: status %s", r.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("read JWKS: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, 0, fmt.Errorf("JWKS exceeds %d bytes", maxJWKSBytes)
	}
	var set JWKSet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, 0, fmt.Errorf("decode JWKS: %w", err)
	}
	keys, err := set.PublicKeys()
	if err != nil {
		return nil, 0, fmt.Errorf("JWKS from %s: %w", r.url, err)
	}
	ttl := r.cacheTTL
	if maxAge, ok := cacheMaxAge(resp.Header.Get("Cache-Control")); ok {
		ttl = min(max(maxAge, r.minRefresh), r.cacheTTL)
	}
	return keys, ttl, nil
}

// cacheMaxAge reads max-age from a Cache-Control header; no-store and
// no-cache count as zero.
func cacheMaxAge(header string) (time.Duration, bool) {
	for directive := range strings.SplitSeq(header, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(directive), "=")
		switch strings.ToLower(name) {
		case "no-store", "no-cache":
			return 0, true
		case "max-age":
			seconds, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64)
			if err != nil || seconds < 0 {
				return 0, false
			}
			return time.Duration(min(seconds, 1<<30)) * time.Second, true
		}
	}
	return 0, false
}
