package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The request path. Every client request that could reach an upstream
// passes these stages in this order; a stage returns an error to stop the
// call, and only respond turns errors into what the client sees.
//
//	identify → route → decide → execute → filter → record
//
// Protocol plumbing that Warden answers itself (initialize, ping,
// notifications, logging level) skips the stages: it reaches no upstream.
func (g *Gateway) pipeline(stateless bool) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if answeredLocally[method] {
				return next(ctx, method, req)
			}
			if g.closing.Load() {
				return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "warden is shutting down"}
			}
			g.inflight.Add(1)
			defer g.inflight.Done()

			call := &Call{ID: newID(), Method: method, Stateless: stateless, Started: time.Now(), request: req}
			ctx = withCall(ctx, call)
			res, err := g.run(ctx, call, next)
			g.record(call, res, err)
			return g.respond(call, res, err)
		}
	}
}

// answeredLocally lists the methods Warden answers itself.
var answeredLocally = map[string]bool{
	"initialize":                       true,
	"notifications/initialized":        true,
	"ping":                             true,
	"server/discover":                  true,
	"logging/setLevel":                 true,
	"notifications/cancelled":          true,
	"notifications/progress":           true,
	"notifications/roots/list_changed": true,
	"subscriptions/listen":             true,
}

// run passes the call through the stages in order.
func (g *Gateway) run(ctx context.Context, call *Call, next mcp.MethodHandler) (mcp.Result, error) {
	for _, stage := range []func(context.Context, *Call) error{
		g.identify,
		g.route,
		g.decide,
	} {
		if err := stage(ctx, call); err != nil {
			return nil, err
		}
	}
	res, err := g.execute(ctx, call, next)
	if err != nil {
		return nil, err
	}
	return g.filter(ctx, call, res)
}

// identify establishes who is calling.
func (g *Gateway) identify(ctx context.Context, call *Call) error {
	if extra := call.request.GetExtra(); extra != nil && extra.Header != nil {
		call.Transport = "http"
		call.Principal = Principal{ID: "anonymous"}
		return nil
	}
	call.Transport = "stdio"
	call.Principal = g.principal
	return nil
}

// route finds the upstream that owns the tool, prompt or resource named.
func (g *Gateway) route(ctx context.Context, call *Call) error {
	cat := g.catalog.Load()
	switch p := call.request.GetParams().(type) {
	case *mcp.CallToolParamsRaw:
		call.Name = p.Name
		rt, ok := cat.tools[p.Name]
		if !ok {
			return &Denial{Rule: "unknown-tool", Reason: fmt.Sprintf("no tool named %q", truncate(p.Name, 80))}
		}
		call.tool = rt
		call.Upstream = rt.up.name
	case *mcp.GetPromptParams:
		call.Name = p.Name
		if pr, ok := cat.prompts[p.Name]; ok {
			call.Upstream = pr.up.name
		}
	case *mcp.ReadResourceParams:
		call.Name = p.URI
		if rr, ok := cat.resources[p.URI]; ok {
			call.Upstream = rr.up.name
		}
	}
	return nil
}

// decide applies the configured allow-lists: a tool is callable only when
// its upstream's allow_tools names it (or "*").
func (g *Gateway) decide(ctx context.Context, call *Call) error {
	if call.tool == nil {
		call.Decision = Decision{Effect: EffectAllow, Rule: "method"}
		return nil
	}
	if !call.tool.up.cfg.Allows(call.tool.upstream) {
		call.Decision = Decision{Effect: EffectDeny, Rule: "allow-list", Reason: fmt.Sprintf("tool %q is not in upstream %s's allow_tools", call.Name, call.tool.up.name)}
		return &Denial{Rule: call.Decision.Rule, Reason: call.Decision.Reason}
	}
	call.Decision = Decision{Effect: EffectAllow, Rule: "allow-list"}
	return nil
}

// execute hands the call to the protocol layer, whose handlers forward it
// to the upstream (forward.go).
func (g *Gateway) execute(ctx context.Context, call *Call, next mcp.MethodHandler) (mcp.Result, error) {
	return next(ctx, call.Method, call.request)
}

