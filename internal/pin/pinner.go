package pin

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Change says how a listed definition compares with its pin.
type Change string

const (
	// ChangeNew: first sight; the tool was pinned now.
	ChangeNew Change = "new"
	// ChangeUnchanged: the listing matches the approved definition.
	ChangeUnchanged Change = "unchanged"
	// ChangeModified: the listing differs from the approved definition (or
	// from the one pending); it was quarantined now.
	ChangeModified Change = "modified"
	// ChangeStillPending: the listing is the definition already waiting
	// for approval.
	ChangeStillPending Change = "pending"
	// ChangeReverted: the listing went back to the approved definition;
	// the pending change it had was dropped.
	ChangeReverted Change = "reverted"
)

// Verdict is what Check decided about one listed definition.
type Verdict struct {
	Upstream string
	Name     string
	// Digest is the listed definition's digest.
	Digest string
	// Allowed: the listed definition is the approved one, so the tool may
	// be exposed and called. A tool that is not allowed must be hidden and
	// its calls refused.
	Allowed bool
	Change  Change
	// State is the pin's state after the check.
	State State
	// Findings are the scan findings of the listed definition (as stored
	// when it was first seen, for an unchanged or still-pending listing).
	Findings []Finding
}

// Options configure a Pinner.
type Options struct {
	// QuarantineFindings quarantines a tool at first sight when the scan
	// of its definition has a high-severity finding; otherwise first
	// sight approves (trust on first use) and findings are only reported.
	QuarantineFindings bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Pinner pins tool definitions in a Store and decides, for each listing,
// whether the listed definition is the approved one.
//
// Check and Approve are serialised within one Pinner. Between processes
// sharing a store (a gateway and the approve command), a listing checked at
// the moment of an approval can re-quarantine the tool: the race fails
// closed, and the operator approves again.
type Pinner struct {
	store Store
	opts  Options
	mu    sync.Mutex
}

// NewPinner returns a Pinner over store.
func NewPinner(store Store, opts Options) (*Pinner, error) {
	if store == nil {
		return nil, errors.New("new pinner: nil store")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Pinner{store: store, opts: opts}, nil
}

func (p *Pinner) now() time.Time { return p.opts.Now().UTC().Round(0) }

// Check compares each listed definition with its pin, pins new tools and
// quarantines changed ones, and returns one verdict per definition in
// order. An error (a store failure, a definition without an upstream or a
// name, the same tool listed twice) returns no verdicts: the caller must
// expose none of the tools, failing closed.
func (p *Pinner) Check(ctx context.Context, defs []Definition) ([]Verdict, error) {
	seen := make(map[[2]string]bool, len(defs))
	for _, d := range defs {
		if d.Upstream == "" || d.Name == "" {
			return nil, fmt.Errorf("check tool definitions: %q has an empty upstream or name", d.Ref())
		}
		k := [2]string{d.Upstream, d.Name}
		if seen[k] {
			return nil, fmt.Errorf("check tool definitions: %s listed twice", d.Ref())
		}
		seen[k] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Verdict, 0, len(defs))
	for _, d := range defs {
		v, err := p.check(ctx, d)
		if err != nil {
			return nil, fmt.Errorf("check tool %s: %w", d.Ref(), err)
		}
		out = append(out, v)
	}
	return out, nil
}

func (p *Pinner) check(ctx context.Context, d Definition) (Verdict, error) {
	digest := Digest(d)
	v := Verdict{Upstream: d.Upstream, Name: d.Name, Digest: digest}
	pin, ok, err := p.store.Get(ctx, d.Upstream, d.Name)
	if err != nil {
		return Verdict{}, err
	}
	// The steady state (unchanged, or still pending) reuses the findings
	// stored when the definition was first seen: scanning costs far more
	// than hashing.
	switch {
	case ok && pin.Digest == digest && pin.Pending == nil:
		v.Change, v.State, v.Allowed, v.Findings = ChangeUnchanged, pin.State, true, pin.Findings
		return v, nil
	case ok && pin.PendingDigest == digest:
		v.Change, v.State, v.Findings = ChangeStillPending, pin.State, pin.Findings
		return v, nil
	}
	findings := Scan(d)
	v.Findings = findings
	now := p.now()
	switch {
	case !ok:
		pin = Pin{Upstream: d.Upstream, Name: d.Name, FirstSeen: now, Findings: findings}
		if p.opts.QuarantineFindings && HasHigh(findings) {
			pin.Definition = Definition{Upstream: d.Upstream, Name: d.Name}
			pin.State, pin.PendingDigest, pin.Pending = StateQuarantined, digest, &d
		} else {
			pin.Definition, pin.Digest, pin.ApprovedAt, pin.State = d, digest, now, StateApproved
		}
		v.Change = ChangeNew
	case pin.Digest == digest:
		pin.State, pin.PendingDigest, pin.Pending = StateApproved, "", nil
		pin.Findings = findings
		v.Change = ChangeReverted
	default:
		pin.State, pin.PendingDigest, pin.Pending = StateQuarantined, digest, &d
		pin.Findings = findings
		v.Change = ChangeModified
	}
	if err := p.store.Put(ctx, pin); err != nil {
		return Verdict{}, err
	}
	v.State = pin.State
	v.Allowed = pin.State == StateApproved && pin.Digest == digest
	return v, nil
}

// Errors Approve returns, wrapped with the tool's name.
var (
	ErrNotPinned       = errors.New("no such pinned tool")
	ErrNothingPending  = errors.New("no change is waiting for approval")
	ErrDigestMismatch  = errors.New("digest does not match the pending definition")
	ErrMalformedDigest = errors.New(`digest must be "sha256:" and 64 hex digits`)
)

// Approval records an operator's approval, for the audit log.
type Approval struct {
	Upstream string
	Name     string
	// PreviousDigest is the digest approved before; empty when the tool
	// had never been approved.
	PreviousDigest string
	// Digest is the digest approved now.
	Digest string
	At     time.Time
	// Findings are the scan findings of the approved definition.
	Findings []Finding
}

// Approve approves the pending definition of an upstream's tool. digest
// must be that definition's digest, as Diff shows it: an operator approves
// exactly the definition they reviewed, and a change listed after the
// review is not approved with it.
func (p *Pinner) Approve(ctx context.Context, upstream, name, digest string) (Approval, error) {
	ref := upstream + "." + name
	if !wellFormedDigest(digest) {
		return Approval{}, fmt.Errorf("approve %s: %w", ref, ErrMalformedDigest)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pin, ok, err := p.store.Get(ctx, upstream, name)
	switch {
	case err != nil:
		return Approval{}, fmt.Errorf("approve %s: %w", ref, err)
	case !ok:
		return Approval{}, fmt.Errorf("approve %s: %w", ref, ErrNotPinned)
	case pin.Pending == nil:
		return Approval{}, fmt.Errorf("approve %s: %w", ref, ErrNothingPending)
	case pin.PendingDigest != digest:
		return Approval{}, fmt.Errorf("approve %s: %w: pending is %s", ref, ErrDigestMismatch, pin.PendingDigest)
	case Digest(*pin.Pending) != digest:
		// The store holds a definition that does not hash to its digest:
		// approving it would approve something nobody reviewed.
		return Approval{}, fmt.Errorf("approve %s: stored pending definition does not match its digest", ref)
	}
	a := Approval{Upstream: upstream, Name: name, PreviousDigest: pin.Digest, Digest: digest, At: p.now()}
	pin.Definition, pin.Digest, pin.ApprovedAt = *pin.Pending, digest, a.At
	pin.State, pin.PendingDigest, pin.Pending = StateApproved, "", nil
	pin.Findings = Scan(pin.Definition)
	a.Findings = pin.Findings
	if err := p.store.Put(ctx, pin); err != nil {
		return Approval{}, fmt.Errorf("approve %s: %w", ref, err)
	}
	return a, nil
}

func wellFormedDigest(d string) bool {
	const prefix = "sha256:"
	if len(d) != len(prefix)+64 || d[:len(prefix)] != prefix {
		return false
	}
	for _, c := range d[len(prefix):] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
