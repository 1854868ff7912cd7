package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// inflight is one client request being relayed to an upstream. Requests
// and notifications that the upstream sends while it runs (elicitation,
// sampling, logging, progress) are delivered on the client request's
// context, so that they reach the client on that request's stream.
type inflight struct {
	ctx context.Context
	ss  *mcp.ServerSession
}

// binding is what Warden knows about one upstream session: the client
// session that owns it (nil when it is shared), and the calls in flight.
type binding struct {
	owner *mcp.ServerSession

	mu    sync.Mutex
	calls map[*inflight]struct{}
}

func (b *binding) begin(c *inflight) {
	b.mu.Lock()
	if b.calls == nil {
		b.calls = map[*inflight]struct{}{}
	}
	b.calls[c] = struct{}{}
	b.mu.Unlock()
}

func (b *binding) end(c *inflight) {
	b.mu.Lock()
	delete(b.calls, c)
	b.mu.Unlock()
}

// target picks where a server-initiated message goes: the only call in
// flight, else the owning session, else nowhere (ambiguous).
func (b *binding) target() (context.Context, *mcp.ServerSession, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.calls) == 1 {
		for c := range b.calls {
			return c.ctx, c.ss, nil
		}
	}
	if b.owner != nil {
		return context.Background(), b.owner, nil
	}
	if len(b.calls) == 0 {
		return nil, nil, errors.New("no client request is in flight on this upstream session")
	}
	return nil, nil, errors.New("several client requests share this upstream session; cannot tell which one asked")
}

// sessionConns holds the upstream sessions opened for one client session.
type sessionConns struct {
	mu    sync.Mutex
	conns map[string]*mcp.ClientSession
}

// relay routes messages between client sessions and upstream sessions.
type relay struct {
	bindings sync.Map // *mcp.ClientSession → *binding
	sessions sync.Map // *mcp.ServerSession → *sessionConns
	progress sync.Map // upstream progress token (string) → *progressRoute
	nextTok  atomic.Uint64
}

type progressRoute struct {
	call  *inflight
	token any // the client's own token
}

func (r *relay) bindingFor(cs *mcp.ClientSession, owner *mcp.ServerSession) *binding {
	if b, ok := r.bindings.Load(cs); ok {
		return b.(*binding)
	}
	b, _ := r.bindings.LoadOrStore(cs, &binding{owner: owner})
	return b.(*binding)
}

