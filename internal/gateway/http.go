package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/audit"
	"github.com/wardenmcp/warden/internal/identity"
	"github.com/wardenmcp/warden/internal/wire"
)

// JWKSPath is where the keys that verify per-call credentials are published.
const JWKSPath = "/.well-known/jwks.json"

// firstStatelessRevision is the first protocol revision without sessions.
const firstStatelessRevision = "2026-07-28"

// Handler serves MCP over Streamable HTTP at /mcp.
func (g *Gateway) Handler() http.Handler {
	limit := g.cfg.Limits.MaxMessageBytes
	stateful := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return g.stateful },
		&mcp.StreamableHTTPOptions{Logger: g.logger, MaxRequestBodyBytes: limit})
	stateless := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return g.stateless },
		&mcp.StreamableHTTPOptions{Logger: g.logger, MaxRequestBodyBytes: limit, Stateless: true, PropagateRequestCancellation: true})
	mux := http.NewServeMux()
	mux.Handle("/mcp", &front{g: g, stateful: stateful, stateless: stateless})
	if g.jwks != nil {
		mux.Handle(JWKSPath, g.jwks)
	}
	if g.authn != nil {
		meta := g.authn.MetadataHandler()
		mux.Handle(identity.MetadataPath, meta)
		mux.Handle(identity.MetadataPath+"/", meta)
	}
	return mux
}

// front checks every HTTP request before the protocol layer reads it:
// Host and Origin, size, and the strict message checks of package wire.
// It then hands the request to the handler for the client's revision.
type front struct {
	g         *Gateway
	stateful  http.Handler
	stateless http.Handler
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Only the front may say who the caller is.
	r.Header.Del(principalHeader)
	if err := f.checkHost(r); err != nil {
		http.Error(w, "Forbidden: "+err.Error(), http.StatusForbidden)
		return
	}
	if err := f.checkOrigin(r); err != nil {
		http.Error(w, "Forbidden: "+err.Error(), http.StatusForbidden)
		return
	}
	// Who is calling is settled before Warden reads a byte of the body.
	f.g.authenticate(w, r, f.checked)
}

