// Package upstream is the minimal, fast MCP server the load harness calls:
// one tool, echo, that returns its arguments. It does as little as an MCP
// server can, so that what a load test measures beyond it is the cost of
// whatever stands between the client and this server.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ToolName is the one tool the server offers.
const ToolName = "echo"

// firstStatelessRevision is the first protocol revision without sessions.
const firstStatelessRevision = "2026-07-28"

// NewServer returns the MCP server with its echo tool.
func NewServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "warden-bench-upstream", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{
		Name:        ToolName,
		Description: "Returns its arguments as text.",
		InputSchema: map[string]any{"type": "object"},
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
	}, func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(req.Params.Arguments)}}}, nil
	})
	return s
}

// Handler serves the server over Streamable HTTP at any path, with JSON
// responses (no SSE framing on calls): sessions for revisions before
// 2026-07-28, stateless requests from 2026-07-28 on.
func Handler(s *mcp.Server, logger *slog.Logger) http.Handler {
	get := func(*http.Request) *mcp.Server { return s }
	stateful := mcp.NewStreamableHTTPHandler(get, &mcp.StreamableHTTPOptions{JSONResponse: true, Logger: logger})
	stateless := mcp.NewStreamableHTTPHandler(get, &mcp.StreamableHTTPOptions{JSONResponse: true, Stateless: true, Logger: logger})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Protocol-Version") >= firstStatelessRevision {
			stateless.ServeHTTP(w, r)
			return
		}
		stateful.ServeHTTP(w, r)
	})
}

// Serve runs the server on ln until ctx is done. It logs one line,
// "upstream serving" with the endpoint's url, once it accepts
// connections; process supervisors wait for that line.
func Serve(ctx context.Context, ln net.Listener, logger *slog.Logger) error {
	srv := &http.Server{Handler: Handler(NewServer(), logger), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("upstream serving", "url", "http://"+ln.Addr().String()+"/mcp")
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}

// Listen parses addr and listens on it, refusing anything but a loopback
// address: the benchmark upstream is never exposed.
func Listen(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("listen address %q: the benchmark upstream listens on a loopback IP address only", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening: %w", err)
	}
	return ln, nil
}
