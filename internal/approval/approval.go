// Package approval is Warden's escalation to approvers: a policy decision
// with the approve effect becomes a persistent request bound to the exact
// call (principal, task, tool, argument digest, policy version), with an
// expiry. Humans decide through the admin API, the CLI or the web console;
// automated rules (CEL) may decide instead; webhooks tell approvers a
// request is waiting. An approved request lets exactly one execution of
// exactly that call proceed.
package approval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// State is where a request stands.
type State string

// Request states. A pending request whose expiry has passed reads as
// expired; an approved one is used once its call has proceeded.
const (
	StatePending  State = "pending"
	StateApproved State = "approved"
	StateDenied   State = "denied"
	StateExpired  State = "expired"
	StateUsed     State = "used"
)

// Valid reports whether s is one of the states.
func (s State) Valid() bool {
	switch s {
	case StatePending, StateApproved, StateDenied, StateExpired, StateUsed:
		return true
	}
	return false
}

// Errors the stores and the broker return, wrapped with context.
var (
	// ErrUnknown: no request has that id.
	ErrUnknown = errors.New("no such approval request")
	// ErrExists: a request with that id is stored already.
	ErrExists = errors.New("approval request exists")
	// ErrNotPending: the request was decided already or has expired, so
	// it cannot be decided.
	ErrNotPending = errors.New("approval request is not pending")
	// ErrNotUsable: the request is not approved, has expired, or was
	// used already.
	ErrNotUsable = errors.New("approval is not usable")
	// ErrInvalid: the request or call is malformed.
	ErrInvalid = errors.New("invalid approval request")
)

// Binding is what an approval is bound to: the exact call. An approval
// never covers another principal (or another caller of the same id), task,
// tool, argument set or policy version.
type Binding struct {
	Principal     string `json:"principal"`
	Owner         string `json:"owner,omitempty"`
	Task          string `json:"task,omitempty"`
	Tool          string `json:"tool"`
	ArgsDigest    string `json:"args_digest"`
	PolicyVersion string `json:"policy_version"`
}

// Request is one approval request.
type Request struct {
	ID        string `json:"id"`
	Principal string `json:"principal"`
	// Owner is the caller's full identity (authentication method, tenant
	// and id) when the gateway gave it; part of the binding.
	Owner string `json:"owner,omitempty"`
	// Task is the task grant id; "" for a call outside any task.
	Task     string `json:"task,omitempty"`
	Tool     string `json:"tool"`
	Upstream string `json:"upstream,omitempty"`
	// Args are the call's arguments as approvers see them: the redacted
	// form, never secrets. The binding is ArgsDigest, not Args.
	Args          json.RawMessage `json:"args,omitempty"`
	ArgsDigest    string          `json:"args_digest"`
	PolicyVersion string          `json:"policy_version"`
	// Rules are the ids of the policy rules that asked for approval.
	Rules     []string  `json:"rules,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Approvers []string  `json:"approvers,omitempty"`
	State     State     `json:"state"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	// DecidedBy is the admin key id of the human, or "rule:<id>" for an
	// automated rule.
	DecidedBy string    `json:"decided_by,omitempty"`
	Comment   string    `json:"comment,omitempty"`
	UsedAt    time.Time `json:"used_at,omitzero"`
}

// Binding returns the call the request is bound to.
func (r Request) Binding() Binding {
	return Binding{Principal: r.Principal, Owner: r.Owner, Task: r.Task, Tool: r.Tool, ArgsDigest: r.ArgsDigest, PolicyVersion: r.PolicyVersion}
}

// At returns r as it stands at now: a pending request past its expiry
// reads as expired. Stores keep the state they were given; readers apply
// At.
func (r Request) At(now time.Time) Request {
	if r.State == StatePending && !now.Before(r.ExpiresAt) {
		r.State = StateExpired
	}
	return r
}

// Limits on what a request may hold, so a hostile call cannot fill the
// store.
const (
	MaxArgsBytes = 64 << 10
	MaxField     = 1024
	MaxComment   = 2000
)

// Check reports a malformed request.
func Check(r Request) error {
	switch {
	case r.ID == "":
		return fmt.Errorf("%w: no id", ErrInvalid)
	case r.Principal == "" || r.Tool == "" || r.ArgsDigest == "" || r.PolicyVersion == "":
		return fmt.Errorf("%w: principal, tool, args digest and policy version are required", ErrInvalid)
	case !r.State.Valid():
		return fmt.Errorf("%w: state %q", ErrInvalid, r.State)
	case r.CreatedAt.IsZero() || !r.ExpiresAt.After(r.CreatedAt):
		return fmt.Errorf("%w: expiry must follow creation", ErrInvalid)
	case len(r.Args) > MaxArgsBytes:
		return fmt.Errorf("%w: arguments over %d bytes", ErrInvalid, MaxArgsBytes)
	case len(r.Args) > 0 && !json.Valid(r.Args):
		return fmt.Errorf("%w: arguments are not JSON", ErrInvalid)
	case len(r.Comment) > MaxComment:
		return fmt.Errorf("%w: comment over %d bytes", ErrInvalid, MaxComment)
	}
	for _, s := range []string{r.ID, r.Principal, r.Owner, r.Task, r.Tool, r.Upstream, r.ArgsDigest, r.PolicyVersion, r.Reason, r.DecidedBy} {
		if len(s) > MaxField {
			return fmt.Errorf("%w: a field is over %d bytes", ErrInvalid, MaxField)
		}
	}
	return nil
}

