// Package gateway is Warden's request path: it stands between MCP clients
// and upstream MCP servers, passes every client request through one ordered
// pipeline (pipeline.go), and relays what is allowed.
package gateway

//lint:file-ignore SA1019 Warden relays sampling, roots and logging for clients of the revisions that still have them.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/audit"
	"github.com/wardenmcp/warden/internal/config"
	"github.com/wardenmcp/warden/internal/credential"
	"github.com/wardenmcp/warden/internal/identity"
	"github.com/wardenmcp/warden/internal/mask"
	"github.com/wardenmcp/warden/internal/pin"
	"github.com/wardenmcp/warden/internal/policy"
)

// Version is reported to clients and upstreams as Warden's implementation
// version.
const Version = "0.1.0"

// Sealer seals state that Warden hands to clients and must get back intact
// (the requestState of input-required results).
type Sealer interface {
	SealJSON(purpose string, v any, ttl time.Duration) (string, error)
	OpenJSON(purpose, token string, v any) error
}

// Options are a gateway's collaborators, wired by the command line.
type Options struct {
	Config *config.Config
	Logger *slog.Logger
	Sealer Sealer
	// Principal is the identity of a stdio client (the local user).
	Principal Principal
	// Policy decides calls. Nil means only the upstreams' allow_tools
	// lists decide.
	Policy PolicySource
	// Audit records every decision and outcome. Nil means decisions are
	// only logged.
	Audit Auditor
	// Authn authenticates HTTP callers. Nil means every HTTP caller is
	// "anonymous" (for embedding and tests; `warden serve` always sets it).
	Authn *identity.Authenticator
	// Local are servers inside Warden (built-in connectors), by upstream
	// name; they are reached through the protocol like any upstream.
	Local map[string]*mcp.Server
	// Credentials mints the short-lived credential each forwarded tool
	// call carries; JWKS publishes the keys that verify them. Nil means
	// calls carry none.
	Credentials *credential.Minter
	JWKS        http.Handler
	// Grants resolves the task grants calls present. Nil: calls have no
	// task.
	Grants Grants
	// StdioTask is the task grant token of a stdio client (its host passes
	// it in the environment).
	StdioTask string
	// Pinner pins tool definitions and quarantines changed ones. Nil:
	// definitions are not pinned.
	Pinner *pin.Pinner
	// Counters keeps per-task totals (masking.max_per_task). Nil: only
	// per-result limits apply.
	Counters TaskCounters
	// Approvals escalates calls the policy says need approval; ApprovalHold
	// is how long such a call waits for a decision. Nil: those calls are
	// refused.
	Approvals    Approvals
	ApprovalHold time.Duration
	// Tokens stores the tokens of the policy's tokenize masking action;
	// a TokenRecorder records whom each token was issued to. Nil: a result
	// the policy would tokenize is withheld.
	Tokens mask.TokenSink
}

// PolicySource returns the policy in force; it may change between calls
// (live reload).
type PolicySource interface {
	Policy() *policy.Policy
}

// Auditor appends records to the audit log. When Append returns nil, the
// record is on disk; Enqueue only queues it for the next write, for records
// nobody waits on (a forwarded call's outcome, after its decision record).
type Auditor interface {
	Append(ctx context.Context, r audit.Record) (uint64, error)
	Enqueue(ctx context.Context, r audit.Record) error
}

// Gateway relays MCP between clients and upstream servers.
type Gateway struct {
	cfg          *config.Config
	logger       *slog.Logger
	sealer       Sealer
	principal    Principal
	policy       PolicySource
	audit        Auditor
	authn        *identity.Authenticator
	minter       *credential.Minter
	grants       Grants
	stdioTask    string
	pinner       *pin.Pinner
	counters     TaskCounters
	approvals    Approvals
	approvalHold time.Duration
	jwks         http.Handler
	tokens       mask.TokenSink
	maskers      maskerCache
	// principals carries HTTP callers from the front to the pipeline.
	principals principalTable
	// sessionOwners binds stateful sessions to the caller that opened them.
	sessionOwners sessionOwners

	upstreams []*upstream // in name order
	relay     relay

	// stateful serves clients of the handshake era (initialize, sessions)
	// over HTTP and stdio; stateless serves 2026-07-28 requests.
	stateful   *mcp.Server
	stateless  *mcp.Server
	impl       *mcp.Implementation // how Warden names itself to clients
	clientImpl *mcp.Implementation // and to upstreams
	// fastCalls lets the HTTP front serve sessionless tool calls itself
	// (fastcall.go).
	fastCalls bool

	mu       sync.Mutex // guards listings and catalog swaps
	listings map[string]*listing
	catalog  atomic.Pointer[catalog]

	// closeMu orders entering a request (read) against Close setting
	// closing (write), so that no request joins inflight after Close
	// began waiting for it.
	closeMu  sync.RWMutex
	inflight sync.WaitGroup // client requests being relayed
	closing  atomic.Bool
	// life ends when Close stops waiting for requests in flight: their
	// upstream requests are cancelled.
	life context.Context
	stop context.CancelFunc
}

