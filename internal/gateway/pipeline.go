package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/argschema"
	"github.com/wardenmcp/warden/internal/audit"
	"github.com/wardenmcp/warden/internal/policy"
)

// The request path. Every client request that could reach an upstream
// passes these stages in this order; a stage returns an error to stop the
// call, and only respond turns errors into what the client sees.
//
//	identify → route → task → validate → decide → [record decision] → execute → filter → label task → record outcome
//
// Protocol plumbing that Warden answers itself (initialize, ping,
// notifications, logging level) skips the stages: it reaches no upstream.
func (g *Gateway) pipeline(stateless bool) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if answeredLocally[method] {
				return next(ctx, method, req)
			}
			return g.serve(ctx, method, req, stateless, next)
		}
	}
}

// serve passes one client request through the stages, records its
// outcome and turns it into the answer; next executes it. The protocol
// library's server calls it for every request, and the HTTP front's fast
// path for the calls it serves itself (fastcall.go).
func (g *Gateway) serve(ctx context.Context, method string, req mcp.Request, stateless bool, next mcp.MethodHandler) (mcp.Result, error) {
	if !g.enter() {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "warden is shutting down"}
	}
	defer g.inflight.Done()

	call := &Call{ID: newID(), Method: method, Stateless: stateless, Started: time.Now(), request: req, pol: g.currentPolicy()}
	ctx = withCall(ctx, call)
	res, err := g.run(ctx, call, next)
	g.recordOutcome(ctx, call, res, err)
	res, err = g.respond(call, res, err)
	if r, ok := res.(*mcp.CallToolResult); ok && r != nil && stateless {
		res = withResultType(r)
	}
	return res, err
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
		g.task,
		g.validate,
		g.decide,
		g.recordDecision,
	} {
		if err := stage(ctx, call); err != nil {
			return nil, err
		}
	}
	res, err := g.execute(ctx, call, next)
	if err != nil {
		var werr *jsonrpc.Error
		if errors.As(err, &werr) {
			return g.maskUpstreamError(ctx, call, werr)
		}
		return nil, err
	}
	if res, err = g.filter(ctx, call, res); err != nil {
		return nil, err
	}
	return res, g.labelTask(ctx, call)
}

// identify establishes who is calling: the principal the HTTP front
// authenticated, or the configured principal of a stdio client.
func (g *Gateway) identify(ctx context.Context, call *Call) error {
	if extra := call.request.GetExtra(); extra != nil && extra.Header != nil {
		call.Transport = "http"
		p, ok := g.principals.lookup(extra.Header.Get(principalHeader))
		if !ok {
			return &Denial{Rule: "identity", Reason: "the caller is not authenticated"}
		}
		call.Principal = p
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
		g.routeResource(call, p.URI)
	case *mcp.SubscribeParams:
		g.routeResource(call, p.URI)
	case *mcp.UnsubscribeParams:
		g.routeResource(call, p.URI)
	}
	return nil
}

// routeResource names the resource a call is about, so that resource rules
// and the audit log see it, and the upstream that offers it.
func (g *Gateway) routeResource(call *Call, uri string) {
	call.Name = uri
	if up := g.resourceOwner(uri); up != nil {
		call.Upstream = up.name
	}
}

