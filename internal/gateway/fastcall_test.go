package gateway_test

//lint:file-ignore SA1019 Warden relays logging for clients of the revisions that still have it, and this file tests that.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/gateway"
)

// fastPathPolicy decides the differential test's calls: one tool denied,
// one needing confirmation, the rest allowed, every result masked.
const fastPathPolicy = `
version: 1
roles:
  agent: {tools: ["shop.*"]}
rules:
  - {id: no-forbidden, tool: shop.forbidden, effect: deny, reason: forbidden is off limits}
  - {id: deletes-need-a-yes, tool: shop.delete_order, effect: confirm, reason: deleting an order cannot be undone}
  - {id: shop, tool: "shop.*", effect: allow}
masking:
  default: redact
`

// fastShopEmail is a value the default detectors mask.
const fastShopEmail = "jane.doe@example.com"

// fastShop is the upstream of the fast-path tests: a tool for each kind of
// answer a call can get. Calls to each tool are counted in calls.
type fastShop struct {
	calls sync.Map // tool name → *atomic.Int64
	// blockStarted receives when shop.block starts; blockEnded receives
	// the error of its context when it ends.
	blockStarted chan struct{}
	blockEnded   chan error
}

func (f *fastShop) count(name string) int64 {
	v, _ := f.calls.LoadOrStore(name, &atomic.Int64{})
	return v.(*atomic.Int64).Load()
}

func (f *fastShop) server() *mcp.Server {
	f.blockStarted = make(chan struct{}, 4)
	f.blockEnded = make(chan error, 4)
	s := newServer("shop", nil)
	counted := func(name string, h mcp.ToolHandler) mcp.ToolHandler {
		return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			v, _ := f.calls.LoadOrStore(name, &atomic.Int64{})
			v.(*atomic.Int64).Add(1)
			return h(ctx, req)
		}
	}
	add := func(name, schema string, h mcp.ToolHandler) {
		s.AddTool(&mcp.Tool{Name: name, InputSchema: json.RawMessage(schema)}, counted(name, h))
	}
	const anyObject = `{"type":"object"}`
	textResult := func(s string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
	}
	add("echo", `{"type":"object","properties":{"text":{"type":"string"}},"required":["text"],"additionalProperties":false}`,
		func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var in struct {
				Text string `json:"text"`
			}
			if err := json.Unmarshal(req.Params.Arguments, &in); err != nil {
				return nil, err
			}
			return textResult("shop:" + in.Text), nil
		})
	add("empty", anyObject, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{}, nil
	})
	add("fail", anyObject, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "the shop is closed"}}}, nil
	})
	add("rpc_error", anyObject, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return nil, &jsonrpc.Error{Code: -32050, Message: "the till is jammed", Data: json.RawMessage(`{"till":3}`)}
	})
	add("bad_params", anyObject, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "no such order"}
	})
	add("go_error", anyObject, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return nil, errors.New("a plain Go error")
	})
	add("contact", anyObject, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return textResult("write to " + fastShopEmail + " for refunds"), nil
	})
	add("structured", anyObject, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{
			Meta:              mcp.Meta{"shop/trace": "t-1"},
			Content:           []mcp.Content{&mcp.TextContent{Text: `{"stock":4}`}},
			StructuredContent: map[string]any{"stock": 4},
		}, nil
	})
	add("forbidden", anyObject, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return textResult("should never run"), nil
	})
	add("delete_order", `{"type":"object","properties":{"order_id":{"type":"string"}}}`,
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return textResult("deleted"), nil
		})
	add("regional", `{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"}}}`,
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return textResult("regional"), nil
		})
	add("ask", anyObject, func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if len(req.Params.InputResponses) == 0 {
			return &mcp.CallToolResult{
				InputRequests: mcp.InputRequestMap{"colour": &mcp.ElicitParams{
					Message:         "Which colour?",
					RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"colour": map[string]any{"type": "string"}}},
				}},
				RequestState: "shop-state-1",
			}, nil
		}
		er, _ := req.Params.InputResponses["colour"].(*mcp.ElicitResult)
		if er == nil || req.Params.RequestState != "shop-state-1" {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "no answer"}}}, nil
		}
		colour, _ := er.Content["colour"].(string)
		return textResult("colour: " + colour), nil
	})
	add("block", anyObject, func(ctx context.Context, _ *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		f.blockStarted <- struct{}{}
		select {
		case <-ctx.Done():
			f.blockEnded <- ctx.Err()
			return nil, ctx.Err()
		case <-time.After(testTimeout):
			f.blockEnded <- nil
			return textResult("not cancelled"), nil
		}
	})
	return s
}