// checked reads and checks the body of an authenticated request, then
// dispatches it.
func (f *front) checked(w http.ResponseWriter, r *http.Request, p Principal) {
	if r.Method == http.MethodPost {
		limits := f.g.cfg.Limits
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limits.MaxMessageBytes))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeRPCError(w, http.StatusRequestEntityTooLarge, nil, -32600,
					fmt.Sprintf("message exceeds the limit of %d bytes", limits.MaxMessageBytes))
				return
			}
			http.Error(w, "Bad Request: reading body failed", http.StatusBadRequest)
			return
		}
		method, err := wire.CheckMethod(body, limits.MaxDepth)
		if err != nil {
			f.g.recordRefusal(r.Context(), p, "wire", "malformed request: "+err.Error())
			writeRPCError(w, http.StatusBadRequest, wire.ID(body), wire.Code(err), err.Error())
			return
		}
		// A method a client never sends is answered "method not found" on
		// every revision, before anything else reads the message.
		if method != nil && !clientMethods[string(method)] {
			writeRPCError(w, http.StatusNotFound, wire.ID(body), -32601, fmt.Sprintf("method %q is not part of MCP", truncate(string(method), 80)))
			return
		}
		if f.g.fastCalls && string(method) == "tools/call" {
			if fc, ok := f.g.parseFastCall(r, body); ok {
				defer f.g.attachPrincipal(r, p)()
				f.g.serveFast(w, r, fc)
				return
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	f.dispatch(w, r, p)
}

// dispatch hands an authenticated request to the handler for its revision,
// with the principal attached for the identify stage. A session belongs to
// the principal that opened it: another caller presenting its id is
// refused, so no one can read from or end someone else's session.
func (f *front) dispatch(w http.ResponseWriter, r *http.Request, p Principal) {
	defer f.g.attachPrincipal(r, p)()
	if v := r.Header.Get("Mcp-Protocol-Version"); v >= firstStatelessRevision {
		f.stateless.ServeHTTP(w, r)
		return
	}
	owner := TokenOwner(p)
	if id := r.Header.Get("Mcp-Session-Id"); id != "" {
		if !f.g.sessionOwners.owns(id, owner) {
			http.Error(w, "Forbidden: the session belongs to another caller", http.StatusForbidden)
			return
		}
		if r.Method == http.MethodDelete {
			defer f.g.sessionOwners.forget(id)
		}
		f.stateful.ServeHTTP(w, r)
		return
	}
	f.stateful.ServeHTTP(&sessionRecorder{ResponseWriter: w, owners: &f.g.sessionOwners, owner: owner}, r)
}

// clientMethods are the methods an MCP client sends, on every revision
// Warden speaks.
var clientMethods = map[string]bool{
	"initialize": true, "ping": true, "server/discover": true,
	"tools/list": true, "tools/call": true,
	"prompts/list": true, "prompts/get": true,
	"resources/list": true, "resources/templates/list": true, "resources/read": true,
	"resources/subscribe": true, "resources/unsubscribe": true,
	"completion/complete": true, "logging/setLevel": true, "subscriptions/listen": true,
	"notifications/initialized": true, "notifications/cancelled": true, "notifications/progress": true,
	"notifications/roots/list_changed": true, "notifications/elicitation/complete": true,
}

// sessionOwners maps stateful session ids to the principal that opened them.
type sessionOwners struct{ m sync.Map }

// owns reports whether owner may use session id: sessions Warden does not
// know (ended, or never opened) are left to the protocol layer, which
// answers 404.
func (s *sessionOwners) owns(id, owner string) bool {
	v, ok := s.m.Load(id)
	return !ok || v.(string) == owner
}

func (s *sessionOwners) forget(id string) { s.m.Delete(id) }

// sessionRecorder notes the session id a response creates, and its owner.
type sessionRecorder struct {
	http.ResponseWriter
	owners *sessionOwners
	owner  string
}

func (r *sessionRecorder) WriteHeader(code int) {
	if id := r.Header().Get("Mcp-Session-Id"); id != "" {
		r.owners.m.Store(id, r.owner)
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *sessionRecorder) Write(b []byte) (int, error) {
	if id := r.Header().Get("Mcp-Session-Id"); id != "" {
		if _, ok := r.owners.m.Load(id); !ok {
			r.owners.m.Store(id, r.owner)
		}
	}
	return r.ResponseWriter.Write(b)
}

// Flush lets streamed responses through the recorder.
func (r *sessionRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (r *sessionRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// authenticate establishes the caller of an HTTP request and calls next,
// or answers 401 itself. Without an authenticator every caller is the
// anonymous principal (for embedding; `warden serve` always has one).
func (g *Gateway) authenticate(w http.ResponseWriter, r *http.Request, next func(http.ResponseWriter, *http.Request, Principal)) {
	if g.authn == nil {
		next(w, r, Principal{ID: "anonymous", Method: "anonymous"})
		return
	}
	passed := false
	sw := &statusWriter{ResponseWriter: w}
	g.authn.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := identity.FromContext(r.Context())
		if !ok {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		passed = true
		next(w, r, Principal(p))
	})).ServeHTTP(sw, r)
	if !passed && sw.status >= 400 {
		g.recordRefusal(r.Context(), Principal{}, "identity", fmt.Sprintf("authentication failed (HTTP %d)", sw.status))
	}
}

// recordRefusal writes a request refused before the pipeline (failed
// authentication, a malformed message) to the audit log: failed attempts
// are audited too. The append is durable before the refusal is answered,
// which also paces a client that floods Warden with bad requests.
func (g *Gateway) recordRefusal(ctx context.Context, p Principal, rule, reason string) {
	if g.audit == nil {
		return
	}
	_, err := g.audit.Append(context.WithoutCancel(ctx), audit.Record{
		Kind: audit.KindDecision, DecisionID: newID(), Principal: p.ID, Method: "http",
		Decision: audit.DecisionDeny, Rules: []string{rule}, Reason: reason, Status: "denied",
	})
	if err != nil {
		g.logger.Error("audit append failed for a refused request", "rule", rule, "err", err)
	}
}

// statusWriter notes the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets streamed responses through.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// principalHeader carries a reference to the authenticated principal from
// the HTTP front to the identify stage. Clients cannot set it: the front
// deletes it from every request first.
const principalHeader = "X-Warden-Principal-Ref"

// attachPrincipal makes p the caller the identify stage finds for r, until
// the returned function is called.
func (g *Gateway) attachPrincipal(r *http.Request, p Principal) (detach func()) {
	ref, done := g.principals.put(p)
	r.Header.Set(principalHeader, ref)
	return done
}

// principalTable holds the principals of HTTP requests in flight.
type principalTable struct{ m sync.Map }

func (t *principalTable) put(p Principal) (ref string, done func()) {
	ref = newID()
	t.m.Store(ref, p)
	return ref, func() { t.m.Delete(ref) }
}

func (t *principalTable) lookup(ref string) (Principal, bool) {
	if ref == "" {
		return Principal{}, false
	}
	v, ok := t.m.Load(ref)
	if !ok {
		return Principal{}, false
	}
	return v.(Principal), true
}

// checkHost refuses Host headers that a DNS-rebinding attack would send: on
// a loopback listener only loopback hosts (and configured ones) are served.
func (f *front) checkHost(r *http.Request) error {
	host := hostOnly(r.Host)
	if slices.Contains(f.g.cfg.AllowedHosts, host) || slices.Contains(f.g.cfg.AllowedHosts, r.Host) {
		return nil
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if local != nil && isLoopback(hostOnly(local.String())) && !isLoopback(host) {
		return fmt.Errorf("invalid Host header %q", truncate(r.Host, 80))
	}
	if len(f.g.cfg.AllowedHosts) > 0 && (local == nil || !isLoopback(hostOnly(local.String()))) {
		return fmt.Errorf("host %q is not in allowed_hosts", truncate(r.Host, 80))
	}
	return nil
}

// checkOrigin refuses browser requests from origins not allowed: the
// origin must be configured, or be the server itself.
func (f *front) checkOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" || slices.Contains(f.g.cfg.AllowedOrigins, origin) {
		return nil
	}
	u, err := url.Parse(origin)
	if err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	return fmt.Errorf("origin %q is not allowed", truncate(origin, 80))
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return strings.Trim(h, "[]")
	}
	return strings.Trim(hostport, "[]")
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func writeRPCError(w http.ResponseWriter, status int, id []byte, code int64, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(wire.ErrorResponse(id, code, msg))
}
