package gateway

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/config"
	"github.com/wardenmcp/warden/internal/seal"
	"github.com/wardenmcp/warden/internal/wire"
)

// BenchmarkPipeline measures what Warden itself does to a small tools/call
// between the transports: the message check, identify, route, argument
// decode/validate/re-encode, decide (allow-lists) and respond. The
// transports on both sides are the protocol library's and are measured
// end to end in bench/.
func BenchmarkPipeline(b *testing.B) {
	cfg, err := config.Parse([]byte("upstreams:\n  shop:\n    url: http://127.0.0.1:1/mcp\n    allow_tools: [\"*\"]\n"), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	sealer, err := seal.New(make([]byte, seal.KeySize), seal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	g, err := New(Options{Config: cfg, Sealer: sealer})
	if err != nil {
		b.Fatal(err)
	}
	tool := &mcp.Tool{Name: "refund_order", InputSchema: json.RawMessage(`{"type":"object","properties":{"order_id":{"type":"string"},"amount":{"type":"integer","minimum":1},"reason":{"type":"string"}},"required":["order_id","amount"]}`)}
	g.listings["shop"] = &listing{tools: []*mcp.Tool{tool}}
	if _, err := g.rebuild(); err != nil {
		b.Fatal(err)
	}
	result := &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}
	next := func(context.Context, string, mcp.Request) (mcp.Result, error) { return result, nil }
	handle := g.pipeline(false)(next)
	msg := []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"shop.refund_order","arguments":{"order_id":"12345","amount":1500,"reason":"damaged in transit"}}}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := wire.Check(msg, 64); err != nil {
			b.Fatal(err)
		}
		req := &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: "shop.refund_order", Arguments: json.RawMessage(`{"order_id":"12345","amount":1500,"reason":"damaged in transit"}`)}}
		res, err := handle(ctx, "tools/call", req)
		if err != nil || res.(*mcp.CallToolResult).IsError {
			b.Fatalf("pipeline refused the call: %v %+v", err, res)
		}
	}
}
