package grant

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Store keeps grants. Implementations: MemoryStore here, the SQLite store in
// internal/store/sqlite; granttest.StoreSuite is the behaviour both show.
type Store interface {
	// Create stores a grant made by Issue or Derive. An id already stored
	// fails with ErrExists; a derived grant whose parent is not stored
	// fails with ErrUnknown.
	Create(ctx context.Context, g Grant) error
	// Get returns a grant by id, or ErrUnknown.
	Get(ctx context.Context, id string) (Grant, error)
	// List returns grants matching f, oldest first.
	List(ctx context.Context, f ListFilter) ([]Grant, error)
	// Revoke marks a grant revoked at now and returns it; revoking a
	// revoked grant keeps the first time. Grants derived from it stop
	// covering calls too (Consume checks the whole chain).
	Revoke(ctx context.Context, id string, now time.Time) (Grant, error)
	// Consume charges one call at now to the grant and every grant it was
	// derived from, atomically: if any of them is revoked, expired, out of
	// budget or over its rate, nothing is charged and the error wraps
	// ErrRevoked, ErrExpired, ErrBudget or ErrRate. It returns the grant
	// after the charge, its Labels the union of the whole chain's.
	Consume(ctx context.Context, id string, now time.Time) (Grant, error)
	// AddLabels adds labels to a grant and to every grant it was derived
	// from (a label marks the whole task) and returns the grant.
	AddLabels(ctx context.Context, id string, labels ...string) (Grant, error)
}

// ListFilter selects grants for List.
type ListFilter struct {
	// Principal, when set, keeps only that principal's grants.
	Principal string
	// Limit is the most grants returned: 0 means DefaultListLimit, more
	// than MaxListLimit is refused.
	Limit int
}

// Limits on List.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// Normalize fills in the default limit and refuses a bad one.
func (f ListFilter) Normalize() (ListFilter, error) {
	switch {
	case f.Limit < 0 || f.Limit > MaxListLimit:
		return f, fmt.Errorf("%w: list limit must be between 1 and %d", ErrInvalid, MaxListLimit)
	case f.Limit == 0:
		f.Limit = DefaultListLimit
	}
	return f, nil
}

// ConsumeChain is Consume's decision, shared by every store: chain is the
// grant and its ancestors, leaf first, as stored. It returns the leaf as
// Consume reports it and the chain as it must be written back, or an error
// and nothing to write.
func ConsumeChain(chain []Grant, now time.Time) (Grant, []Grant, error) {
	if err := checkChain(chain); err != nil {
		return Grant{}, nil, err
	}
	now = Timestamp(now)
	out := make([]Grant, len(chain))
	for i, g := range chain {
		if err := Active(g, now); err != nil {
			return Grant{}, nil, err
		}
		tat, err := rateAllow(g, now)
		if err != nil {
			return Grant{}, nil, err
		}
		g = g.Clone()
		g.Used++
		g.RateTAT = tat
		out[i] = g
	}
	leaf := out[0].Clone()
	leaf.Labels = ChainLabels(out)
	return leaf, out, nil
}

// ChainLabels is the sorted union of the chain's labels.
func ChainLabels(chain []Grant) []string {
	var labels []string
	for _, g := range chain {
		labels = append(labels, g.Labels...)
	}
	slices.Sort(labels)
	return slices.Compact(labels)
}

// checkChain refuses a chain whose links do not follow Parent to a root.
func checkChain(chain []Grant) error {
	if len(chain) == 0 {
		return fmt.Errorf("grant chain: empty: %w", ErrUnknown)
	}
	if len(chain) > MaxDepth+1 {
		return fmt.Errorf("grant %s: chain longer than %d: %w", chain[0].ID, MaxDepth+1, ErrInvalid)
	}
	for i, g := range chain {
		switch {
		case i+1 < len(chain) && g.Parent != chain[i+1].ID:
			return fmt.Errorf("grant %s: parent %q is not the next in its chain: %w", g.ID, g.Parent, ErrInvalid)
		case i+1 == len(chain) && g.Parent != "":
			return fmt.Errorf("grant %s: parent %q is missing: %w", g.ID, g.Parent, ErrUnknown)
		}
	}
	return nil
}

// rateAllow applies g's rate at now by the generic cell rate algorithm,
// equivalent to a token bucket of Rate calls refilled at Rate per minute
// but kept as one timestamp: the theoretical arrival time (TAT) of the next
// call. It returns the TAT to store after this call, or ErrRate.
func rateAllow(g Grant, now time.Time) (time.Time, error) {
	if g.Rate <= 0 {
		return g.RateTAT, nil
	}
	interval := time.Minute / time.Duration(g.Rate)
	burst := interval * time.Duration(g.Rate-1)
	tat := g.RateTAT
	if tat.Before(now) {
		tat = now
	}
	if tat.Sub(now) > burst {
		return time.Time{}, fmt.Errorf("grant %s: %w", g.ID, ErrRate)
	}
	return tat.Add(interval), nil
}

// MemoryStore is a Store held in memory, for tests and single-process use
// where grants need not survive a restart.
type MemoryStore struct {
	mu     sync.Mutex
	grants map[string]Grant
	order  []string // ids in creation order
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{grants: map[string]Grant{}}
}

