package loadgen

import (
	"testing"
	"time"
)

func TestLatenciesPercentiles(t *testing.T) {
	l := NewLatencies(0)
	// 1..1000 µs in reverse order: percentiles must not depend on order.
	for i := 1000; i >= 1; i-- {
		l.Add(time.Duration(i) * time.Microsecond)
	}
	cases := []struct {
		q    float64
		want time.Duration
	}{
		{0, 1 * time.Microsecond},
		{0.5, 500 * time.Microsecond},
		{0.9, 900 * time.Microsecond},
		{0.99, 990 * time.Microsecond},
		{0.999, 999 * time.Microsecond},
		{1, 1000 * time.Microsecond},
	}
	for _, c := range cases {
		if got := l.Percentile(c.q); got != c.want {
			t.Errorf("Percentile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if l.Count() != 1000 {
		t.Errorf("Count = %d, want 1000", l.Count())
	}
}

func TestLatenciesEmpty(t *testing.T) {
	l := NewLatencies(4)
	if got := l.Percentile(0.99); got != 0 {
		t.Errorf("empty Percentile = %v, want 0", got)
	}
}