// mcpAnswer is one HTTP answer to a POST, decoded.
type mcpAnswer struct {
	status      int
	contentType string // the media type, without parameters
	// msg is the JSON-RPC response: the body, or the data of the event
	// stream's response event; a body that is not JSON is kept as text.
	msg any
	raw string
}

// postCall POSTs body to endpoint with exactly the headers given (an empty
// value leaves a header out) and decodes the answer.
func postCall(ctx context.Context, t *testing.T, endpoint, body string, header http.Header) mcpAnswer {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		for _, v := range vs {
			if v != "" {
				req.Header.Add(k, v)
			}
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	a := mcpAnswer{status: resp.StatusCode, raw: string(raw)}
	a.contentType, _, _ = mime.ParseMediaType(resp.Header.Get("Content-Type"))
	data := raw
	if a.contentType == "text/event-stream" {
		data = responseEvent(t, raw)
	}
	if err := json.Unmarshal(data, &a.msg); err != nil {
		a.msg = "non-JSON body: " + string(raw)
	}
	return a
}

// responseEvent returns the data of the event in an SSE body that is a
// JSON-RPC response (an id and no method), its data lines joined.
func responseEvent(t *testing.T, body []byte) []byte {
	t.Helper()
	var found []byte
	var data []byte
	flush := func() {
		if len(data) == 0 {
			return
		}
		var head struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if json.Unmarshal(data, &head) == nil && len(head.ID) > 0 && head.Method == "" {
			if found != nil {
				t.Errorf("more than one response event in %q", body)
			}
			found = append([]byte(nil), data...)
		}
		data = data[:0]
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			flush()
			continue
		}
		if d, ok := strings.CutPrefix(line, "data:"); ok {
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, strings.TrimPrefix(d, " ")...)
		}
	}
	flush()
	if found == nil {
		t.Fatalf("no response event in SSE body %q", body)
	}
	return found
}

var callIDSuffix = regexp.MustCompile(`\(call [0-9a-f]+\)`)

// normalise replaces what legitimately differs between two answers to the
// same request: the call id quoted in messages and sealed request state.
func normalise(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if s, ok := e.(string); ok && k == "requestState" && s != "" {
				out[k] = "<sealed state>"
				continue
			}
			out[k] = normalise(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalise(e)
		}
		return out
	case string:
		return callIDSuffix.ReplaceAllString(x, "(call <id>)")
	}
	return v
}

// contentTypes records the media type of the gateway's answer to each
// tools/call POST.
type contentTypes struct {
	mu   sync.Mutex
	seen []string
}

func (c *contentTypes) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Mcp-Method") != "tools/call" {
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(&typeRecorder{ResponseWriter: w, types: c}, r)
	})
}

func (c *contentTypes) snapshot() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.seen...)
}

// typeRecorder notes the media type of a response as its header goes
// out, before the client can see the answer and send its next request.
type typeRecorder struct {
	http.ResponseWriter
	types *contentTypes
	sent  bool
}

func (r *typeRecorder) note() {
	if r.sent {
		return
	}
	r.sent = true
	mt, _, _ := mime.ParseMediaType(r.Header().Get("Content-Type"))
	r.types.mu.Lock()
	r.types.seen = append(r.types.seen, mt)
	r.types.mu.Unlock()
}

func (r *typeRecorder) WriteHeader(code int) {
	r.note()
	r.ResponseWriter.WriteHeader(code)
}

func (r *typeRecorder) Write(b []byte) (int, error) {
	r.note()
	return r.ResponseWriter.Write(b)
}