// validate checks a tool call's arguments before any rule sees them:
// strictly decoded (no duplicate keys, exact numbers, bounded depth), then
// held to the upstream's input schema and the policy's stricter overlay.
// The re-encoded value is what is forwarded, never the client's bytes.
func (g *Gateway) validate(ctx context.Context, call *Call) error {
	if call.tool == nil {
		return nil
	}
	p := call.request.GetParams().(*mcp.CallToolParamsRaw)
	raw := []byte(p.Arguments)
	if len(raw) == 0 || string(raw) == "null" {
		raw = []byte("{}")
	}
	v, err := argschema.DecodeStrict(raw, g.cfg.Limits.MaxDepth)
	if err != nil {
		return &Denial{Rule: policy.RuleInput, Reason: "arguments: " + err.Error()}
	}
	if _, ok := v.(map[string]any); !ok {
		return &Denial{Rule: policy.RuleInput, Reason: "arguments must be a JSON object"}
	}
	// The audit log keeps the arguments as the caller sent them: with
	// tokens, not the values they stand for.
	if b, err := json.Marshal(redactSecrets(v)); err == nil {
		call.auditArgs = b
	}
	if v, err = g.detokenize(ctx, call, v); err != nil {
		return err
	}
	if call.tool.schemaErr != nil {
		return &Denial{Rule: policy.RuleInput, Reason: "the tool's input schema is not usable, so it cannot be called",
			cause: call.tool.schemaErr}
	}
	if err := call.tool.schema.Validate(v); err != nil {
		return &Denial{Rule: policy.RuleInput, Reason: "arguments: " + err.Error()}
	}
	if call.pol != nil {
		if err := call.pol.CheckArgs(call.Name, v); err != nil {
			return &Denial{Rule: policy.RuleInput, Reason: "arguments: " + err.Error()}
		}
	}
	enc, err := argschema.Encode(v)
	if err != nil {
		return &Denial{Rule: policy.RuleInput, Reason: "arguments cannot be re-encoded", cause: err}
	}
	call.args, call.argsJSON = v, enc
	p.Arguments = enc
	return nil
}

// decide asks the policy. The upstream's allow_tools list is checked first:
// it bounds what any policy can allow.
func (g *Gateway) decide(ctx context.Context, call *Call) error {
	if call.tool != nil && !call.tool.up.cfg.Allows(call.tool.upstream) {
		call.Decision = Decision{Effect: EffectDeny, Rules: []string{"allow-list"},
			Reason: fmt.Sprintf("tool %q is not in upstream %s's allow_tools", call.Name, call.tool.up.name)}
		return call.Decision.denial()
	}
	pol := call.pol
	if pol == nil {
		call.Decision = Decision{Effect: EffectAllow, Rules: []string{"allow-list"}}
		return nil
	}
	if listMethods[call.Method] {
		// Listing is not decided but filtered: the caller sees only what
		// it may possibly use (filter).
		call.Decision = Decision{Effect: EffectAllow, Rules: []string{"list-filtered"}, PolicyVersion: pol.Version()}
		return nil
	}
	call.input = g.policyInput(call)
	d := pol.Decide(call.input)
	call.Decision = Decision{
		Effect: d.Effect.String(), Rules: d.Rules, Reason: d.Reason, PolicyVersion: d.PolicyVersion,
		Shadowed: d.Shadowed, err: d.Err,
	}
	if d.Shadowed {
		call.Decision.Reason = fmt.Sprintf("shadow mode: would be %s by %s: %s", d.WouldBe, strings.Join(d.ShadowRules, ","), d.ShadowReason)
	}
	switch d.Effect {
	case policy.Allow:
		return nil
	case policy.Confirm, policy.Approve:
		if g.passedGate(call) {
			call.Decision.Reason = "confirmed or approved earlier in this multi-round call: " + d.Reason
			return nil
		}
	}
	switch d.Effect {
	case policy.Confirm:
		if err := g.confirm(ctx, call, d.Reason); err != nil {
			return err
		}
		call.Decision.Reason = "confirmed by the user: " + d.Reason
		call.gated = g.confirmDigest(call)
		return nil
	case policy.Approve:
		if err := g.escalate(ctx, call, d.Reason, d.Approvers); err != nil {
			return err
		}
		call.gated = g.confirmDigest(call)
		return nil
	}
	return call.Decision.denial()
}