// Timestamp is t as stores keep it: UTC, nanosecond precision, no
// monotonic reading.
func Timestamp(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Round(0)
}

// Normalize returns r with its times as stores keep them.
func Normalize(r Request) Request {
	r.CreatedAt, r.ExpiresAt = Timestamp(r.CreatedAt), Timestamp(r.ExpiresAt)
	r.DecidedAt, r.UsedAt = Timestamp(r.DecidedAt), Timestamp(r.UsedAt)
	if len(r.Rules) == 0 {
		r.Rules = nil
	}
	if len(r.Approvers) == 0 {
		r.Approvers = nil
	}
	if len(r.Args) == 0 {
		r.Args = nil
	}
	return r
}

// Filter selects requests for List.
type Filter struct {
	// State, when set, keeps requests in that state at Now (so "pending"
	// leaves out expired ones and "expired" finds them).
	State State
	// Principal, when set, keeps that principal's requests.
	Principal string
	// Now is the time states are read at. Zero: the store's clock is not
	// consulted, and states read as stored.
	Now time.Time
	// Limit is the most requests: 0 means DefaultListLimit.
	Limit int
}

// Limits on List.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// Normalize fills in the default limit and refuses a bad filter.
func (f Filter) Normalize() (Filter, error) {
	switch {
	case f.State != "" && !f.State.Valid():
		return f, fmt.Errorf("%w: state %q: use pending, approved, denied, expired or used", ErrInvalid, f.State)
	case f.Limit < 0 || f.Limit > MaxListLimit:
		return f, fmt.Errorf("%w: list limit must be between 1 and %d", ErrInvalid, MaxListLimit)
	case f.Limit == 0:
		f.Limit = DefaultListLimit
	}
	return f, nil
}

// Match reports whether r, read at f.Now, passes the filter.
func (f Filter) Match(r Request) bool {
	if !f.Now.IsZero() {
		r = r.At(f.Now)
	}
	return (f.State == "" || r.State == f.State) && (f.Principal == "" || r.Principal == f.Principal)
}

// Store keeps approval requests. Implementations: MemoryStore here and the
// SQLite store in internal/store/sqlite; approvaltest.StoreSuite is the
// behaviour both show. Stores return requests with the state they hold;
// callers read them with Request.At.
type Store interface {
	// Create stores a new request; an id already stored fails with
	// ErrExists.
	Create(ctx context.Context, r Request) error
	// Get returns a request by id, or ErrUnknown.
	Get(ctx context.Context, id string) (Request, error)
	// List returns requests matching f, newest first.
	List(ctx context.Context, f Filter) ([]Request, error)
	// Decide approves or denies a pending, unexpired request at now and
	// returns it; any other request fails with ErrNotPending.
	Decide(ctx context.Context, id string, approve bool, by, comment string, now time.Time) (Request, error)
	// FindPending returns the newest pending, unexpired request for
	// exactly b, or ErrUnknown.
	FindPending(ctx context.Context, b Binding, now time.Time) (Request, error)
	// FindUsable returns an approved, unexpired, unused request for
	// exactly b, or ErrUnknown.
	FindUsable(ctx context.Context, b Binding, now time.Time) (Request, error)
	// MarkUsed atomically turns an approved, unexpired, unused request
	// into a used one and returns it; anything else (a second use
	// included) fails with ErrNotUsable.
	MarkUsed(ctx context.Context, id string, now time.Time) (Request, error)
}

// CheckDecision is Decide's rule, shared by every store: r as stored,
// read at now.
func CheckDecision(r Request, by, comment string, now time.Time) error {
	switch {
	case by == "":
		return fmt.Errorf("%w: the decider is required", ErrInvalid)
	case len(by) > MaxField:
		return fmt.Errorf("%w: decider over %d bytes", ErrInvalid, MaxField)
	case len(comment) > MaxComment:
		return fmt.Errorf("%w: comment over %d bytes", ErrInvalid, MaxComment)
	}
	if st := r.At(now).State; st != StatePending {
		return fmt.Errorf("request %s is %s: %w", r.ID, st, ErrNotPending)
	}
	return nil
}

// CheckUsable is MarkUsed's rule, shared by every store.
func CheckUsable(r Request, now time.Time) error {
	switch {
	case r.State != StateApproved:
		return fmt.Errorf("request %s is %s: %w", r.ID, r.State, ErrNotUsable)
	case !now.Before(r.ExpiresAt):
		return fmt.Errorf("request %s expired: %w", r.ID, ErrNotUsable)
	}
	return nil
}

// Decided returns r decided at now.
func Decided(r Request, approve bool, by, comment string, now time.Time) Request {
	r.State = StateDenied
	if approve {
		r.State = StateApproved
	}
	r.DecidedAt, r.DecidedBy, r.Comment = Timestamp(now), by, comment
	return r
}