// filter removes from list results what the caller may not use.
func (g *Gateway) filter(ctx context.Context, call *Call, res mcp.Result) (mcp.Result, error) {
	if r, ok := res.(*mcp.ListToolsResult); ok {
		cat := g.catalog.Load()
		kept := r.Tools[:0]
		for _, t := range r.Tools {
			if rt, ok := cat.tools[t.Name]; ok && rt.up.cfg.Allows(rt.upstream) {
				kept = append(kept, t)
			}
		}
		r.Tools = kept
	}
	return res, nil
}

// record writes what happened to the log.
func (g *Gateway) record(call *Call, res mcp.Result, err error) {
	status := "ok"
	var d *Denial
	switch {
	case errors.As(err, &d):
		status = "denied"
	case err != nil:
		status = "error"
	case isToolError(res):
		status = "tool_error"
	}
	g.logger.Info("call",
		"id", call.ID, "method", call.Method, "name", call.Name, "upstream", call.Upstream,
		"principal", call.Principal.ID, "transport", call.Transport,
		"effect", call.Decision.Effect, "rule", call.Decision.Rule,
		"status", status, "latency_us", time.Since(call.Started).Microseconds(), "err", err)
}

func isToolError(res mcp.Result) bool {
	r, ok := res.(*mcp.CallToolResult)
	return ok && r.IsError
}

// CodeDenied is the JSON-RPC error code of a request that policy refused.
const CodeDenied = -32001

// respond turns the pipeline's outcome into what the client sees. A denied
// tool call is a tool error result the model can read; other denied
// requests are JSON-RPC errors. Internal causes never reach the client:
// it gets a safe message and the call id to quote.
func (g *Gateway) respond(call *Call, res mcp.Result, err error) (mcp.Result, error) {
	if err == nil {
		return res, nil
	}
	var d *Denial
	if errors.As(err, &d) {
		msg := fmt.Sprintf("denied by %s: %s (call %s)", d.Rule, d.Reason, call.ID)
		if call.Method == "tools/call" {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: msg}}}, nil
		}
		return nil, &jsonrpc.Error{Code: CodeDenied, Message: msg}
	}
	var werr *jsonrpc.Error
	if errors.As(err, &werr) {
		return nil, werr // an upstream's protocol error, relayed as it was
	}
	var uerr *UpstreamError
	if errors.As(err, &uerr) {
		msg := fmt.Sprintf("%s (call %s)", uerr.Message, call.ID)
		if call.Method == "tools/call" {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: msg}}}, nil
		}
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: msg}
	}
	return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: fmt.Sprintf("internal error (call %s)", call.ID)}
}

// Call is one client request on its way through the pipeline.
type Call struct {
	ID        string // quoted to the client in denials and errors
	Method    string
	Name      string // tool or prompt name, or resource URI
	Upstream  string
	Transport string // "http" or "stdio"
	Stateless bool   // a 2026-07-28 request without a session
	Principal Principal
	Decision  Decision
	Started   time.Time

	request mcp.Request
	tool    *toolRoute
}

// Principal is who is calling.
type Principal struct {
	ID        string
	Roles     []string
	Tenant    string
	Clearance string
}

// Effects of a decision.
const (
	EffectAllow = "allow"
	EffectDeny  = "deny"
)

// Decision is the outcome of the decide stage and the rule behind it.
type Decision struct {
	Effect string
	Rule   string
	Reason string
}

// Denial stops a call: the rule that refused it and a reason safe to show.
type Denial struct {
	Rule   string
	Reason string
}

func (d *Denial) Error() string { return "denied by " + d.Rule + ": " + d.Reason }

// UpstreamError is a failure to reach or hear from an upstream: Message is
// safe for the client, Cause is for the log.
type UpstreamError struct {
	Message string
	Cause   error
}

func (e *UpstreamError) Error() string { return e.Message + ": " + e.Cause.Error() }
func (e *UpstreamError) Unwrap() error { return e.Cause }

type callKey struct{}

func withCall(ctx context.Context, c *Call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

func callFrom(ctx context.Context) *Call {
	c, _ := ctx.Value(callKey{}).(*Call)
	return c
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
