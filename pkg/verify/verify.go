// Package verify checks the per-call credentials that Warden attaches to
// every request it forwards to an upstream MCP server.
//
// For each call it lets through, Warden mints a short-lived JWT signed with
// Ed25519 (alg EdDSA) naming the caller, the upstream, the operation and a
// SHA-256 digest of the exact arguments it forwarded. The credential travels
// in the request's _meta under [MetaKey] and, for HTTP upstreams, as an
// Authorization bearer token. An upstream that checks it executes only what
// Warden decided, once, within seconds of the decision.
//
// A server builds one [Verifier] at startup, pointed at Warden's JWKS
// endpoint, and calls [Verifier.Verify] before executing each call:
//
//	v, err := verify.New(verify.Options{
//		Issuer:   "https://warden.example.com",
//		Audience: "orders",
//		JWKSURL:  "https://warden.example.com/.well-known/jwks.json",
//	}, verify.NewMemoryReplayCache(nil))
//	...
//	token, ok := verify.FromMeta(req.Params.Meta)
//	claims, err := v.Verify(ctx, token, verify.Expect{Tool: "get_order", Args: rawArguments})
//
// Each failure wraps one of the package's sentinel errors (ErrExpired,
// ErrAudience, ErrDigest, ErrReplayed, ...) so callers can tell them apart
// with errors.Is. This package imports nothing of Warden's internals.
package verify

