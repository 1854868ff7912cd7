package gateway_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// upstreamState is the requestState the confirming upstream issues; a
// client must never see it.
const upstreamState = "upstream-state-42"

// confirmingUpstream counts the calls of a "deploy" tool that asks for a
// confirmation (an input-required result) before it answers.
type confirmingUpstream struct {
	calls  atomic.Int64
	mu     sync.Mutex
	states []string // requestState of each call, as the upstream received it
}

func (c *confirmingUpstream) server() *mcp.Server {
	s := newServer("confirming", nil)
	mcp.AddTool(s, &mcp.Tool{Name: "deploy", Description: "deploys after a confirmation"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			c.calls.Add(1)
			c.mu.Lock()
			c.states = append(c.states, req.Params.RequestState)
			c.mu.Unlock()
			if len(req.Params.InputResponses) == 0 {
				return &mcp.CallToolResult{
					InputRequests: mcp.InputRequestMap{"confirm": &mcp.ElicitParams{
						Message: "Deploy to production?",
						RequestedSchema: map[string]any{
							"type":       "object",
							"properties": map[string]any{"ok": map[string]any{"type": "boolean"}},
						},
					}},
					RequestState: upstreamState,
				}, nil, nil
			}
			if req.Params.RequestState != upstreamState {
				return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "wrong requestState " + req.Params.RequestState}}}, nil, nil
			}
			er, ok := req.Params.InputResponses["confirm"].(*mcp.ElicitResult)
			if !ok {
				return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "no confirmation"}}}, nil, nil
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "deploy: " + er.Action}}}, nil, nil
		})
	return s
}

// accepting is an elicitation handler that accepts and counts its calls.
func accepting(n *atomic.Int64) func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
	return func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
		n.Add(1)
		if req.Params.Message != "Deploy to production?" {
			return &mcp.ElicitResult{Action: "decline"}, nil
		}
		return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"ok": true}}, nil
	}
}

// TestMultiRoundTripAcrossRevisions relays an upstream's input-required
// result to clients of both eras: an old client is asked by elicitation, a
// new one gets the result with Warden's own sealed requestState.
func TestMultiRoundTripAcrossRevisions(t *testing.T) {
	cu := &confirmingUpstream{}
	up := startUpstream(t, cu.server(), true)
	g := startGateway(t, "upstreams:\n"+httpUpstreamYAML("ops", up.URL, []string{"*"}))
	endpoint := serveHTTP(t, g)

	t.Run("elicitation for "+revSessions, func(t *testing.T) {
		ctx := testContext(t)
		var asked atomic.Int64
		cs := connectHTTP(t, endpoint, revSessions, &mcp.ClientOptions{ElicitationHandler: accepting(&asked)})
		if got := callText(ctx, t, cs, "ops.deploy", nil); got != "deploy: accept" {
			t.Errorf("ops.deploy = %q, want the upstream's answer to an accepted confirmation", got)
		}
		if n := asked.Load(); n != 1 {
			t.Errorf("elicitation handler called %d times, want 1", n)
		}
	})

	t.Run("automatic retry on "+revStateless, func(t *testing.T) {
		ctx := testContext(t)
		var asked atomic.Int64
		cs := connectHTTP(t, endpoint, revStateless, &mcp.ClientOptions{ElicitationHandler: accepting(&asked)})
		if got := callText(ctx, t, cs, "ops.deploy", nil); got != "deploy: accept" {
			t.Errorf("ops.deploy = %q, want the upstream's answer to an accepted confirmation", got)
		}
		if n := asked.Load(); n != 1 {
			t.Errorf("elicitation handler called %d times, want 1", n)
		}
	})

	t.Run("manual retry on "+revStateless, func(t *testing.T) {
		ctx := testContext(t)
		var asked atomic.Int64
		cs := connectHTTP(t, endpoint, revStateless, &mcp.ClientOptions{
			ElicitationHandler: accepting(&asked),
			MultiRoundTrip:     &mcp.MultiRoundTripOptions{Disabled: true},
		})
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "ops.deploy"})
		if err != nil {
			t.Fatalf("first round: %v", err)
		}
		if !res.NeedsInput() {
			t.Fatalf("first round: want an input-required result, got %+v", res)
		}
		ep, ok := res.InputRequests["confirm"].(*mcp.ElicitParams)
		if len(res.InputRequests) != 1 || !ok || ep.Message != "Deploy to production?" {
			t.Fatalf("input requests %+v, want the upstream's confirmation", res.InputRequests)
		}
		sealed := res.RequestState
		if !strings.HasPrefix(sealed, "v4.local.") || strings.Contains(sealed, upstreamState) {
			t.Fatalf("requestState %q: want Warden's sealed token (PASETO v4.local), not the upstream's %q", sealed, upstreamState)
		}
		answer := mcp.InputResponseMap{"confirm": &mcp.ElicitResult{Action: "accept", Content: map[string]any{"ok": true}}}

		callsBefore := cu.calls.Load()
		for name, state := range map[string]string{
			"tampered": flipChar(sealed, len(sealed)/2),
			"foreign":  "v4.local.not-a-token",
			"upstream": upstreamState,
		} {
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "ops.deploy", InputResponses: answer, RequestState: state})
			if err == nil {
				t.Errorf("retry with %s requestState succeeded: %+v", name, res)
			} else if !strings.Contains(err.Error(), "requestState") {
				t.Errorf("retry with %s requestState: error %q does not name requestState", name, err)
			}
		}
		if n := cu.calls.Load(); n != callsBefore {
			t.Errorf("upstream received %d calls with refused requestState, want 0", n-callsBefore)
		}

		res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "ops.deploy", InputResponses: answer, RequestState: sealed})
		if err != nil {
			t.Fatalf("retry with Warden's requestState: %v", err)
		}
		if res.NeedsInput() || res.IsError || text(t, res) != "deploy: accept" {
			t.Errorf("retry with Warden's requestState = %+v, want the upstream's answer", res)
		}
		if n := asked.Load(); n != 0 {
			t.Errorf("elicitation handler called %d times with multi round-trip disabled", n)
		}
		// What reached the upstream on the retry was its own state.
		cu.mu.Lock()
		last := cu.states[len(cu.states)-1]
		cu.mu.Unlock()
		if last != upstreamState {
			t.Errorf("upstream received requestState %q on the retry, want its own %q", last, upstreamState)
		}
	})
}

// flipChar replaces the character at i with a different one of the same
// alphabet (base64url), so the token stays well-formed but altered.
func flipChar(s string, i int) string {
	b := []byte(s)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}
