package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Limits on what a token and a key set may be.
const (
	maxTokenBytes = 16 << 10
	maxJWKSBytes  = 1 << 20
	minRSABits    = 2048
)

// JWKS caching: a fetched key set is kept for the response's max-age within
// these bounds; minJWKSRefresh also rate-limits refetches on unknown key ids
// so that tokens naming random kids cannot hammer the issuer.
const (
	defaultJWKSTTL = 5 * time.Minute
	minJWKSRefresh = 30 * time.Second
	maxJWKSTTL     = 24 * time.Hour
)

var (
	errUnknownKey      = errors.New("no key in the issuer's key set has this key id")
	errNoKeyID         = errors.New("token header has no kid")
	errKeyAlgMismatch  = errors.New("token algorithm does not fit its key")
	errKeysUnavailable = errors.New("issuer key set unavailable")
)

// jwtVerifier checks bearer JWTs and turns their claims into a Principal.
type jwtVerifier struct {
	cfg    JWTConfig
	parser *jwt.Parser
	keys   keySource
}

// keySource finds the verification key a token's kid names.
type keySource interface {
	key(ctx context.Context, kid string) (verificationKey, error)
}

// verificationKey is one usable key of a JWKS.
type verificationKey struct {
	public crypto.PublicKey
	alg    string // the JWK's "alg", empty when it names none
}

func newJWTVerifier(cfg JWTConfig, opts Options) (*jwtVerifier, error) {
	v := &jwtVerifier{
		cfg: cfg,
		parser: jwt.NewParser(
			jwt.WithValidMethods(cfg.Algorithms),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(cfg.ClockSkew),
			jwt.WithTimeFunc(opts.Now),
			jwt.WithStrictDecoding(),
		),
	}
	if cfg.JWKSFile != "" {
		body, err := readLimited(cfg.JWKSFile)
		if err != nil {
			return nil, err
		}
		keys, err := parseJWKS(body, opts.Logger)
		if err != nil {
			return nil, fmt.Errorf("jwks_file %s: %w", cfg.JWKSFile, err)
		}
		v.keys = staticKeys(keys)
	} else {
		v.keys = &remoteKeys{url: cfg.JWKSURL, client: opts.HTTPClient, now: opts.Now, log: opts.Logger}
	}
	return v, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read jwks_file: %w", err)
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read jwks_file %s: %w", path, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("jwks_file %s exceeds %d bytes", path, maxJWKSBytes)
	}
	return body, nil
}

// verify checks token and returns its principal and jti. Errors are
// *authError, with a description safe to show the caller.
func (v *jwtVerifier) verify(ctx context.Context, token string) (Principal, string, error) {
	if len(token) > maxTokenBytes {
		return Principal{}, "", invalidToken("token is too large", nil)
	}
	claims := jwt.MapClaims{}
	parsed, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errNoKeyID
		}
		k, err := v.keys.key(ctx, kid)
		if err != nil {
			return nil, fmt.Errorf("kid %.64q: %w", kid, err)
		}
		alg := t.Method.Alg()
		if (k.alg != "" && k.alg != alg) || !algFitsKey(alg, k.public) {
			return nil, errKeyAlgMismatch
		}
		return k.public, nil
	})
	if err != nil {
		return Principal{}, "", v.classify(parsed, claims, err)
	}
	p, err := v.principal(claims)
	if err != nil {
		return Principal{}, "", err
	}
	jti, _ := claims["jti"].(string)
	return p, jti, nil
}

