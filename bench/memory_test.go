package bench

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkMemoryPerSession reports the gateway's heap per open client
// session (a stateful session also opens its own upstream session): open
// sessions, collect, and divide the heap's growth by their number. Client
// and upstream live in this process too, so the figure is an upper bound.
func BenchmarkMemoryPerSession(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			url := startWarden(b, serveUpstream(b))
			for b.Loop() {
				before := heapInUse()
				for range n {
					cs := connect(b, url, "2025-11-25")
					if _, err := cs.ListTools(b.Context(), nil); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(heapInUse()-before)/float64(n)/1024, "KiB/session")
			}
		})
	}
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
