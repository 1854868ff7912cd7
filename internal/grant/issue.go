package grant

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/wardenmcp/warden/internal/policy"
)

// TokenPrefix starts every grant token: wg_<id>.<secret>.
const TokenPrefix = "wg_"

// MaxLifetime is the longest a grant can live.
const MaxLifetime = 366 * 24 * time.Hour

const (
	idBytes     = 16 // hex-encoded in the id
	secretBytes = 32 // base64url-encoded in the token
)

// Spec is what a grant is issued or derived from.
type Spec struct {
	// Principal is who may present the grant. A derived grant keeps its
	// parent's principal; a different one is refused.
	Principal string
	// Tools are exact names or globs. Issuing: empty covers none. Deriving:
	// nil inherits the parent's tools, and every entry must be a name or
	// glob literally in the parent's tools, or an exact name (no "*") that
	// one of the parent's globs matches.
	Tools []string
	// Scope: deriving, keys the parent has are inherited and must keep
	// their value; new keys may be added.
	Scope map[string]string
	// Budget is the most calls; 0 is unlimited (deriving: inherit the
	// parent's remaining calls). Deriving from a limited parent, at most its
	// remaining calls.
	Budget int64
	// Rate is calls per minute; 0 is unlimited (deriving: inherit).
	// Deriving from a limited parent, at most its rate.
	Rate int64
	// ExpiresAt is required when issuing, within MaxLifetime. Deriving:
	// zero inherits the parent's; later is refused.
	ExpiresAt time.Time
	// Labels are added to (deriving: the parent's, which are always kept).
	Labels []string
}

// Issue makes a new root grant from spec at now and returns it with its
// token. The token is shown once; only its digest is in the grant.
func Issue(spec Spec, now time.Time) (Grant, string, error) {
	return issue(spec, now, rand.Reader)
}

func issue(spec Spec, now time.Time, random io.Reader) (Grant, string, error) {
	g, err := fromSpec(spec, now)
	if err != nil {
		return Grant{}, "", err
	}
	token, err := g.mint(random)
	if err != nil {
		return Grant{}, "", err
	}
	return g, token, nil
}

func fromSpec(spec Spec, now time.Time) (Grant, error) {
	now = Timestamp(now)
	if err := checkName("principal", spec.Principal); err != nil {
		return Grant{}, err
	}
	tools, err := normalizeNames("tool", spec.Tools, MaxTools)
	if err != nil {
		return Grant{}, err
	}
	labels, err := normalizeNames("label", spec.Labels, MaxLabels)
	if err != nil {
		return Grant{}, err
	}
	if err := checkScope(spec.Scope); err != nil {
		return Grant{}, err
	}
	switch {
	case spec.Budget < 0:
		return Grant{}, fmt.Errorf("%w: negative budget", ErrInvalid)
	case spec.Rate < 0 || spec.Rate > MaxRate:
		return Grant{}, fmt.Errorf("%w: rate must be between 0 (unlimited) and %d calls per minute", ErrInvalid, MaxRate)
	case spec.ExpiresAt.IsZero():
		return Grant{}, fmt.Errorf("%w: an expiry is required", ErrInvalid)
	case !spec.ExpiresAt.After(now):
		return Grant{}, fmt.Errorf("%w: expiry is not in the future", ErrInvalid)
	case spec.ExpiresAt.Sub(now) > MaxLifetime:
		return Grant{}, fmt.Errorf("%w: expiry is more than %v away", ErrInvalid, MaxLifetime)
	}
	g := Grant{
		Principal: spec.Principal,
		Tools:     tools,
		Budget:    spec.Budget,
		Rate:      spec.Rate,
		ExpiresAt: Timestamp(spec.ExpiresAt),
		CreatedAt: now,
		Labels:    labels,
	}
	if len(spec.Scope) > 0 {
		g.Scope = maps.Clone(spec.Scope)
	}
	return g, nil
}

// mint gives g a fresh id and secret and returns the token.
func (g *Grant) mint(random io.Reader) (string, error) {
	buf := make([]byte, idBytes+secretBytes)
	if _, err := io.ReadFull(random, buf); err != nil {
		return "", fmt.Errorf("issue grant: read random: %w", err)
	}
	g.ID = hex.EncodeToString(buf[:idBytes])
	secret := base64.RawURLEncoding.EncodeToString(buf[idBytes:])
	g.SecretHash = SecretDigest(secret)
	return TokenPrefix + g.ID + "." + secret, nil
}

