package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/config"
	"github.com/wardenmcp/warden/internal/policy"
	"github.com/wardenmcp/warden/internal/seal"
)

type benchPolicy struct{ p *policy.Policy }

func (b benchPolicy) Policy() *policy.Policy { return b.p }

// BenchmarkMaskResult measures the masking half of the filter stage on a
// 64 KiB tool result (customer records, as structuredContent and as JSON
// text): plan, cached masker, encode, mask, decode.
func BenchmarkMaskResult(b *testing.B) {
	cfg, err := config.Parse([]byte("upstreams:\n  crm:\n    url: http://127.0.0.1:1/mcp\n    allow_tools: [\"*\"]\n"), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	sealer, err := seal.New(make([]byte, seal.KeySize), seal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	pol, err := policy.Compile([]byte(`
version: 1
roles: {support-agent: {tools: ["crm.*"]}}
rules: [{id: allow-crm, tool: "crm.*", effect: allow}]
masking:
  default: redact
  rules:
    - {id: partial-cards, classes: [CREDIT_CARD, PHONE_NUMBER], when: "'support-agent' in principal.roles", action: partial}
    - {id: pii-cleared, classes: [pii], when: principal.clearance == "pii", action: pass}
`), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	g, err := New(Options{Config: cfg, Sealer: sealer, Policy: benchPolicy{pol}})
	if err != nil {
		b.Fatal(err)
	}
	g.listings["crm"] = &listing{tools: []*mcp.Tool{{Name: "list_customers", InputSchema: json.RawMessage(`{"type":"object"}`)}}}
	if _, err := g.rebuild(); err != nil {
		b.Fatal(err)
	}

	type row struct {
		ID    int    `json:"id"`
		Name  string `json:"name"`
		Email string `json:"email"`
		Phone string `json:"phone"`
		Card  string `json:"card"`
		Notes string `json:"notes"`
	}
	var rows []row
	size := 0
	for i := 0; size < 32<<10; i++ {
		r := row{ID: i, Name: fmt.Sprintf("Customer %d", i), Email: fmt.Sprintf("customer%d@example.com", i),
			Phone: "+44 20 7946 0958", Card: "4111 1111 1111 1111", Notes: "prefers email; ordered twice last month"}
		enc, _ := json.Marshal(r)
		size += len(enc)
		rows = append(rows, r)
	}
	structured := map[string]any{"customers": rows}
	textJSON, _ := json.Marshal(structured)
	res := &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(textJSON)}}, StructuredContent: structured}
	raw, _ := json.Marshal(res)

	ctx := context.Background()
	call := &Call{ID: "bench", Method: "tools/call", Principal: Principal{ID: "sam", Roles: []string{"support-agent"}},
		request: &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: "crm.list_customers"}}}
	if err := g.route(ctx, call); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		out, err := g.maskResult(ctx, call, res)
		if err != nil || out.(*mcp.CallToolResult).IsError {
			b.Fatalf("masking failed: %v %+v", err, out)
		}
	}
}
