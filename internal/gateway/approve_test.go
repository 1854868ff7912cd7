package gateway_test

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/approval"
	"github.com/wardenmcp/warden/internal/gateway"
)

const approvePolicy = `
version: 1
roles:
  agent: {tools: ["shop.*"]}
rules:
  - id: large-refunds-need-a-lead
    tool: shop.refund
    when: args.amount > 100
    effect: approve
    approvers: ["role:lead"]
    reason: refunds over 100 need a lead
  - id: shop
    tool: "shop.*"
    effect: allow
`

// TestApprovals: a call the policy escalates runs only with an approval for
// exactly that call, once: granted while it waits, or granted after it was
// answered "pending" and then retried; never for other arguments, never
// twice, never after a denial.
func TestApprovals(t *testing.T) {
	for _, rev := range []string{revSessions, revStateless} {
		t.Run(rev, func(t *testing.T) { testApprovals(t, rev) })
	}
}

func testApprovals(t *testing.T, rev string) {
	ctx := testContext(t)
	var refunds atomic.Int64
	up := newServer("shop", nil)
	up.AddTool(&mcp.Tool{Name: "refund", InputSchema: json.RawMessage(`{"type":"object","properties":{"amount":{"type":"integer"}}}`)},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			refunds.Add(1)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "refunded"}}}, nil
		})
	u := startUpstream(t, up, false)
	broker, err := approval.NewBroker(approval.NewMemoryStore(), approval.BrokerOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	g := startPolicyGateway(t, u.URL, approvePolicy, gateway.Options{Approvals: broker, ApprovalHold: 300 * time.Millisecond})
	cs := connectHTTP(t, serveHTTP(t, g), rev, nil)
	refund := func(amount int) string {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "shop.refund", Arguments: map[string]any{"amount": amount}})
		if err != nil {
			t.Fatalf("call: %v", err)
		}
		return res.Content[0].(*mcp.TextContent).Text
	}
	pendingID := regexp.MustCompile(`pending approval (\S+):`)

	// Answered "pending" when nobody decides within the hold.
	txt := refund(500)
	m := pendingID.FindStringSubmatch(txt)
	if m == nil || refunds.Load() != 0 {
		t.Fatalf("escalated call answered %q (upstream ran %d), want pending approval <id>", txt, refunds.Load())
	}
	id := m[1]
	// A retry while pending reuses the same request.
	if m2 := pendingID.FindStringSubmatch(refund(500)); m2 == nil || m2[1] != id {
		t.Fatalf("a retry opened another request: %v, want %s", m2, id)
	}
	// Approved: the retry of exactly that call proceeds, once.
	if _, err := broker.Decide(ctx, id, true, "lead-1", "ok"); err != nil {
		t.Fatal(err)
	}
	if txt := refund(600); !strings.Contains(txt, "pending approval") || refunds.Load() != 0 {
		t.Fatalf("an approval for 500 let 600 through: %q", txt)
	}
	if txt := refund(500); txt != "refunded" || refunds.Load() != 1 {
		t.Fatalf("approved retry: %q (upstream ran %d), want it to run once", txt, refunds.Load())
	}
	if txt := refund(500); !strings.Contains(txt, "pending approval") || refunds.Load() != 1 {
		t.Fatalf("an approval was used twice: %q", txt)
	}

	// Approved while the call waits: the held call proceeds.
	done := make(chan string, 1)
	go func() {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "shop.refund", Arguments: map[string]any{"amount": 700}})
		if err != nil {
			done <- err.Error()
			return
		}
		done <- res.Content[0].(*mcp.TextContent).Text
	}()
	var waiting approval.Request
	deadline := time.Now().Add(5 * time.Second)
	for waiting.ID == "" && time.Now().Before(deadline) {
		list, err := broker.List(ctx, approval.Filter{State: approval.StatePending})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list {
			if strings.Contains(string(r.Args), "700") {
				waiting = r
			}
		}
	}
	if waiting.ID == "" {
		t.Fatal("the held call made no approval request")
	}
	if _, err := broker.Decide(ctx, waiting.ID, true, "lead-1", ""); err != nil {
		t.Fatal(err)
	}
	if txt := <-done; txt != "refunded" && !strings.Contains(txt, "pending approval") {
		t.Fatalf("held call after approval: %q", txt)
	}

	// Denied: the retry is refused and says so.
	m = pendingID.FindStringSubmatch(refund(900))
	if m == nil {
		t.Fatal("no pending request for 900")
	}
	if _, err := broker.Decide(ctx, m[1], false, "lead-1", "too much"); err != nil {
		t.Fatal(err)
	}
	before := refunds.Load()
	if txt := refund(900); refunds.Load() != before || txt == "refunded" {
		t.Fatalf("a denied call ran: %q", txt)
	}
}
