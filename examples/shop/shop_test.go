package shop

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// connect returns a client session to a fresh shop over in-memory transports.
func connect(t *testing.T) *mcp.ClientSession {
	t.Helper()
	ctx := context.Background()
	st, ct := mcp.NewInMemoryTransports()
	ss, err := NewServer().Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close() })
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// call calls a tool and returns its text and whether it was a tool error.
func call(t *testing.T, cs *mcp.ClientSession, tool string, args any) (string, bool) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error: %v", tool, err)
	}
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n"), res.IsError
}

func TestToolsAndAnnotations(t *testing.T) {
	cs := connect(t)
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	type info struct {
		ReadOnly    bool
		Destructive bool
		Required    []string
	}
	got := map[string]info{}
	for _, tool := range res.Tools {
		var s struct {
			Type                 string   `json:"type"`
			Required             []string `json:"required"`
			AdditionalProperties *bool    `json:"additionalProperties"`
		}
		b, _ := json.Marshal(tool.InputSchema)
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("%s: schema: %v", tool.Name, err)
		}
		if s.Type != "object" || s.AdditionalProperties == nil || *s.AdditionalProperties {
			t.Errorf("%s: schema %s: want a closed object", tool.Name, b)
		}
		i := info{Required: s.Required}
		if a := tool.Annotations; a != nil {
			i.ReadOnly = a.ReadOnlyHint
			i.Destructive = a.DestructiveHint != nil && *a.DestructiveHint
		}
		got[tool.Name] = i
	}
	want := map[string]info{
		"get_order":    {ReadOnly: true, Required: []string{"order_id"}},
		"list_orders":  {ReadOnly: true, Required: []string{"customer_id"}},
		"get_customer": {ReadOnly: true, Required: []string{"customer_id"}},
		"refund_order": {Required: []string{"order_id", "amount", "reason"}},
		"delete_order": {Destructive: true, Required: []string{"order_id"}},
		"send_email":   {Required: []string{"to", "subject", "body"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
}

func TestReads(t *testing.T) {
	cs := connect(t)
	for _, tc := range []struct {
		tool string
		args any
		want string
	}{
		{"get_order", map[string]any{"order_id": "12345"}, "order 12345: mechanical keyboard, 129.90, delivered"},
		{"list_orders", map[string]any{"customer_id": "c-1001"}, "2 orders for c-1001: 12345, 12346"},
		{"list_orders", map[string]any{"customer_id": "c-1003"}, "1 orders for c-1003: 12348"},
		{"get_customer", map[string]any{"customer_id": "c-1002"}, "customer c-1002: Grace Hopper, grace@example.com, +1 202 555 0143"},
	} {
		got, isErr := call(t, cs, tc.tool, tc.args)
		if isErr || got != tc.want {
			t.Errorf("%s %v = %q (error %v), want %q", tc.tool, tc.args, got, isErr, tc.want)
		}
	}
	for _, tc := range []struct {
		tool string
		args any
	}{
		{"get_order", map[string]any{"order_id": "99999"}},
		{"get_customer", map[string]any{"customer_id": "c-9999"}},
		{"list_orders", map[string]any{"customer_id": "c-9999"}},
	} {
		if got, isErr := call(t, cs, tc.tool, tc.args); !isErr || !strings.Contains(got, "not found") {
			t.Errorf("%s %v = %q (error %v), want a not-found tool error", tc.tool, tc.args, got, isErr)
		}
	}
}

func TestGetOrderStructuredOutput(t *testing.T) {
	cs := connect(t)
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "get_order", Arguments: map[string]any{"order_id": "12347"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res.StructuredContent)
	var o Order
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	want := Order{ID: "12347", CustomerID: "c-1002", Item: "noise-cancelling headphones", Amount: 29900, Status: "delivered"}
	if o != want {
		t.Errorf("structured output %+v, want %+v", o, want)
	}
}

func TestRefunds(t *testing.T) {
	cs := connect(t)
	refund := func(amount any) map[string]any {
		return map[string]any{"order_id": "12346", "amount": amount, "reason": "arrived damaged"}
	}
	if got, isErr := call(t, cs, "refund_order", refund(1500)); isErr || got != "refunded 15.00 on order 12346 (refund r-1); 15.00 of 45.50 refunded so far" {
		t.Fatalf("first refund = %q (error %v)", got, isErr)
	}
	if got, isErr := call(t, cs, "refund_order", refund(3051)); !isErr || !strings.Contains(got, "has 30.50 left to refund, asked for 30.51") {
		t.Errorf("refund beyond what was paid = %q (error %v), want refused", got, isErr)
	}
	if got, isErr := call(t, cs, "refund_order", refund(3050)); isErr || !strings.Contains(got, "45.50 of 45.50 refunded") {
		t.Errorf("refund of the rest = %q (error %v)", got, isErr)
	}
	if got, _ := call(t, cs, "get_order", map[string]any{"order_id": "12346"}); !strings.HasSuffix(got, "refunded") {
		t.Errorf("order after full refund = %q, want status refunded", got)
	}
}

func TestSchemaRefusesBadArguments(t *testing.T) {
	cs := connect(t)
	for name, args := range map[string]map[string]any{
		"amount as a string":  {"order_id": "12345", "amount": "1500", "reason": "damaged"},
		"fractional cents":    {"order_id": "12345", "amount": 15.5, "reason": "damaged"},
		"zero amount":         {"order_id": "12345", "amount": 0, "reason": "damaged"},
		"missing reason":      {"order_id": "12345", "amount": 1500},
		"unknown argument":    {"order_id": "12345", "amount": 1500, "reason": "damaged", "notify": true},
		"malformed order id":  {"order_id": "12345; DROP", "amount": 1500, "reason": "damaged"},
		"empty reason string": {"order_id": "12345", "amount": 1500, "reason": ""},
	} {
		if got, isErr := call(t, cs, "refund_order", args); !isErr || !strings.Contains(got, "validating") {
			t.Errorf("%s: got %q (error %v), want a validation error", name, got, isErr)
		}
	}
	if got, _ := call(t, cs, "get_order", map[string]any{"order_id": "12345"}); !strings.Contains(got, "delivered") {
		t.Errorf("order changed by refused refunds: %q", got)
	}
}

func TestDeleteAndEmail(t *testing.T) {
	cs := connect(t)
	if got, isErr := call(t, cs, "delete_order", map[string]any{"order_id": "12348"}); isErr || got != "deleted order 12348" {
		t.Fatalf("delete = %q (error %v)", got, isErr)
	}
	if _, isErr := call(t, cs, "get_order", map[string]any{"order_id": "12348"}); !isErr {
		t.Error("deleted order still found")
	}
	if _, isErr := call(t, cs, "delete_order", map[string]any{"order_id": "12348"}); !isErr {
		t.Error("second delete succeeded")
	}
	args := map[string]any{"to": "ada@example.com", "subject": "Your refund", "body": "Done."}
	if got, isErr := call(t, cs, "send_email", args); isErr || got != "email to ada@example.com queued" {
		t.Errorf("send_email = %q (error %v)", got, isErr)
	}
	args["to"] = "not an address"
	if _, isErr := call(t, cs, "send_email", args); !isErr {
		t.Error("send_email accepted a malformed address")
	}
}

func TestServersDoNotShareData(t *testing.T) {
	a, b := connect(t), connect(t)
	if _, isErr := call(t, a, "delete_order", map[string]any{"order_id": "12345"}); isErr {
		t.Fatal("delete failed")
	}
	if got, isErr := call(t, b, "get_order", map[string]any{"order_id": "12345"}); isErr {
		t.Errorf("another server's data changed: %q", got)
	}
}

func TestMoney(t *testing.T) {
	for cents, want := range map[int64]string{0: "0.00", 5: "0.05", 1500: "15.00", 10000: "100.00", 12990: "129.90", -250: "-2.50"} {
		if got := Money(cents); got != want {
			t.Errorf("Money(%d) = %q, want %q", cents, got, want)
		}
	}
}
