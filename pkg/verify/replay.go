package verify

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ReplayCache remembers credential ids until they expire, so each
// credential is accepted once.
type ReplayCache interface {
	// Add records id as used until expires. It returns an error wrapping
	// ErrReplayed if id is already recorded and has not expired; any other
	// error means the use could not be recorded, and the credential must be
	// refused.
	Add(ctx context.Context, id string, expires time.Time) error
}

// MemoryReplayCache is an in-process ReplayCache. A server with several
// replicas needs a shared cache instead.
type MemoryReplayCache struct {
	now func() time.Time

	mu        sync.Mutex
	seen      map[string]time.Time
	nextSweep int
}

// minSweep is the size below which the cache does not bother sweeping.
const minSweep = 1024

// NewMemoryReplayCache returns an empty cache; now is its clock (nil means
// time.Now).
func NewMemoryReplayCache(now func() time.Time) *MemoryReplayCache {
	if now == nil {
		now = time.Now
	}
	return &MemoryReplayCache{now: now, seen: make(map[string]time.Time), nextSweep: minSweep}
}

// Add implements ReplayCache.
func (c *MemoryReplayCache) Add(_ context.Context, id string, expires time.Time) error {
	if id == "" {
		return errors.New("verify: replay cache: empty credential id")
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if until, ok := c.seen[id]; ok && now.Before(until) {
		return ErrReplayed
	}
	c.seen[id] = expires
	// Sweeping when the map has doubled keeps the cost amortized constant.
	if len(c.seen) >= c.nextSweep {
		for k, until := range c.seen {
			if !now.Before(until) {
				delete(c.seen, k)
			}
		}
		c.nextSweep = max(minSweep, 2*len(c.seen))
	}
	return nil
}

// Len reports how many ids the cache holds, expired or not.
func (c *MemoryReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}
