package gateway_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/gateway"
)

// TestSubscribeIsHeldToResourceRoles: a subscription names a resource, so
// the caller's roles must grant that resource, as for resources/read; a
// rule that allows the method does not open every URI.
func TestSubscribeIsHeldToResourceRoles(t *testing.T) {
	ctx := testContext(t)
	var mu sync.Mutex
	var subscribed []string
	up := newServer("docs", &mcp.ServerOptions{
		SubscribeHandler: func(_ context.Context, req *mcp.SubscribeRequest) error {
			mu.Lock()
			defer mu.Unlock()
			subscribed = append(subscribed, req.Params.URI)
			return nil
		},
		UnsubscribeHandler: func(context.Context, *mcp.UnsubscribeRequest) error { return nil },
	})
	for _, uri := range []string{"test://open", "test://secret"} {
		up.AddResource(&mcp.Resource{URI: uri, Name: strings.TrimPrefix(uri, "test://")},
			func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
				return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "x"}}}, nil
			})
	}
	u := startUpstream(t, up, false)
	g := startPolicyGateway(t, u.URL, `
version: 1
roles:
  agent: {resources: ["test://open"]}
rules:
  - {id: subscriptions, method: "resources/subscribe", effect: allow}
  - {id: unsubscriptions, method: "resources/unsubscribe", effect: allow}
`, gateway.Options{})
	cs := connectHTTP(t, serveHTTP(t, g), "2025-11-25", nil)

	if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "test://open"}); err != nil {
		t.Fatalf("subscribing to a granted resource: %v", err)
	}
	err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "test://secret"})
	if err == nil || !strings.Contains(err.Error(), `no role of the caller grants resource "test://secret"`) {
		t.Fatalf("subscribing to a resource no role grants: %v, want a role denial", err)
	}
	if err := cs.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: "test://secret"}); err == nil {
		t.Error("unsubscribing from a resource no role grants succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(subscribed) != 1 || subscribed[0] != "test://open" {
		t.Errorf("the upstream saw subscriptions %v, want only test://open", subscribed)
	}
}
