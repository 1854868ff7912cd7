package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/credential"
	"github.com/wardenmcp/warden/pkg/verify"
)

// The forwarders below run as the protocol layer's handlers, inside the
// execute stage: the call has already been identified, routed and decided.

func (g *Gateway) forwardTool(rt *toolRoute) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		p := req.Params
		t := target{up: rt.up, ss: req.Session, name: rt.upstream, meta: p.Meta, state: p.RequestState, responses: p.InputResponses}
		return forward(g, ctx, t, toolRounds,
			func(ctx context.Context, cs *mcp.ClientSession, meta mcp.Meta, state string, responses mcp.InputResponseMap) (*mcp.CallToolResult, error) {
				if g.fastCalls && rawToolCall(rt, cs, meta) {
					return g.postToolCall(ctx, rt.up, rawParams{Meta: meta, Name: rt.upstream, Arguments: p.Arguments, InputResponses: responses, RequestState: state})
				}
				if rt.headerParams {
					// The library's client sends a tool's header parameters
					// only for tools its session has listed.
					if err := g.relay.listTools(ctx, cs); err != nil {
						return nil, err
					}
				}
				return cs.CallTool(ctx, &mcp.CallToolParams{Meta: meta, Name: rt.upstream, Arguments: p.Arguments, InputResponses: responses, RequestState: state})
			})
	}
}

func (g *Gateway) forwardPrompt(pr *promptRoute) mcp.PromptHandler {
	return func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		p := req.Params
		t := target{up: pr.up, ss: req.Session, name: pr.upstream, meta: p.Meta, state: p.RequestState, responses: p.InputResponses}
		return forward(g, ctx, t, promptRounds,
			func(ctx context.Context, cs *mcp.ClientSession, meta mcp.Meta, state string, responses mcp.InputResponseMap) (*mcp.GetPromptResult, error) {
				q := *p
				q.Meta, q.Name, q.RequestState, q.InputResponses = meta, pr.upstream, state, responses
				return cs.GetPrompt(ctx, &q)
			})
	}
}

func (g *Gateway) forwardResource(up *upstream) mcp.ResourceHandler {
	return func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		p := req.Params
		t := target{up: up, ss: req.Session, name: p.URI, meta: p.Meta, state: p.RequestState, responses: p.InputResponses}
		return forward(g, ctx, t, resourceRounds,
			func(ctx context.Context, cs *mcp.ClientSession, meta mcp.Meta, state string, responses mcp.InputResponseMap) (*mcp.ReadResourceResult, error) {
				q := *p
				q.Meta, q.RequestState, q.InputResponses = meta, state, responses
				return cs.ReadResource(ctx, &q)
			})
	}
}

// target is what a forwarded request is about.
type target struct {
	up        *upstream
	ss        *mcp.ServerSession
	name      string // the tool or prompt name at the upstream, or the resource URI
	meta      mcp.Meta
	state     string // the sealed requestState the client echoed, if any
	responses mcp.InputResponseMap
	gated     string // the call's gate digest when it passed a confirm or approve gate
}

// rounds adapts one method's result type to multi-round-trip handling.
type rounds[R any] struct {
	// pending returns the result's input requests and its requestState field.
	pending func(R) (mcp.InputRequestMap, *string)
	// asking builds an input-required result.
	asking func(mcp.InputRequestMap, string) R
}

var (
	toolRounds = rounds[*mcp.CallToolResult]{
		pending: func(r *mcp.CallToolResult) (mcp.InputRequestMap, *string) { return r.InputRequests, &r.RequestState },
		asking: func(m mcp.InputRequestMap, s string) *mcp.CallToolResult {
			return &mcp.CallToolResult{InputRequests: m, RequestState: s}
		},
	}
	promptRounds = rounds[*mcp.GetPromptResult]{
		pending: func(r *mcp.GetPromptResult) (mcp.InputRequestMap, *string) { return r.InputRequests, &r.RequestState },
		asking: func(m mcp.InputRequestMap, s string) *mcp.GetPromptResult {
			return &mcp.GetPromptResult{InputRequests: m, RequestState: s}
		},
	}
	resourceRounds = rounds[*mcp.ReadResourceResult]{
		pending: func(r *mcp.ReadResourceResult) (mcp.InputRequestMap, *string) {
			return r.InputRequests, &r.RequestState
		},
		asking: func(m mcp.InputRequestMap, s string) *mcp.ReadResourceResult {
			return &mcp.ReadResourceResult{InputRequests: m, RequestState: s}
		},
	}
)