func (r *typeRecorder) Flush() {
	r.note()
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *typeRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// serveRecorded serves g on loopback, recording the media types of its
// answers to tool calls.
func serveRecorded(t *testing.T, g *gateway.Gateway) (string, *contentTypes) {
	t.Helper()
	ct := &contentTypes{}
	srv := httptest.NewServer(ct.wrap(g.Handler()))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv.URL + "/mcp", ct
}

// librarySessions counts the server sessions the protocol library opens:
// its sessionless handler opens one for every request it serves, the fast
// path none.
type librarySessions struct {
	slog.Handler
	n *atomic.Int64
}

func (h librarySessions) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "server session connected" {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h librarySessions) WithAttrs(as []slog.Attr) slog.Handler {
	return librarySessions{Handler: h.Handler.WithAttrs(as), n: h.n}
}

func (h librarySessions) WithGroup(name string) slog.Handler {
	return librarySessions{Handler: h.Handler.WithGroup(name), n: h.n}
}

// startPathGateway starts a gateway in front of the upstream "shop" at url
// as startPolicyGateway does, with or without the fast path, and returns
// it with the count of the library's server sessions.
func startPathGateway(t *testing.T, url, policySrc string, libraryOnly bool) (*gateway.Gateway, *atomic.Int64) {
	t.Helper()
	sessions := &atomic.Int64{}
	opts := gateway.Options{Logger: slog.New(librarySessions{Handler: testLogger(t).Handler(), n: sessions})}
	if libraryOnly {
		return startPolicyGateway(t, url, policySrc, opts, "disable_fast_path: true\n"), sessions
	}
	return startPolicyGateway(t, url, policySrc, opts), sessions
}

// statelessCallMeta is the _meta of a 2026-07-28 call as the SDK client
// sends it, with caps as the client's capabilities (omitted if empty).
func statelessCallMeta(caps string) string {
	m := `{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"raw-client","version":"1.0.0"}`
	if caps != "" {
		m += `,"io.modelcontextprotocol/clientCapabilities":` + caps
	}
	return m + "}"
}

// TestFastPathMatchesLibraryPath sends the same hand-written 2026-07-28
// tool calls to a gateway whose HTTP front serves them itself and to one
// that hands every request to the protocol library: the answers must be
// the same, up to call ids and sealed state. The calls the fast path
// declines go to the library on both.
func TestFastPathMatchesLibraryPath(t *testing.T) {
	ctx := testContext(t)
	shop := &fastShop{}
	up := startUpstream(t, shop.server(), true)
	fastG, fastSessions := startPathGateway(t, up.URL, fastPathPolicy, false)
	libG, libSessions := startPathGateway(t, up.URL, fastPathPolicy, true)
	fastURL, fastTypes := serveRecorded(t, fastG)
	libURL := serveHTTP(t, libG)

	meta := statelessCallMeta(`{}`)
	elicitMeta := statelessCallMeta(`{"elicitation":{}}`)
	call := func(id, name, args, meta string, extra ...string) string {
		params := `"name":` + yamlQuote(name)
		if args != "" {
			params += `,"arguments":` + args
		}
		if meta != "" {
			params += `,"_meta":` + meta
		}
		for _, e := range extra {
			params += "," + e
		}
		return `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{` + params + `}}`
	}
	headers := func(name string, edits ...string) http.Header {
		h := http.Header{
			"Content-Type":         {"application/json"},
			"Accept":               {"application/json, text/event-stream"},
			"Mcp-Protocol-Version": {revStateless},
			"Mcp-Method":           {"tools/call"},
			"Mcp-Name":             {name},
		}
		for i := 0; i+1 < len(edits); i += 2 {
			h[http.CanonicalHeaderKey(edits[i])] = []string{edits[i+1]}
		}
		return h
	}
	result := func(m map[string]any) map[string]any { r, _ := m["result"].(map[string]any); return r }
	firstText := func(m map[string]any) string {
		c, _ := result(m)["content"].([]any)
		if len(c) == 0 {
			return ""
		}
		s, _ := c[0].(map[string]any)["text"].(string)
		return s
	}
	isError := func(m map[string]any) bool { b, _ := result(m)["isError"].(bool); return b }
	rpcCode := func(m map[string]any) float64 {
		e, _ := m["error"].(map[string]any)
		c, _ := e["code"].(float64)
		return c
	}

	tests := []struct {
		name   string
		body   string
		header http.Header
		// fast: the fast path should serve it; otherwise both gateways
		// should hand it to the library.
		fast bool
		// check holds the answer (the library's, normalised) to what the
		// scenario is about, so that a scenario cannot pass vacuously.
		check func(t *testing.T, m map[string]any)
	}{
		{"allowed call", call("1", "shop.echo", `{"text":"hi"}`, meta), headers("shop.echo"), true,
			func(t *testing.T, m map[string]any) {
				if firstText(m) != "shop:hi" || isError(m) || result(m)["resultType"] != "complete" {
					t.Errorf("want the echo, complete: %v", m)
				}
				sm, _ := result(m)["_meta"].(map[string]any)
				if _, ok := sm["io.modelcontextprotocol/serverInfo"]; !ok {
					t.Errorf("result _meta lacks serverInfo: %v", m)
				}
			}},
		{"string id", call(`"call-7"`, "shop.echo", `{"text":"hi"}`, meta), headers("shop.echo"), true,
			func(t *testing.T, m map[string]any) {
				if m["id"] != "call-7" || firstText(m) != "shop:hi" {
					t.Errorf("want the echo under id call-7: %v", m)
				}
			}},
		{"negative id", call("-5", "shop.echo", `{"text":"neg"}`, meta), headers("shop.echo"), true, nil},
		{"zero id", call("0", "shop.echo", `{"text":"zero"}`, meta), headers("shop.echo"), true, nil},
		{"15-digit id", call("123456789012345", "shop.echo", `{"text":"big"}`, meta), headers("shop.echo"), true, nil},
		{"escaped string id", call(`"\u0041<b>"`, "shop.echo", `{"text":"esc"}`, meta), headers("shop.echo"), true,
			func(t *testing.T, m map[string]any) {
				if m["id"] != "A<b>" {
					t.Errorf("want id A<b>: %v", m)
				}
			}},
		{"content type with charset", call("2", "shop.echo", `{"text":"cs"}`, meta),
			headers("shop.echo", "Content-Type", "application/json; charset=utf-8"), true,
			func(t *testing.T, m map[string]any) {
				if firstText(m) != "shop:cs" {
					t.Errorf("want the echo: %v", m)
				}
			}},
		{"stray Mcp-Session-Id header", call("19", "shop.echo", `{"text":"sid"}`, meta),
			headers("shop.echo", "Mcp-Session-Id", "no-such-session"), true, nil},
		{"unknown tool", call("3", "shop.nope", `{}`, meta), headers("shop.nope"), true,
			func(t *testing.T, m map[string]any) {
				if !isError(m) || !strings.Contains(firstText(m), "unknown-tool") {
					t.Errorf("want an unknown-tool denial: %v", m)
				}
			}},
		{"arguments failing the schema", call("4", "shop.echo", `{"text":5}`, meta), headers("shop.echo"), true,
			func(t *testing.T, m map[string]any) {
				if !isError(m) || !strings.Contains(firstText(m), "arguments") {
					t.Errorf("want an arguments denial: %v", m)
				}
			}},
		{"arguments not an object", call("5", "shop.echo", `["hi"]`, meta), headers("shop.echo"), true,
			func(t *testing.T, m map[string]any) {
				if !isError(m) {
					t.Errorf("want a denial: %v", m)
				}
			}},
		{"arguments absent", call("6", "shop.empty", "", meta), headers("shop.empty"), true, nil},
		{"arguments null", call("7", "shop.empty", "null", meta), headers("shop.empty"), true, nil},
		{"denied by policy", call("8", "shop.forbidden", `{}`, meta), headers("shop.forbidden"), true,
			func(t *testing.T, m map[string]any) {
				if !isError(m) || !strings.Contains(firstText(m), "no-forbidden") || !strings.Contains(firstText(m), "(call <id>)") {
					t.Errorf("want the no-forbidden denial with its call id: %v", m)
				}
			}},
		{"masked result", call("9", "shop.contact", `{}`, meta), headers("shop.contact"), true,
			func(t *testing.T, m map[string]any) {
				if txt := firstText(m); strings.Contains(txt, fastShopEmail) || !strings.Contains(txt, "[EMAIL_ADDRESS]") {
					t.Errorf("want the email masked: %v", m)
				}
			}},
		{"empty result", call("10", "shop.empty", `{}`, meta), headers("shop.empty"), true,
			func(t *testing.T, m map[string]any) {
				c, ok := result(m)["content"].([]any)
				if !ok || len(c) != 0 {
					t.Errorf("want content []: %v", m)
				}
			}},
		{"structured result with _meta", call("11", "shop.structured", `{}`, meta), headers("shop.structured"), true,
			func(t *testing.T, m map[string]any) {
				sm, _ := result(m)["_meta"].(map[string]any)
				if sm["shop/trace"] != "t-1" || result(m)["structuredContent"] == nil {
					t.Errorf("want the upstream's _meta and structured content: %v", m)
				}
			}},
		{"tool error result", call("12", "shop.fail", `{}`, meta), headers("shop.fail"), true,
			func(t *testing.T, m map[string]any) {
				if !isError(m) || firstText(m) != "the shop is closed" {
					t.Errorf("want the upstream's tool error: %v", m)
				}
			}},
		{"upstream JSON-RPC error", call("13", "shop.rpc_error", `{}`, meta), headers("shop.rpc_error"), true,
			func(t *testing.T, m map[string]any) {
				if rpcCode(m) != -32050 {
					t.Errorf("want the upstream's error -32050: %v", m)
				}
			}},
		{"upstream invalid params", call("14", "shop.bad_params", `{}`, meta), headers("shop.bad_params"), true,
			func(t *testing.T, m map[string]any) {
				if rpcCode(m) != jsonrpc.CodeInvalidParams {
					t.Errorf("want the upstream's error -32602: %v", m)
				}
			}},
		{"upstream Go error", call("15", "shop.go_error", `{}`, meta), headers("shop.go_error"), true,
			func(t *testing.T, m map[string]any) {
				if m["error"] == nil && !isError(m) {
					t.Errorf("want an error: %v", m)
				}
			}},
		{"needs confirmation", call("16", "shop.delete_order", `{"order_id":"12346"}`, elicitMeta), headers("shop.delete_order"), true,
			func(t *testing.T, m map[string]any) {
				r := result(m)
				reqs, _ := r["inputRequests"].(map[string]any)
				if r["requestState"] != "<sealed state>" || reqs["warden-confirm"] == nil {
					t.Errorf("want Warden's confirmation question with sealed state: %v", m)
				}
			}},
		{"upstream asks for input", call("18", "shop.ask", `{}`, elicitMeta), headers("shop.ask"), true,
			func(t *testing.T, m map[string]any) {
				r := result(m)
				reqs, _ := r["inputRequests"].(map[string]any)
				if r["resultType"] != "input_required" || r["requestState"] != "<sealed state>" || reqs["colour"] == nil {
					t.Errorf("want the upstream's question with Warden's sealed state: %v", m)
				}
			}},
		{"needs confirmation, client cannot ask", call("17", "shop.delete_order", `{"order_id":"12346"}`, meta), headers("shop.delete_order"), true,
			func(t *testing.T, m map[string]any) {
				if !isError(m) || !strings.Contains(firstText(m), "cannot ask") {
					t.Errorf("want a denial: %v", m)
				}
			}},

		// The fast path declines these: both answers are the library's.
		{"progress token", call("30", "shop.echo", `{"text":"p"}`,
			strings.TrimSuffix(meta, "}")+`,"progressToken":"tok-1"}`), headers("shop.echo"), false,
			func(t *testing.T, m map[string]any) {
				if firstText(m) != "shop:p" {
					t.Errorf("want the echo: %v", m)
				}
			}},
		{"Mcp-Name not matching", call("31", "shop.echo", `{"text":"x"}`, meta), headers("shop.other"), false,
			func(t *testing.T, m map[string]any) {
				if m["error"] == nil {
					t.Errorf("want an error: %v", m)
				}
			}},
		{"Mcp-Name missing", call("32", "shop.echo", `{"text":"x"}`, meta), headers(""), false, nil},
		{"missing clientCapabilities", call("33", "shop.echo", `{"text":"x"}`, statelessCallMeta("")), headers("shop.echo"), false,
			func(t *testing.T, m map[string]any) {
				if rpcCode(m) != jsonrpc.CodeInvalidParams {
					t.Errorf("want -32602: %v", m)
				}
			}},
		{"clientInfo not an object", call("34", "shop.echo", `{"text":"x"}`,
			`{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":"me","io.modelcontextprotocol/clientCapabilities":{}}`),
			headers("shop.echo"), false, nil},
		{"wrong protocolVersion in _meta", call("35", "shop.echo", `{"text":"x"}`,
			`{"io.modelcontextprotocol/protocolVersion":"2025-11-25","io.modelcontextprotocol/clientCapabilities":{}}`),
			headers("shop.echo"), false, nil},
		{"no _meta", call("36", "shop.echo", `{"text":"x"}`, ""), headers("shop.echo"), false, nil},
		{"junk requestState", call("37", "shop.echo", `{"text":"x"}`, meta, `"requestState":"junk"`), headers("shop.echo"), false,
			func(t *testing.T, m map[string]any) {
				if rpcCode(m) != jsonrpc.CodeInvalidParams {
					t.Errorf("want -32602 for the junk state: %v", m)
				}
			}},
		{"inputResponses", call("38", "shop.echo", `{"text":"x"}`, meta, `"inputResponses":{}`), headers("shop.echo"), false, nil},
		{"unknown params key", call("39", "shop.echo", `{"text":"x"}`, meta, `"colour":"blue"`), headers("shop.echo"), false, nil},
		{"x-mcp-header tool", call("40", "shop.regional", `{"region":"eu"}`, meta),
			headers("shop.regional", "Mcp-Param-Region", "eu"), false,
			func(t *testing.T, m map[string]any) {
				if firstText(m) != "regional" {
					t.Errorf("want the tool's answer: %v", m)
				}
			}},
		{"float id", call("1.5", "shop.echo", `{"text":"x"}`, meta), headers("shop.echo"), false, nil},
		{"16-digit id", call("1234567890123456", "shop.echo", `{"text":"x"}`, meta), headers("shop.echo"), false, nil},
		{"Accept without event streams", call("41", "shop.echo", `{"text":"x"}`, meta),
			headers("shop.echo", "Accept", "application/json"), false, nil},
		{"Last-Event-ID header", call("43", "shop.echo", `{"text":"x"}`, meta),
			headers("shop.echo", "Last-Event-ID", "1"), false, nil},
		{"Mcp-Method header in another case", call("44", "shop.echo", `{"text":"x"}`, meta),
			headers("shop.echo", "Mcp-Method", "Tools/Call"), false, nil},
		{"batch", "[" + call("42", "shop.echo", `{"text":"x"}`, meta) + "]", headers("shop.echo"), false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(fastTypes.snapshot())
			fastBefore, libBefore := fastSessions.Load(), libSessions.Load()
			lib := postCall(ctx, t, libURL, tc.body, tc.header)
			fast := postCall(ctx, t, fastURL, tc.body, tc.header)
			fastOpened, libOpened := fastSessions.Load()-fastBefore, libSessions.Load()-libBefore
			t.Logf("library: HTTP %d %s %s", lib.status, lib.contentType, lib.raw)
			t.Logf("fast:    HTTP %d %s %s", fast.status, fast.contentType, fast.raw)
			if fast.status != lib.status {
				t.Errorf("HTTP status: fast path %d, library %d", fast.status, lib.status)
			}
			want, got := normalise(lib.msg), normalise(fast.msg)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("answers differ (-library +fast):\n%s", diff)
			}
			if tc.check != nil {
				m, ok := want.(map[string]any)
				if !ok {
					t.Fatalf("the library's answer is not a JSON object: %s", lib.raw)
				}
				tc.check(t, m)
			}
			// Which path answered: the fast path answers JSON and opens no
			// server session; the library streams a call's answer (its
			// protocol errors are JSON too) and opens one per request.
			if tc.fast {
				if fast.contentType != "application/json" {
					t.Errorf("fast gateway answered %q, want application/json from the fast path", fast.contentType)
				}
				if lib.status == http.StatusOK && lib.contentType != "text/event-stream" {
					t.Errorf("library gateway answered %q, want text/event-stream", lib.contentType)
				}
				if fastOpened != 0 || libOpened != 1 {
					t.Errorf("server sessions opened: fast gateway %d, library gateway %d; want 0 and 1", fastOpened, libOpened)
				}
			} else {
				if fast.contentType != lib.contentType {
					t.Errorf("fast gateway answered %q, library %q: the fast path should have declined", fast.contentType, lib.contentType)
				}
				if fastOpened != libOpened {
					t.Errorf("server sessions opened: fast gateway %d, library gateway %d; the fast path should have declined", fastOpened, libOpened)
				}
			}
			if n := len(fastTypes.snapshot()) - before; tc.header.Get("Mcp-Method") == "tools/call" && n != 1 {
				t.Errorf("the fast gateway answered %d tool calls, want 1", n)
			}
		})
	}
	if n := shop.count("forbidden"); n != 0 {
		t.Errorf("the denied tool ran %d times upstream", n)
	}
	if n := shop.count("delete_order"); n != 0 {
		t.Errorf("the unconfirmed tool ran %d times upstream", n)
	}
}

