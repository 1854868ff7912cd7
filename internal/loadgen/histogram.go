package loadgen

import (
	"slices"
	"time"
)

// Latencies records call latencies and answers percentiles. It keeps every
// sample (runs are bounded in count), so percentiles are exact.
type Latencies struct {
	samples []time.Duration
	sorted  bool
}

// NewLatencies returns a recorder with room for expected samples.
func NewLatencies(expected int) *Latencies {
	return &Latencies{samples: make([]time.Duration, 0, max(expected, 0))}
}

// Add records one latency.
func (l *Latencies) Add(d time.Duration) {
	l.samples = append(l.samples, d)
	l.sorted = false
}

// Count is the number of samples.
func (l *Latencies) Count() int { return len(l.samples) }

// Percentile returns the latency at or below which a fraction q (0..1) of
// the samples lie (nearest rank); 0 without samples.
func (l *Latencies) Percentile(q float64) time.Duration {
	if len(l.samples) == 0 {
		return 0
	}
	if !l.sorted {
		slices.Sort(l.samples)
		l.sorted = true
	}
	q = min(max(q, 0), 1)
	// Nearest rank: the smallest sample with at least q of all at or below it.
	rank := int(q*float64(len(l.samples)) + 0.999999999)
	rank = min(max(rank, 1), len(l.samples))
	return l.samples[rank-1]
}
