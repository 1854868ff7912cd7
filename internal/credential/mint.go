package credential

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wardenmcp/warden/pkg/verify"
)

// DefaultLifetime is a credential's lifetime when MinterOptions.Lifetime is
// zero.
const DefaultLifetime = 30 * time.Second

// Claims describe the one call a credential authorizes.
type Claims struct {
	// Subject is the principal id.
	Subject string
	// Audience is the upstream's name or URL, as its verifier expects it.
	Audience string
	// Task is the task grant id; empty when the call has none.
	Task string
	// Tool names the operation as the upstream receives it (tool name,
	// resource URI or prompt name).
	Tool string
	// Op is the MCP method, for example "tools/call".
	Op string
	// ArgsDigest is ArgsDigest of the exact argument bytes forwarded.
	ArgsDigest string
	// Scope holds the task grant's scope values.
	Scope map[string]any
}

// ArgsDigest returns the base64url SHA-256 of the canonical arguments: the
// exact bytes Warden forwards (for tools/call, the encoded
// params.arguments). Upstreams compute the same over the bytes they receive.
func ArgsDigest(canonical []byte) string { return verify.ArgsDigest(canonical) }

// MinterOptions configure a Minter.
type MinterOptions struct {
	// Issuer is Warden's issuer name or URL, the "iss" verifiers expect.
	Issuer string
	// Lifetime is how long a credential is valid; zero means
	// DefaultLifetime. With verifiers' clock skew it must fit within the
	// key set's Retain.
	Lifetime time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Minter mints per-call credentials signed by a KeySet's active key. It is
// safe for concurrent use.
type Minter struct {
	keys     *KeySet
	issuer   string
	lifetime time.Duration
	now      func() time.Time
}

// NewMinter returns a Minter signing with keys.
func NewMinter(keys *KeySet, opts MinterOptions) (*Minter, error) {
	if keys == nil {
		return nil, errors.New("credential: a KeySet is required")
	}
	if opts.Issuer == "" {
		return nil, errors.New("credential: MinterOptions.Issuer is required")
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = DefaultLifetime
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Lifetime+verify.DefaultLeeway > keys.Retain() {
		return nil, fmt.Errorf("credential: lifetime %s plus verifier clock skew %s exceeds the key set's retention %s; credentials would outlive their key after a rotation",
			opts.Lifetime, verify.DefaultLeeway, keys.Retain())
	}
	if opts.Lifetime > verify.DefaultMaxLifetime {
		return nil, fmt.Errorf("credential: lifetime %s exceeds the %s verifiers accept by default", opts.Lifetime, verify.DefaultMaxLifetime)
	}
	return &Minter{keys: keys, issuer: opts.Issuer, lifetime: opts.Lifetime, now: opts.Now}, nil
}

// Lifetime reports how long minted credentials are valid.
func (m *Minter) Lifetime() time.Duration { return m.lifetime }

// Mint returns a signed credential for the call c and its unique id (the
// "jti", for the audit record).
func (m *Minter) Mint(c Claims) (token string, id string, err error) {
	switch {
	case c.Subject == "":
		return "", "", errors.New("credential: mint: subject is required")
	case c.Audience == "":
		return "", "", errors.New("credential: mint: audience is required")
	case c.Tool == "":
		return "", "", errors.New("credential: mint: tool is required")
	case c.Op == "":
		return "", "", errors.New("credential: mint: op is required")
	case len(c.ArgsDigest) != 43:
		return "", "", fmt.Errorf("credential: mint: args digest %q is not an ArgsDigest value", c.ArgsDigest)
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", "", fmt.Errorf("credential: mint: random id: %w", err)
	}
	id = base64.RawURLEncoding.EncodeToString(raw[:])

	now := m.now()
	payload, err := json.Marshal(verify.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    m.issuer,
			Audience:  jwt.ClaimStrings{c.Audience},
			Subject:   c.Subject,
			ID:        id,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(m.lifetime)),
		},
		Task:       c.Task,
		Tool:       c.Tool,
		ArgsDigest: c.ArgsDigest,
		Scope:      c.Scope,
		Op:         c.Op,
	})
	if err != nil {
		return "", "", fmt.Errorf("credential: mint: encode claims: %w", err)
	}
	key := m.keys.signer()
	signingInput := key.header + "." + base64.RawURLEncoding.EncodeToString(payload)
	sig, err := jwt.SigningMethodEdDSA.Sign(signingInput, key.private)
	if err != nil {
		return "", "", fmt.Errorf("credential: mint: sign: %w", err)
	}
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(sig), id, nil
}
