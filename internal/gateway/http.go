package gateway

import (
	"bytes"
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

	"github.com/wardenmcp/warden/internal/identity"
	"github.com/wardenmcp/warden/internal/wire"
)

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
		if err := wire.Check(body, limits.MaxDepth); err != nil {
			writeRPCError(w, http.StatusBadRequest, wire.ID(body), wire.Code(err), err.Error())
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	f.g.authenticate(w, r, f.dispatch)
}

// dispatch hands an authenticated request to the handler for its revision,
// with the principal attached for the identify stage.
func (f *front) dispatch(w http.ResponseWriter, r *http.Request, p Principal) {
	ref, done := f.g.principals.put(p)
	defer done()
	r.Header.Set(principalHeader, ref)
	if v := r.Header.Get("Mcp-Protocol-Version"); v >= firstStatelessRevision {
		f.stateless.ServeHTTP(w, r)
		return
	}
	f.stateful.ServeHTTP(w, r)
}

// authenticate establishes the caller of an HTTP request and calls next,
// or answers 401 itself. Without an authenticator every caller is the
// anonymous principal (for embedding; `warden serve` always has one).
func (g *Gateway) authenticate(w http.ResponseWriter, r *http.Request, next func(http.ResponseWriter, *http.Request, Principal)) {
	if g.authn == nil {
		next(w, r, Principal{ID: "anonymous"})
		return
	}
	g.authn.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := identity.FromContext(r.Context())
		if !ok {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		next(w, r, Principal{ID: p.ID, Roles: p.Roles, Tenant: p.Tenant, Clearance: p.Clearance, Claims: p.Claims})
	})).ServeHTTP(w, r)
}

// principalHeader carries a reference to the authenticated principal from
// the HTTP front to the identify stage. Clients cannot set it: the front
// deletes it from every request first.
const principalHeader = "X-Warden-Principal-Ref"

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