// TestFastPathSDKClient: an SDK client of 2026-07-28 calling through a
// gateway with the fast path gets its results as usual; every call is
// served by the front itself and posted to the upstream directly, which
// answers with an event stream or with JSON.
func TestFastPathSDKClient(t *testing.T) {
	for _, mode := range []struct {
		name string
		json bool
	}{{"event stream upstream", false}, {"JSON upstream", true}} {
		t.Run(mode.name, func(t *testing.T) {
			ctx := testContext(t)
			shop := &fastShop{}
			up := startUpstreamWith(t, shop.server(), &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: mode.json})
			g, sessions := startPathGateway(t, up.URL, fastPathPolicy, false)
			endpoint, types := serveRecorded(t, g)
			cs := connectHTTP(t, endpoint, revStateless, nil)
			opened := sessions.Load()

			for _, word := range []string{"one", "two", "three"} {
				if got := callText(ctx, t, cs, "shop.echo", map[string]any{"text": word}); got != "shop:"+word {
					t.Errorf("shop.echo(%s) = %q", word, got)
				}
			}
			if got := callText(ctx, t, cs, "shop.contact", nil); strings.Contains(got, fastShopEmail) || !strings.Contains(got, "[EMAIL_ADDRESS]") {
				t.Errorf("shop.contact = %q, want the email masked", got)
			}
			if got := toolErrorText(ctx, t, cs, "shop.fail", nil); got != "the shop is closed" {
				t.Errorf("shop.fail = %q, want the upstream's tool error", got)
			}
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "shop.empty"})
			if err != nil || res.IsError || len(res.Content) != 0 {
				t.Errorf("shop.empty = %+v, %v; want an empty result", res, err)
			}
			_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "shop.rpc_error"})
			var werr *jsonrpc.Error
			if !errors.As(err, &werr) || werr.Code != -32050 || werr.Message != "the till is jammed" {
				t.Errorf("shop.rpc_error: error %v, want the upstream's JSON-RPC error -32050", err)
			}
			if got := toolErrorText(ctx, t, cs, "shop.forbidden", nil); !strings.Contains(got, "no-forbidden") {
				t.Errorf("shop.forbidden = %q, want the policy's denial", got)
			}
			// A call that needs input: the first round is the fast path's,
			// the retry (with requestState) the library's.
			asker := connectHTTP(t, endpoint, revStateless, &mcp.ClientOptions{
				ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
					switch req.Params.Message {
					case "Which colour?":
						return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"colour": "teal"}}, nil
					default: // Warden's confirmation
						return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"confirm": true}}, nil
					}
				},
			})
			if got := callText(ctx, t, asker, "shop.ask", nil); got != "colour: teal" {
				t.Errorf("shop.ask = %q, want the upstream's answer to the question", got)
			}
			if got := callText(ctx, t, asker, "shop.delete_order", map[string]any{"order_id": "1"}); got != "deleted" {
				t.Errorf("shop.delete_order = %q, want it to run once confirmed", got)
			}
			opened = sessions.Load() - opened

			if n := shop.count("echo"); n != 3 {
				t.Errorf("the upstream ran shop.echo %d times, want 3", n)
			}
			if n := shop.count("forbidden"); n != 0 {
				t.Errorf("the upstream ran the denied tool %d times", n)
			}
			if n := shop.count("ask"); n != 2 {
				t.Errorf("the upstream ran shop.ask %d times, want 2 (question, answer)", n)
			}
			if n := shop.count("delete_order"); n != 1 {
				t.Errorf("the upstream ran shop.delete_order %d times, want 1", n)
			}
			ids := up.calls()
			if len(ids) != 10 { // all but the denied call and the confirmation's first round
				t.Errorf("the upstream received %d tool calls, want 10: %v", len(ids), ids)
			}
			for _, id := range ids {
				if !strings.HasPrefix(id, `"wr-`) {
					t.Errorf("upstream call id %s: want a call Warden posted itself (\"wr-…\")", id)
				}
			}
			// Every first round was the front's (JSON, no server session);
			// the two retries carrying requestState were the library's
			// (an event stream, one server session each).
			want := []string{"application/json", "application/json", "application/json", "application/json",
				"application/json", "application/json", "application/json", "application/json",
				"application/json", "text/event-stream", "application/json", "text/event-stream"}
			if diff := cmp.Diff(want, types.snapshot()); diff != "" {
				t.Errorf("media types of the gateway's answers to tool calls (-want +got):\n%s", diff)
			}
			// connectHTTP's server/discover opens one; so does each retry.
			if opened != 3 {
				t.Errorf("the library opened %d server sessions, want 3 (asker's discovery and two retries)", opened)
			}
		})
	}
}