import (
	"context"
	"crypto/ed25519"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Algorithm is the only JWS algorithm a Warden credential may use.
const Algorithm = "EdDSA"

// TokenType is the JOSE "typ" header of a Warden credential; it keeps a
// credential from being mistaken for any other JWT and the reverse.
const TokenType = "warden-call+jwt"

// Defaults used when the corresponding Options field is zero.
const (
	DefaultLeeway             = 5 * time.Second
	DefaultMaxLifetime        = 5 * time.Minute
	DefaultCacheTTL           = 5 * time.Minute
	DefaultMinRefreshInterval = 10 * time.Second
)

// maxTokenBytes bounds the work done on input before its signature is known
// to be good; Warden's credentials are well under 2 KiB.
const maxTokenBytes = 16 << 10

// Errors returned by Verify, each wrapped with detail. Compare with errors.Is.
var (
	ErrMissing      = errors.New("verify: no credential presented")
	ErrMalformed    = errors.New("verify: credential is malformed")
	ErrAlgorithm    = errors.New("verify: credential uses a forbidden algorithm")
	ErrType         = errors.New("verify: credential has the wrong token type")
	ErrUnknownKey   = errors.New("verify: credential signed by an unknown key")
	ErrKeySource    = errors.New("verify: signing keys could not be fetched")
	ErrSignature    = errors.New("verify: credential signature is invalid")
	ErrExpired      = errors.New("verify: credential has expired")
	ErrNotYetValid  = errors.New("verify: credential is not yet valid")
	ErrLifetime     = errors.New("verify: credential lifetime exceeds the allowed maximum")
	ErrIssuer       = errors.New("verify: credential issuer does not match")
	ErrAudience     = errors.New("verify: credential is for another audience")
	ErrClaims       = errors.New("verify: credential claims are missing or invalid")
	ErrTool         = errors.New("verify: credential is for another tool")
	ErrOperation    = errors.New("verify: credential is for another operation")
	ErrDigest       = errors.New("verify: arguments do not match the credential")
	ErrReplayed     = errors.New("verify: credential has already been used")
	ErrExpectations = errors.New("verify: expectations are incomplete")
)

// Options configure a Verifier. Issuer, Audience and exactly one of JWKSURL,
// Keys or KeyFunc are required.
type Options struct {
	// Issuer is Warden's issuer name or URL, compared exactly with "iss".
	Issuer string
	// Audience is this upstream's name or URL as configured in Warden,
	// which must appear in "aud".
	Audience string

	// JWKSURL is Warden's JWKS endpoint. Keys are fetched on first use,
	// cached for the response's max-age (bounded by CacheTTL), and
	// refetched when a credential names an unknown key id, at most once
	// per MinRefreshInterval.
	JWKSURL string
	// Keys are static Ed25519 public keys by key id, for deployments that
	// distribute keys out of band. Mutually exclusive with JWKSURL.
	Keys map[string]ed25519.PublicKey
	// KeyFunc returns the currently published Ed25519 public keys by key
	// id, for a verifier running in the same process as Warden (pass the
	// key set's PublicKeys). It is called for every credential, so keys
	// rotated in take effect at once. Mutually exclusive with JWKSURL and
	// Keys.
	KeyFunc func(ctx context.Context) (map[string]ed25519.PublicKey, error)
	// HTTPClient fetches the JWKS; nil means a client with a 10 s timeout.
	HTTPClient HTTPDoer

	// Leeway is the clock skew tolerated on exp, nbf and iat; zero means
	// DefaultLeeway.
	Leeway time.Duration
	// MaxLifetime rejects credentials whose exp-iat exceeds it; zero means
	// DefaultMaxLifetime.
	MaxLifetime time.Duration
	// CacheTTL is the longest the JWKS is cached; zero means DefaultCacheTTL.
	CacheTTL time.Duration
	// MinRefreshInterval is the shortest time between two JWKS fetches, so
	// tokens with made-up key ids cannot turn into a flood of fetches; zero
	// means DefaultMinRefreshInterval.
	MinRefreshInterval time.Duration

	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Expect is what the upstream knows about the call it is about to execute.
// Tool and one of ArgsDigest or Args are required.
type Expect struct {
	// Tool is the name of the operation as the upstream received it: the
	// tool name for tools/call, the URI for resources/read, the prompt name
	// for prompts/get.
	Tool string
	// Op, when set, must equal the credential's MCP method (for example
	// "tools/call").
	Op string
	// Args is the exact JSON encoding of the arguments as received (for
	// tools/call, the raw bytes of params.arguments). Its digest is compared
	// with the credential's args_sha256.
	Args []byte
	// ArgsDigest is the precomputed ArgsDigest of the arguments; used when
	// Args is nil.
	ArgsDigest string
}

// Verifier checks Warden credentials. It is safe for concurrent use.
type Verifier struct {
	issuer      string
	audience    string
	maxLifetime time.Duration
	leeway      time.Duration
	now         func() time.Time
	keys        keySource
	replay      ReplayCache
	parser      *jwt.Parser
}

// New returns a Verifier. The replay cache is required: a credential is good
// for one call only.
func New(opts Options, replay ReplayCache) (*Verifier, error) {
	if opts.Issuer == "" {
		return nil, errors.New("verify: Options.Issuer is required")
	}
	if opts.Audience == "" {
		return nil, errors.New("verify: Options.Audience is required")
	}
	if replay == nil {
		return nil, errors.New("verify: a ReplayCache is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Leeway <= 0 {
		opts.Leeway = DefaultLeeway
	}
	if opts.MaxLifetime <= 0 {
		opts.MaxLifetime = DefaultMaxLifetime
	}
	var keys keySource
	sources := 0
	for _, set := range []bool{opts.JWKSURL != "", opts.Keys != nil, opts.KeyFunc != nil} {
		if set {
			sources++
		}
	}
	switch {
	case sources > 1:
		return nil, errors.New("verify: set only one of Options.JWKSURL, Options.Keys and Options.KeyFunc")
	case opts.KeyFunc != nil:
		keys = funcKeys(opts.KeyFunc)
	case opts.JWKSURL != "":
		remote, err := newRemoteKeys(opts)
		if err != nil {
			return nil, err
		}
		keys = remote
	case len(opts.Keys) > 0:
		static, err := newStaticKeys(opts.Keys)
		if err != nil {
			return nil, err
		}
		keys = static
	default:
		return nil, errors.New("verify: Options.JWKSURL, Options.Keys or Options.KeyFunc is required")
	}
	return &Verifier{
		issuer:      opts.Issuer,
		audience:    opts.Audience,
		maxLifetime: opts.MaxLifetime,
		leeway:      opts.Leeway,
		now:         opts.Now,
		keys:        keys,
		replay:      replay,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{Algorithm}),
			jwt.WithIssuer(opts.Issuer),
			jwt.WithAudience(opts.Audience),
			jwt.WithLeeway(opts.Leeway),
			jwt.WithTimeFunc(opts.Now),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithStrictDecoding(),
		),
	}, nil
}

// Verify checks token against the verifier's keys, issuer and audience, its
// validity window, and the expected call, then records it as used. On
// success it returns the credential's claims; on failure the error wraps one
// of the package's sentinel errors.
func (v *Verifier) Verify(ctx context.Context, token string, want Expect) (*Claims, error) {
	if want.Tool == "" {
		return nil, fmt.Errorf("%w: Expect.Tool is required", ErrExpectations)
	}
	digest := want.ArgsDigest
	if want.Args != nil {
		digest = ArgsDigest(want.Args)
	}
	if digest == "" {
		return nil, fmt.Errorf("%w: Expect.Args or Expect.ArgsDigest is required", ErrExpectations)
	}
	if token == "" {
		return nil, ErrMissing
	}
	if len(token) > maxTokenBytes {
		return nil, fmt.Errorf("%w: %d bytes exceeds the %d-byte limit", ErrMalformed, len(token), maxTokenBytes)
	}

	claims := new(Claims)
	parsed, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != TokenType {
			return nil, fmt.Errorf("%w: typ %q, want %q", ErrType, typ, TokenType)
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, fmt.Errorf("%w: header has no kid", ErrUnknownKey)
		}
		return v.keys.key(ctx, kid)
	})
	if err != nil {
		return nil, classify(parsed, err)
	}

	// The parser checks iat only when it is present; the lifetime below
	// needs it.
	if claims.ID == "" || claims.Subject == "" || claims.Tool == "" || claims.Op == "" || claims.ArgsDigest == "" || claims.IssuedAt == nil {
		return nil, fmt.Errorf("%w: jti, sub, iat, tool, op and args_sha256 are required", ErrClaims)
	}
	if lifetime := claims.ExpiresAt.Sub(claims.IssuedAt.Time); lifetime > v.maxLifetime {
		return nil, fmt.Errorf("%w: %s > %s", ErrLifetime, lifetime, v.maxLifetime)
	}
	if claims.Tool != want.Tool {
		return nil, fmt.Errorf("%w: credential names %q, call is %q", ErrTool, claims.Tool, want.Tool)
	}
	if want.Op != "" && claims.Op != want.Op {
		return nil, fmt.Errorf("%w: credential names %q, call is %q", ErrOperation, claims.Op, want.Op)
	}
	if subtle.ConstantTimeCompare([]byte(claims.ArgsDigest), []byte(digest)) != 1 {
		return nil, ErrDigest
	}
	// Last, so a credential that fails any other check is not consumed.
	// Entries live as long as the credential could still be accepted.
	if err := v.replay.Add(ctx, claims.ID, claims.ExpiresAt.Add(v.leeway)); err != nil {
		return nil, fmt.Errorf("credential %s: %w", claims.ID, err)
	}
	return claims, nil
}

