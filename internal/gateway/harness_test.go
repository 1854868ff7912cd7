package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/config"
	"github.com/wardenmcp/warden/internal/gateway"
	"github.com/wardenmcp/warden/internal/seal"
)

// The protocol revisions a client can speak: the last one with sessions
// and the first stateless one.
const (
	revSessions  = "2025-11-25"
	revStateless = "2026-07-28"
)

// testTimeout bounds every integration test; nothing here should come close.
const testTimeout = 30 * time.Second

// stdioServerEnv, when set to 1, makes the test binary run as a stdio MCP
// server instead of running tests (see TestMain and runStdioServer).
const stdioServerEnv = "WARDEN_TEST_STDIO_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(stdioServerEnv) == "1" {
		os.Exit(runStdioServer())
	}
	os.Exit(m.Run())
}

// testContext is the test's context with the integration test bound.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// testUpstream is a real MCP server on a loopback HTTP listener that counts
// what reaches it.
type testUpstream struct {
	URL    string
	server *mcp.Server

	mu      sync.Mutex
	posts   int            // POSTed JSON-RPC bodies
	methods map[string]int // JSON-RPC methods POSTed, by name
	callIDs []string       // the JSON-RPC ids of the tools/call requests, in order
}

// startUpstream serves s over Streamable HTTP on loopback until the test ends.
func startUpstream(t *testing.T, s *mcp.Server, stateless bool) *testUpstream {
	t.Helper()
	return startUpstreamWith(t, s, &mcp.StreamableHTTPOptions{Stateless: stateless})
}

// startUpstreamWith is startUpstream with the transport's options.
func startUpstreamWith(t *testing.T, s *mcp.Server, opts *mcp.StreamableHTTPOptions) *testUpstream {
	t.Helper()
	u := &testUpstream{server: s, methods: map[string]int{}}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, opts)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Only POSTs carry client messages; GET streams and DELETEs are
		// session plumbing whose timing is the protocol layer's business.
		if r.Method == http.MethodPost {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			var msg struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
			}
			_ = json.Unmarshal(body, &msg)
			u.mu.Lock()
			u.posts++
			u.methods[msg.Method]++
			if msg.Method == "tools/call" {
				u.callIDs = append(u.callIDs, string(msg.ID))
			}
			u.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	u.URL = srv.URL
	return u
}

// calls returns the JSON-RPC ids of the tools/call requests received.
func (u *testUpstream) calls() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.callIDs...)
}

// snapshot returns how many messages have been POSTed and by method.
func (u *testUpstream) snapshot() (int, map[string]int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	m := make(map[string]int, len(u.methods))
	for k, v := range u.methods {
		m[k] = v
	}
	return u.posts, m
}

// newServer returns an MCP server with the given implementation name.
func newServer(name string, opts *mcp.ServerOptions) *mcp.Server {
	return mcp.NewServer(&mcp.Implementation{Name: name, Version: "1.0.0"}, opts)
}

// echoArgs is the input of every test upstream's echo tool.
type echoArgs struct {
	Text string `json:"text"`
}

// addEcho registers an echo tool that answers "<prefix>:<text>" and counts
// its calls in calls (if not nil).
func addEcho(s *mcp.Server, name, prefix string, calls *atomic.Int64) {
	mcp.AddTool(s, &mcp.Tool{Name: name, Description: "echoes its text"},
		func(ctx context.Context, req *mcp.CallToolRequest, in echoArgs) (*mcp.CallToolResult, any, error) {
			if calls != nil {
				calls.Add(1)
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: prefix + ":" + in.Text}}}, nil, nil
		})
}

// logBuffer collects the gateway's log; it is shown when a test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testLogger returns a logger whose output is printed if the test fails.
// Background goroutines may outlive the test, so it never writes to t
// directly.
func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	lb := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			out := lb.String()
			if n := 20000; len(out) > n {
				out = "…" + out[len(out)-n:]
			}
			t.Logf("gateway log:\n%s", out)
		}
	})
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testSealer returns a sealer with a fixed key.
func testSealer(t *testing.T) *seal.Sealer {
	t.Helper()
	s, err := seal.New(bytes.Repeat([]byte{7}, seal.KeySize), seal.Options{})
	if err != nil {
		t.Fatalf("seal.New: %v", err)
	}
	return s
}

