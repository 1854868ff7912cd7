package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/config"
	"github.com/wardenmcp/warden/internal/gateway"
	"github.com/wardenmcp/warden/internal/identity"
)

type tenantOrder struct {
	ID       string `json:"id"`
	TenantID string `json:"tenant_id"`
}

type tenantOrders struct {
	Orders []tenantOrder `json:"orders"`
}

// TestTenancyOnResponses: where the catalog names a tenant field, each
// caller sees only its own tenant's items, in structured and text content,
// and a caller without a tenant sees none of them.
func TestTenancyOnResponses(t *testing.T) {
	ctx := testContext(t)
	up := newServer("shop", nil)
	mcp.AddTool(up, &mcp.Tool{Name: "list_orders"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, tenantOrders, error) {
		return nil, tenantOrders{Orders: []tenantOrder{{"o1", "acme"}, {"o2", "globex"}, {"o3", "acme"}}}, nil
	})
	bigOrders := `{"orders":[{"id":9007199254740993,"tenant_id":"acme","note":"a<b & c"},{"id":2,"tenant_id":"globex"}]}`
	up.AddTool(&mcp.Tool{Name: "list_big", InputSchema: anyObject}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: bigOrders}}}, nil
	})
	u := startUpstream(t, up, false)
	cfg, err := config.Parse([]byte("catalog:\n  shop.list_orders: {risk: read, tenant_field: tenant_id}\n  shop.list_big: {risk: read, tenant_field: tenant_id}\nupstreams:\n"+httpUpstreamYAML("shop", u.URL, []string{"*"})), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	authn, err := identity.New(identity.Config{APIKeys: []identity.APIKey{
		{ID: "a", Hash: identity.HashAPIKey("key-acme"), Principal: identity.Principal{ID: "ann", Tenant: "acme"}},
		{ID: "g", Hash: identity.HashAPIKey("key-globex"), Principal: identity.Principal{ID: "gus", Tenant: "globex"}},
		{ID: "n", Hash: identity.HashAPIKey("key-none"), Principal: identity.Principal{ID: "nobody"}},
	}}, identity.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Options{Config: cfg, Logger: testLogger(t), Sealer: testSealer(t), Authn: authn})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.Close(cctx)
	})
	endpoint := serveHTTP(t, g)
	for _, tc := range []struct {
		key  string
		want []string
	}{
		{"key-acme", []string{"o1", "o3"}},
		{"key-globex", []string{"o2"}},
		{"key-none", nil},
	} {
		c := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil)
		cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{Transport: apiKeyTransport{tc.key}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		big, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "shop.list_big", Arguments: map[string]any{}})
		if err != nil || big.IsError {
			t.Fatalf("%s: list_big: %v %+v", tc.key, err, big)
		}
		if tc.key == "key-acme" {
			// The other tenant's order is gone; what stays keeps every digit
			// and its text as written.
			if got := big.Content[0].(*mcp.TextContent).Text; got != `{"orders":[{"id":9007199254740993,"note":"a<b & c","tenant_id":"acme"}]}` {
				t.Errorf("acme's filtered text = %s", got)
			}
		}
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "shop.list_orders", Arguments: map[string]any{}})
		_ = cs.Close()
		if err != nil || res.IsError {
			t.Fatalf("%s: %v %+v", tc.key, err, res)
		}
		sc, _ := res.StructuredContent.(map[string]any)
		items, _ := sc["orders"].([]any)
		var got []string
		for _, it := range items {
			got = append(got, it.(map[string]any)["id"].(string))
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: structured orders %v, want %v", tc.key, got, tc.want)
		}
		text := res.Content[0].(*mcp.TextContent).Text
		for _, id := range []string{"o1", "o2", "o3"} {
			mine := strings.Contains(strings.Join(tc.want, ","), id)
			if strings.Contains(text, `"`+id+`"`) != mine {
				t.Errorf("%s: text content %s; order %s should be shown: %v", tc.key, text, id, mine)
			}
		}
	}
}
