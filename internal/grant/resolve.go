package grant

import (
	"context"
	"fmt"
	"time"

	"github.com/wardenmcp/warden/internal/policy"
)

// Where a client presents its grant token: the HTTP header, or the request's
// _meta key (the only place under stdio).
const (
	Header  = "Warden-Task"
	MetaKey = "io.wardenmcp/task"
)

// CounterCalls is the policy counter holding the calls charged to a grant,
// this one included: task.counters.calls.
const CounterCalls = "calls"

// Resolver turns the grant token a call presents into the task policy reads.
type Resolver struct {
	store Store
}

// NewResolver returns a Resolver over store.
func NewResolver(store Store) *Resolver { return &Resolver{store: store} }

// Resolve checks that token is a grant of principal covering tool and
// charges the call to it at now (see Store.Consume), in that order, so a
// call the grant does not cover spends nothing. It returns the task for
// policy, or an error wrapping ErrUnknown (no such grant, wrong secret, or
// another principal's grant: the caller cannot tell which), ErrNotCovered,
// ErrRevoked, ErrExpired, ErrBudget or ErrRate; anything else is a store
// failure. Answer the caller with CallerMessage(err) and log err.
func (r *Resolver) Resolve(ctx context.Context, token, principal, tool string, now time.Time) (policy.Task, error) {
	id, secret, err := ParseToken(token)
	if err != nil {
		return policy.Task{}, err
	}
	g, err := r.store.Get(ctx, id)
	if err != nil {
		return policy.Task{}, fmt.Errorf("resolve grant: %w", err)
	}
	if err := VerifySecret(g, secret); err != nil {
		return policy.Task{}, err
	}
	if g.Principal != principal {
		return policy.Task{}, fmt.Errorf("grant %s belongs to %q, presented by %q: %w", g.ID, g.Principal, principal, ErrUnknown)
	}
	if err := Check(g, tool); err != nil {
		return policy.Task{}, err
	}
	g, err = r.store.Consume(ctx, id, now)
	if err != nil {
		return policy.Task{}, fmt.Errorf("resolve grant: %w", err)
	}
	return TaskOf(g), nil
}

// TaskOf is g as policy reads it.
func TaskOf(g Grant) policy.Task {
	scope := make(map[string]any, len(g.Scope))
	for k, v := range g.Scope {
		scope[k] = v
	}
	labels := g.Labels
	if labels == nil {
		labels = []string{}
	}
	return policy.Task{
		ID:       g.ID,
		Scope:    scope,
		Labels:   labels,
		Counters: map[string]int64{CounterCalls: g.Used},
	}
}
