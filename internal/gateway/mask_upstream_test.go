package gateway_test

//lint:file-ignore SA1019 Warden relays upstream log messages to clients of the revisions that still have them, and this file tests that they are masked.

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// leakyShop is an upstream that puts a customer's email and a secret into
// what it sends besides results: a JSON-RPC error (message and data), log
// messages and progress messages. After its notices, leaky_notices waits
// for seen to close (or 5 s): the library's client hands notifications
// over apart from results, so a notice could otherwise arrive after its
// call ended.
func leakyShop(seen chan struct{}) *mcp.Server {
	s := newServer("shop", nil)
	leak := "customer " + custEmail + " key " + custAWS
	s.AddTool(&mcp.Tool{Name: "leaky_error", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			data, _ := json.Marshal(map[string]any{"customer": custEmail, "till": 3})
			return nil, &jsonrpc.Error{Code: -32050, Message: "no refund for " + leak, Data: data}
		})
	s.AddTool(&mcp.Tool{Name: "leaky_notices", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if err := req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: "info", Data: map[string]any{"note": leak}}); err != nil {
				return nil, err
			}
			if tok := req.Params.GetProgressToken(); tok != nil {
				if err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Message: leak}); err != nil {
					return nil, err
				}
			}
			if seen == nil {
				// A log after the call has ended: no call is in flight to
				// take the caller's plan from.
				go func() {
					time.Sleep(50 * time.Millisecond)
					_ = req.Session.Log(context.Background(), &mcp.LoggingMessageParams{Level: "info", Data: map[string]any{"late": leak}})
				}()
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil
			}
			select {
			case <-seen:
			case <-time.After(5 * time.Second):
			case <-ctx.Done():
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil
		})
	s.AddTool(&mcp.Tool{Name: "leaky_question", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Message: "Refund " + leak + "?",
				RequestedSchema: json.RawMessage(`{"type":"object","properties":{"ok":{"type":"boolean"}}}`)})
			if err != nil {
				return nil, err
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: res.Action}}}, nil
		})
	return s
}

// checkMasked fails the test if got shows the customer's email or the
// secret, or lacks the email's redacted form.
func checkMasked(t *testing.T, what, got string) {
	t.Helper()
	if strings.Contains(got, custEmail) || strings.Contains(got, custAWS) {
		t.Errorf("%s shows the upstream's data unmasked: %s", what, got)
	}
	if !strings.Contains(got, "[EMAIL_ADDRESS]") {
		t.Errorf("%s lacks the masked email: %s", what, got)
	}
}

// TestUpstreamErrorIsMasked: an upstream's JSON-RPC error reaches the
// client masked like a result, message and data, on every path.
func TestUpstreamErrorIsMasked(t *testing.T) {
	up := startUpstreamWith(t, leakyShop(nil), &mcp.StreamableHTTPOptions{Stateless: true})
	for _, libraryOnly := range []bool{false, true} {
		g, _ := startPathGateway(t, up.URL, fastPathPolicy, libraryOnly)
		endpoint := serveHTTP(t, g)
		for _, rev := range []string{revSessions, revStateless} {
			t.Run(map[bool]string{false: "fast", true: "library"}[libraryOnly]+"/"+rev, func(t *testing.T) {
				ctx := testContext(t)
				_, err := connectHTTP(t, endpoint, rev, nil).CallTool(ctx, &mcp.CallToolParams{Name: "shop.leaky_error", Arguments: map[string]any{}})
				var werr *jsonrpc.Error
				if !errors.As(err, &werr) || werr.Code != -32050 {
					t.Fatalf("error %v, want the upstream's JSON-RPC error -32050", err)
				}
				checkMasked(t, "error message", werr.Message)
				checkMasked(t, "error data", string(werr.Data))
				if !strings.Contains(werr.Message, "no refund for customer") || !strings.Contains(string(werr.Data), `"till":3`) {
					t.Errorf("masking changed more than the sensitive values: %q %s", werr.Message, werr.Data)
				}
			})
		}
	}
}

