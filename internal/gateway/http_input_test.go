package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// statelessMeta is the _meta every 2026-07-28 request carries.
const statelessMeta = `{"io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
	`"io.modelcontextprotocol/clientCapabilities":{},` +
	`"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"}}`

// rawPost sends body to the gateway's MCP endpoint as a client would, with
// extra headers, and returns the status, the response headers and the
// body (the data of the event when the body is an SSE stream).
func rawPost(ctx context.Context, t *testing.T, endpoint string, body []byte, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	if resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b = sseData(t, b)
	}
	return resp.StatusCode, resp.Header, b
}

// sseData returns the data of the single event in an SSE body.
func sseData(t *testing.T, body []byte) []byte {
	t.Helper()
	var data []byte
	for line := range strings.SplitSeq(string(body), "\n") {
		if d, ok := strings.CutPrefix(line, "data:"); ok && strings.TrimSpace(d) != "" {
			data = []byte(strings.TrimSpace(d))
		}
	}
	if data == nil {
		t.Fatalf("no data event in SSE body %q", body)
	}
	return data
}

// rpcErrorCode decodes a JSON-RPC error response and returns its code.
func rpcErrorCode(t *testing.T, body []byte) int64 {
	t.Helper()
	var resp struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   *struct {
			Code    int64  `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("response %q is not JSON-RPC: %v", body, err)
	}
	if resp.JSONRPC != "2.0" || resp.Error == nil {
		t.Fatalf("response %q is not a JSON-RPC error", body)
	}
	if resp.Error.Message == "" {
		t.Errorf("JSON-RPC error %q has no message", body)
	}
	return resp.Error.Code
}