// acquire returns the upstream session a client request uses. Stateful
// clients get their own session to each HTTP upstream, so that
// subscriptions, logging levels and server-initiated requests stay theirs;
// stdio upstreams and stateless clients share one session per upstream.
func (r *relay) acquire(ctx context.Context, up *upstream, ss *mcp.ServerSession, shared bool) (*mcp.ClientSession, *binding, error) {
	if shared || up.stdio() || ss == nil {
		cs, err := up.sharedSession(ctx)
		if err != nil {
			return nil, nil, err
		}
		return cs, r.bindingFor(cs, nil), nil
	}
	v, loaded := r.sessions.LoadOrStore(ss, &sessionConns{conns: map[string]*mcp.ClientSession{}})
	sc := v.(*sessionConns)
	if !loaded {
		go func() {
			_ = ss.Wait()
			r.closeSession(ss)
		}()
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if cs, ok := sc.conns[up.name]; ok {
		return cs, r.bindingFor(cs, ss), nil
	}
	cs, err := up.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	sc.conns[up.name] = cs
	b := r.bindingFor(cs, ss)
	go func() {
		_ = cs.Wait()
		sc.mu.Lock()
		if sc.conns[up.name] == cs {
			delete(sc.conns, up.name)
		}
		sc.mu.Unlock()
		r.bindings.Delete(cs)
	}()
	return cs, b, nil
}

// closeSession closes the upstream sessions a client session opened.
func (r *relay) closeSession(ss *mcp.ServerSession) {
	v, ok := r.sessions.LoadAndDelete(ss)
	if !ok {
		return
	}
	sc := v.(*sessionConns)
	sc.mu.Lock()
	conns := sc.conns
	sc.conns = map[string]*mcp.ClientSession{}
	sc.mu.Unlock()
	for _, cs := range conns {
		_ = cs.Close()
	}
}

// mapProgress replaces the client's progress token with one unique to
// Warden, so that progress from a shared upstream session finds its client.
// It returns a function that forgets the mapping.
func (r *relay) mapProgress(meta mcp.Meta, call *inflight) (mcp.Meta, func()) {
	tok, ok := meta["progressToken"]
	if !ok {
		return meta, func() {}
	}
	ours := "w" + strconv.FormatUint(r.nextTok.Add(1), 36)
	r.progress.Store(ours, &progressRoute{call: call, token: tok})
	out := make(mcp.Meta, len(meta))
	for k, v := range meta {
		out[k] = v
	}
	out["progressToken"] = ours
	return out, func() { r.progress.Delete(ours) }
}

// clientOptions are the handlers through which an upstream reaches the
// client whose request it is serving.
func (r *relay) clientOptions(g *Gateway, up *upstream) (*mcp.ClientOptions, mcp.Middleware) {
	target := func(cs *mcp.ClientSession) (context.Context, *mcp.ServerSession, error) {
		v, ok := r.bindings.Load(cs)
		if !ok {
			return nil, nil, errors.New("no client is bound to this upstream session")
		}
		return v.(*binding).target()
	}
	elicit := func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
		cctx, ss, err := target(req.Session)
		if err != nil {
			return nil, fmt.Errorf("elicitation from upstream %s: %w", up.name, err)
		}
		return ss.Elicit(mergeCancel(cctx, ctx), req.Params)
	}
	return &mcp.ClientOptions{
		Logger:             g.logger,
		ElicitationHandler: elicit,
		CreateMessageHandler: func(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			cctx, ss, err := target(req.Session)
			if err != nil {
				return nil, fmt.Errorf("sampling from upstream %s: %w", up.name, err)
			}
			return ss.CreateMessage(mergeCancel(cctx, ctx), req.Params)
		},
		LoggingMessageHandler: func(ctx context.Context, req *mcp.LoggingMessageRequest) {
			cctx, ss, err := target(req.Session)
			if err != nil {
				return
			}
			_ = ss.Log(cctx, req.Params)
		},
		ProgressNotificationHandler: func(ctx context.Context, req *mcp.ProgressNotificationClientRequest) {
			key, _ := req.Params.ProgressToken.(string)
			v, ok := r.progress.Load(key)
			if !ok {
				return
			}
			pr := v.(*progressRoute)
			p := *req.Params
			p.ProgressToken = pr.token
			_ = pr.call.ss.NotifyProgress(pr.call.ctx, &p)
		},
		ResourceUpdatedHandler: func(ctx context.Context, req *mcp.ResourceUpdatedNotificationRequest) {
			g.resourceUpdated(ctx, req.Params)
		},
		ToolListChangedHandler:     func(context.Context, *mcp.ToolListChangedRequest) { g.refreshLater(up, toolList) },
		PromptListChangedHandler:   func(context.Context, *mcp.PromptListChangedRequest) { g.refreshLater(up, promptList) },
		ResourceListChangedHandler: func(context.Context, *mcp.ResourceListChangedRequest) { g.refreshLater(up, resourceList) },
		// Input-required results are relayed to the client, not answered here.
		MultiRoundTrip: &mcp.MultiRoundTripOptions{Disabled: true},
	}, relayElicitation(elicit)
}

// relayElicitation hands elicitation requests to the client as they came:
// the protocol layer would otherwise hold them to its own reading of the
// schema rules, which is stricter than some clients' and would make Warden
// refuse what the client accepts directly.
func relayElicitation(elicit func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error)) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if r, ok := req.(*mcp.ElicitRequest); ok && method == "elicitation/create" {
				return elicit(ctx, r)
			}
			return next(ctx, method, req)
		}
	}
}

// mergeCancel returns a context carrying base's values that is also
// cancelled when other is.
func mergeCancel(base, other context.Context) context.Context {
	ctx, cancel := context.WithCancel(base)
	stop := context.AfterFunc(other, cancel)
	context.AfterFunc(ctx, func() { stop() })
	return ctx
}