// Create implements Store.
func (s *MemoryStore) Create(_ context.Context, g Grant) error {
	if err := CheckStorable(g); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.grants[g.ID]; ok {
		return fmt.Errorf("create grant %s: %w", g.ID, ErrExists)
	}
	if g.Parent != "" {
		if _, ok := s.grants[g.Parent]; !ok {
			return fmt.Errorf("create grant %s: parent %s: %w", g.ID, g.Parent, ErrUnknown)
		}
	}
	s.grants[g.ID] = Normalize(g)
	s.order = append(s.order, g.ID)
	return nil
}

// Get implements Store.
func (s *MemoryStore) Get(_ context.Context, id string) (Grant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.grants[id]
	if !ok {
		return Grant{}, fmt.Errorf("grant %q: %w", id, ErrUnknown)
	}
	return g.Clone(), nil
}

// List implements Store.
func (s *MemoryStore) List(_ context.Context, f ListFilter) ([]Grant, error) {
	f, err := f.Normalize()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Grant{}
	for _, id := range s.order {
		g := s.grants[id]
		if f.Principal != "" && g.Principal != f.Principal {
			continue
		}
		out = append(out, g.Clone())
		if len(out) == f.Limit {
			break
		}
	}
	return out, nil
}

// Revoke implements Store.
func (s *MemoryStore) Revoke(_ context.Context, id string, now time.Time) (Grant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.grants[id]
	if !ok {
		return Grant{}, fmt.Errorf("revoke grant %q: %w", id, ErrUnknown)
	}
	if g.RevokedAt.IsZero() {
		g.RevokedAt = Timestamp(now)
		s.grants[id] = g
	}
	return g.Clone(), nil
}

// chain returns id's grant and its ancestors; the caller holds s.mu.
func (s *MemoryStore) chain(id string) ([]Grant, error) {
	var chain []Grant
	for next := id; next != "" && len(chain) <= MaxDepth; {
		g, ok := s.grants[next]
		if !ok {
			return nil, fmt.Errorf("grant %q: %w", next, ErrUnknown)
		}
		chain = append(chain, g)
		next = g.Parent
	}
	return chain, nil
}

// Consume implements Store.
func (s *MemoryStore) Consume(_ context.Context, id string, now time.Time) (Grant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	chain, err := s.chain(id)
	if err != nil {
		return Grant{}, err
	}
	leaf, updated, err := ConsumeChain(chain, now)
	if err != nil {
		return Grant{}, err
	}
	for _, g := range updated {
		s.grants[g.ID] = g
	}
	return leaf, nil
}

// AddLabels implements Store.
func (s *MemoryStore) AddLabels(_ context.Context, id string, labels ...string) (Grant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	chain, err := s.chain(id)
	if err != nil {
		return Grant{}, err
	}
	updated := make([]Grant, len(chain))
	for i, g := range chain {
		if updated[i], err = WithLabels(g, labels); err != nil {
			return Grant{}, err
		}
	}
	for _, g := range updated {
		s.grants[g.ID] = g
	}
	return updated[0].Clone(), nil
}

// WithLabels returns g with labels added, sorted and without duplicates.
func WithLabels(g Grant, labels []string) (Grant, error) {
	labels, err := normalizeNames("label", labels, MaxLabels)
	if err != nil {
		return Grant{}, err
	}
	g = g.Clone()
	merged := append(g.Labels, labels...)
	slices.Sort(merged)
	merged = slices.Compact(merged)
	if len(merged) > MaxLabels {
		return Grant{}, fmt.Errorf("grant %s: more than %d labels: %w", g.ID, MaxLabels, ErrInvalid)
	}
	g.Labels = merged
	return g, nil
}

// CheckStorable refuses a grant no store should keep: no id or secret
// digest, no principal or expiry.
func CheckStorable(g Grant) error {
	switch {
	case g.ID == "" || strings.ContainsAny(g.ID, ". \t\n"):
		return fmt.Errorf("store grant: %w: bad id %q", ErrInvalid, g.ID)
	case !strings.HasPrefix(g.SecretHash, "sha256:"):
		return fmt.Errorf("store grant %s: %w: no secret digest", g.ID, ErrInvalid)
	case g.Principal == "":
		return fmt.Errorf("store grant %s: %w: no principal", g.ID, ErrInvalid)
	case g.ExpiresAt.IsZero():
		return fmt.Errorf("store grant %s: %w: no expiry", g.ID, ErrInvalid)
	case g.Budget < 0 || g.Rate < 0 || g.Used < 0:
		return fmt.Errorf("store grant %s: %w: negative budget, rate or use", g.ID, ErrInvalid)
	}
	return nil
}

// Normalize returns a copy of g in the form every store returns: timestamps
// as Timestamp makes them, Tools never nil, empty Scope and Labels nil.
func Normalize(g Grant) Grant {
	g = g.Clone()
	g.ExpiresAt = Timestamp(g.ExpiresAt)
	g.CreatedAt = Timestamp(g.CreatedAt)
	g.RevokedAt = Timestamp(g.RevokedAt)
	g.RateTAT = Timestamp(g.RateTAT)
	if g.Tools == nil {
		g.Tools = []string{}
	}
	if len(g.Scope) == 0 {
		g.Scope = nil
	}
	if len(g.Labels) == 0 {
		g.Labels = nil
	}
	return g
}