// passedGate reports whether a sessionless call's retry carries the
// requestState Warden gave this very call (same caller, task, tool, policy
// version and arguments) after it passed its confirm or approve gate: the
// retry answers the upstream's question, and the gate is not asked again.
// It records the gate so that later rounds carry it too.
func (g *Gateway) passedGate(call *Call) bool {
	p, ok := call.request.GetParams().(*mcp.CallToolParamsRaw)
	if !ok || !call.Stateless || p.RequestState == "" {
		return false
	}
	var st requestState
	if g.sealer.OpenJSON(statePurpose, p.RequestState, &st) != nil || st.Gated == "" || st.Gated != g.confirmDigest(call) {
		return false
	}
	call.gated = st.Gated
	return true
}

// listMethods are answered from the catalog and filtered by policy.
var listMethods = map[string]bool{
	"tools/list":               true,
	"prompts/list":             true,
	"resources/list":           true,
	"resources/templates/list": true,
}

func (g *Gateway) currentPolicy() *policy.Policy {
	if g.policy == nil {
		return nil
	}
	return g.policy.Policy()
}

// policyInput describes the call in the policy's terms.
func (g *Gateway) policyInput(call *Call) *policy.Input {
	in := &policy.Input{
		Method:    call.Method,
		Principal: call.Principal.policy(),
		Args:      call.args,
		Request:   policy.Request{Time: call.Started, Transport: call.Transport},
	}
	if call.Task != nil {
		in.Task = *call.Task
	}
	switch call.Method {
	case "tools/call":
		in.Tool = call.Name
		in.ToolInfo = policy.ToolInfo{Name: call.Name, Server: call.Upstream}
		if e, ok := g.cfg.Catalog[call.Name]; ok {
			in.ToolInfo.Risk, in.ToolInfo.Labels = e.Risk, e.Labels
		}
		in.ToolInfo.Annotations = call.tool.annotations
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		in.Resource = call.Name
	case "prompts/get":
		in.Prompt = call.Name
		if p, ok := call.request.GetParams().(*mcp.GetPromptParams); ok {
			args := make(map[string]any, len(p.Arguments))
			for k, v := range p.Arguments {
				args[k] = v
			}
			in.Args = args
		}
	}
	return in
}

