package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Store is the storage the audit log needs. Implementations: MemoryStore
// here, the SQLite store in internal/store/sqlite; audittest.StoreSuite is the
// behaviour every implementation must pass.
type Store interface {
	// Append stores records atomically: all of them or none. They must
	// continue the stored chain: the first has seq Last+1 (1 when empty) and
	// prev equal to Last's hash (GenesisHash when empty), each next one seq+1;
	// otherwise Append stores nothing and returns an error wrapping
	// ErrConflict. Append returns only once the records are durable.
	Append(ctx context.Context, records []Record) error
	// Last returns the record with the highest seq, or ErrNoRecords.
	Last(ctx context.Context) (Record, error)
	// Query returns the records matching f, by ascending seq (descending
	// when f.Newest), at most f.Limit of them.
	Query(ctx context.Context, f Filter) ([]Record, error)
	// PutKey records a checkpoint public key under its id. Putting the same
	// key again is a no-op; a different key under a known id is an error.
	PutKey(ctx context.Context, keyID string, pub ed25519.PublicKey) error
	// Keys returns every recorded checkpoint key by id.
	Keys(ctx context.Context) (map[string]ed25519.PublicKey, error)
}

// Errors a Store returns.
var (
	ErrNoRecords = errors.New("audit log is empty")
	ErrConflict  = errors.New("records do not continue the stored chain")
)

// CorruptRecordError is returned by a Store that finds a stored record it
// cannot decode (a column that is not the JSON it should be). Verify reports
// it as a broken record rather than a read failure.
type CorruptRecordError struct {
	Seq uint64
	Err error
}

func (e *CorruptRecordError) Error() string {
	return fmt.Sprintf("audit record %d cannot be decoded: %v", e.Seq, e.Err)
}

func (e *CorruptRecordError) Unwrap() error { return e.Err }

// MaxQueryLimit bounds Filter.Limit so no query loads an unbounded log.
const MaxQueryLimit = 100_000

// Filter selects records. Zero fields do not filter.
type Filter struct {
	Principal string
	Tool      string
	Decision  Decision
	Kind      Kind
	Since     time.Time // records at or after this time
	Until     time.Time // records strictly before this time
	AfterSeq  uint64    // records with a greater seq
	Limit     int       // at most this many records: 1 to MaxQueryLimit
	Newest    bool      // the newest records first
}

// Validate reports a filter a Store must refuse.
func (f Filter) Validate() error {
	if f.Limit < 1 || f.Limit > MaxQueryLimit {
		return fmt.Errorf("audit query limit %d: must be 1 to %d", f.Limit, MaxQueryLimit)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return fmt.Errorf("audit query: since %s is not before until %s", f.Since.Format(time.RFC3339Nano), f.Until.Format(time.RFC3339Nano))
	}
	return nil
}

// Match reports whether r passes every field of f except Limit and Newest.
func (f Filter) Match(r Record) bool {
	switch {
	case f.Principal != "" && r.Principal != f.Principal,
		f.Tool != "" && r.Tool != f.Tool,
		f.Decision != "" && r.Decision != f.Decision,
		f.Kind != "" && r.Kind != f.Kind,
		!f.Since.IsZero() && r.Time.Before(f.Since),
		!f.Until.IsZero() && !r.Time.Before(f.Until),
		r.Seq <= f.AfterSeq:
		return false
	}
	return true
}

// CheckContinues reports, wrapping ErrConflict, whether records may be
// appended after last (nil when the store is empty). Stores call it inside
// the transaction that appends.
func CheckContinues(last *Record, records []Record) error {
	if len(records) == 0 {
		return fmt.Errorf("%w: no records", ErrConflict)
	}
	seq, prev := uint64(0), GenesisHash
	if last != nil {
		seq, prev = last.Seq, last.Hash
	}
	for _, r := range records {
		if r.Seq != seq+1 {
			return fmt.Errorf("%w: record has seq %d, expected %d", ErrConflict, r.Seq, seq+1)
		}
		if r.Prev != prev {
			return fmt.Errorf("%w: record %d has prev %.12s…, expected %.12s…", ErrConflict, r.Seq, r.Prev, prev)
		}
		seq, prev = r.Seq, r.Hash
	}
	return nil
}

// MemoryStore is a Store held in memory, for tests and for trying Warden out
// without a file. It is safe for concurrent use.
type MemoryStore struct {
	mu      sync.Mutex
	records []Record
	keys    map[string]ed25519.PublicKey
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{keys: map[string]ed25519.PublicKey{}}
}

// Append implements Store.
func (m *MemoryStore) Append(ctx context.Context, records []Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	var last *Record
	if n := len(m.records); n > 0 {
		last = &m.records[n-1]
	}
	if err := CheckContinues(last, records); err != nil {
		return err
	}
	for _, r := range records {
		m.records = append(m.records, r.Clone())
	}
	return nil
}

// Last implements Store.
func (m *MemoryStore) Last(ctx context.Context) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	if len(m.records) == 0 {
		return Record{}, ErrNoRecords
	}
	return m.records[len(m.records)-1].Clone(), nil
}

// Query implements Store.
func (m *MemoryStore) Query(ctx context.Context, f Filter) ([]Record, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Record
	// Seq starts at 1 without gaps, so records after AfterSeq start at index AfterSeq.
	start := min(f.AfterSeq, uint64(len(m.records)))
	candidates := m.records[start:]
	for i := range candidates {
		r := candidates[i]
		if f.Newest {
			r = candidates[len(candidates)-1-i]
		}
		if !f.Match(r) {
			continue
		}
		out = append(out, r.Clone())
		if len(out) == f.Limit {
			break
		}
	}
	return out, nil
}

// PutKey implements Store.
func (m *MemoryStore) PutKey(ctx context.Context, keyID string, pub ed25519.PublicKey) error {
	if keyID == "" || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("audit key %q: need an id and a %d-byte Ed25519 public key", keyID, ed25519.PublicKeySize)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if old, ok := m.keys[keyID]; ok {
		if !old.Equal(pub) {
			return fmt.Errorf("audit key %q is already recorded with a different public key", keyID)
		}
		return nil
	}
	m.keys[keyID] = slices.Clone(pub)
	return nil
}

// Keys implements Store.
func (m *MemoryStore) Keys(ctx context.Context) (map[string]ed25519.PublicKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make(map[string]ed25519.PublicKey, len(m.keys))
	for id, k := range m.keys {
		out[id] = slices.Clone(k)
	}
	return out, nil
}