// TestUpstreamNoticesAreMasked: log and progress messages an upstream
// sends during a call reach the client masked by the call's plan, whether
// Warden posts the call itself or the library's client carries it.
func TestUpstreamNoticesAreMasked(t *testing.T) {
	for _, tc := range []struct {
		name          string
		libraryOnly   bool
		progressToken any // a token sends the call through the library's client
	}{
		{name: "posted"},
		{name: "library", libraryOnly: true, progressToken: "p-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			seen := make(chan struct{})
			up := startUpstreamWith(t, leakyShop(seen), &mcp.StreamableHTTPOptions{Stateless: true})
			g, _ := startPathGateway(t, up.URL, fastPathPolicy, tc.libraryOnly)
			logs, progress := make(chan string, 4), make(chan string, 4)
			cs := connectHTTP(t, serveHTTP(t, g), revSessions, &mcp.ClientOptions{
				LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) {
					b, _ := json.Marshal(req.Params.Data)
					logs <- string(b)
				},
				ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
					progress <- req.Params.Message
				},
			})
			if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "debug"}); err != nil {
				t.Fatal(err)
			}
			meta := mcp.Meta{mcp.MetaKeyLogLevel: "debug"}
			if tc.progressToken != nil {
				meta["progressToken"] = tc.progressToken
			}
			type answer struct {
				res *mcp.CallToolResult
				err error
			}
			answered := make(chan answer, 1)
			go func() {
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "shop.leaky_notices", Arguments: map[string]any{}, Meta: meta})
				answered <- answer{res, err}
			}()
			wait := func(what string, ch chan string) {
				select {
				case got := <-ch:
					checkMasked(t, what, got)
				case <-time.After(5 * time.Second):
					t.Errorf("the upstream's %s did not reach the client", what)
				}
			}
			wait("log message", logs)
			if tc.progressToken != nil {
				wait("progress message", progress)
			}
			close(seen)
			if a := <-answered; a.err != nil || a.res.IsError {
				t.Fatalf("shop.leaky_notices: %v %+v", a.err, a.res)
			}
		})
	}
}

// TestLateUpstreamNoticeIsMasked: a log message an upstream sends after
// the call it belongs to has ended still reaches the client masked.
func TestLateUpstreamNoticeIsMasked(t *testing.T) {
	ctx := testContext(t)
	up := startUpstream(t, leakyShop(nil), false)
	g, _ := startPathGateway(t, up.URL, fastPathPolicy, false)
	logs := make(chan string, 4)
	cs := connectHTTP(t, serveHTTP(t, g), revSessions, &mcp.ClientOptions{
		LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) {
			b, _ := json.Marshal(req.Params.Data)
			logs <- string(b)
		},
	})
	if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "debug"}); err != nil {
		t.Fatal(err)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "shop.leaky_notices", Arguments: map[string]any{},
		Meta: mcp.Meta{mcp.MetaKeyLogLevel: "debug"}})
	if err != nil || res.IsError {
		t.Fatalf("shop.leaky_notices: %v %+v", err, res)
	}
	for {
		select {
		case got := <-logs:
			if strings.Contains(got, "late") {
				checkMasked(t, "late log message", got)
				return
			}
			checkMasked(t, "log message", got)
		case <-time.After(5 * time.Second):
			t.Fatal("the upstream's late log message did not reach the client")
		}
	}
}

// TestUpstreamQuestionIsMasked: an elicitation an upstream sends during a
// call reaches the user masked by the call's plan, whether the client has
// a session or answers it as an input-required result.
func TestUpstreamQuestionIsMasked(t *testing.T) {
	up := startUpstream(t, leakyShop(nil), false)
	g, _ := startPathGateway(t, up.URL, fastPathPolicy, false)
	endpoint := serveHTTP(t, g)
	for _, rev := range []string{revSessions, revStateless} {
		t.Run(rev, func(t *testing.T) {
			ctx := testContext(t)
			asked := make(chan string, 4)
			cs := connectHTTP(t, endpoint, rev, &mcp.ClientOptions{
				ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
					asked <- req.Params.Message
					return &mcp.ElicitResult{Action: "decline"}, nil
				},
			})
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "shop.leaky_question", Arguments: map[string]any{}})
			if err != nil || res.IsError {
				t.Fatalf("shop.leaky_question: %v %+v", err, res)
			}
			select {
			case got := <-asked:
				checkMasked(t, "elicitation message", got)
			default:
				t.Fatal("the upstream's question did not reach the client")
			}
		})
	}
}