func annotationMap(a *mcp.ToolAnnotations) map[string]any {
	b, err := json.Marshal(a)
	if err != nil {
		return nil
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// recordDecision writes the decision to the audit log before anything is
// forwarded. If it cannot be written, the call does not proceed.
func (g *Gateway) recordDecision(ctx context.Context, call *Call) error {
	if g.audit == nil {
		return nil
	}
	rec := g.auditRecord(call, audit.KindDecision)
	rec.Status = "allowed"
	if _, err := g.audit.Append(ctx, rec); err != nil {
		return &Denial{Rule: "audit", Reason: "the audit log cannot record this call, so it is refused", cause: err}
	}
	call.recorded = true
	return nil
}

// execute hands the call to the protocol layer, whose handlers forward it
// to the upstream (forward.go).
func (g *Gateway) execute(ctx context.Context, call *Call, next mcp.MethodHandler) (mcp.Result, error) {
	start := time.Now()
	defer func() { call.UpstreamLatency = time.Since(start) }()
	return next(ctx, call.Method, call.request)
}

// filter removes from list results what the caller may not use and masks
// tool, resource and prompt results by the caller's clearance (mask.go).
func (g *Gateway) filter(ctx context.Context, call *Call, res mcp.Result) (mcp.Result, error) {
	pol := call.pol
	principal := call.Principal.policy()
	visible := func(kind policy.Kind, name string) bool { return pol == nil || pol.Visible(principal, kind, name) }
	cat := g.catalog.Load()
	switch r := res.(type) {
	case *mcp.ListToolsResult:
		kept := r.Tools[:0]
		for _, t := range r.Tools {
			if rt, ok := cat.tools[t.Name]; ok && rt.up.cfg.Allows(rt.upstream) && visible(policy.KindTool, t.Name) {
				kept = append(kept, t)
			}
		}
		r.Tools = kept
	case *mcp.ListPromptsResult:
		kept := r.Prompts[:0]
		for _, p := range r.Prompts {
			if visible(policy.KindPrompt, p.Name) {
				kept = append(kept, p)
			}
		}
		r.Prompts = kept
	case *mcp.ListResourcesResult:
		kept := r.Resources[:0]
		for _, rs := range r.Resources {
			if visible(policy.KindResource, rs.URI) {
				kept = append(kept, rs)
			}
		}
		r.Resources = kept
	case *mcp.CallToolResult:
		g.filterTenants(call, r)
		return g.maskResult(ctx, call, res)
	case *mcp.ReadResourceResult, *mcp.GetPromptResult:
		return g.maskResult(ctx, call, res)
	}
	return res, nil
}

// recordOutcome writes what happened: a denial's decision record (nothing
// was forwarded, so nothing was recorded yet), or the outcome of a call
// that ran. A denial is durable before it is answered, which also paces a
// client that floods Warden with denied calls; an outcome follows a durable
// decision record, so it is queued for the next write rather than adding a
// second disk flush to the call's latency. Failures are logged.
func (g *Gateway) recordOutcome(ctx context.Context, call *Call, res mcp.Result, err error) {
	status := "ok"
	var d *Denial
	var ni *needsInput
	switch {
	case errors.As(err, &ni):
		status = "asked"
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
		"effect", call.Decision.Effect, "rules", call.Decision.Rules, "shadow", call.Decision.Shadowed,
		"status", status, "latency_us", time.Since(call.Started).Microseconds(), "err", err, "policy_err", call.Decision.err)
	if g.audit == nil {
		return
	}
	kind := audit.KindOutcome
	if !call.recorded {
		kind = audit.KindDecision
	}
	rec := g.auditRecord(call, kind)
	rec.Status = status
	rec.LatencyUS = call.UpstreamLatency.Microseconds()
	if d != nil && call.Decision.Effect == "" {
		rec.Decision, rec.Rules, rec.Reason = audit.DecisionDeny, []string{d.Rule}, d.Reason
	}
	ctx = context.WithoutCancel(ctx)
	var aerr error
	if call.recorded {
		aerr = g.audit.Enqueue(ctx, rec)
	} else {
		_, aerr = g.audit.Append(ctx, rec)
	}
	if aerr != nil {
		g.logger.Error("audit append failed", "id", call.ID, "err", aerr)
	}
}

func (g *Gateway) auditRecord(call *Call, kind audit.Kind) audit.Record {
	rec := audit.Record{
		Kind:          kind,
		Time:          time.Now(),
		DecisionID:    call.ID,
		Principal:     call.Principal.ID,
		Method:        call.Method,
		Tool:          call.Name,
		Decision:      audit.Decision(call.Decision.Effect),
		Rules:         call.Decision.Rules,
		Reason:        call.Decision.Reason,
		PolicyVersion: call.Decision.PolicyVersion,
		Upstream:      call.Upstream,
		Shadow:        call.Decision.Shadowed,
		CredentialID:  call.CredentialID,
		ApprovalID:    call.ApprovalID,
		Task:          call.taskID(),
		Masked:        call.Masked,
		Labels:        call.Labels,
	}
	if ss, ok := call.request.GetSession().(*mcp.ServerSession); ok && ss != nil {
		rec.Session = ss.ID()
	}
	rec.Args = call.auditArgs
	return rec
}

// secretKey reports argument names whose values are never written to the
// audit log.
func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"password", "passwd", "secret", "token", "api_key", "apikey", "authorization", "credential", "private_key"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// redactSecrets copies v with the values of secret-looking keys replaced.
func redactSecrets(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			if secretKey(k) {
				out[k] = "[REDACTED]"
			} else {
				out[k] = redactSecrets(x)
			}
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = redactSecrets(x)
		}
		return out
	}
	return v
}

