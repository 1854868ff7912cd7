package pin_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/wardenmcp/warden/internal/pin"
	"github.com/wardenmcp/warden/internal/pin/pintest"
)

func BenchmarkDigest(b *testing.B) {
	d := pintest.Definition("shop", "get_order", 1)
	for b.Loop() {
		pin.Digest(d)
	}
}

func BenchmarkScan(b *testing.B) {
	d := pintest.Definition("shop", "get_order", 1)
	for b.Loop() {
		pin.Scan(d)
	}
}

// BenchmarkCheckUnchanged100 is a catalog rebuild of 100 pinned tools
// whose definitions did not change: the steady state.
func BenchmarkCheckUnchanged100(b *testing.B) {
	ctx := context.Background()
	p, err := pin.NewPinner(pin.NewMemoryStore(), pin.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defs := make([]pin.Definition, 100)
	for i := range defs {
		defs[i] = pintest.Definition("up", fmt.Sprintf("tool_%03d", i), i)
	}
	if _, err := p.Check(ctx, defs); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := p.Check(ctx, defs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSimilarNames500(b *testing.B) {
	names := make([]string, 500)
	for i := range names {
		names[i] = fmt.Sprintf("up%d.tool_name_%03d", i%5, i)
	}
	for b.Loop() {
		pin.SimilarNames(names)
	}
}
