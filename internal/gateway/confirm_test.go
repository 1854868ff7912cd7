package gateway_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/config"
	"github.com/wardenmcp/warden/internal/gateway"
	"github.com/wardenmcp/warden/internal/identity"
	"github.com/wardenmcp/warden/internal/policy"
)

const confirmPolicy = `
version: 1
roles:
  agent: {tools: ["shop.*"]}
rules:
  - id: deletes-need-a-yes
    tool: shop.delete_order
    effect: confirm
    reason: deleting an order cannot be undone
  - id: shop
    tool: "shop.*"
    effect: allow
`

// startPolicyGateway starts a gateway in front of the upstream "shop" at
// url, deciding with policySrc, for an anonymous caller "agent-1" with role
// agent; opts adds collaborators (approvals and the like) and a logger, and
// configYAML adds top-level configuration.
func startPolicyGateway(t *testing.T, url, policySrc string, opts gateway.Options, configYAML ...string) *gateway.Gateway {
	t.Helper()
	src := "upstreams:\n" + httpUpstreamYAML("shop", url, []string{"*"}) + strings.Join(configYAML, "")
	cfg, err := config.Parse([]byte(src), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Compile([]byte(policySrc), "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	authn, err := identity.New(identity.Config{Anonymous: &identity.Principal{ID: "agent-1", Roles: []string{"agent"}}}, identity.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	opts.Config, opts.Sealer, opts.Policy, opts.Authn = cfg, testSealer(t), fixedPolicy{pol}, authn
	g, err := gateway.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Close(cctx); err != nil {
			t.Errorf("gateway.Close: %v", err)
		}
	})
	if err := g.Start(testContext(t)); err != nil {
		t.Fatal(err)
	}
	return g
}

// TestConfirmation: a call the policy wants confirmed runs only after the
// user says yes to exactly that call, on both protocol eras.
func TestConfirmation(t *testing.T) {
	ctx := testContext(t)
	var deletes atomic.Int64
	up := newServer("shop", nil)
	up.AddTool(&mcp.Tool{Name: "delete_order", InputSchema: json.RawMessage(`{"type":"object","properties":{"order_id":{"type":"string"}}}`)},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			deletes.Add(1)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "deleted"}}}, nil
		})
	u := startUpstream(t, up, false)
	g := startPolicyGateway(t, u.URL, confirmPolicy, gateway.Options{})
	endpoint := serveHTTP(t, g)

	for _, rev := range []string{revSessions, revStateless} {
		for _, tc := range []struct {
			name    string
			answer  *mcp.ElicitResult
			allowed bool
			denial  string
		}{
			{"yes", &mcp.ElicitResult{Action: "accept", Content: map[string]any{"confirm": true}}, true, ""},
			{"no", &mcp.ElicitResult{Action: "accept", Content: map[string]any{"confirm": false}}, false, "the user answered no"},
			{"declined", &mcp.ElicitResult{Action: "decline"}, false, "did not confirm the call (decline)"},
			{"dismissed", &mcp.ElicitResult{Action: "cancel"}, false, "did not confirm the call (cancel)"},
		} {
			t.Run(rev+"/"+tc.name, func(t *testing.T) {
				var asked atomic.Value
				cs := connectHTTP(t, endpoint, rev, &mcp.ClientOptions{
					ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
						asked.Store(req.Params.Message)
						return tc.answer, nil
					},
				})
				before := deletes.Load()
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "shop.delete_order", Arguments: map[string]any{"order_id": "12346"}})
				if err != nil {
					t.Fatalf("call: %v", err)
				}
				msg, _ := asked.Load().(string)
				if !strings.Contains(msg, "delete_order") || !strings.Contains(msg, `order_id="12346"`) || !strings.Contains(msg, "cannot be undone") {
					t.Errorf("the user was asked %q; want the tool, its arguments and the reason", msg)
				}
				ran := deletes.Load() - before
				if tc.allowed {
					if res.IsError || ran != 1 {
						t.Fatalf("confirmed call: isError=%v, upstream ran %d times, want 1", res.IsError, ran)
					}
					return
				}
				if !res.IsError || ran != 0 {
					t.Fatalf("unconfirmed call: isError=%v, upstream ran %d times, want refused", res.IsError, ran)
				}
				if txt := res.Content[0].(*mcp.TextContent).Text; !strings.Contains(txt, tc.denial) {
					t.Errorf("denial %q, want it to say %q", txt, tc.denial)
				}
			})
		}
	}

	// A confirmation is for one call: the sealed state of a confirmation
	// given for order 12346 does not let order 99999 through.
	t.Run(revStateless+"/other arguments", func(t *testing.T) {
		c := mcp.NewClient(&mcp.Implementation{Name: "raw", Version: "1"}, &mcp.ClientOptions{
			ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
				return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"confirm": true}}, nil
			},
			MultiRoundTrip: &mcp.MultiRoundTripOptions{Disabled: true},
		})
		cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint}, &mcp.ClientSessionOptions{ProtocolVersion: revStateless})
		if err != nil {
			t.Fatal(err)
		}
		defer cs.Close()
		first, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "shop.delete_order", Arguments: map[string]any{"order_id": "12346"}})
		if err != nil || len(first.InputRequests) != 1 || first.RequestState == "" {
			t.Fatalf("first round: %+v, %v; want one input request and sealed state", first, err)
		}
		var key string
		for k := range first.InputRequests {
			key = k
		}
		before := deletes.Load()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{
			Name: "shop.delete_order", Arguments: map[string]any{"order_id": "99999"},
			InputResponses: mcp.InputResponseMap{key: &mcp.ElicitResult{Action: "accept", Content: map[string]any{"confirm": true}}},
			RequestState:   first.RequestState,
		})
		if err != nil {
			t.Fatal(err)
		}
		if !res.IsError || deletes.Load() != before {
			t.Fatalf("a confirmation for other arguments let the call through: %+v", res)
		}
		if txt := res.Content[0].(*mcp.TextContent).Text; !strings.Contains(txt, "different call") {
			t.Errorf("denial %q, want it to say the confirmation was for a different call", txt)
		}
	})
}

// TestConfirmedCallWhoseUpstreamAsksToo: a sessionless client confirms a
// call, then its upstream asks a question of its own; the retry that
// answers it is not asked for the confirmation again, and the call ends.
func TestConfirmedCallWhoseUpstreamAsksToo(t *testing.T) {
	ctx := testContext(t)
	cu := &confirmingUpstream{}
	up := startUpstream(t, cu.server(), true)
	g := startPolicyGateway(t, up.URL, `
version: 1
roles:
  agent: {tools: ["shop.*"]}
rules:
  - {id: deploys-need-a-yes, tool: shop.deploy, effect: confirm, reason: deploys reach production}
`, gateway.Options{})
	var wardenAsked, upstreamAsked atomic.Int64
	cs := connectHTTP(t, serveHTTP(t, g), revStateless, &mcp.ClientOptions{
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			if req.Params.Message == "Deploy to production?" {
				upstreamAsked.Add(1)
				return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"ok": true}}, nil
			}
			wardenAsked.Add(1)
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"confirm": true}}, nil
		},
	})
	if got := callText(ctx, t, cs, "shop.deploy", nil); got != "deploy: accept" {
		t.Errorf("shop.deploy = %q, want the upstream's answer", got)
	}
	if w, u := wardenAsked.Load(), upstreamAsked.Load(); w != 1 || u != 1 {
		t.Errorf("asked %d confirmations and %d upstream questions, want one of each", w, u)
	}
}
