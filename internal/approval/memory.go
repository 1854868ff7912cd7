package approval

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemoryStore is a Store held in memory, for tests and single-process
// deployments without a database. It is safe for concurrent use.
type MemoryStore struct {
	mu    sync.Mutex
	byID  map[string]Request
	order []string // creation order
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{byID: map[string]Request{}}
}

// Create implements Store.
func (s *MemoryStore) Create(_ context.Context, r Request) error {
	if err := Check(r); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[r.ID]; ok {
		return fmt.Errorf("create approval %s: %w", r.ID, ErrExists)
	}
	r = Normalize(r)
	r.Args = slices.Clone(r.Args)
	r.Rules, r.Approvers = slices.Clone(r.Rules), slices.Clone(r.Approvers)
	s.byID[r.ID] = r
	s.order = append(s.order, r.ID)
	return nil
}

// Get implements Store.
func (s *MemoryStore) Get(_ context.Context, id string) (Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.byID[id]
	if !ok {
		return Request{}, fmt.Errorf("read approval %q: %w", id, ErrUnknown)
	}
	return clone(r), nil
}

// List implements Store.
func (s *MemoryStore) List(_ context.Context, f Filter) ([]Request, error) {
	f, err := f.Normalize()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Request{}
	for i := len(s.order) - 1; i >= 0 && len(out) < f.Limit; i-- {
		if r := s.byID[s.order[i]]; f.Match(r) {
			out = append(out, clone(r))
		}
	}
	return out, nil
}

// Decide implements Store.
func (s *MemoryStore) Decide(_ context.Context, id string, approve bool, by, comment string, now time.Time) (Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.byID[id]
	if !ok {
		return Request{}, fmt.Errorf("decide approval %q: %w", id, ErrUnknown)
	}
	if err := CheckDecision(r, by, comment, now); err != nil {
		return Request{}, fmt.Errorf("decide approval: %w", err)
	}
	r = Decided(r, approve, by, comment, now)
	s.byID[id] = r
	return clone(r), nil
}

// FindPending implements Store.
func (s *MemoryStore) FindPending(_ context.Context, b Binding, now time.Time) (Request, error) {
	return s.find(b, func(r Request) bool { return r.At(now).State == StatePending })
}

// FindUsable implements Store.
func (s *MemoryStore) FindUsable(_ context.Context, b Binding, now time.Time) (Request, error) {
	return s.find(b, func(r Request) bool { return CheckUsable(r, now) == nil })
}

func (s *MemoryStore) find(b Binding, ok func(Request) bool) (Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.order) - 1; i >= 0; i-- {
		if r := s.byID[s.order[i]]; r.Binding() == b && ok(r) {
			return clone(r), nil
		}
	}
	return Request{}, fmt.Errorf("find approval for %s: %w", b.Tool, ErrUnknown)
}

// MarkUsed implements Store.
func (s *MemoryStore) MarkUsed(_ context.Context, id string, now time.Time) (Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.byID[id]
	if !ok {
		return Request{}, fmt.Errorf("use approval %q: %w", id, ErrUnknown)
	}
	if err := CheckUsable(r, now); err != nil {
		return Request{}, fmt.Errorf("use approval: %w", err)
	}
	r.State, r.UsedAt = StateUsed, Timestamp(now)
	s.byID[id] = r
	return clone(r), nil
}

func clone(r Request) Request {
	r.Args = slices.Clone(r.Args)
	r.Rules, r.Approvers = slices.Clone(r.Rules), slices.Clone(r.Approvers)
	return r
}
