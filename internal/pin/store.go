package pin

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
)

// Store keeps pins, one per (upstream, tool name). Implementations must be
// safe for concurrent use; Put replaces the whole pin.
type Store interface {
	// Get returns the pin of the upstream's tool; false when there is none.
	Get(ctx context.Context, upstream, name string) (Pin, bool, error)
	// Put stores p, replacing any pin of the same upstream and name. A pin
	// that breaks the invariants (see ValidatePin) is refused.
	Put(ctx context.Context, p Pin) error
	// List returns every pin ordered by upstream, then name.
	List(ctx context.Context) ([]Pin, error)
}

// ValidatePin checks what a Store requires of a pin it keeps: an upstream
// and a name, a valid state, definitions that belong to the pin, a pending
// definition exactly when quarantined, a digest when approved. Store
// implementations call it in Put.
func ValidatePin(p Pin) error { return p.validate() }

// MemoryStore is a Store held in memory, for tests and single-process use
// without a database.
type MemoryStore struct {
	mu   sync.Mutex
	pins map[[2]string]Pin
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{pins: map[[2]string]Pin{}}
}

var _ Store = (*MemoryStore)(nil)

// Get implements Store.
func (s *MemoryStore) Get(ctx context.Context, upstream, name string) (Pin, bool, error) {
	if err := ctx.Err(); err != nil {
		return Pin{}, false, fmt.Errorf("get pin %s.%s: %w", upstream, name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pins[[2]string{upstream, name}]
	if !ok {
		return Pin{}, false, nil
	}
	return clonePin(p), true, nil
}

// Put implements Store.
func (s *MemoryStore) Put(ctx context.Context, p Pin) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put pin %s: %w", p.Ref(), err)
	}
	if err := p.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pins[[2]string{p.Upstream, p.Name}] = clonePin(p)
	return nil
}

// List implements Store.
func (s *MemoryStore) List(ctx context.Context) ([]Pin, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list pins: %w", err)
	}
	s.mu.Lock()
	out := make([]Pin, 0, len(s.pins))
	for _, p := range s.pins {
		out = append(out, clonePin(p))
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Pin) int {
		return cmp.Or(cmp.Compare(a.Upstream, b.Upstream), cmp.Compare(a.Name, b.Name))
	})
	return out, nil
}

// clonePin deep-copies p so that callers cannot change a stored pin through
// shared slices.
func clonePin(p Pin) Pin {
	p.Definition = cloneDefinition(p.Definition)
	if p.Pending != nil {
		d := cloneDefinition(*p.Pending)
		p.Pending = &d
	}
	p.Findings = slices.Clone(p.Findings)
	return p
}

func cloneDefinition(d Definition) Definition {
	d.InputSchema = cloneRaw(d.InputSchema)
	d.OutputSchema = cloneRaw(d.OutputSchema)
	d.Annotations = cloneRaw(d.Annotations)
	return d
}

func cloneRaw(v []byte) []byte {
	if len(v) == 0 {
		return nil
	}
	return slices.Clone(v)
}