// classify maps the JWT library's errors onto this package's sentinels,
// most fundamental first.
func classify(parsed *jwt.Token, err error) error {
	for _, own := range []error{ErrType, ErrUnknownKey, ErrKeySource} {
		if errors.Is(err, own) {
			return err
		}
	}
	if parsed != nil && parsed.Header != nil {
		if alg, _ := parsed.Header["alg"].(string); alg != Algorithm {
			return fmt.Errorf("%w: %q", ErrAlgorithm, alg)
		}
	}
	for _, m := range []struct{ lib, own error }{
		{jwt.ErrTokenMalformed, ErrMalformed},
		{jwt.ErrTokenSignatureInvalid, ErrSignature},
		{jwt.ErrTokenUnverifiable, ErrSignature},
		{jwt.ErrTokenExpired, ErrExpired},
		{jwt.ErrTokenNotValidYet, ErrNotYetValid},
		{jwt.ErrTokenUsedBeforeIssued, ErrNotYetValid},
		{jwt.ErrTokenInvalidIssuer, ErrIssuer},
		{jwt.ErrTokenInvalidAudience, ErrAudience},
	} {
		if errors.Is(err, m.lib) {
			return fmt.Errorf("%w: %v", m.own, err)
		}
	}
	return fmt.Errorf("%w: %v", ErrClaims, err)
}
