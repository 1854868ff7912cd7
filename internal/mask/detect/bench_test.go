package detect

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// logText builds about size bytes of application log lines with a
// realistic sprinkling of emails, IPs, phone numbers and card numbers.
func logText(size int) []byte {
	r := rand.New(rand.NewPCG(7, 7))
	var b strings.Builder
	for b.Len() < size {
		fmt.Fprintf(&b, "2025-11-%02dT%02d:%02d:%02d.%03dZ INFO ", 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1000))
		switch r.IntN(8) {
		case 0:
			fmt.Fprintf(&b, "user ann.lee%d@example.com logged in from 10.%d.%d.%d\n", r.IntN(100), r.IntN(256), r.IntN(256), r.IntN(256))
		case 1:
			fmt.Fprintf(&b, "order ORD-%08d paid with card 4111 1111 1111 1111 amount %d.%02d EUR\n", r.IntN(1e8), r.IntN(1000), r.IntN(100))
		case 2:
			fmt.Fprintf(&b, "sms sent to +1 415-555-%04d for delivery %d\n", r.IntN(10000), r.IntN(1e6))
		default:
			fmt.Fprintf(&b, "GET /api/v2/products/%d completed in %dms status=200 bytes=%d cache=hit region=eu-west-1\n", r.IntN(1e5), r.IntN(500), r.IntN(1e5))
		}
	}
	return []byte(b.String())
}

func BenchmarkScanText(b *testing.B) {
	s := Default()
	for _, size := range []int{64 << 10, 1 << 20} {
		text := logText(size)
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			var dst []Finding
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			start := threadCPU()
			for b.Loop() {
				dst = s.Scan(text, nil, dst[:0])
			}
			if cpu := threadCPU() - start; cpu > 0 {
				b.ReportMetric(float64(len(text))*float64(b.N)/cpu.Seconds()/1e6, "cpu-MB/s")
			}
			if len(dst) == 0 {
				b.Fatal("nothing found")
			}
		})
	}
}