// classify turns a parse failure into a safe description for the caller,
// keeping the library's error as the cause for the log.
func (v *jwtVerifier) classify(parsed *jwt.Token, claims jwt.MapClaims, err error) error {
	var alg string
	if parsed != nil {
		alg, _ = parsed.Header["alg"].(string)
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return invalidToken("token is malformed", err)
	case !slices.Contains(v.cfg.Algorithms, alg):
		return invalidToken("token algorithm is not allowed", err)
	case errors.Is(err, errKeysUnavailable):
		return &authError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
			desc: "the token issuer's keys are unavailable; try again later", cause: err}
	case errors.Is(err, errUnknownKey), errors.Is(err, errNoKeyID):
		return invalidToken("token signing key is unknown", err)
	case errors.Is(err, errKeyAlgMismatch):
		return invalidToken("token algorithm does not match its signing key", err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return invalidToken("token signature is invalid", err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return invalidToken("token has expired", err)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return invalidToken("token is not yet valid", err)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return invalidToken("token was issued in the future", err)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return invalidToken("token issuer is not trusted", err)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return invalidToken("token audience does not include this resource", err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		for _, c := range []string{"exp", "iss", "aud"} {
			if _, ok := claims[c]; !ok {
				return invalidToken("token has no "+c+" claim", err)
			}
		}
		return invalidToken("token lacks a required claim", err)
	default:
		return invalidToken("token claims are invalid", err)
	}
}

// principal reads the configured claims of a verified token.
func (v *jwtVerifier) principal(claims jwt.MapClaims) (Principal, error) {
	sub, ok := claims[v.cfg.SubjectClaim].(string)
	if !ok || sub == "" {
		return Principal{}, invalidToken(fmt.Sprintf("token has no %s claim", v.cfg.SubjectClaim), nil)
	}
	p := Principal{ID: sub, Method: MethodJWT, Claims: map[string]any(claims)}
	switch roles := claims[v.cfg.RolesClaim].(type) {
	case nil:
	case string:
		p.Roles = strings.Fields(roles)
	case []any:
		for _, r := range roles {
			s, ok := r.(string)
			if !ok {
				return Principal{}, invalidToken(fmt.Sprintf("token %s claim is not a list of strings", v.cfg.RolesClaim), nil)
			}
			p.Roles = append(p.Roles, s)
		}
	default:
		return Principal{}, invalidToken(fmt.Sprintf("token %s claim is not a string or a list of strings", v.cfg.RolesClaim), nil)
	}
	var err error
	if p.Tenant, err = stringClaim(claims, v.cfg.TenantClaim); err != nil {
		return Principal{}, err
	}
	if p.Clearance, err = stringClaim(claims, v.cfg.ClearanceClaim); err != nil {
		return Principal{}, err
	}
	return p, nil
}

// stringClaim returns the string claim name; absent (or no name
// configured) is "", any other type is an invalid token.
func stringClaim(claims jwt.MapClaims, name string) (string, error) {
	if name == "" {
		return "", nil
	}
	switch c := claims[name].(type) {
	case nil:
		return "", nil
	case string:
		return c, nil
	default:
		return "", invalidToken(fmt.Sprintf("token %s claim is not a string", name), nil)
	}
}

// algFitsKey reports whether a token signed with alg can be verified by
// key: the key type, and for ECDSA the curve, must be the algorithm's.
func algFitsKey(alg string, key crypto.PublicKey) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return k.Curve == elliptic.P256()
		case "ES384":
			return k.Curve == elliptic.P384()
		case "ES512":
			return k.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// staticKeys is a key set read once from a file.
type staticKeys map[string]verificationKey

func (s staticKeys) key(_ context.Context, kid string) (verificationKey, error) {
	if k, ok := s[kid]; ok {
		return k, nil
	}
	return verificationKey{}, errUnknownKey
}

// remoteKeys is the issuer's key set fetched over HTTP and cached.
type remoteKeys struct {
	url    string
	client *http.Client
	now    func() time.Time
	log    *slog.Logger

	// mu is held across a fetch so that concurrent requests share it.
	mu          sync.Mutex
	keys        map[string]verificationKey // nil until a fetch succeeds
	expires     time.Time
	lastAttempt time.Time
	lastErr     error
}

func (r *remoteKeys) key(ctx context.Context, kid string) (verificationKey, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if r.keys == nil || !now.Before(r.expires) {
		r.refresh(ctx, now)
		// Fail closed: keys past their max-age are not trusted even when
		// the issuer cannot be reached.
		if r.keys == nil || !now.Before(r.expires) {
			cause := r.lastErr
			if cause == nil {
				cause = errors.New("cached keys expired and the next fetch is rate-limited")
			}
			return verificationKey{}, fmt.Errorf("%w: %w", errKeysUnavailable, cause)
		}
	}
	if k, ok := r.keys[kid]; ok {
		return k, nil
	}
	// The issuer may have rotated keys since the last fetch.
	r.refresh(ctx, now)
	if k, ok := r.keys[kid]; ok {
		return k, nil
	}
	return verificationKey{}, errUnknownKey
}

// refresh fetches the key set unless the last attempt (success or not) was
// less than minJWKSRefresh ago. Called with r.mu held.
func (r *remoteKeys) refresh(ctx context.Context, now time.Time) {
	if !r.lastAttempt.IsZero() && now.Sub(r.lastAttempt) < minJWKSRefresh {
		return
	}
	r.lastAttempt = now
	keys, ttl, err := r.fetch(ctx)
	r.lastErr = err
	if err != nil {
		r.log.Warn("identity: JWKS fetch failed", "url", r.url, "err", err)
		return
	}
	r.keys, r.expires = keys, now.Add(ttl)
	r.log.Debug("identity: JWKS fetched", "url", r.url, "keys", len(keys), "ttl", ttl)
}

func (r *remoteKeys) fetch(ctx context.Context) (map[string]verificationKey, time.Duration, error) {
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
		return nil, 0, fmt.Errorf("fetch JWKS: status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("read JWKS: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, 0, fmt.Errorf("JWKS exceeds %d bytes", maxJWKSBytes)
	}
	keys, err := parseJWKS(body, r.log)
	if err != nil {
		return nil, 0, err
	}
	ttl := defaultJWKSTTL
	if maxAge, ok := cacheMaxAge(resp.Header.Get("Cache-Control")); ok {
		ttl = min(max(maxAge, minJWKSRefresh), maxJWKSTTL)
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
			return time.Duration(min(seconds, int64(maxJWKSTTL/time.Second))) * time.Second, true
		}
	}
	return 0, false
}

// jwk is one entry of a JWKS (RFC 7517), the members Warden reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// parseJWKS returns the usable signing keys of a JWKS by kid. Entries that
// cannot verify a token here (encryption keys, unsupported types, no kid,
// malformed, a kid used twice) are left out; a set with none left is an
// error.
func parseJWKS(body []byte, log *slog.Logger) (map[string]verificationKey, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("decode JWKS: %w", err)
	}
	keys := make(map[string]verificationKey, len(set.Keys))
	ambiguous := map[string]bool{}
	for i, k := range set.Keys {
		key, err := k.verificationKey()
		if err != nil {
			log.Debug("identity: JWKS entry skipped", "index", i, "kid", k.Kid, "err", err)
			continue
		}
		if _, dup := keys[k.Kid]; dup || ambiguous[k.Kid] {
			log.Warn("identity: JWKS kid appears twice; neither key is used", "kid", k.Kid)
			delete(keys, k.Kid)
			ambiguous[k.Kid] = true
			continue
		}
		keys[k.Kid] = key
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS has no usable signing key (RSA, EC or Ed25519 with a kid)")
	}
	return keys, nil
}

