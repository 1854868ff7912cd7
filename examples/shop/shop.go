// Package shop is a small example MCP server: a web shop with customers,
// orders and refunds held in memory, and tools an agent could use to serve
// customers (read orders, refund, delete, email).
//
// It is the upstream Warden is shown in front of (README.md, `warden demo`):
// the server itself trusts every call it gets, as most MCP servers do; the
// policy beside it (policy.yaml) is what limits the agent.
package shop

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Version is the shop server's implementation version.
const Version = "1.0.0"

// NewServer returns the shop's MCP server with fresh sample data. Every
// session of the returned server shares that data.
func NewServer() *mcp.Server {
	s := newStore()
	srv := mcp.NewServer(&mcp.Implementation{Name: "shop", Title: "Example shop", Version: Version}, nil)

	mcp.AddTool(srv, &mcp.Tool{
		Name:        "get_order",
		Description: "Look up an order by id.",
		InputSchema: schema(orderIDProp, "order_id"),
		Annotations: readOnly(),
	}, s.getOrder)
	mcp.AddTool(srv, &mcp.Tool{
		Name:        "list_orders",
		Description: "List a customer's orders.",
		InputSchema: schema(customerIDProp, "customer_id"),
		Annotations: readOnly(),
	}, s.listOrders)
	mcp.AddTool(srv, &mcp.Tool{
		Name:        "get_customer",
		Description: "Look up a customer's name, email and phone number.",
		InputSchema: schema(customerIDProp, "customer_id"),
		Annotations: readOnly(),
	}, s.getCustomer)
	mcp.AddTool(srv, &mcp.Tool{
		Name:        "refund_order",
		Description: "Refund part or all of an order. The amount is in cents: 1500 is 15.00.",
		InputSchema: schema(orderIDProp+`,
			"amount": {"type": "integer", "minimum": 1, "description": "amount to refund, in cents"},
			"reason": {"type": "string", "minLength": 1, "maxLength": 500, "description": "why the customer is refunded"}`,
			"order_id", "amount", "reason"),
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(false)},
	}, s.refundOrder)
	mcp.AddTool(srv, &mcp.Tool{
		Name:        "delete_order",
		Description: "Delete an order and its history. This cannot be undone.",
		InputSchema: schema(orderIDProp, "order_id"),
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true)},
	}, s.deleteOrderTool)
	mcp.AddTool(srv, &mcp.Tool{
		Name:        "send_email",
		Description: "Send an email from the shop's address.",
		InputSchema: schema(`
			"to": {"type": "string", "minLength": 3, "maxLength": 254, "pattern": "^[^@\\s]+@[^@\\s]+$"},
			"subject": {"type": "string", "maxLength": 200},
			"body": {"type": "string", "maxLength": 10000}`,
			"to", "subject", "body"),
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(false), OpenWorldHint: ptr(true)},
	}, s.sendEmail)
	return srv
}

// Schema fragments shared by several tools.
const (
	orderIDProp    = `"order_id": {"type": "string", "pattern": "^[0-9]{5}$", "description": "order id, five digits"}`
	customerIDProp = `"customer_id": {"type": "string", "pattern": "^c-[0-9]{4}$", "description": "customer id, like c-1001"}`
)

// schema builds an object schema from property definitions (JSON object
// members) and the required names. Unknown arguments are refused.
func schema(props string, required ...string) json.RawMessage {
	req, _ := json.Marshal(required)
	return json.RawMessage(`{"type": "object", "properties": {` + props + `}, "required": ` + string(req) + `, "additionalProperties": false}`)
}

func readOnly() *mcp.ToolAnnotations { return &mcp.ToolAnnotations{ReadOnlyHint: true} }

func ptr[T any](v T) *T { return &v }

// text is a tool result with one line for people (and models) to read; the
// structured output travels beside it.
func text(format string, args ...any) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf(format, args...)}}}
}

type orderIDArgs struct {
	OrderID string `json:"order_id"`
}

type customerIDArgs struct {
	CustomerID string `json:"customer_id"`
}

type refundArgs struct {
	OrderID string `json:"order_id"`
	Amount  int64  `json:"amount"`
	Reason  string `json:"reason"`
}

type emailArgs struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

// OrderList is list_orders' output.
type OrderList struct {
	Orders []Order `json:"orders"`
}

// RefundResult is refund_order's output: the refund and the order after it.
type RefundResult struct {
	Refund Refund `json:"refund"`
	Order  Order  `json:"order"`
}

// SendResult is send_email's output.
type SendResult struct {
	Queued int `json:"queued"` // messages in the outbox
}

func (s *store) getOrder(_ context.Context, _ *mcp.CallToolRequest, in orderIDArgs) (*mcp.CallToolResult, Order, error) {
	o, err := s.order(in.OrderID)
	if err != nil {
		return nil, Order{}, err
	}
	return text("order %s: %s, %s, %s", o.ID, o.Item, Money(o.Amount), o.Status), o, nil
}

func (s *store) listOrders(_ context.Context, _ *mcp.CallToolRequest, in customerIDArgs) (*mcp.CallToolResult, OrderList, error) {
	orders, err := s.ordersOf(in.CustomerID)
	if err != nil {
		return nil, OrderList{}, err
	}
	ids := make([]string, len(orders))
	for i, o := range orders {
		ids[i] = o.ID
	}
	return text("%d orders for %s: %s", len(orders), in.CustomerID, strings.Join(ids, ", ")), OrderList{Orders: orders}, nil
}

func (s *store) getCustomer(_ context.Context, _ *mcp.CallToolRequest, in customerIDArgs) (*mcp.CallToolResult, Customer, error) {
	c, err := s.customer(in.CustomerID)
	if err != nil {
		return nil, Customer{}, err
	}
	return text("customer %s: %s, %s, %s", c.ID, c.Name, c.Email, c.Phone), c, nil
}

func (s *store) refundOrder(_ context.Context, _ *mcp.CallToolRequest, in refundArgs) (*mcp.CallToolResult, RefundResult, error) {
	r, o, err := s.refund(in.OrderID, in.Amount, in.Reason)
	if err != nil {
		return nil, RefundResult{}, err
	}
	return text("refunded %s on order %s (refund %s); %s of %s refunded so far",
		Money(r.Amount), o.ID, r.ID, Money(o.Refunded), Money(o.Amount)), RefundResult{Refund: r, Order: o}, nil
}

func (s *store) deleteOrderTool(_ context.Context, _ *mcp.CallToolRequest, in orderIDArgs) (*mcp.CallToolResult, Order, error) {
	o, err := s.deleteOrder(in.OrderID)
	if err != nil {
		return nil, Order{}, err
	}
	return text("deleted order %s", o.ID), o, nil
}

func (s *store) sendEmail(_ context.Context, _ *mcp.CallToolRequest, in emailArgs) (*mcp.CallToolResult, SendResult, error) {
	n := s.send(Email(in))
	return text("email to %s queued", in.To), SendResult{Queued: n}, nil
}