// New builds a gateway from its configuration. It connects nothing: call
// Start.
func New(opts Options) (*Gateway, error) {
	if opts.Config == nil {
		return nil, errors.New("gateway: no configuration")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Sealer == nil {
		return nil, errors.New("gateway: no sealer for request state")
	}
	if opts.Principal.ID == "" {
		opts.Principal = Principal{ID: "local"}
	}
	g := &Gateway{
		cfg:          opts.Config,
		logger:       opts.Logger,
		sealer:       opts.Sealer,
		principal:    opts.Principal,
		policy:       opts.Policy,
		audit:        opts.Audit,
		authn:        opts.Authn,
		minter:       opts.Credentials,
		grants:       opts.Grants,
		stdioTask:    opts.StdioTask,
		pinner:       opts.Pinner,
		counters:     opts.Counters,
		approvals:    opts.Approvals,
		approvalHold: opts.ApprovalHold,
		jwks:         opts.JWKS,
		tokens:       opts.Tokens,
		listings:     map[string]*listing{},
	}
	g.impl = &mcp.Implementation{Name: "warden", Title: "Warden MCP gateway", Version: Version}
	g.clientImpl = &mcp.Implementation{Name: "warden", Version: Version}
	g.fastCalls = !opts.Config.DisableFastPath
	g.life, g.stop = context.WithCancel(context.Background())
	g.catalog.Store(&catalog{})
	for _, name := range opts.Config.UpstreamNames() {
		if opts.Config.Upstreams[name].Postgres != nil && opts.Local[name] == nil {
			return nil, fmt.Errorf("gateway: upstream %s is a built-in connector but no server was provided for it", name)
		}
		up := &upstream{name: name, cfg: opts.Config.Upstreams[name], logger: opts.Logger, idle: make(chan *pooled, maxIdle), local: opts.Local[name], http: newHTTPTransport()}
		impl := g.clientImpl
		up.client = mcp.NewClient(impl, g.relay.clientOptions(g, up, true))
		up.client.AddReceivingMiddleware(g.relay.relayRequests(g, up))
		up.callClient = mcp.NewClient(impl, g.relay.clientOptions(g, up, false))
		up.callClient.AddReceivingMiddleware(g.relay.relayRequests(g, up))
		up.onReconnect = func(up *upstream) { g.refreshLater(up, anyList) }
		g.upstreams = append(g.upstreams, up)
	}
	g.stateful = g.newServer(false)
	g.stateless = g.newServer(true)
	return g, nil
}

func (g *Gateway) newServer(stateless bool) *mcp.Server {
	s := mcp.NewServer(g.impl, &mcp.ServerOptions{
		Logger: g.logger,
		Capabilities: &mcp.ServerCapabilities{
			Logging:     &mcp.LoggingCapabilities{},
			Tools:       &mcp.ToolCapabilities{ListChanged: true},
			Prompts:     &mcp.PromptCapabilities{ListChanged: true},
			Resources:   &mcp.ResourceCapabilities{ListChanged: true, Subscribe: true},
			Completions: &mcp.CompletionCapabilities{},
		},
		// A session's owner is forgotten when the session ends.
		InitializedHandler: func(_ context.Context, req *mcp.InitializedRequest) {
			ss := req.Session
			go func() {
				_ = ss.Wait()
				g.sessionOwners.forget(ss.ID())
			}()
		},
		CompletionHandler:  g.complete,
		SubscribeHandler:   g.subscribe,
		UnsubscribeHandler: g.unsubscribe,
	})
	s.AddReceivingMiddleware(g.pipeline(stateless))
	return s
}

// Start connects every upstream and builds the catalog. An upstream that
// cannot be reached is logged and retried in the background; a name
// collision between upstreams is an error.
func (g *Gateway) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	lists := make([]*listing, len(g.upstreams))
	for i, up := range g.upstreams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := g.list(ctx, up)
			if err != nil {
				g.logger.Error("upstream not available at start", "upstream", up.name, "err", err)
				go g.retryListing(up)
				return
			}
			lists[i] = l
		}()
	}
	wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, up := range g.upstreams {
		if lists[i] != nil {
			g.listings[up.name] = lists[i]
		}
	}
	_, err := g.rebuild()
	return err
}