// exchange performs one request on an upstream session.
type exchange[R any] func(ctx context.Context, cs *mcp.ClientSession, meta mcp.Meta, state string, responses mcp.InputResponseMap) (R, error)

// forward runs one request against the upstream session the client uses,
// with the client's _meta cleaned, its progress token mapped, the request
// state it echoes opened, and a time limit.
//
// A request from a client without a session (2026-07-28) cannot be sent
// server-initiated requests; when its upstream asks for one (elicitation,
// sampling, roots) mid-call, the question goes back to the client as an
// input-required result and the upstream call waits for the answer
// (bridge.go).
func forward[R any](g *Gateway, ctx context.Context, t target, m rounds[R], do exchange[R]) (R, error) {
	var zero R
	call := callFrom(ctx)
	if call != nil {
		t.gated = call.gated
	}
	st, err := g.openState(t.up, t.name, t.state)
	if err != nil {
		return zero, err
	}
	if st.Pending != "" {
		return resume(g, ctx, call, st, t.responses, m)
	}
	stateless := call != nil && call.Stateless
	// Upstream requests run on a context of their own: the client's carries
	// protocol details of the client's revision, which the upstream session
	// must not pick up. Cancellation still passes through.
	upCtx, cancel := g.detached(ctx)
	defer func() {
		if cancel != nil {
			cancel()
		}
	}()
	cs, b, release, err := g.relay.acquire(upCtx, t.up, t.ss, stateless)
	if err != nil {
		return zero, &UpstreamError{Message: fmt.Sprintf("upstream %s is unavailable", t.up.name), Cause: err}
	}
	in := &inflight{ctx: ctx, ss: t.ss}
	meta := forwardedMeta(t.meta)
	if call != nil && call.Task != nil && len(call.Task.Scope) > 0 {
		// The task's scope, from its grant, is what upstreams such as the
		// PostgreSQL connector confine the call to.
		meta = withMeta(meta, scopeMetaKey, call.Task.Scope)
	}
	var bearer string
	if call != nil && call.Method == "tools/call" && g.minter != nil {
		bearer, err = g.mintCredential(call, t)
		if err != nil {
			release()
			return zero, err
		}
		meta = withMeta(meta, verify.MetaKey, bearer)
		upCtx = context.WithValue(upCtx, bearerKey{}, bearer)
	}
	meta, forget := g.relay.mapProgress(meta, in)
	if !stateless {
		upCtx = context.WithValue(upCtx, inflightKey{}, in)
		defer release()
		b.begin(in)
		defer b.end(in)
		defer forget()
		res, err := do(upCtx, cs, meta, st.State, t.responses)
		return finish(g, t, m, res, err)
	}

	// The upstream call may outlive this client request while it waits for
	// an answer to its question: it gets a context of its own.
	cancel()
	upCtx, cancelCall := g.detached(context.Background())
	if bearer != "" {
		upCtx = context.WithValue(upCtx, bearerKey{}, bearer)
	}
	cancel = nil
	pc := newPendingCall(t, call)
	in.bridge = pc
	pc.cancel = cancelCall
	b.begin(in)
	go func() {
		defer cancelCall()
		defer release()
		defer b.end(in)
		defer forget()
		res, err := do(upCtx, cs, meta, st.State, t.responses)
		pc.res, pc.err = res, err
		close(pc.done)
	}()
	return await(g, ctx, pc, m)
}