// errorFor answers a call that failed: a tool error result the model can
// read for tools/call, a JSON-RPC error with code otherwise.
func errorFor(call *Call, code int64, msg string) (mcp.Result, error) {
	if call.Method == "tools/call" {
		return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: msg}}}, nil
	}
	return nil, &jsonrpc.Error{Code: code, Message: msg}
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
		return errorFor(call, CodeDenied, fmt.Sprintf("denied by %s: %s (call %s)", d.Rule, d.Reason, call.ID))
	}
	var ni *needsInput
	if errors.As(err, &ni) && call.Method == "tools/call" {
		return &mcp.CallToolResult{InputRequests: ni.requests, RequestState: ni.state}, nil
	}
	var werr *jsonrpc.Error
	if errors.As(err, &werr) {
		return nil, werr // an upstream's protocol error, relayed as it was
	}
	var uerr *UpstreamError
	if errors.As(err, &uerr) {
		return errorFor(call, jsonrpc.CodeInternalError, fmt.Sprintf("%s (call %s)", uerr.Message, call.ID))
	}
	return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: fmt.Sprintf("internal error (call %s)", call.ID)}
}

// Call is one client request on its way through the pipeline.
type Call struct {
	// ID is quoted to the client in denials and errors and identifies the
	// call in the audit log (the protocol layer does not expose JSON-RPC
	// ids to middleware).
	ID              string
	Method          string
	Name            string // tool or prompt name, or resource URI
	Upstream        string
	Transport       string // "http" or "stdio"
	Stateless       bool   // a 2026-07-28 request without a session
	Principal       Principal
	Decision        Decision
	Started         time.Time
	UpstreamLatency time.Duration
	CredentialID    string       // the per-call credential minted, if any
	ApprovalID      string       // the approval request behind the call, if any
	Task            *policy.Task // the task grant the call presented, if any
	// Masked lists what masking found in the result: "CLASS:count:action"
	// per class, then the JSONPaths of the values changed; never a value.
	Masked []string
	// Labels are the data labels the result carries (pii, secret, …).
	Labels []string

	request mcp.Request
	// pol is the policy in force when the call began: every stage of one
	// call decides, checks and masks under the same version, even if the
	// policy reloads meanwhile. input is what decide asked it.
	pol       *policy.Policy
	input     *policy.Input
	tool      *toolRoute
	args      any             // validated arguments
	auditArgs json.RawMessage // the arguments as recorded: secrets redacted, tokens kept
	argsJSON  []byte          // their canonical encoding, as forwarded
	recorded  bool            // the decision record is written
	gated     string          // confirmDigest, once the call passed a confirm or approve gate
}

func (c *Call) taskID() string {
	if c.Task == nil {
		return ""
	}
	return c.Task.ID
}

// Principal is who is calling.
type Principal struct {
	ID        string
	Roles     []string
	Tenant    string
	Clearance string
	Claims    map[string]any
	// Method is how the caller proved it: api_key, jwt, anonymous, local.
	Method string
}

// policy is the principal as policy rules see it.
func (p Principal) policy() policy.Principal {
	return policy.Principal{ID: p.ID, Roles: p.Roles, Tenant: p.Tenant, Clearance: p.Clearance, Claims: p.Claims}
}

// Effects of a decision.
const (
	EffectAllow = "allow"
	EffectDeny  = "deny"
)

// Decision is the outcome of the decide stage and the rules behind it.
type Decision struct {
	Effect        string
	Rules         []string
	Reason        string
	PolicyVersion string
	Shadowed      bool
	err           error // evaluation problems, for the log only
}

func (d Decision) denial() *Denial {
	return &Denial{Rule: strings.Join(d.Rules, ","), Reason: d.Reason}
}

// Denial stops a call: the rule that refused it and a reason safe to show.
type Denial struct {
	Rule   string
	Reason string
	cause  error // for the log only
}

func (d *Denial) Error() string {
	if d.cause != nil {
		return "denied by " + d.Rule + ": " + d.Reason + ": " + d.cause.Error()
	}
	return "denied by " + d.Rule + ": " + d.Reason
}

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
