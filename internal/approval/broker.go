package approval

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Call is the call the gateway escalates: what it is bound to and what
// approvers see.
type Call struct {
	Principal string
	// Owner tells apart callers that share a principal id (an API key and a
	// token subject both named alice): the gateway's owner key.
	Owner    string
	Task     string
	Tool     string
	Upstream string
	// Args are the arguments as approvers and rules see them, already
	// redacted of secrets. The binding is ArgsDigest, the digest of the
	// arguments the gateway will forward.
	Args          json.RawMessage
	ArgsDigest    string
	PolicyVersion string
	// Rules are the ids of the policy rules that asked for approval.
	Rules     []string
	Reason    string
	Approvers []string
}

func (c Call) binding() Binding {
	return Binding{Principal: c.Principal, Owner: c.Owner, Task: c.Task, Tool: c.Tool, ArgsDigest: c.ArgsDigest, PolicyVersion: c.PolicyVersion}
}

// BrokerOptions are what a Broker needs besides its store.
type BrokerOptions struct {
	// Expiry is how long a request stays open and an approval usable.
	// Zero: DefaultExpiry.
	Expiry time.Duration
	// Rules decide automatically, first match wins (CompileRules).
	Rules []Rule
	// Notifier tells approvers about requests left to them. Nil: none.
	Notifier *Notifier
	// Logger receives rule errors and the like. Required.
	Logger *slog.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Broker is what the gateway and the admin API use: it escalates calls,
// lets the held call wait for a decision, and records decisions so the
// waiting call wakes.
type Broker struct {
	store    Store
	expiry   time.Duration
	rules    []Rule
	notifier *Notifier
	logger   *slog.Logger
	now      func() time.Time

	// escalate serialises find-or-create, so concurrent identical calls
	// share one request instead of making duplicates.
	escalate sync.Mutex

	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{} // closed when the request is decided
}

// NewBroker returns a broker over store.
func NewBroker(store Store, opts BrokerOptions) (*Broker, error) {
	switch {
	case store == nil:
		return nil, errors.New("approval broker: no store")
	case opts.Logger == nil:
		return nil, errors.New("approval broker: nil logger")
	case opts.Expiry < 0:
		return nil, errors.New("approval broker: negative expiry")
	}
	b := &Broker{
		store:    store,
		expiry:   opts.Expiry,
		rules:    opts.Rules,
		notifier: opts.Notifier,
		logger:   opts.Logger,
		now:      opts.Now,
		waiters:  map[string]map[chan struct{}]struct{}{},
	}
	if b.expiry == 0 {
		b.expiry = DefaultExpiry
	}
	if b.now == nil {
		b.now = time.Now
	}
	return b, nil
}

// Escalate handles a call policy says needs approval. The returned
// request's State tells the gateway what to do:
//
//   - used: an approval for exactly this call existed (or an automated
//     rule approved it) and has been consumed: the call proceeds, once.
//   - pending: approvers have been asked; hold the call with Wait.
//   - denied: an automated rule denied it.
//
// A pending request for exactly this call is reused, never duplicated.
func (b *Broker) Escalate(ctx context.Context, c Call) (Request, error) {
	if c.Principal == "" || c.Tool == "" || c.ArgsDigest == "" || c.PolicyVersion == "" {
		return Request{}, fmt.Errorf("escalate: %w: principal, tool, args digest and policy version are required", ErrInvalid)
	}
	b.escalate.Lock()
	defer b.escalate.Unlock()
	now := b.now()
	if r, ok, err := b.useApproved(ctx, c.binding(), now); err != nil || ok {
		return r, err
	}
	if r, err := b.store.FindPending(ctx, c.binding(), now); err == nil {
		return r.At(now), nil
	} else if !errors.Is(err, ErrUnknown) {
		return Request{}, fmt.Errorf("escalate %s: %w", c.Tool, err)
	}
	id, err := newID()
	if err != nil {
		return Request{}, fmt.Errorf("escalate %s: %w", c.Tool, err)
	}
	r := Request{
		ID: id, Principal: c.Principal, Owner: c.Owner, Task: c.Task, Tool: c.Tool, Upstream: c.Upstream,
		Args: c.Args, ArgsDigest: c.ArgsDigest, PolicyVersion: c.PolicyVersion,
		Rules: c.Rules, Reason: c.Reason, Approvers: c.Approvers,
		State: StatePending, CreatedAt: Timestamp(now), ExpiresAt: Timestamp(now.Add(b.expiry)),
	}
	if err := b.store.Create(ctx, r); err != nil {
		return Request{}, fmt.Errorf("escalate %s: %w", c.Tool, err)
	}
	r = Normalize(r)
	if rule, ok := b.matchRule(r); ok {
		by := "rule:" + rule.ID
		decided, err := b.Decide(ctx, r.ID, rule.Approve, by, "decided by automated rule "+rule.ID)
		if err != nil {
			return Request{}, fmt.Errorf("escalate %s: %w", c.Tool, err)
		}
		if !rule.Approve {
			return decided, nil
		}
		used, err := b.store.MarkUsed(ctx, r.ID, b.now())
		if err != nil {
			return Request{}, fmt.Errorf("escalate %s: %w", c.Tool, err)
		}
		return used, nil
	}
	b.notifier.Notify(r)
	return r, nil
}

// useApproved consumes an approval for exactly b, if one exists.
func (b *Broker) useApproved(ctx context.Context, bind Binding, now time.Time) (Request, bool, error) {
	r, err := b.store.FindUsable(ctx, bind, now)
	if errors.Is(err, ErrUnknown) {
		return Request{}, false, nil
	}
	if err != nil {
		return Request{}, false, fmt.Errorf("escalate %s: %w", bind.Tool, err)
	}
	used, err := b.store.MarkUsed(ctx, r.ID, now)
	if errors.Is(err, ErrNotUsable) {
		// Another process used it between the two reads: nothing to use.
		return Request{}, false, nil
	}
	if err != nil {
		return Request{}, false, fmt.Errorf("escalate %s: %w", bind.Tool, err)
	}
	return used, true, nil
}

// matchRule returns the first automated rule that matches r. A rule that
// errors is logged and skipped: the request falls to a human, never to an
// automatic approval.
func (b *Broker) matchRule(r Request) (Rule, bool) {
	if len(b.rules) == 0 {
		return Rule{}, false
	}
	vars, err := ruleVars(r)
	if err != nil {
		b.logger.Warn("automated approval rules skipped", "approval", r.ID, "err", err)
		return Rule{}, false
	}
	for _, rule := range b.rules {
		ok, err := rule.Matches(vars)
		if err != nil {
			b.logger.Warn("automated approval rule failed; left to approvers", "approval", r.ID, "rule", rule.ID, "err", err)
			continue
		}
		if ok {
			return rule, true
		}
	}
	return Rule{}, false
}

// Decide approves or denies a pending request on behalf of by (an admin
// key id or "rule:<id>") and wakes the call waiting for it.
func (b *Broker) Decide(ctx context.Context, id string, approve bool, by, comment string) (Request, error) {
	r, err := b.store.Decide(ctx, id, approve, by, comment, b.now())
	if err != nil {
		return Request{}, err
	}
	b.wake(id)
	return r, nil
}

// Get returns a request as it stands now.
func (b *Broker) Get(ctx context.Context, id string) (Request, error) {
	r, err := b.store.Get(ctx, id)
	if err != nil {
		return Request{}, err
	}
	return r.At(b.now()), nil
}

// List returns requests matching f, as they stand now, newest first.
func (b *Broker) List(ctx context.Context, f Filter) ([]Request, error) {
	now := b.now()
	f.Now = now
	rs, err := b.store.List(ctx, f)
	if err != nil {
		return nil, err
	}
	for i := range rs {
		rs[i] = rs[i].At(now)
	}
	return rs, nil
}

// Wait holds the escalated call until request id is decided or ctx ends
// (the gateway gives ctx the configured hold time). An approval it sees is
// consumed for the waiting call, so it returns State used: the call
// proceeds, and no retry can reuse it; one used by another call already is
// ErrNotUsable. Denied and expired come back as
// they are; when ctx ends first it returns the request still pending
// after a final read, and a nil error: the gateway answers "pending
// approval <id>" and the client retries once it is approved.
func (b *Broker) Wait(ctx context.Context, id string) (Request, error) {
	ch := b.subscribe(id)
	defer func() { b.unsubscribe(id, ch) }()
	for {
		r, err := b.store.Get(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				// The hold ended during the read: one last read without
				// the deadline, so a decision just made is not missed.
				r, err = b.store.Get(context.WithoutCancel(ctx), id)
			}
			if err != nil {
				return Request{}, fmt.Errorf("wait for approval %s: %w", id, err)
			}
		}
		now := b.now()
		r = r.At(now)
		switch r.State {
		case StateApproved:
			used, err := b.store.MarkUsed(context.WithoutCancel(ctx), id, now)
			if err != nil {
				return Request{}, fmt.Errorf("wait for approval %s: %w", id, err)
			}
			return used, nil
		case StateUsed:
			// Used by another call: this one must not proceed on it.
			return Request{}, fmt.Errorf("wait for approval %s: used by another call: %w", id, ErrNotUsable)
		case StatePending:
		default:
			return r, nil
		}
		if ctx.Err() != nil {
			return r, nil
		}
		select {
		case <-ch:
			// Woken (and removed from the set): re-read, and listen
			// again in case the request is still pending.
			b.unsubscribe(id, ch)
			ch = b.subscribe(id)
		case <-ctx.Done():
		}
	}
}

// subscribe returns a channel closed at id's next decision.
func (b *Broker) subscribe(id string) chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch := make(chan struct{})
	if b.waiters[id] == nil {
		b.waiters[id] = map[chan struct{}]struct{}{}
	}
	b.waiters[id][ch] = struct{}{}
	return ch
}

func (b *Broker) unsubscribe(id string, ch chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if set, ok := b.waiters[id]; ok {
		delete(set, ch)
		if len(set) == 0 {
			delete(b.waiters, id)
		}
	}
}

func (b *Broker) wake(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.waiters[id] {
		close(ch)
	}
	delete(b.waiters, id)
}

// newID returns a fresh request id: "apr_" and 128 random bits in 26
// lower-case base32 characters.
func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("new approval id: %w", err)
	}
	return "apr_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])), nil
}