// detached returns a context for an upstream request made for parent: it
// carries none of parent's values, and ends when parent does, when the
// call timeout passes, or when the gateway stops waiting at shutdown.
func (g *Gateway) detached(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(g.life, g.cfg.CallTimeout)
	stop := context.AfterFunc(parent, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// finish seals an upstream's own input-required state and maps errors.
func finish[R any](g *Gateway, t target, m rounds[R], res R, err error) (R, error) {
	var zero R
	if err != nil {
		return zero, g.upstreamErr(t.up, err)
	}
	if m.pending == nil {
		return res, nil
	}
	if reqs, state := m.pending(res); len(reqs) > 0 {
		sealed, err := g.sealState(requestState{Upstream: t.up.name, Name: t.name, State: *state, Gated: t.gated})
		if err != nil {
			return zero, err
		}
		*state = sealed
	}
	return res, nil
}

func (g *Gateway) upstreamErr(up *upstream, err error) error {
	var werr *jsonrpc.Error
	if errors.As(err, &werr) {
		return werr
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &UpstreamError{Message: fmt.Sprintf("upstream %s did not answer within %s", up.name, g.cfg.CallTimeout), Cause: err}
	case errors.Is(err, mcp.ErrConnectionClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &UpstreamError{Message: fmt.Sprintf("upstream %s closed the connection during the call", up.name), Cause: err}
	}
	return &UpstreamError{Message: fmt.Sprintf("upstream %s failed", up.name), Cause: err}
}

// forwardedMeta drops the client's protocol version and identity (the
// upstream session sets its own) and every key in Warden's own namespace:
// task scope and credentials that upstreams trust come from Warden, never
// from the client. The client's declared capabilities and log level pass
// on, so that an upstream never relies on a capability the client lacks.
func forwardedMeta(meta mcp.Meta) mcp.Meta {
	if len(meta) == 0 {
		return meta
	}
	out := make(mcp.Meta, len(meta))
	for k, v := range meta {
		switch {
		case k == mcp.MetaKeyProtocolVersion, k == mcp.MetaKeyClientInfo:
			continue
		case strings.HasPrefix(k, wardenMetaPrefix):
			continue
		}
		out[k] = v
	}
	return out
}

// wardenMetaPrefix is the _meta namespace of what Warden tells upstreams.
const wardenMetaPrefix = "io.wardenmcp/"

// scopeMetaKey is where upstreams find the task scope Warden vouches for.
const scopeMetaKey = "io.wardenmcp/scope"

// bearerKey carries the per-call credential to the HTTP transport, which
// sends it as the upstream request's bearer token.
type bearerKey struct{}

// mintCredential issues the credential for one forwarded tool call: good
// for seconds, for this upstream, this tool and these exact argument bytes.
// If it cannot be minted the call does not go out.
func (g *Gateway) mintCredential(call *Call, t target) (string, error) {
	claims := credential.Claims{
		Subject:    call.Principal.ID,
		Audience:   t.up.name,
		Tool:       t.name,
		Op:         call.Method,
		ArgsDigest: credential.ArgsDigest(call.argsJSON),
	}
	if call.Task != nil {
		claims.Task, claims.Scope = call.Task.ID, call.Task.Scope
	}
	token, id, err := g.minter.Mint(claims)
	if err != nil {
		return "", &UpstreamError{Message: "could not issue the call's credential", Cause: err}
	}
	call.CredentialID = id
	return token, nil
}

// withMeta returns meta with one more key, leaving the original alone.
func withMeta(meta mcp.Meta, k string, v any) mcp.Meta {
	out := make(mcp.Meta, len(meta)+1)
	for mk, mv := range meta {
		out[mk] = mv
	}
	out[k] = v
	return out
}

// requestState is what Warden seals into the requestState it gives a
// client: the upstream's own state, or the id of a call waiting for the
// client's answer, bound to the upstream and the name it was issued for, so
// that a client cannot replay it elsewhere.
type requestState struct {
	Upstream string `json:"u"`
	Name     string `json:"n"`
	State    string `json:"s,omitempty"`
	Pending  string `json:"p,omitempty"`
	// Gated is the gate digest of a call that passed a confirm or approve
	// gate: its retries carry this state, and the gate is not asked again.
	Gated string `json:"g,omitempty"`
}

const (
	statePurpose = "warden/request-state"
	stateTTL     = 10 * time.Minute
)

func (g *Gateway) sealState(st requestState) (string, error) {
	return g.sealer.SealJSON(statePurpose, st, stateTTL)
}

// openState opens a sealed requestState; an empty one stays empty.
// Tampered, expired or misdirected state is refused.
func (g *Gateway) openState(up *upstream, name, token string) (requestState, error) {
	if token == "" {
		return requestState{}, nil
	}
	var st requestState
	if err := g.sealer.OpenJSON(statePurpose, token, &st); err != nil {
		return requestState{}, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "invalid requestState: not issued by this gateway, altered, or expired"}
	}
	if st.Upstream != up.name || st.Name != name {
		return requestState{}, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "invalid requestState: issued for a different request"}
	}
	return st, nil
}

// complete routes a completion request to the upstream that owns the
// prompt or resource template it refers to.
func (g *Gateway) complete(ctx context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
	cat := g.catalog.Load()
	p := *req.Params
	var up *upstream
	if p.Ref != nil {
		switch p.Ref.Type {
		case "ref/prompt":
			if pr, ok := cat.prompts[p.Ref.Name]; ok {
				up = pr.up
				ref := *p.Ref
				ref.Name = pr.upstream
				p.Ref = &ref
			}
		case "ref/resource":
			if tr, ok := cat.templates[p.Ref.URI]; ok {
				up = tr.up
			} else if rr, ok := cat.resources[p.Ref.URI]; ok {
				up = rr.up
			}
		}
	}
	if up == nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "completion refers to no known prompt or resource"}
	}
	t := target{up: up, ss: req.Session, meta: p.Meta}
	return forward(g, ctx, t, rounds[*mcp.CompleteResult]{},
		func(ctx context.Context, cs *mcp.ClientSession, meta mcp.Meta, _ string, _ mcp.InputResponseMap) (*mcp.CompleteResult, error) {
			p.Meta = meta
			return cs.Complete(ctx, &p)
		})
}