// retryListing lists an upstream that was down at start once it is up.
func (g *Gateway) retryListing(up *upstream) {
	for delay := minBackoff; !g.closing.Load(); delay = min(2*delay, maxBackoff) {
		time.Sleep(delay)
		if _, err := up.sharedSession(context.Background()); err == nil {
			g.refresh(up, anyList)
			return
		}
	}
}

// list fetches everything an upstream offers over its shared session.
func (g *Gateway) list(ctx context.Context, up *upstream) (*listing, error) {
	cs, err := up.sharedSession(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, up.cfg.ConnectTimeout)
	defer cancel()
	l := &listing{}
	caps := &mcp.ServerCapabilities{}
	if init := cs.InitializeResult(); init != nil && init.Capabilities != nil {
		caps = init.Capabilities
	}
	if caps.Tools != nil {
		for t, err := range cs.Tools(ctx, nil) {
			if err != nil {
				return nil, fmt.Errorf("listing tools of %s: %w", up.name, err)
			}
			l.tools = append(l.tools, t)
		}
		l.tools = g.pinned(ctx, up, l.tools)
	}
	if caps.Prompts != nil {
		for p, err := range cs.Prompts(ctx, nil) {
			if err != nil {
				return nil, fmt.Errorf("listing prompts of %s: %w", up.name, err)
			}
			l.prompts = append(l.prompts, p)
		}
	}
	if caps.Resources != nil {
		for r, err := range cs.Resources(ctx, nil) {
			if err != nil {
				return nil, fmt.Errorf("listing resources of %s: %w", up.name, err)
			}
			l.resources = append(l.resources, r)
		}
		for t, err := range cs.ResourceTemplates(ctx, nil) {
			if err != nil {
				// Many servers that offer resources have no templates and
				// answer "method not found": that is an empty list.
				if isMethodNotFound(err) {
					break
				}
				return nil, fmt.Errorf("listing resource templates of %s: %w", up.name, err)
			}
			l.templates = append(l.templates, t)
		}
	}
	return l, nil
}

// listKind names one of the lists an upstream can say has changed.
type listKind int

const (
	anyList listKind = iota
	toolList
	promptList
	resourceList
)

func isMethodNotFound(err error) bool {
	var werr *jsonrpc.Error
	return errors.As(err, &werr) && werr.Code == jsonrpc.CodeMethodNotFound
}

// refreshLater re-lists an upstream outside the notification handler that
// asked for it (a handler must not block on its own session). When the
// upstream said a list changed, clients are told so even if the new list
// looks the same to Warden: the upstream knows what it changed.
func (g *Gateway) refreshLater(up *upstream, kind listKind) { go g.refresh(up, kind) }

func (g *Gateway) refresh(up *upstream, kind listKind) {
	l, err := g.list(context.Background(), up)
	if err != nil {
		g.logger.Warn("re-listing upstream failed", "upstream", up.name, "err", err)
		return
	}
	g.logger.Debug("upstream re-listed", "upstream", up.name, "tools", len(l.tools), "prompts", len(l.prompts), "resources", len(l.resources))
	g.mu.Lock()
	defer g.mu.Unlock()
	g.listings[up.name] = l
	changes, err := g.rebuild()
	if err != nil {
		g.logger.Error("upstream offers a name another upstream owns; the first owner keeps it", "err", err)
	}
	if kind != anyList && !changes[kind] {
		g.announce(up, kind)
	}
}

