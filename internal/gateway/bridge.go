package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// A pendingCall is an upstream call made for a client without a session
// (2026-07-28). When the upstream asks the client something mid-call (an
// elicitation, sampling or roots request of the handshake-era protocol),
// the call keeps running while the question travels back to the client as
// an input-required result; the client's retry carries the answer, sealed
// requestState names the call, and the upstream gets its response.
type pendingCall struct {
	id        string
	upstream  string
	name      string
	principal string // TokenOwner of the caller that may resume it
	gated     string // target.gated of the call
	asks      chan *ask
	done      chan struct{}
	cancel    context.CancelFunc
	nextAsk   atomic.Uint64

	// res and err are set before done is closed.
	res any
	err error

	mu      sync.Mutex
	current *ask // the question the client was last given
	expiry  *time.Timer
}

// ask is one question from the upstream, waiting for the client's answer.
type ask struct {
	id     string
	req    mcp.InputRequest
	answer chan mcp.InputResponse
}

func newPendingCall(t target, call *Call) *pendingCall {
	pc := &pendingCall{id: newID(), upstream: t.up.name, name: t.name, gated: t.gated, asks: make(chan *ask), done: make(chan struct{})}
	if call != nil {
		pc.principal = TokenOwner(call.Principal)
	}
	return pc
}

// ask hands a question to the waiting client request and blocks until the
// client answers in a retry, or ctx ends.
func (pc *pendingCall) ask(ctx context.Context, req mcp.InputRequest) (mcp.InputResponse, error) {
	a := &ask{id: "warden-" + strconv.FormatUint(pc.nextAsk.Add(1), 10), req: req, answer: make(chan mcp.InputResponse, 1)}
	select {
	case pc.asks <- a:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-a.answer:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// await waits for the upstream call to end or to ask something.
func await[R any](g *Gateway, ctx context.Context, pc *pendingCall, m rounds[R]) (R, error) {
	var zero R
	select {
	case <-pc.done:
		res, _ := pc.res.(R)
		return finish(g, target{up: g.upstreamNamed(pc.upstream), name: pc.name, gated: pc.gated}, m, res, pc.err)
	case a := <-pc.asks:
		if m.asking == nil {
			pc.cancel()
			return zero, &UpstreamError{Message: "upstream asked the client a question this method cannot carry", Cause: errors.New("input request on a method without multi-round-trip")}
		}
		token, err := g.sealState(requestState{Upstream: pc.upstream, Name: pc.name, Pending: pc.id, Gated: pc.gated})
		if err != nil {
			pc.cancel()
			return zero, err
		}
		pc.mu.Lock()
		pc.current = a
		// An unanswered question ends the upstream call after stateTTL.
		pc.expiry = time.AfterFunc(stateTTL, func() {
			if _, ok := g.relay.pending.LoadAndDelete(pc.id); ok {
				pc.cancel()
			}
		})
		pc.mu.Unlock()
		g.relay.pending.Store(pc.id, pc)
		return m.asking(mcp.InputRequestMap{a.id: a.req}, token), nil
	case <-ctx.Done():
		pc.cancel()
		return zero, ctx.Err()
	}
}

// resume delivers the client's answer to a waiting upstream call and waits
// for what comes next.
func resume[R any](g *Gateway, ctx context.Context, call *Call, st requestState, responses mcp.InputResponseMap, m rounds[R]) (R, error) {
	var zero R
	v, ok := g.relay.pending.LoadAndDelete(st.Pending)
	if !ok {
		return zero, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "invalid requestState: the request it belongs to has ended or was already answered"}
	}
	pc := v.(*pendingCall)
	if call != nil && TokenOwner(call.Principal) != pc.principal {
		g.relay.pending.Store(pc.id, pc)
		return zero, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "invalid requestState: issued to another caller"}
	}
	pc.mu.Lock()
	a := pc.current
	resp, ok := responses[a.id]
	if !ok {
		pc.mu.Unlock()
		g.relay.pending.Store(pc.id, pc)
		return zero, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("inputResponses has no answer for %q", a.id)}
	}
	pc.expiry.Stop()
	pc.current = nil
	pc.mu.Unlock()
	a.answer <- resp
	return await(g, ctx, pc, m)
}

func (g *Gateway) upstreamNamed(name string) *upstream {
	for _, up := range g.upstreams {
		if up.name == name {
			return up
		}
	}
	return nil
}