// newGateway builds a gateway from YAML configuration without starting it;
// it is closed when the test ends.
func newGateway(t *testing.T, yaml string) *gateway.Gateway {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), t.TempDir())
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, yaml)
	}
	g, err := gateway.New(gateway.Options{Config: cfg, Logger: testLogger(t), Sealer: testSealer(t)})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Close(ctx); err != nil {
			t.Errorf("gateway.Close: %v", err)
		}
	})
	return g
}

// startGateway builds and starts a gateway.
func startGateway(t *testing.T, yaml string) *gateway.Gateway {
	t.Helper()
	g := newGateway(t, yaml)
	if err := g.Start(testContext(t)); err != nil {
		t.Fatalf("gateway.Start: %v", err)
	}
	return g
}

// serveHTTP serves the gateway on loopback and returns its MCP endpoint.
func serveHTTP(t *testing.T, g *gateway.Gateway) string {
	t.Helper()
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv.URL + "/mcp"
}

// connectHTTP connects an SDK client speaking revision rev to endpoint.
func connectHTTP(t *testing.T, endpoint, rev string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1.0.0"}, opts)
	cs, err := c.Connect(testContext(t), &mcp.StreamableClientTransport{Endpoint: endpoint},
		&mcp.ClientSessionOptions{ProtocolVersion: rev})
	if err != nil {
		t.Fatalf("connecting client (%s): %v", rev, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// stdioPipes connects a gateway's ServeStdio to the test through two pipes.
type stdioPipes struct {
	toGateway   *io.PipeWriter // what the client writes
	fromGateway *io.PipeReader // what the client reads
	done        chan error     // ServeStdio's result
}

func serveStdio(t *testing.T, g *gateway.Gateway) *stdioPipes {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	p := &stdioPipes{toGateway: inW, fromGateway: outR, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		err := g.ServeStdio(ctx, inR, outW)
		_ = outW.Close()
		p.done <- err
	}()
	t.Cleanup(func() {
		_ = inW.Close()
		cancel()
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("ServeStdio: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("ServeStdio did not return after its input closed")
		}
		_ = outR.Close()
	})
	return p
}

// text returns the text of a tool result's single text content.
func text(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	if res == nil || len(res.Content) != 1 {
		t.Fatalf("result %+v: want exactly one content item", res)
	}
	tc, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("result content is %T, want text", res.Content[0])
	}
	return tc.Text
}

// callText calls a tool that must succeed and returns its text.
func callText(ctx context.Context, t *testing.T, cs *mcp.ClientSession, name string, args any) string {
	t.Helper()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("calling %s: %v", name, err)
	}
	if res.IsError {
		t.Fatalf("calling %s: tool error %q", name, text(t, res))
	}
	return text(t, res)
}

// toolErrorText calls a tool that must give a tool error result and
// returns its text.
func toolErrorText(ctx context.Context, t *testing.T, cs *mcp.ClientSession, name string, args any) string {
	t.Helper()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("calling %s: got protocol error %v, want a tool error result", name, err)
	}
	if !res.IsError {
		t.Fatalf("calling %s: got success %+v, want a tool error result", name, res.Content)
	}
	return text(t, res)
}

// listToolNames lists a client's tools by name, in order.
func listToolNames(ctx context.Context, t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	var names []string
	for tool, err := range cs.Tools(ctx, nil) {
		if err != nil {
			t.Fatalf("listing tools: %v", err)
		}
		names = append(names, tool.Name)
	}
	return names
}

// yamlQuote quotes s for a YAML flow scalar.
func yamlQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// httpUpstreamYAML is the configuration of one HTTP upstream.
func httpUpstreamYAML(name, url string, allow []string, extra ...string) string {
	quoted := make([]string, len(allow))
	for i, a := range allow {
		quoted[i] = yamlQuote(a)
	}
	s := fmt.Sprintf("  %s:\n    url: %s\n    allow_tools: [%s]\n", name, yamlQuote(url), strings.Join(quoted, ", "))
	for _, e := range extra {
		s += "    " + e + "\n"
	}
	return s
}
