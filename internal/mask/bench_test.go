package mask

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// reportCPU adds MB per CPU-second of the benchmark's thread (when the
// platform can tell).
func reportCPU(b *testing.B, size int, cpu time.Duration) {
	if cpu > 0 {
		b.ReportMetric(float64(size)*float64(b.N)/cpu.Seconds()/1e6, "cpu-MB/s")
	}
}

// BenchmarkMaskCallToolResult masks generated tool results (customer
// records, orders, log lines; the data both as structuredContent and as
// JSON text) with the default detectors. B/op divided by the size gives the
// memory per scanned byte.
func BenchmarkMaskCallToolResult(b *testing.B) {
	m, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{1 << 10, 64 << 10, 1 << 20} {
		raw := json.RawMessage(genResult(size))
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			start := threadCPU()
			for b.Loop() {
				if _, _, err := MaskCallToolResult(raw, m); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, len(raw), threadCPU()-start)
		})
	}
}

func TestGeneratedResultIsMasked(t *testing.T) {
	m := newMasker(t, Options{})
	raw := genResult(64 << 10)
	out, rep, err := MaskCallToolResult(raw, m)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(out) || rep.NotJSON {
		t.Fatal("output is not JSON")
	}
	if bytes.Contains(out, []byte("@example.com")) || bytes.Contains(out, []byte("4111 1111")) {
		t.Error("an email or card survived")
	}
	if rep.Counts["EMAIL_ADDRESS"] == 0 || rep.Counts["CREDIT_CARD"] == 0 || rep.Counts["PHONE_NUMBER"] == 0 || rep.Counts["IP_ADDRESS"] == 0 {
		t.Errorf("counts %v", rep.Counts)
	}
	for class := range rep.Counts {
		switch class {
		case "EMAIL_ADDRESS", "CREDIT_CARD", "PHONE_NUMBER", "IP_ADDRESS":
		default:
			t.Errorf("unexpected class %s (%d): a false positive in realistic data", class, rep.Counts[class])
		}
	}
}

// BenchmarkBaselineJSONValid is encoding/json's validator on the same
// inputs: a yardstick for the machine the benchmarks run on.
func BenchmarkBaselineJSONValid(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10, 1 << 20} {
		raw := genResult(size)
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			start := threadCPU()
			for b.Loop() {
				if !json.Valid(raw) {
					b.Fatal("invalid")
				}
			}
			reportCPU(b, len(raw), threadCPU()-start)
		})
	}
}
