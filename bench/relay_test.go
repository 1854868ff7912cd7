// Package bench holds Warden's end-to-end benchmarks: the cost a call pays
// for passing through the gateway, measured against the same call made
// directly. Results are recorded in RESULTS.md.
package bench

import (
	"context"
	"fmt"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/bench/upstream"
	"github.com/wardenmcp/warden/internal/config"
	"github.com/wardenmcp/warden/internal/gateway"
	"github.com/wardenmcp/warden/internal/seal"
)

// serveUpstream serves the benchmark's minimal upstream (bench/upstream,
// the one warden bench loads) on loopback.
func serveUpstream(b *testing.B) string {
	b.Helper()
	srv := httptest.NewServer(upstream.Handler(upstream.NewServer(), nil))
	b.Cleanup(srv.Close)
	return srv.URL
}

func startWarden(b *testing.B, upstreamURL string) string {
	b.Helper()
	cfg, err := config.Parse(fmt.Appendf(nil, `
upstreams:
  shop:
    url: %s
    allow_tools: ["*"]
`, upstreamURL), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	sealer, err := seal.New(make([]byte, seal.KeySize), seal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	g, err := gateway.New(gateway.Options{Config: cfg, Sealer: sealer})
	if err != nil {
		b.Fatal(err)
	}
	if err := g.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	b.Cleanup(func() {
		srv.Close()
		_ = g.Close(context.Background())
	})
	return srv.URL + "/mcp"
}

func connect(b *testing.B, url, revision string) *mcp.ClientSession {
	b.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	cs, err := c.Connect(b.Context(), &mcp.StreamableClientTransport{Endpoint: url, MaxRetries: -1}, &mcp.ClientSessionOptions{ProtocolVersion: revision})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cs.Close() })
	return cs
}

// cpuTime is the CPU this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runCalls calls the tool b.N times and reports the process CPU per call
// (client, gateway and upstream together, all in this process).
func runCalls(b *testing.B, cs *mcp.ClientSession, tool string) {
	args := map[string]any{"order_id": "12345", "note": "a small call"}
	ctx := context.Background()
	b.ReportAllocs()
	start := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
		if err != nil || res.IsError {
			b.Fatalf("call failed: %v %+v", err, res)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/op")
}

// BenchmarkCall measures a small tools/call made directly and through
// Warden, on both protocol revisions. The difference between the two is
// what the gateway adds: one more HTTP hop, decode, route, decide,
// re-encode.
func BenchmarkCall(b *testing.B) {
	for _, rev := range []string{"2025-11-25", "2026-07-28"} {
		b.Run("direct/"+rev, func(b *testing.B) {
			runCalls(b, connect(b, serveUpstream(b), rev), upstream.ToolName)
		})
		b.Run("warden/"+rev, func(b *testing.B) {
			runCalls(b, connect(b, startWarden(b, serveUpstream(b)), rev), "shop."+upstream.ToolName)
		})
	}
}

// BenchmarkCallManySessions repeats the relayed call with 1,000 other client
// sessions open and idle: the cost per call must not grow with them.
func BenchmarkCallManySessions(b *testing.B) {
	for _, idle := range []int{0, 1000} {
		b.Run(fmt.Sprintf("idle=%d", idle), func(b *testing.B) {
			url := startWarden(b, serveUpstream(b))
			for range idle {
				connect(b, url, "2025-11-25")
			}
			runCalls(b, connect(b, url, "2025-11-25"), "shop.echo")
		})
	}
}