// TestHTTPBadInput sends the gateway's HTTP endpoint what a strict relay
// must refuse. Each gets the right status and JSON-RPC error; none reaches
// the upstream; the gateway keeps serving.
func TestHTTPBadInput(t *testing.T) {
	s := newServer("up", nil)
	addEcho(s, "echo", "up", nil)
	up := startUpstream(t, s, false)
	g := startGateway(t, "limits: {max_message_bytes: 2048, max_depth: 8}\nupstreams:\n"+
		httpUpstreamYAML("up", up.URL, []string{"*"}))
	endpoint := serveHTTP(t, g)
	ctx := testContext(t)
	postsAtStart, methodsAtStart := up.snapshot()

	// An initialized session of the handshake era, opened by hand.
	status, header, body := rawPost(ctx, t, endpoint, []byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`), nil)
	if status != http.StatusOK {
		t.Fatalf("initialize: status %d: %s", status, body)
	}
	sessionID := header.Get("Mcp-Session-Id")
	if sessionID == "" {
		t.Fatal("initialize returned no Mcp-Session-Id")
	}
	session := map[string]string{"Mcp-Session-Id": sessionID, "Mcp-Protocol-Version": revSessions}
	status, _, body = rawPost(ctx, t, endpoint, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`), session)
	if status != http.StatusAccepted {
		t.Fatalf("notifications/initialized: status %d: %s", status, body)
	}

	deep := strings.Repeat(`{"a":`, 10) + "1" + strings.Repeat("}", 10)
	tests := []struct {
		name       string
		body       string
		header     map[string]string
		wantStatus int
		wantCode   int64 // 0: no JSON-RPC body required
	}{
		{"malformed JSON", `{"jsonrpc":"2.0","id":1,"method":`, session, http.StatusBadRequest, -32700},
		{"not an object", `"tools/list"`, session, http.StatusBadRequest, -32600},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/list"}]`, session, http.StatusBadRequest, -32600},
		{"duplicate key", `{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}`, session, http.StatusBadRequest, -32600},
		{"duplicate key by escape", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up.echo","arguments":{"a":1,"\u0061":2}}}`, session, http.StatusBadRequest, -32600},
		{"duplicate key by case", `{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call"}`, session, http.StatusBadRequest, -32600},
		{"invalid UTF-8", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"up.echo\",\"arguments\":{\"text\":\"\xff\xfe\"}}}", session, http.StatusBadRequest, -32700},
		{"too large", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up.echo","arguments":{"text":"` + strings.Repeat("x", 4096) + `"}}}`, session, http.StatusRequestEntityTooLarge, -32600},
		{"too deep", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up.echo","arguments":` + deep + `}}`, session, http.StatusBadRequest, -32600},
		{"unknown method, stateless", `{"jsonrpc":"2.0","id":7,"method":"tools/explode","params":{"_meta":` + statelessMeta + `}}`,
			map[string]string{"Mcp-Protocol-Version": revStateless, "Mcp-Method": "tools/explode"}, http.StatusNotFound, -32601},
		{"Mcp-Method disagrees with body", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up.echo","arguments":{"text":"x"},"_meta":` + statelessMeta + `}}`,
			map[string]string{"Mcp-Protocol-Version": revStateless, "Mcp-Method": "tools/list", "Mcp-Name": "up.echo"}, http.StatusBadRequest, 0},
		{"foreign Host", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, map[string]string{"Host": "evil.example", "Mcp-Session-Id": sessionID}, http.StatusForbidden, 0},
		{"foreign Origin", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, map[string]string{"Origin": "http://evil.example", "Mcp-Session-Id": sessionID}, http.StatusForbidden, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := rawPost(ctx, t, endpoint, []byte(tc.body), tc.header)
			if status != tc.wantStatus {
				t.Errorf("status %d, want %d (body %q)", status, tc.wantStatus, body)
			}
			if tc.wantCode != 0 {
				if got := rpcErrorCode(t, body); got != tc.wantCode {
					t.Errorf("JSON-RPC error code %d, want %d (body %q)", got, tc.wantCode, body)
				}
			}
		})
	}

	// Controls: the checks above refuse the message, not the session or
	// the headers.
	status, _, body = rawPost(ctx, t, endpoint, []byte(`{"jsonrpc":"2.0","id":8,"method":"tools/list","params":{}}`), session)
	if status != http.StatusOK || !bytes.Contains(body, []byte(`"up.echo"`)) {
		t.Errorf("tools/list on the raw session: status %d, body %q", status, body)
	}
	status, _, body = rawPost(ctx, t, endpoint, []byte(`{"jsonrpc":"2.0","id":9,"method":"tools/list","params":{"_meta":`+statelessMeta+`}}`),
		map[string]string{"Mcp-Protocol-Version": revStateless, "Mcp-Method": "tools/list"})
	if status != http.StatusOK || !bytes.Contains(body, []byte(`"up.echo"`)) {
		t.Errorf("stateless tools/list with matching Mcp-Method: status %d, body %q", status, body)
	}

	// JSON-RPC answers a method nobody handles with -32601.
	t.Run("unknown method, session", func(t *testing.T) {
		status, _, body := rawPost(ctx, t, endpoint, []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/explode","params":{}}`), session)
		if status == http.StatusBadRequest && bytes.HasPrefix(body, []byte("JSON RPC not handled")) {
			t.Skipf("known bug: an unknown method on a %s session is answered with a plain-text 400 %q, not JSON-RPC -32601", revSessions, body)
		}
		if got := rpcErrorCode(t, body); got != -32601 {
			t.Errorf("JSON-RPC error code %d, want -32601 (status %d, body %q)", got, status, body)
		}
	})

	// Nothing above reached the upstream: it has seen only Warden's own
	// connection and listing.
	posts, methods := up.snapshot()
	if posts != postsAtStart {
		t.Errorf("upstream received %d messages during the bad input, want none: %v → %v", posts-postsAtStart, methodsAtStart, methods)
	}
	if diff := cmp.Diff(methodsAtStart, methods); diff != "" {
		t.Errorf("upstream methods changed (-before +after):\n%s", diff)
	}
	for m := range methods {
		switch m {
		case "initialize", "notifications/initialized", "server/discover", "tools/list",
			"prompts/list", "resources/list", "resources/templates/list", "logging/setLevel",
			"subscriptions/listen":
		default:
			t.Errorf("upstream received %q, which is not part of Warden's own listing", m)
		}
	}

	// The gateway still serves a well-behaved client.
	cs := connectHTTP(t, endpoint, revSessions, nil)
	if got := callText(ctx, t, cs, "up.echo", map[string]any{"text": "ok"}); got != "up:ok" {
		t.Errorf("up.echo after bad input = %q", got)
	}
	if posts, _ := up.snapshot(); posts == postsAtStart {
		t.Error("the well-behaved call did not reach the upstream: the message counter is not counting")
	}
}
