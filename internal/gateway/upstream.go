package gateway

//lint:file-ignore SA1019 Warden relays sampling, roots and logging for clients of the revisions that still have them.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/config"
)

// upstream is one MCP server behind Warden. It keeps one shared session
// (used for listing, for stdio servers, and for stateless clients) and
// restarts it with backoff when it ends.
type upstream struct {
	name string
	cfg  *config.Upstream
	// client makes the shared session, which also listens for list
	// changes; callClient makes the sessions opened for clients.
	client     *mcp.Client
	callClient *mcp.Client
	// local is set for a server inside Warden (a built-in connector),
	// reached over an in-memory transport.
	local  *mcp.Server
	logger *slog.Logger
	// onReconnect is called after a replacement shared session connects,
	// so the catalog can be refreshed.
	onReconnect func(*upstream)

	mu      sync.Mutex
	shared  *mcp.ClientSession
	failing error     // last connection error, while no session is up
	retryAt time.Time // no reconnection attempt before this
	backoff time.Duration
	closed  bool

	idle chan *pooled // sessions lent to stateless clients, one request at a time
	// http carries every session to an HTTP upstream. Its idle pool is
	// sized for many sessions at once: with the default two idle
	// connections per host, concurrent calls would each dial anew.
	http *http.Transport
	// raw is the client of calls Warden posts itself (rawcall.go).
	rawOnce sync.Once
	raw     *http.Client
	rawErr  error
}

// newHTTPTransport keeps idle connections for as many concurrent requests
// to one upstream as Warden is likely to have in flight.
func newHTTPTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 1024
	return t
}

// pooled is a session lent to one stateless request at a time.
type pooled struct {
	cs   *mcp.ClientSession
	dead atomic.Bool
}

// maxIdle bounds the sessions kept for stateless clients between requests.
const maxIdle = 32

const (
	minBackoff = 250 * time.Millisecond
	maxBackoff = 30 * time.Second
)

var errUpstreamClosed = errors.New("gateway is shutting down")

// single reports whether the upstream is reached through one session only:
// a spawned process, or a server inside Warden.
func (u *upstream) single() bool { return len(u.cfg.Command) > 0 || u.local != nil }

// transport builds a new transport for one connection.
func (u *upstream) transport() (mcp.Transport, error) {
	if u.local != nil {
		ct, st := mcp.NewInMemoryTransports()
		if _, err := u.local.Connect(context.Background(), st, nil); err != nil {
			return nil, fmt.Errorf("starting built-in upstream %s: %w", u.name, err)
		}
		return ct, nil
	}
	if len(u.cfg.Command) > 0 {
		cmd := exec.Command(u.cfg.Command[0], u.cfg.Command[1:]...)
		cmd.Dir = u.cfg.Dir
		cmd.Env = os.Environ()
		for k, v := range u.cfg.Env {
			if strings.HasPrefix(v, "$") {
				v = os.Getenv(v[1:])
			}
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Stderr = &logWriter{logger: u.logger, upstream: u.name}
		return &mcp.CommandTransport{Command: cmd, TerminateDuration: 2 * time.Second}, nil
	}
	headers, err := u.staticHeaders()
	if err != nil {
		return nil, err
	}
	return &mcp.StreamableClientTransport{
		Endpoint:   u.cfg.URL,
		HTTPClient: u.httpClient(headers),
		MaxRetries: -1,
	}, nil
}

// httpClient carries requests to an HTTP upstream with its headers and each
// call's credential. It does not follow redirects: a redirect would carry
// them, and the call's body, to wherever the upstream points.
func (u *upstream) httpClient(headers http.Header) *http.Client {
	return &http.Client{
		Transport:     &headerTransport{base: u.http, headers: headers},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// staticHeaders are the headers configured for every request to an HTTP
// upstream, read from the environment.
func (u *upstream) staticHeaders() (http.Header, error) {
	headers := http.Header{}
	for h, env := range u.cfg.HeadersFromEnv {
		v, ok := os.LookupEnv(env)
		if !ok {
			return nil, fmt.Errorf("upstream %s: environment variable %s (header %s) is not set", u.name, env, h)
		}
		headers.Set(h, v)
	}
	return headers, nil
}

// borrow lends a session for one request: an idle one, or a new one.
func (u *upstream) borrow(ctx context.Context) (*pooled, error) {
	for {
		select {
		case p := <-u.idle:
			if !p.dead.Load() {
				return p, nil
			}
		default:
			cs, err := u.connect(ctx, u.callClient)
			if err != nil {
				return nil, err
			}
			p := &pooled{cs: cs}
			go func() {
				_ = cs.Wait()
				p.dead.Store(true)
			}()
			return p, nil
		}
	}
}

// giveBack returns a borrowed session, closing it when the pool is full.
func (u *upstream) giveBack(p *pooled) {
	if p.dead.Load() {
		return
	}
	u.mu.Lock()
	closed := u.closed
	u.mu.Unlock()
	if !closed {
		select {
		case u.idle <- p:
			return
		default:
		}
	}
	_ = p.cs.Close()
}

// connect opens a new session to the upstream with the given client.
func (u *upstream) connect(ctx context.Context, client *mcp.Client) (*mcp.ClientSession, error) {
	t, err := u.transport()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, u.cfg.ConnectTimeout)
	defer cancel()
	cs, err := client.Connect(ctx, t, nil)
	if err != nil {
		return nil, fmt.Errorf("connecting to upstream %s: %w", u.name, err)
	}
	// Under 2026-07-28 each request carries its client's log level instead.
	if init := cs.InitializeResult(); init != nil && init.ProtocolVersion < "2026-07-28" && init.Capabilities != nil && init.Capabilities.Logging != nil {
		// Ask for everything; each client's own level filters what it sees.
		if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "debug"}); err != nil {
			u.logger.Debug("upstream refused logging level", "upstream", u.name, "err", err)
		}
	}
	return cs, nil
}