func (g *Gateway) resourceOwner(uri string) *upstream {
	cat := g.catalog.Load()
	if rr, ok := cat.resources[uri]; ok {
		return rr.up
	}
	for t, tr := range cat.templates {
		if templatePrefixMatch(t, uri) {
			return tr.up
		}
	}
	return nil
}

// templatePrefixMatch reports whether uri starts with the literal part of
// a URI template (up to its first expression).
func templatePrefixMatch(template, uri string) bool {
	lit, _, _ := strings.Cut(template, "{")
	return lit != "" && strings.HasPrefix(uri, lit)
}

func (g *Gateway) subscribe(ctx context.Context, req *mcp.SubscribeRequest) error {
	up := g.resourceOwner(req.Params.URI)
	if up == nil {
		return &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "no upstream offers that resource"}
	}
	t := target{up: up, ss: req.Session, meta: req.Params.Meta}
	_, err := forward(g, ctx, t, rounds[*struct{}]{},
		func(ctx context.Context, cs *mcp.ClientSession, meta mcp.Meta, _ string, _ mcp.InputResponseMap) (*struct{}, error) {
			p := *req.Params
			p.Meta = meta
			return nil, cs.Subscribe(ctx, &p)
		})
	return err
}

func (g *Gateway) unsubscribe(ctx context.Context, req *mcp.UnsubscribeRequest) error {
	up := g.resourceOwner(req.Params.URI)
	if up == nil {
		return &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "no upstream offers that resource"}
	}
	t := target{up: up, ss: req.Session, meta: req.Params.Meta}
	_, err := forward(g, ctx, t, rounds[*struct{}]{},
		func(ctx context.Context, cs *mcp.ClientSession, meta mcp.Meta, _ string, _ mcp.InputResponseMap) (*struct{}, error) {
			p := *req.Params
			p.Meta = meta
			return nil, cs.Unsubscribe(ctx, &p)
		})
	return err
}

// resourceUpdated tells subscribed clients that an upstream resource changed.
func (g *Gateway) resourceUpdated(ctx context.Context, p *mcp.ResourceUpdatedNotificationParams) {
	for _, s := range []*mcp.Server{g.stateful, g.stateless} {
		if err := s.ResourceUpdated(ctx, p); err != nil {
			g.logger.Debug("relaying resource update", "uri", p.URI, "err", err)
		}
	}
}