func (k jwk) verificationKey() (verificationKey, error) {
	if k.Kid == "" {
		return verificationKey{}, errors.New("no kid")
	}
	if k.Use != "" && k.Use != "sig" {
		return verificationKey{}, fmt.Errorf("use %q is not sig", k.Use)
	}
	if k.Alg != "" && !slices.Contains(supportedAlgorithms, k.Alg) {
		return verificationKey{}, fmt.Errorf("alg %q is not supported", k.Alg)
	}
	var pub crypto.PublicKey
	switch k.Kty {
	case "RSA":
		n, err1 := decodeB64(k.N)
		e, err2 := decodeB64(k.E)
		if err := errors.Join(err1, err2); err != nil {
			return verificationKey{}, fmt.Errorf("RSA key: %w", err)
		}
		modulus := new(big.Int).SetBytes(n)
		exponent := new(big.Int).SetBytes(e)
		if modulus.BitLen() < minRSABits {
			return verificationKey{}, fmt.Errorf("RSA key of %d bits is below %d", modulus.BitLen(), minRSABits)
		}
		if !exponent.IsInt64() || exponent.Int64() < 3 || exponent.Int64() > 1<<31-1 || exponent.Bit(0) == 0 {
			return verificationKey{}, errors.New("RSA key has an unusable exponent")
		}
		pub = &rsa.PublicKey{N: modulus, E: int(exponent.Int64())}
	case "EC":
		curves := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}
		curve, ok := curves[k.Crv]
		if !ok {
			return verificationKey{}, fmt.Errorf("EC curve %q is not supported", k.Crv)
		}
		x, err1 := decodeB64(k.X)
		y, err2 := decodeB64(k.Y)
		if err := errors.Join(err1, err2); err != nil {
			return verificationKey{}, fmt.Errorf("EC key: %w", err)
		}
		size := (curve.Params().BitSize + 7) / 8
		if len(x) != size || len(y) != size {
			return verificationKey{}, fmt.Errorf("EC key coordinates are not %d bytes", size)
		}
		ec, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			return verificationKey{}, fmt.Errorf("EC key: %w", err)
		}
		pub = ec
	case "OKP":
		if k.Crv != "Ed25519" {
			return verificationKey{}, fmt.Errorf("OKP curve %q is not supported", k.Crv)
		}
		x, err := decodeB64(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return verificationKey{}, errors.New("Ed25519 key is not 32 base64url bytes")
		}
		pub = ed25519.PublicKey(x)
	default:
		return verificationKey{}, fmt.Errorf("kty %q is not supported", k.Kty)
	}
	if k.Alg != "" && !algFitsKey(k.Alg, pub) {
		return verificationKey{}, fmt.Errorf("alg %q does not fit a %s key", k.Alg, k.Kty)
	}
	return verificationKey{public: pub, alg: k.Alg}, nil
}

func decodeB64(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("missing member")
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}
