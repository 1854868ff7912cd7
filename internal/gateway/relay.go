package gateway

//lint:file-ignore SA1019 Warden relays sampling, roots and logging for clients of the revisions that still have them.

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
	// bridge is set for clients without a session: questions from the
	// upstream go back to them as input-required results.
	bridge *pendingCall
}

// binding is what Warden knows about one upstream session: the client
// session that owns it (nil when it is shared), and the calls in flight.
type binding struct {
	owner *mcp.ServerSession
	// listed: the session has listed the upstream's tools (listTools).
	listed atomic.Bool

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
func (b *binding) target() (*inflight, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.calls) == 1 {
		for c := range b.calls {
			return c, nil
		}
	}
	if b.owner != nil {
		return &inflight{ctx: context.Background(), ss: b.owner}, nil
	}
	if len(b.calls) == 0 {
		return nil, errors.New("no client request is in flight on this upstream session")
	}
	return nil, errors.New("several client requests share this upstream session; cannot tell which one asked")
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
	pending  sync.Map // pending call id → *pendingCall (bridge.go)
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

// acquire returns the upstream session a client request uses and a
// function to call when the request is done. Stateful clients get their own
// session to each HTTP upstream, so that subscriptions, logging levels and
// server-initiated requests stay theirs. Stateless clients borrow a pooled
// session for the length of one request, so that anything the upstream
// sends during it belongs to that request. Stdio upstreams are one process
// with one shared session.
func (r *relay) acquire(ctx context.Context, up *upstream, ss *mcp.ServerSession, stateless bool) (*mcp.ClientSession, *binding, func(), error) {
	if !up.single() && stateless {
		// A sessionless call may come from the front's fast path, with no
		// server session at all: it borrows all the same.
		pc, err := up.borrow(ctx)
		if err != nil {
			return nil, nil, nil, err
		}
		return pc.cs, r.bindingFor(pc.cs, nil), func() { up.giveBack(pc) }, nil
	}
	if up.single() || ss == nil {
		cs, err := up.sharedSession(ctx)
		if err != nil {
			return nil, nil, nil, err
		}
		return cs, r.bindingFor(cs, nil), func() {}, nil
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
		return cs, r.bindingFor(cs, ss), func() {}, nil
	}
	cs, err := up.connect(ctx, up.callClient)
	if err != nil {
		return nil, nil, nil, err
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
	return cs, b, func() {}, nil
}

// listTools lists the upstream's tools once on cs, so that the library's
// client knows their definitions when it calls them.
func (r *relay) listTools(ctx context.Context, cs *mcp.ClientSession) error {
	v, ok := r.bindings.Load(cs)
	if ok && v.(*binding).listed.Load() {
		return nil
	}
	var cursor string
	for {
		res, err := cs.ListTools(ctx, &mcp.ListToolsParams{Cursor: cursor})
		if err != nil {
			return fmt.Errorf("listing the upstream's tools: %w", err)
		}
		if cursor = res.NextCursor; cursor == "" {
			break
		}
	}
	if ok {
		v.(*binding).listed.Store(true)
	}
	return nil
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
// client whose request it is serving. Only the shared session listens for
// list changes (listChanges); sessions opened for one client do not.
func (r *relay) clientOptions(g *Gateway, up *upstream, listChanges bool) *mcp.ClientOptions {
	target := func(cs *mcp.ClientSession) (*inflight, error) {
		v, ok := r.bindings.Load(cs)
		if !ok {
			return nil, errors.New("no client is bound to this upstream session")
		}
		return v.(*binding).target()
	}
	opts := &mcp.ClientOptions{
		Logger: g.logger,
		// The handlers for requests are never reached: relayRequests answers
		// them first. They are set so that the capabilities are declared.
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return nil, errors.New("unreachable")
		},
		CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return nil, errors.New("unreachable")
		},
		LoggingMessageHandler: func(ctx context.Context, req *mcp.LoggingMessageRequest) {
			in, err := target(req.Session)
			if err != nil || in.bridge != nil {
				return
			}
			if p, ok := maskNotice(g, in.ctx, req.Params); ok {
				_ = in.ss.Log(in.ctx, p)
			}
		},
		ProgressNotificationHandler: func(ctx context.Context, req *mcp.ProgressNotificationClientRequest) {
			key, _ := req.Params.ProgressToken.(string)
			v, ok := r.progress.Load(key)
			if !ok {
				return
			}
			pr := v.(*progressRoute)
			p, ok := maskNotice(g, pr.call.ctx, req.Params)
			if !ok {
				return
			}
			q := *p
			q.ProgressToken = pr.token
			_ = pr.call.ss.NotifyProgress(pr.call.ctx, &q)
		},
		ResourceUpdatedHandler: func(ctx context.Context, req *mcp.ResourceUpdatedNotificationRequest) {
			g.resourceUpdated(ctx, req.Params)
		},
		// Input-required results are relayed to the client, not answered here.
		MultiRoundTrip: &mcp.MultiRoundTripOptions{Disabled: true},
	}
	if listChanges {
		opts.ToolListChangedHandler = func(context.Context, *mcp.ToolListChangedRequest) { g.refreshLater(up, toolList) }
		opts.PromptListChangedHandler = func(context.Context, *mcp.PromptListChangedRequest) { g.refreshLater(up, promptList) }
		opts.ResourceListChangedHandler = func(context.Context, *mcp.ResourceListChangedRequest) { g.refreshLater(up, resourceList) }
	}
	return opts
}

// relayRequests answers an upstream's requests to the client (elicitation,
// sampling, roots) by asking the client whose request the upstream is
// serving. It runs before the protocol layer's own handling, which would
// hold elicitation schemas to a reading stricter than some clients' and
// answer roots from a static list.
func (r *relay) relayRequests(g *Gateway, up *upstream) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			var question mcp.InputRequest
			switch p := req.GetParams().(type) {
			case *mcp.ElicitParams:
				question = p
			case *mcp.CreateMessageParams:
				question = p
			case *mcp.CreateMessageWithToolsParams:
				question = p
			case *mcp.ListRootsParams:
				question = p
			default:
				return next(ctx, method, req)
			}
			cs, _ := req.GetSession().(*mcp.ClientSession)
			v, ok := r.bindings.Load(cs)
			if !ok {
				return nil, fmt.Errorf("%s from upstream %s: no client is bound to this session", method, up.name)
			}
			in, err := v.(*binding).target()
			if err != nil {
				return nil, fmt.Errorf("%s from upstream %s: %w", method, up.name, err)
			}
			if question, ok = maskQuestion(g, in.ctx, question); !ok {
				return nil, fmt.Errorf("%s from upstream %s: withheld: it could not be checked for sensitive data", method, up.name)
			}
			if in.bridge != nil {
				answer, err := in.bridge.ask(ctx, question)
				if err != nil {
					return nil, err
				}
				res, ok := answer.(mcp.Result)
				if !ok {
					return nil, fmt.Errorf("%s from upstream %s: the client's answer has the wrong type", method, up.name)
				}
				return res, nil
			}
			cctx := mergeCancel(in.ctx, ctx)
			switch p := question.(type) {
			case *mcp.ElicitParams:
				return in.ss.Elicit(cctx, p)
			case *mcp.CreateMessageParams:
				return in.ss.CreateMessage(cctx, p)
			case *mcp.CreateMessageWithToolsParams:
				return in.ss.CreateMessageWithTools(cctx, p)
			default:
				return in.ss.ListRoots(cctx, question.(*mcp.ListRootsParams))
			}
		}
	}
}

// maskQuestion masks what an upstream asks the client for the call on ctx
// (maskNotice): an elicitation's message and schema reach the user, a
// sampling request's messages reach the client's model. ok is false when
// the question must not be passed on.
func maskQuestion(g *Gateway, ctx context.Context, question mcp.InputRequest) (mcp.InputRequest, bool) {
	switch p := question.(type) {
	case *mcp.ElicitParams:
		if m, ok := maskNotice(g, ctx, p); ok {
			return m, true
		}
	case *mcp.CreateMessageParams:
		if m, ok := maskNotice(g, ctx, p); ok {
			return m, true
		}
	case *mcp.CreateMessageWithToolsParams:
		if m, ok := maskNotice(g, ctx, p); ok {
			return m, true
		}
	default:
		return question, true // a roots request carries no data
	}
	return nil, false
}

// mergeCancel returns a context carrying base's values that is also
// cancelled when other is.
func mergeCancel(base, other context.Context) context.Context {
	ctx, cancel := context.WithCancel(base)
	stop := context.AfterFunc(other, cancel)
	context.AfterFunc(ctx, func() { stop() })
	return ctx
}