// TestFastPathCancellation: a client that gives up on a call ends the
// upstream's handling of it, through the fast path and the direct POST
// (and, for comparison, through the library).
func TestFastPathCancellation(t *testing.T) {
	for _, libraryOnly := range []bool{false, true} {
		name := "fast path"
		if libraryOnly {
			name = "library"
		}
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t)
			shop := &fastShop{}
			up := startUpstreamWith(t, shop.server(), &mcp.StreamableHTTPOptions{Stateless: true, PropagateRequestCancellation: true})
			g, sessions := startPathGateway(t, up.URL, fastPathPolicy, libraryOnly)
			endpoint, _ := serveRecorded(t, g)
			cs := connectHTTP(t, endpoint, revStateless, nil)
			opened := sessions.Load()

			callCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := cs.CallTool(callCtx, &mcp.CallToolParams{Name: "shop.block"})
				done <- err
			}()
			select {
			case <-shop.blockStarted:
			case <-time.After(10 * time.Second):
				t.Fatal("the upstream never started shop.block")
			}
			// Counted before the client gives up: it then posts a
			// notifications/cancelled, which the library serves.
			n := sessions.Load() - opened
			if want := map[bool]int64{false: 0, true: 1}[libraryOnly]; n != want {
				t.Errorf("the library opened %d server sessions for the call, want %d", n, want)
			}
			cancel()
			select {
			case err := <-shop.blockEnded:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("shop.block ended with %v, want its context cancelled", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the upstream handler's context was not cancelled within 10s of the client giving up")
			}
			select {
			case err := <-done:
				if err == nil {
					t.Error("the cancelled call returned no error")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the cancelled call did not return")
			}
			// The library path's own client numbers its calls; Warden's
			// direct POST names them "wr-…".
			if ids := up.calls(); len(ids) != 1 || strings.HasPrefix(ids[0], `"wr-`) == libraryOnly {
				t.Errorf("upstream tool calls %v, want one, posted by Warden itself unless library only (%v)", ids, libraryOnly)
			}

			// The gateway still serves the client.
			if got := callText(ctx, t, cs, "shop.echo", map[string]any{"text": "after"}); got != "shop:after" {
				t.Errorf("after the cancellation, shop.echo = %q", got)
			}
		})
	}
}