// sharedSession returns the shared session, connecting it if needed. While
// the upstream is down, calls fail fast until the backoff expires.
func (u *upstream) sharedSession(ctx context.Context) (*mcp.ClientSession, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil, errUpstreamClosed
	}
	if u.shared != nil {
		return u.shared, nil
	}
	if u.failing != nil && time.Now().Before(u.retryAt) {
		return nil, u.failing
	}
	cs, err := u.connect(ctx, u.client)
	if err != nil {
		u.noteFailure(err)
		return nil, err
	}
	u.adopt(cs)
	return cs, nil
}

// noteFailure records a failed connection and lengthens the backoff.
// u.mu must be held.
func (u *upstream) noteFailure(err error) {
	u.failing = err
	if u.backoff == 0 {
		u.backoff = minBackoff
	} else {
		u.backoff = min(2*u.backoff, maxBackoff)
	}
	u.retryAt = time.Now().Add(u.backoff)
	u.logger.Warn("upstream unavailable", "upstream", u.name, "retry_in", u.backoff, "err", err)
}

// adopt makes cs the shared session and watches for its end. u.mu must be held.
func (u *upstream) adopt(cs *mcp.ClientSession) {
	u.shared = cs
	u.failing = nil
	go u.watch(cs)
}

// watch waits for the shared session to end, then reconnects with backoff
// so that a crashed stdio server comes back without a client asking.
func (u *upstream) watch(cs *mcp.ClientSession) {
	err := cs.Wait()
	u.mu.Lock()
	if u.shared == cs {
		u.shared = nil
	}
	closed := u.closed
	u.mu.Unlock()
	if closed {
		return
	}
	u.logger.Warn("upstream session ended", "upstream", u.name, "err", err)
	for {
		u.mu.Lock()
		if u.closed || u.shared != nil {
			u.mu.Unlock()
			return
		}
		if u.backoff == 0 {
			u.backoff = minBackoff
		}
		wait := u.backoff
		u.mu.Unlock()
		time.Sleep(wait)

		u.mu.Lock()
		if u.closed || u.shared != nil {
			u.mu.Unlock()
			return
		}
		next, err := u.connect(context.Background(), u.client)
		if err != nil {
			u.noteFailure(err)
			u.mu.Unlock()
			continue
		}
		u.backoff = 0
		u.adopt(next)
		u.mu.Unlock()
		u.logger.Info("upstream reconnected", "upstream", u.name)
		if u.onReconnect != nil {
			u.onReconnect(u)
		}
		return
	}
}

// close ends the shared session and stops reconnecting.
func (u *upstream) close() {
	u.mu.Lock()
	u.closed = true
	cs := u.shared
	u.shared = nil
	u.mu.Unlock()
	if cs != nil {
		_ = cs.Close()
	}
	for {
		select {
		case p := <-u.idle:
			_ = p.cs.Close()
		default:
			if u.http != nil {
				u.http.CloseIdleConnections()
			}
			return
		}
	}
}

// headerTransport adds the configured static headers to every request, and
// the per-call credential of the call the request belongs to.
type headerTransport struct {
	base    http.RoundTripper
	headers http.Header
}

func (t *headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	bearer, _ := r.Context().Value(bearerKey{}).(string)
	if len(t.headers) == 0 && bearer == "" {
		return t.base.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	for k, v := range t.headers {
		r.Header[k] = v
	}
	if bearer != "" {
		// The per-call credential replaces any static Authorization.
		r.Header.Set("Authorization", "Bearer "+bearer)
	}
	return t.base.RoundTrip(r)
}

// logWriter turns a stdio server's stderr into log records.
type logWriter struct {
	logger   *slog.Logger
	upstream string
}

func (w *logWriter) Write(p []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimRight(string(p), "\n"), "\n") {
		w.logger.Debug("upstream stderr", "upstream", w.upstream, "line", line)
	}
	return len(p), nil
}
