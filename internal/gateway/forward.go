package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The forwarders below run as the protocol layer's handlers, inside the
// execute stage: the call has already been identified, routed and decided.

func (g *Gateway) forwardTool(rt *toolRoute) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var res *mcp.CallToolResult
		err := g.forward(ctx, rt.up, req.Session, req.Params.Meta, req.Params.RequestState, rt.upstream,
			func(ctx context.Context, cs *mcp.ClientSession, meta mcp.Meta, state string) (err error) {
				res, err = cs.CallTool(ctx, &mcp.CallToolParams{
					Meta:           meta,
					Name:           rt.upstream,
					Arguments:      req.Params.Arguments,
					InputResponses: req.Params.InputResponses,
					RequestState:   state,
				})
				if err == nil && len(res.InputRequests) > 0 {
					res.RequestState, err = g.sealState(rt.up, rt.upstream, res.RequestState)
				}
				return err
			})
		return res, err
	}
}

func (g *Gateway) forwardPrompt(pr *promptRoute) mcp.PromptHandler {
	return func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		var res *mcp.GetPromptResult
		err := g.forward(ctx, pr.up, req.Session, req.Params.Meta, req.Params.RequestState, pr.upstream,
			func(ctx context.Context, cs *mcp.ClientSession, meta mcp.Meta, state string) (err error) {
				p := *req.Params
				p.Meta, p.Name, p.RequestState = meta, pr.upstream, state
				res, err = cs.GetPrompt(ctx, &p)
				if err == nil && len(res.InputRequests) > 0 {
					res.RequestState, err = g.sealState(pr.up, pr.upstream, res.RequestState)
				}
				return err
			})
		return res, err
	}
}

func (g *Gateway) forwardResource(up *upstream) mcp.ResourceHandler {
	return func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		var res *mcp.ReadResourceResult
		err := g.forward(ctx, up, req.Session, req.Params.Meta, req.Params.RequestState, req.Params.URI,
			func(ctx context.Context, cs *mcp.ClientSession, meta mcp.Meta, state string) (err error) {
				p := *req.Params
				p.Meta, p.RequestState = meta, state
				res, err = cs.ReadResource(ctx, &p)
				if err == nil && len(res.InputRequests) > 0 {
					res.RequestState, err = g.sealState(up, req.Params.URI, res.RequestState)
				}
				return err
			})
		return res, err
	}
}

// forward runs one request against the upstream session the client uses,
// with the client's _meta cleaned, its progress token mapped, the
// request state it echoes opened, and a time limit.
func (g *Gateway) forward(ctx context.Context, up *upstream, ss *mcp.ServerSession, meta mcp.Meta, state, name string,
	do func(ctx context.Context, cs *mcp.ClientSession, meta mcp.Meta, state string) error) error {
	call := callFrom(ctx)
	stateless := call != nil && call.Stateless
	upstreamState, err := g.openState(up, name, state)
	if err != nil {
		return err
	}
	cs, b, err := g.relay.acquire(ctx, up, ss, stateless)
	if err != nil {
		return &UpstreamError{Message: fmt.Sprintf("upstream %s is unavailable", up.name), Cause: err}
	}
	in := &inflight{ctx: ctx, ss: ss}
	b.begin(in)
	defer b.end(in)
	meta, forget := g.relay.mapProgress(forwardedMeta(meta), in)
	defer forget()

	ctx, cancel := context.WithTimeout(ctx, g.cfg.CallTimeout.D())
	defer cancel()
	err = do(ctx, cs, meta, upstreamState)
	if err == nil {
		return nil
	}
	var werr *jsonrpc.Error
	if errors.As(err, &werr) {
		return werr
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &UpstreamError{Message: fmt.Sprintf("upstream %s did not answer within %s", up.name, g.cfg.CallTimeout.D()), Cause: err}
	case errors.Is(err, mcp.ErrConnectionClosed):
		return &UpstreamError{Message: fmt.Sprintf("upstream %s closed the connection during the call", up.name), Cause: err}
	}
	return &UpstreamError{Message: fmt.Sprintf("upstream %s failed", up.name), Cause: err}
}

// forwardedMeta drops the client's protocol version and identity: the
// upstream session sets its own. The client's declared capabilities and log
// level pass on, so that an upstream never relies on a capability the
// client lacks.
func forwardedMeta(meta mcp.Meta) mcp.Meta {
	if len(meta) == 0 {
		return meta
	}
	out := make(mcp.Meta, len(meta))
	for k, v := range meta {
		switch k {
		case mcp.MetaKeyProtocolVersion, mcp.MetaKeyClientInfo:
			continue
		}
		out[k] = v
	}
	return out
}

// requestState is what Warden seals into the requestState it gives a
// client: the upstream's own state, bound to the upstream and the name it
// was issued for, so that a client cannot replay it elsewhere.
type requestState struct {
	Upstream string `json:"u"`
	Name     string `json:"n"`
	State    string `json:"s"`
}

const (
	statePurpose = "warden/request-state"
	stateTTL     = 10 * time.Minute
)

func (g *Gateway) sealState(up *upstream, name, state string) (string, error) {
	b, err := json.Marshal(requestState{Upstream: up.name, Name: name, State: state})
	if err != nil {
		return "", err
	}
	return g.sealer.Seal(statePurpose, b, stateTTL)
}

// openState returns the upstream's state from a sealed requestState; an
// empty one stays empty. Tampered, expired or misdirected state is refused.
func (g *Gateway) openState(up *upstream, name, token string) (string, error) {
	if token == "" {
		return "", nil
	}
	b, err := g.sealer.Open(statePurpose, token)
	if err != nil {
		return "", &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "invalid requestState: not issued by this gateway, altered, or expired"}
	}
	var st requestState
	if err := json.Unmarshal(b, &st); err != nil || st.Upstream != up.name || st.Name != name {
		return "", &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "invalid requestState: issued for a different request"}
	}
	return st.State, nil
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
	var res *mcp.CompleteResult
	err := g.forward(ctx, up, req.Session, p.Meta, "", "", func(ctx context.Context, cs *mcp.ClientSession, meta mcp.Meta, _ string) (err error) {
		p.Meta = meta
		res, err = cs.Complete(ctx, &p)
		return err
	})
	return res, err
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
	return g.forward(ctx, up, req.Session, req.Params.Meta, "", "", func(ctx context.Context, cs *mcp.ClientSession, meta mcp.Meta, _ string) error {
		p := *req.Params
		p.Meta = meta
		return cs.Subscribe(ctx, &p)
	})
}

func (g *Gateway) unsubscribe(ctx context.Context, req *mcp.UnsubscribeRequest) error {
	up := g.resourceOwner(req.Params.URI)
	if up == nil {
		return &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "no upstream offers that resource"}
	}
	return g.forward(ctx, up, req.Session, req.Params.Meta, "", "", func(ctx context.Context, cs *mcp.ClientSession, meta mcp.Meta, _ string) error {
		p := *req.Params
		p.Meta = meta
		return cs.Unsubscribe(ctx, &p)
	})
}

// resourceUpdated tells subscribed clients that an upstream resource changed.
func (g *Gateway) resourceUpdated(ctx context.Context, p *mcp.ResourceUpdatedNotificationParams) {
	for _, s := range []*mcp.Server{g.stateful, g.stateless} {
		if err := s.ResourceUpdated(ctx, p); err != nil {
			g.logger.Debug("relaying resource update", "uri", p.URI, "err", err)
		}
	}
}