// TestPostedCallRelaysLogToSessionClient: a client with a session
// (2025-11-25) calls through Warden to a 2026-07-28 upstream, which Warden
// posts to directly; the log messages the upstream sends during the call
// reach the client's session, as they do when the library's client makes
// the call.
func TestPostedCallRelaysLogToSessionClient(t *testing.T) {
	for _, libraryOnly := range []bool{false, true} {
		t.Run(map[bool]string{false: "posted", true: "library"}[libraryOnly], func(t *testing.T) {
			ctx := testContext(t)
			s := newServer("shop", nil)
			s.AddTool(&mcp.Tool{Name: "chatty", InputSchema: json.RawMessage(`{"type":"object"}`)},
				func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
					if err := req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: "info", Data: "counting stock"}); err != nil {
						return nil, err
					}
					return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil
				})
			up := startUpstreamWith(t, s, &mcp.StreamableHTTPOptions{Stateless: true})
			g, _ := startPathGateway(t, up.URL, fastPathPolicy, libraryOnly)
			logs := make(chan string, 4)
			cs := connectHTTP(t, serveHTTP(t, g), revSessions, &mcp.ClientOptions{
				LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) {
					text, _ := req.Params.Data.(string)
					logs <- text
				},
			})
			if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "debug"}); err != nil {
				t.Fatal(err)
			}
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "shop.chatty", Arguments: map[string]any{},
				Meta: mcp.Meta{mcp.MetaKeyLogLevel: "debug"}})
			if err != nil || res.IsError {
				t.Fatalf("shop.chatty: %v %+v", err, res)
			}
			select {
			case got := <-logs:
				if got != "counting stock" {
					t.Errorf("log message %q, want %q", got, "counting stock")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the upstream's log message did not reach the client")
			}
			if ids := up.calls(); len(ids) != 1 || strings.HasPrefix(ids[0], `"wr-`) == libraryOnly {
				t.Errorf("upstream tool calls %v; want one, posted by Warden itself unless library only (%v)", ids, libraryOnly)
			}
		})
	}
}