// announce makes both servers send a list-changed notification for kind by
// registering one of the upstream's entries again, unchanged.
func (g *Gateway) announce(up *upstream, kind listKind) {
	cat := g.catalog.Load()
	for _, s := range []*mcp.Server{g.stateful, g.stateless} {
		switch kind {
		case toolList:
			for _, rt := range cat.tools {
				if rt.up == up {
					s.AddTool(rt.exposed, g.forwardTool(rt))
					break
				}
			}
		case promptList:
			for _, pr := range cat.prompts {
				if pr.up == up {
					s.AddPrompt(pr.exposed, g.forwardPrompt(pr))
					break
				}
			}
		case resourceList:
			for _, rr := range cat.resources {
				if rr.up == up {
					s.AddResource(rr.resource, g.forwardResource(rr.up))
					break
				}
			}
		}
	}
}

// rebuild recomputes the catalog from the listings and brings both servers'
// registrations in line with it, reporting which lists changed. g.mu must
// be held.
func (g *Gateway) rebuild() (map[listKind]bool, error) {
	next, errs := buildCatalog(g.upstreams, g.listings)
	g.warnSimilarNames(next)
	prev := g.catalog.Swap(next)
	var changes map[listKind]bool
	for _, s := range []*mcp.Server{g.stateful, g.stateless} {
		changes = g.sync(s, prev, next)
	}
	return changes, errors.Join(errs...)
}

// sync registers what is new or changed and removes what is gone.
func (g *Gateway) sync(s *mcp.Server, prev, next *catalog) map[listKind]bool {
	resources := syncList(prev.resources, next.resources,
		func(a, b *resourceRoute) bool { return a.up == b.up && sameJSON(a.resource, b.resource) },
		s.RemoveResources, func(r *resourceRoute) { s.AddResource(r.resource, g.forwardResource(r.up)) })
	templates := syncList(prev.templates, next.templates,
		func(a, b *templateRoute) bool { return a.up == b.up && sameJSON(a.template, b.template) },
		s.RemoveResourceTemplates, func(r *templateRoute) { s.AddResourceTemplate(r.template, g.forwardResource(r.up)) })
	return map[listKind]bool{
		toolList: syncList(prev.tools, next.tools,
			func(a, b *toolRoute) bool { return a.up == b.up && sameJSON(a.exposed, b.exposed) },
			s.RemoveTools, func(r *toolRoute) { s.AddTool(r.exposed, g.forwardTool(r)) }),
		promptList: syncList(prev.prompts, next.prompts,
			func(a, b *promptRoute) bool { return a.up == b.up && sameJSON(a.exposed, b.exposed) },
			s.RemovePrompts, func(r *promptRoute) { s.AddPrompt(r.exposed, g.forwardPrompt(r)) }),
		resourceList: resources || templates,
	}
}

// syncList brings one list's registrations in line with next: it removes
// what is gone and registers what is new or changed, and reports whether
// anything changed.
func syncList[R any](prev, next map[string]R, same func(a, b R) bool, remove func(...string), add func(R)) bool {
	var gone []string
	for k := range prev {
		if _, ok := next[k]; !ok {
			gone = append(gone, k)
		}
	}
	remove(gone...)
	changed := len(gone) > 0
	for k, r := range next {
		if old, ok := prev[k]; ok && same(old, r) {
			continue
		}
		add(r)
		changed = true
	}
	return changed
}

func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// enter counts a client request in flight, or reports false once Close has
// begun; a request that entered calls inflight.Done when it ends.
func (g *Gateway) enter() bool {
	g.closeMu.RLock()
	defer g.closeMu.RUnlock()
	if g.closing.Load() {
		return false
	}
	g.inflight.Add(1)
	return true
}

// Close stops relaying: new requests are refused, requests in flight get
// until ctx is done to finish, then every upstream session is closed.
func (g *Gateway) Close(ctx context.Context) error {
	g.closeMu.Lock()
	g.closing.Store(true)
	g.closeMu.Unlock()
	done := make(chan struct{})
	go func() {
		g.inflight.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("requests still in flight at shutdown: %w", ctx.Err())
		g.stop() // their upstream requests end now
	}
	defer g.stop()
	for _, s := range []*mcp.Server{g.stateful, g.stateless} {
		for ss := range s.Sessions() {
			_ = ss.Close()
		}
	}
	for _, up := range g.upstreams {
		up.close()
	}
	return err
}
