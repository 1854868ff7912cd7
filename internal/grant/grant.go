// Package grant holds task grants: what the application that starts an agent
// task (a trusted party, never the model) hands Warden to bound that task.
// A grant names its principal, the tools it covers, a scope policy reads as
// task.scope, a call budget, a rate, an expiry and labels. The client
// presents it as an opaque bearer token with every call; Warden keeps only
// the SHA-256 of the token's secret. A holder can derive a narrower grant for
// a sub-task but never a wider one, and every call through a derived grant
// is also charged to, and checked against, each grant it was derived from.
package grant

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wardenmcp/warden/internal/policy"
)

// Grant is one task grant.
type Grant struct {
	// ID names the grant; it is not secret.
	ID string `json:"id"`
	// Principal is the id of the only principal that may present the grant.
	Principal string `json:"principal"`
	// Tools are the tool names the grant covers: exact names or globs where
	// "*" matches any run of characters (dots included). Empty covers none.
	Tools []string `json:"tools"`
	// Scope is what policy reads as task.scope (order_id: "12345").
	Scope map[string]string `json:"scope,omitempty"`
	// Budget is the most calls the grant allows; 0 is unlimited.
	Budget int64 `json:"budget"`
	// Rate is the sustained calls per minute the grant allows, as a token
	// bucket holding Rate calls and refilled at Rate per minute, so a burst
	// of Rate calls is allowed after a quiet minute; 0 is unlimited.
	Rate int64 `json:"rate"`
	// ExpiresAt is when the grant stops covering calls. Always set.
	ExpiresAt time.Time `json:"expires_at"`
	// CreatedAt is when the grant was issued.
	CreatedAt time.Time `json:"created_at"`
	// RevokedAt is when the grant was revoked; zero while it is not.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// Parent is the grant this one was derived from; empty for a grant
	// issued by an operator.
	Parent string `json:"parent,omitempty"`
	// Depth counts the grants above this one: 0 for an issued grant.
	Depth int `json:"depth,omitempty"`
	// Labels mark what the task has touched (confidential, untrusted); flow
	// rules read them. They are only ever added.
	Labels []string `json:"labels,omitempty"`
	// Used counts the calls charged to the grant, its derived grants' included.
	Used int64 `json:"used"`

	// SecretHash is SecretDigest of the token's secret. Never shown.
	SecretHash string `json:"-"`
	// RateTAT is the rate limiter's state (the generic cell rate
	// algorithm's theoretical arrival time), kept by the store so that the
	// limit survives a restart. Zero before the first call.
	RateTAT time.Time `json:"-"`
}

// Errors a grant check ends in. Their text is safe to show the caller;
// functions here wrap them with internal context, so callers test with
// errors.Is and answer with CallerMessage.
var (
	ErrUnknown    = errors.New("unknown or invalid task grant")
	ErrExpired    = errors.New("task grant has expired")
	ErrRevoked    = errors.New("task grant has been revoked")
	ErrBudget     = errors.New("task grant call budget is exhausted")
	ErrRate       = errors.New("task grant rate limit exceeded; retry later")
	ErrNotCovered = errors.New("task grant does not cover this tool")
	// ErrWider refuses a derived grant that would be wider than its parent.
	ErrWider = errors.New("a derived grant cannot be wider than its parent")
	// ErrInvalid refuses a grant specification that is malformed.
	ErrInvalid = errors.New("invalid task grant")
	// ErrExists refuses storing a grant whose id is taken.
	ErrExists = errors.New("task grant id already exists")
)

// CallerMessage returns the text to show a caller for err: the grant error
// it wraps, or a generic message for anything else (a store failure), whose
// detail belongs in the log only.
func CallerMessage(err error) string {
	for _, e := range []error{ErrUnknown, ErrExpired, ErrRevoked, ErrBudget, ErrRate, ErrNotCovered, ErrWider, ErrInvalid} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "task grant could not be checked"
}

// Limits on a grant's fields, so that one request cannot make a grant that
// is expensive to store or match.
const (
	MaxTools      = 256
	MaxNameLen    = 256
	MaxScopeKeys  = 64
	MaxScopeValue = 1024
	MaxLabels     = 64
	// MaxRate is the highest Rate: one call every 60 µs.
	MaxRate = 1_000_000
	// MaxDepth is how many times a grant can be derived from in a chain.
	MaxDepth = 8
)

// Check reports whether g covers tool: nil, or an error wrapping
// ErrNotCovered. It says nothing of expiry, revocation or budget.
func Check(g Grant, tool string) error {
	for _, pat := range g.Tools {
		if policy.MatchGlob(pat, tool) {
			return nil
		}
	}
	return fmt.Errorf("grant %s, tool %q: %w", g.ID, tool, ErrNotCovered)
}

// Active reports whether g still covers calls at now: not revoked, not
// expired, budget left. The rate is not considered.
func Active(g Grant, now time.Time) error {
	switch {
	case !g.RevokedAt.IsZero():
		return fmt.Errorf("grant %s: %w", g.ID, ErrRevoked)
	case !now.Before(g.ExpiresAt):
		return fmt.Errorf("grant %s: %w", g.ID, ErrExpired)
	case g.Budget > 0 && g.Used >= g.Budget:
		return fmt.Errorf("grant %s: %w", g.ID, ErrBudget)
	}
	return nil
}

// Remaining is how many calls g's budget still allows; -1 when unlimited.
func Remaining(g Grant) int64 {
	if g.Budget == 0 {
		return -1
	}
	return max(g.Budget-g.Used, 0)
}

// Clone returns a deep copy of g.
func (g Grant) Clone() Grant {
	g.Tools = slices.Clone(g.Tools)
	g.Labels = slices.Clone(g.Labels)
	if g.Scope != nil {
		scope := make(map[string]string, len(g.Scope))
		for k, v := range g.Scope {
			scope[k] = v
		}
		g.Scope = scope
	}
	return g
}

// checkName checks a tool name, label or scope key.
func checkName(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	if len(s) > MaxNameLen {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalid, what, MaxNameLen)
	}
	return checkText(what, s)
}

func checkText(what, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, what)
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return fmt.Errorf("%w: %s holds a control character", ErrInvalid, what)
	}
	return nil
}

// normalizeNames checks names and returns them sorted without duplicates.
func normalizeNames(what string, names []string, limit int) ([]string, error) {
	if len(names) > limit {
		return nil, fmt.Errorf("%w: more than %d %ss", ErrInvalid, limit, what)
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if err := checkName(what, n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func checkScope(scope map[string]string) error {
	if len(scope) > MaxScopeKeys {
		return fmt.Errorf("%w: more than %d scope keys", ErrInvalid, MaxScopeKeys)
	}
	for k, v := range scope {
		if err := checkName("scope key", k); err != nil {
			return err
		}
		if len(v) > MaxScopeValue {
			return fmt.Errorf("%w: scope %q longer than %d bytes", ErrInvalid, k, MaxScopeValue)
		}
		if err := checkText("scope value", v); err != nil {
			return err
		}
	}
	return nil
}

// Timestamp returns t as the stores keep it: UTC, no monotonic reading,
// nanosecond precision.
func Timestamp(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.Unix(0, t.UnixNano()).UTC()
}