// SecretDigest is what a grant keeps of its token's secret:
// "sha256:<hex>".
func SecretDigest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseToken splits a grant token into its id and secret. A string that is
// not a grant token fails with ErrUnknown.
func ParseToken(token string) (id, secret string, err error) {
	rest, ok := strings.CutPrefix(token, TokenPrefix)
	if !ok {
		return "", "", fmt.Errorf("grant token: missing %q prefix: %w", TokenPrefix, ErrUnknown)
	}
	id, secret, ok = strings.Cut(rest, ".")
	if !ok || len(id) != 2*idBytes || len(secret) != base64.RawURLEncoding.EncodedLen(secretBytes) {
		return "", "", fmt.Errorf("grant token: malformed: %w", ErrUnknown)
	}
	if _, err := hex.DecodeString(id); err != nil || strings.ToLower(id) != id {
		return "", "", fmt.Errorf("grant token: malformed id: %w", ErrUnknown)
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(secret); err != nil {
		return "", "", fmt.Errorf("grant token: malformed secret: %w", ErrUnknown)
	}
	return id, secret, nil
}

// VerifySecret checks, in constant time, that secret is g's.
func VerifySecret(g Grant, secret string) error {
	if subtle.ConstantTimeCompare([]byte(SecretDigest(secret)), []byte(g.SecretHash)) != 1 {
		return fmt.Errorf("grant %s: wrong secret: %w", g.ID, ErrUnknown)
	}
	return nil
}

// Derive makes a grant narrower than parent from spec at now (see Spec for
// what zero fields inherit) and returns it with its token. Anything wider
// than the parent in any dimension fails with ErrWider; a parent that is
// revoked, expired or exhausted derives nothing.
func Derive(parent Grant, spec Spec, now time.Time) (Grant, string, error) {
	return derive(parent, spec, now, rand.Reader)
}

func derive(parent Grant, spec Spec, now time.Time, random io.Reader) (Grant, string, error) {
	child, err := Narrow(parent, spec, now)
	if err != nil {
		return Grant{}, "", err
	}
	token, err := child.mint(random)
	if err != nil {
		return Grant{}, "", err
	}
	return child, token, nil
}

// Narrow is Derive without the id and secret: the grant spec would derive.
func Narrow(parent Grant, spec Spec, now time.Time) (Grant, error) {
	if err := Active(parent, now); err != nil {
		return Grant{}, err
	}
	if parent.Depth >= MaxDepth {
		return Grant{}, fmt.Errorf("%w: grant %s is %d derivations deep, the most allowed", ErrInvalid, parent.ID, MaxDepth)
	}
	wider := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrWider, fmt.Sprintf(format, args...))
	}
	if spec.Principal == "" {
		spec.Principal = parent.Principal
	} else if spec.Principal != parent.Principal {
		return Grant{}, wider("principal %q differs from the parent's", spec.Principal)
	}

	if spec.Tools == nil {
		spec.Tools = parent.Tools
	}
	for _, t := range spec.Tools {
		if !toolWithin(t, parent.Tools) {
			return Grant{}, wider("tool %q is not covered by the parent's tools", t)
		}
	}

	scope := maps.Clone(parent.Scope)
	for k, v := range spec.Scope {
		if pv, ok := parent.Scope[k]; ok && pv != v {
			return Grant{}, wider("scope %q must stay %q", k, pv)
		}
		if scope == nil {
			scope = map[string]string{}
		}
		scope[k] = v
	}
	spec.Scope = scope

	if remaining := Remaining(parent); remaining >= 0 {
		switch {
		case spec.Budget == 0:
			spec.Budget = remaining
		case spec.Budget > remaining:
			return Grant{}, wider("budget %d is more than the parent's %d remaining calls", spec.Budget, remaining)
		}
	}
	if parent.Rate > 0 {
		switch {
		case spec.Rate == 0:
			spec.Rate = parent.Rate
		case spec.Rate > parent.Rate:
			return Grant{}, wider("rate %d is more than the parent's %d calls per minute", spec.Rate, parent.Rate)
		}
	}
	switch {
	case spec.ExpiresAt.IsZero():
		spec.ExpiresAt = parent.ExpiresAt
	case spec.ExpiresAt.After(parent.ExpiresAt):
		return Grant{}, wider("expiry %s is after the parent's %s", spec.ExpiresAt.UTC().Format(time.RFC3339), parent.ExpiresAt.Format(time.RFC3339))
	}
	spec.Labels = append(slices.Clone(parent.Labels), spec.Labels...)

	child, err := fromSpec(spec, now)
	if err != nil {
		return Grant{}, err
	}
	child.Parent = parent.ID
	child.Depth = parent.Depth + 1
	return child, nil
}

// toolWithin reports whether the derived entry t is no wider than parent:
// literally one of the parent's entries, or an exact name a parent entry
// matches. A derived glob that is not literally the parent's is refused even
// when it happens to be narrower: "*" in the names compared makes glob
// containment easy to get wrong, and exact names cover what a sub-task needs.
func toolWithin(t string, parent []string) bool {
	if slices.Contains(parent, t) {
		return true
	}
	if strings.Contains(t, "*") {
		return false
	}
	for _, p := range parent {
		if policy.MatchGlob(p, t) {
			return true
		}
	}
	return false
}
