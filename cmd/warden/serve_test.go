package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/audit"
	"github.com/wardenmcp/warden/internal/identity"
	"github.com/wardenmcp/warden/internal/store/sqlite"
)

// The protocol revisions a client can speak through `warden serve`: the
// last one with sessions and the first stateless one.
const (
	revSessions  = "2025-11-25"
	revStateless = "2026-07-28"
)

// Credentials and claims of the serve fixture.
const (
	testAPIKey      = "wk_test_support_4f6c1d0e9a"
	testAPIKeyID    = "support-key"
	testAPIKeyOwner = "alice"
	testIssuer      = "https://issuer.example"
	testAudience    = "warden-serve-test"
	testKeyID       = "test-signing-key"
)

// serveTimeout bounds each end-to-end test; none should come close.
const serveTimeout = 30 * time.Second

// lockedBuffer collects a log written from many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testShop is a real MCP server on a loopback httptest server that keeps
// the exact argument bytes of every tool call that reaches it.
type testShop struct {
	url string

	mu    sync.Mutex
	calls map[string][]string // tool name → raw arguments, in arrival order
}

// shopTools are the upstream's tools and their input schemas.
var shopTools = []struct{ name, schema string }{
	{"get_order", `{"type":"object","properties":{"order_id":{"type":"string"}},"required":["order_id"]}`},
	{"refund_order", `{"type":"object","properties":{"order_id":{"type":"string"},"amount":{"type":"number"}},"required":["order_id","amount"]}`},
	{"delete_order", `{"type":"object","properties":{"order_id":{"type":"string"}},"required":["order_id"]}`},
	{"login", `{"type":"object","properties":{"user":{"type":"string"},"password":{"type":"string"}},"required":["user","password"]}`},
	{"send_email", `{"type":"object","properties":{"to":{"type":"string"}},"required":["to"]}`},
	{"admin_reset", `{"type":"object"}`},
}

// startTestShop serves the shop until the test ends.
func startTestShop(t *testing.T) *testShop {
	t.Helper()
	shop := &testShop{calls: map[string][]string{}}
	srv := mcp.NewServer(&mcp.Implementation{Name: "shop", Version: "1.0.0"}, nil)
	for _, tool := range shopTools {
		name := tool.name
		srv.AddTool(&mcp.Tool{Name: name, InputSchema: json.RawMessage(tool.schema)},
			func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				shop.mu.Lock()
				shop.calls[name] = append(shop.calls[name], string(req.Params.Arguments))
				shop.mu.Unlock()
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + " done"}}}, nil
			})
	}
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil))
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
	})
	shop.url = hs.URL
	return shop
}

// received returns the raw arguments of the calls of tool that reached the
// shop.
func (s *testShop) received(tool string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls[tool])
}

// total is how many tool calls reached the shop.
func (s *testShop) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		n += len(c)
	}
	return n
}

// serveFixture is a configuration directory: warden.yaml, the policy and
// the issuer's JWKS, with the issuer's signing key kept for the test.
type serveFixture struct {
	dir        string
	configPath string
	policyPath string
	issuerKey  ed25519.PrivateKey
}

// writeServeFixture writes a configuration for `warden serve` in front of
// upstreamURL: one API key (alice, role support), JWTs from one issuer
// whose JWKS is written to a file, no anonymous access, the policy from
// testdata/serve/policy.yaml and the audit log (its key in the default
// place, beside the store) with a checkpoint every checkpointEvery records. listen is the configured listen address.
func writeServeFixture(t *testing.T, upstreamURL, listen string, checkpointEvery int) *serveFixture {
	t.Helper()
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "OKP", "crv": "Ed25519", "kid": testKeyID, "use": "sig", "alg": "EdDSA",
		"x": base64.RawURLEncoding.EncodeToString(pub),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "jwks.json"), jwks)
	fx := &serveFixture{dir: dir, configPath: filepath.Join(dir, "warden.yaml"), policyPath: filepath.Join(dir, "policy.yaml"), issuerKey: priv}
	copyTestdata(t, "policy.yaml", fx.policyPath)
	config := fmt.Sprintf(`version: 1
listen: %q
policy: policy.yaml
store: warden.db
state_key_file: state.key
shutdown_timeout: 5s
approvals:
  hold: 200ms
audit:
  checkpoint_every: %d
upstreams:
  shop:
    url: %q
    allow_tools: ["*"]
identity:
  api_keys:
    - id: %s
      hash: %q
      principal: {id: %s, roles: [support]}
  jwt:
    issuer: %s
    audience: %s
    jwks_file: jwks.json
    algorithms: [EdDSA]
`, listen, checkpointEvery, upstreamURL, testAPIKeyID, identity.HashAPIKey(testAPIKey), testAPIKeyOwner, testIssuer, testAudience)
	writeTestFile(t, fx.configPath, []byte(config))
	return fx
}

func writeTestFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// copyTestdata copies testdata/serve/name to path.
func copyTestdata(t *testing.T, name, path string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "serve", name))
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, path, data)
}

// token signs a JWT for bob with role viewer, valid for five minutes, with
// key; edit changes the claims before signing.
func (fx *serveFixture) token(t *testing.T, key ed25519.PrivateKey, edit func(jwt.MapClaims)) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{
		"iss": testIssuer, "aud": testAudience, "sub": "bob", "roles": []string{"viewer"},
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": rand.Text(),
	}
	if edit != nil {
		edit(claims)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = testKeyID
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// wardenServer is `warden serve` running in this process: build and serve
// on a loopback listener, as the serve command does.
type wardenServer struct {
	rt   *runtime
	url  string // the MCP endpoint
	base string // scheme and host
	log  *lockedBuffer

	stopOnce sync.Once
	cancel   context.CancelFunc
	served   chan error
}

// startWarden builds the gateway from configPath and serves it on
// 127.0.0.1:0 until stop or the end of the test. The gateway's log is shown
// when the test fails.
func startWarden(t *testing.T, configPath string) *wardenServer {
	t.Helper()
	logs := &lockedBuffer{}
	rt, err := build(configPath, logs, slog.LevelDebug)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = rt.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &wardenServer{rt: rt, base: "http://" + ln.Addr().String(), log: logs, cancel: cancel, served: make(chan error, 1)}
	w.url = w.base + "/mcp"
	go func() { w.served <- serve(ctx, ln, rt.gateway, rt.cfg.ShutdownTimeout, rt.logger.Info) }()
	t.Cleanup(func() {
		w.stop(t)
		if t.Failed() {
			t.Logf("warden log:\n%s", logs.String())
		}
	})
	return w
}

// stop shuts the server down and closes the runtime (flushing the audit
// log and writing its last checkpoint). It is safe to call twice.
func (w *wardenServer) stop(t *testing.T) {
	t.Helper()
	w.stopOnce.Do(func() {
		w.cancel()
		select {
		case err := <-w.served:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(serveTimeout):
			t.Errorf("serve did not return within %s of cancellation", serveTimeout)
		}
		if err := w.rt.Close(); err != nil {
			t.Errorf("closing the runtime: %v", err)
		}
	})
}

// credentialTransport adds one credential header to every request and
// records the status of every response.
type credentialTransport struct {
	header, value string

	mu       sync.Mutex
	statuses []int
}

func (c *credentialTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if c.header != "" {
		r.Header.Set(c.header, c.value)
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		c.mu.Lock()
		c.statuses = append(c.statuses, resp.StatusCode)
		c.mu.Unlock()
	}
	return resp, err
}

func (c *credentialTransport) seen() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.statuses)
}

// bearerCredential and apiKeyCredential are the two ways to present a
// credential.
func bearerCredential(token string) *credentialTransport {
	return &credentialTransport{header: "Authorization", value: "Bearer " + token}
}

func apiKeyCredential(key string) *credentialTransport {
	return &credentialTransport{header: "X-API-Key", value: key}
}

// dialWarden opens an official SDK client session to url through ct.
func dialWarden(ctx context.Context, url string, ct *credentialTransport, rev string) (*mcp.ClientSession, error) {
	client := mcp.NewClient(&mcp.Implementation{Name: "serve-test", Version: "1.0.0"}, nil)
	transport := &mcp.StreamableClientTransport{
		Endpoint:             url,
		HTTPClient:           &http.Client{Transport: ct},
		DisableStandaloneSSE: true,
		MaxRetries:           -1,
	}
	return client.Connect(ctx, transport, &mcp.ClientSessionOptions{ProtocolVersion: rev})
}

func mustDialWarden(t *testing.T, ctx context.Context, url string, ct *credentialTransport, rev string) *mcp.ClientSession {
	t.Helper()
	cs, err := dialWarden(ctx, url, ct, rev)
	if err != nil {
		t.Fatalf("connect (%s): %v", rev, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func serveContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), serveTimeout)
	t.Cleanup(cancel)
	return ctx
}

// toolNames lists the tools the session sees.
func toolNames(t *testing.T, ctx context.Context, cs *mcp.ClientSession) []string {
	t.Helper()
	res, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

// callResult is what a client saw for one tool call.
type callResult struct {
	text    string
	isError bool
}

// callTool calls a tool with args (a value to encode, or json.RawMessage
// sent as written); a protocol error fails the test.
func callTool(t *testing.T, ctx context.Context, cs *mcp.ClientSession, name string, args any) callResult {
	t.Helper()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("tools/call %s: %v", name, err)
	}
	return callResult{text: toolText(res), isError: res.IsError}
}

// denialRE is Warden's tool error for a denied call: the rule ids, the
// reason, and the decision id the caller can quote.
var denialRE = regexp.MustCompile(`^denied by (\S+): (.*) \(call ([0-9a-f]{16})\)$`)

// toolText joins the text content of a tool result.
func toolText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, " ")
}

// toolDenial is a denied call's text, parsed.
type toolDenial struct {
	rules, reason, id string
}

func parseDenial(t *testing.T, r callResult) toolDenial {
	t.Helper()
	m := denialRE.FindStringSubmatch(r.text)
	if !r.isError || m == nil {
		t.Fatalf("want a denial, got isError=%v %q", r.isError, r.text)
	}
	return toolDenial{rules: m[1], reason: m[2], id: m[3]}
}

// initializeBody is a client's first message under the session revision.
const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

// postInitialize posts an initialize message with the given headers.
func postInitialize(t *testing.T, url string, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(initializeBody))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header.Clone()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestServeIdentity drives the real listener with each kind of credential:
// accepted ones open a session whose principal's roles decide; refused
// ones never get past the HTTP front, with a Bearer challenge that points
// at the Protected Resource Metadata.
func TestServeIdentity(t *testing.T) {
	shop := startTestShop(t)
	fx := writeServeFixture(t, shop.url, "127.0.0.1:0", 0)
	w := startWarden(t, fx.configPath)
	ctx := serveContext(t)
	metadataURL := w.base + identity.MetadataPath + "/mcp"

	t.Run("api key", func(t *testing.T) {
		for _, rev := range []string{revSessions, revStateless} {
			cs := mustDialWarden(t, ctx, w.url, apiKeyCredential(testAPIKey), rev)
			want := []string{"shop.delete_order", "shop.get_order", "shop.login", "shop.refund_order", "shop.send_email"}
			if diff := cmp.Diff(want, toolNames(t, ctx, cs)); diff != "" {
				t.Errorf("%s: tools/list for role support (-want +got):\n%s", rev, diff)
			}
			if r := callTool(t, ctx, cs, "shop.get_order", map[string]any{"order_id": "A1"}); r.isError || r.text != "get_order done" {
				t.Errorf("%s: get_order = %+v, want the shop's answer", rev, r)
			}
		}
		// The key also works as a bearer token.
		cs := mustDialWarden(t, ctx, w.url, bearerCredential(testAPIKey), revStateless)
		if r := callTool(t, ctx, cs, "shop.get_order", map[string]any{"order_id": "A2"}); r.isError {
			t.Errorf("get_order with the API key as bearer token: %+v", r)
		}
	})

	t.Run("jwt", func(t *testing.T) {
		for _, rev := range []string{revSessions, revStateless} {
			cs := mustDialWarden(t, ctx, w.url, bearerCredential(fx.token(t, fx.issuerKey, nil)), rev)
			if diff := cmp.Diff([]string{"shop.get_order"}, toolNames(t, ctx, cs)); diff != "" {
				t.Errorf("%s: tools/list for role viewer (-want +got):\n%s", rev, diff)
			}
			if r := callTool(t, ctx, cs, "shop.get_order", map[string]any{"order_id": "B1"}); r.isError {
				t.Errorf("%s: get_order with the viewer's token: %+v", rev, r)
			}
			d := parseDenial(t, callTool(t, ctx, cs, "shop.refund_order", map[string]any{"order_id": "B1", "amount": 5}))
			if d.rules != "role" || !strings.Contains(d.reason, `"shop.refund_order"`) {
				t.Errorf("%s: refund_order with the viewer's token denied by %q (%s), want rule role", rev, d.rules, d.reason)
			}
		}
		// Roles given as one space-separated string apply as well.
		cs := mustDialWarden(t, ctx, w.url, bearerCredential(fx.token(t, fx.issuerKey, func(c jwt.MapClaims) { c["roles"] = "viewer support" })), revStateless)
		if got := toolNames(t, ctx, cs); len(got) != 5 {
			t.Errorf("roles \"viewer support\" see %v, want the five tools of support", got)
		}
	})

	_, otherKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	refused := []struct {
		name string
		ct   *credentialTransport
	}{
		{"wrong api key", apiKeyCredential("wk_test_not_a_key")},
		{"wrong api key as bearer", bearerCredential("wk_test_not_a_key")},
		{"expired jwt", bearerCredential(fx.token(t, fx.issuerKey, func(c jwt.MapClaims) {
			c["iat"], c["exp"] = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
		}))},
		{"wrong audience", bearerCredential(fx.token(t, fx.issuerKey, func(c jwt.MapClaims) { c["aud"] = "another-service" }))},
		{"wrong issuer", bearerCredential(fx.token(t, fx.issuerKey, func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }))},
		{"signed by another key", bearerCredential(fx.token(t, otherKey, nil))},
		{"no credential", &credentialTransport{}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			for _, rev := range []string{revSessions, revStateless} {
				cs, err := dialWarden(ctx, w.url, tc.ct, rev)
				if err == nil {
					cs.Close()
					t.Fatalf("%s: connected, want the connection refused", rev)
				}
				if got := tc.ct.seen(); len(got) == 0 || !slices.Contains(got, http.StatusUnauthorized) {
					t.Errorf("%s: response statuses %v, want 401", rev, got)
				}
			}
			header := http.Header{}
			if tc.ct.header != "" {
				header.Set(tc.ct.header, tc.ct.value)
			}
			resp := postInitialize(t, w.url, header)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("initialize: status %d, want 401", resp.StatusCode)
			}
			challenge := resp.Header.Get("WWW-Authenticate")
			if !strings.HasPrefix(challenge, "Bearer ") || !strings.Contains(challenge, `resource_metadata="`+metadataURL+`"`) {
				t.Errorf("WWW-Authenticate = %q, want a Bearer challenge with resource_metadata=%q", challenge, metadataURL)
			}
			if tc.ct.header != "" && !strings.Contains(challenge, `error="invalid_token"`) {
				t.Errorf("WWW-Authenticate = %q, want error=\"invalid_token\" for a bad credential", challenge)
			}
			body, _ := io.ReadAll(resp.Body)
			if bytes.Contains(body, []byte(testAPIKey)) || (tc.ct.value != "" && bytes.Contains(body, []byte(tc.ct.value))) {
				t.Errorf("the refusal echoes the credential: %s", body)
			}
		})
	}
	if n := len(shop.received("refund_order")); n != 0 {
		t.Errorf("the shop received %d refunds; every one was denied", n)
	}

	t.Run("metadata without credentials", func(t *testing.T) {
		for _, u := range []string{metadataURL, w.base + identity.MetadataPath} {
			resp, err := http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: status %d\n%s", u, resp.StatusCode, body)
			}
			var doc struct {
				Resource             string   `json:"resource"`
				AuthorizationServers []string `json:"authorization_servers"`
				BearerMethods        []string `json:"bearer_methods_supported"`
			}
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatalf("GET %s: %v\n%s", u, err, body)
			}
			wantResource := w.url
			if u == w.base+identity.MetadataPath {
				wantResource = w.base
			}
			if doc.Resource != wantResource || !slices.Equal(doc.AuthorizationServers, []string{testIssuer}) || !slices.Equal(doc.BearerMethods, []string{"header"}) {
				t.Errorf("GET %s = %+v, want resource %s, authorization server %s, bearer in header", u, doc, wantResource, testIssuer)
			}
		}
	})
}

// TestServePolicy drives calls through the listener under the policy in
// testdata/serve/policy.yaml: the client sees which rule refused a call
// and why, nothing refused reaches the shop, and what the shop receives is
// the validated value re-encoded.
func TestServePolicy(t *testing.T) {
	shop := startTestShop(t)
	fx := writeServeFixture(t, shop.url, "127.0.0.1:0", 0)
	w := startWarden(t, fx.configPath)
	ctx := serveContext(t)

	for _, rev := range []string{revSessions, revStateless} {
		t.Run(rev, func(t *testing.T) {
			cs := mustDialWarden(t, ctx, w.url, apiKeyCredential(testAPIKey), rev)
			before := shop.total()
			denials := []struct {
				name  string
				tool  string
				args  any
				rules string
				// reason is the start of the reason the client is told.
				reason string
			}{
				{"over the limit", "shop.refund_order", map[string]any{"order_id": "A1", "amount": 500},
					"refunds-over-100", "refunds over 100 are not automated"},
				{"needs approval", "shop.refund_order", map[string]any{"order_id": "A1", "amount": 75},
					"refunds-over-50-need-a-lead", "pending approval "},
				{"needs confirmation", "shop.delete_order", map[string]any{"order_id": "A1"},
					"deletes-need-a-yes", "requires confirmation by the user, and this client cannot ask: deleting an order cannot be undone"},
				{"no rule allows it", "shop.send_email", map[string]any{"to": "x@example.com"},
					"default-deny", `no rule allows tool "shop.send_email"`},
				{"no role grants it", "shop.admin_reset", map[string]any{},
					"role", `no role of the caller grants tool "shop.admin_reset"`},
				{"a string for a number", "shop.refund_order", json.RawMessage(`{"order_id":"A1","amount":"100"}`),
					"input", "arguments: "},
				{"not in the upstream's schema at all", "shop.refund_order", json.RawMessage(`{"order_id":"A1"}`),
					"input", "arguments: "},
				{"unknown tool", "shop.drop_everything", map[string]any{},
					"unknown-tool", `no tool named "shop.drop_everything"`},
			}
			for _, tc := range denials {
				d := parseDenial(t, callTool(t, ctx, cs, tc.tool, tc.args))
				if d.rules != tc.rules || !strings.HasPrefix(d.reason, tc.reason) {
					t.Errorf("%s: denied by %q: %q, want %q: %q…", tc.name, d.rules, d.reason, tc.rules, tc.reason)
				}
			}

			// Duplicate keys: which amount would the shop read? The
			// message is refused whole before any stage reads it.
			_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "shop.refund_order",
				Arguments: json.RawMessage(`{"order_id":"A1","amount":10,"amount":5000}`)})
			var werr *jsonrpc.Error
			if !errors.As(err, &werr) || !strings.Contains(werr.Message, "duplicate object key") {
				t.Errorf("duplicate keys: got %v, want a JSON-RPC error naming the duplicate key", err)
			}
			if n := shop.total() - before; n != 0 {
				t.Errorf("the shop received %d calls; every one was refused", n)
			}

			// Allowed, with arguments written loosely: the shop receives
			// the validated value in canonical form, the number as written.
			refunds := len(shop.received("refund_order"))
			r := callTool(t, ctx, cs, "shop.refund_order", json.RawMessage(`{"order_id":"A1","amount":1.0e1}`))
			if r.isError || r.text != "refund_order done" {
				t.Fatalf("a refund of 1.0e1: %+v, want it allowed", r)
			}
			got := shop.received("refund_order")
			if len(got) != refunds+1 || got[len(got)-1] != `{"amount":1.0e1,"order_id":"A1"}` {
				t.Errorf("the shop received %q, want exactly one refund, re-encoded as %q", got[refunds:], `{"amount":1.0e1,"order_id":"A1"}`)
			}
		})
	}
}

// TestServePolicyReload replaces the policy of a running server: a policy
// that compiles takes over; one that does not is rejected and the running
// one keeps deciding.
func TestServePolicyReload(t *testing.T) {
	shop := startTestShop(t)
	fx := writeServeFixture(t, shop.url, "127.0.0.1:0", 0)
	w := startWarden(t, fx.configPath)
	ctx := serveContext(t)
	cs := mustDialWarden(t, ctx, w.url, apiKeyCredential(testAPIKey), revStateless)
	refund := func(amount int) callResult {
		return callTool(t, ctx, cs, "shop.refund_order", map[string]any{"order_id": "A1", "amount": amount})
	}

	if r := refund(30); r.isError {
		t.Fatalf("a refund of 30 under the first policy: %+v, want it allowed", r)
	}
	first := w.rt.policy.Policy().Version()

	copyTestdata(t, "policy-reloaded.yaml", fx.policyPath)
	if err := w.rt.policy.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	second := w.rt.policy.Policy().Version()
	if second == first {
		t.Fatal("the policy version did not change on reload")
	}
	if d := parseDenial(t, refund(30)); d.rules != "refunds-over-20" {
		t.Errorf("a refund of 30 after reload denied by %q, want refunds-over-20", d.rules)
	}
	if got := toolNames(t, ctx, cs); len(got) != 5 {
		t.Errorf("tools/list after reload = %v", got)
	}

	copyTestdata(t, "policy-invalid.yaml", fx.policyPath)
	err := w.rt.policy.Reload()
	if err == nil || !strings.Contains(err.Error(), "policy.yaml") {
		t.Fatalf("reload of a policy that does not compile: %v, want an error naming the file", err)
	}
	if v := w.rt.policy.Policy().Version(); v != second {
		t.Errorf("after a rejected reload the policy version is %s, want the running %s", v, second)
	}
	if d := parseDenial(t, refund(30)); d.rules != "refunds-over-20" {
		t.Errorf("a refund of 30 after the rejected reload denied by %q, want refunds-over-20 still", d.rules)
	}
	if r := refund(10); r.isError {
		t.Errorf("a refund of 10 after the rejected reload: %+v, want it allowed", r)
	}
	// The invalid policy allowed everything in shop.*: had it been loaded,
	// the delete would pass.
	if d := parseDenial(t, callTool(t, ctx, cs, "shop.delete_order", map[string]any{"order_id": "A1"})); d.rules != "default-deny" {
		t.Errorf("delete after the rejected reload denied by %q, want default-deny", d.rules)
	}
	if got := len(shop.received("refund_order")); got != 2 {
		t.Errorf("the shop received %d refunds, want the 2 allowed", got)
	}
}

// auditedCall is a call the audit test makes and what the log must say
// about it.
type auditedCall struct {
	principal string
	tool      string
	args      any
	// decision and rules are the decision record's; allowed calls also
	// have an outcome record.
	decision audit.Decision
	rules    []string
	// policyDecided is false for calls refused before the policy ran.
	policyDecided bool
}

// TestServeAudit makes allowed and denied calls through the listener and
// reads the audit log back: one decision record per decision, an outcome
// per executed call, secrets redacted; then `warden audit verify` proves
// the chain and names the first bad record of each tampered copy.
func TestServeAudit(t *testing.T) {
	shop := startTestShop(t)
	fx := writeServeFixture(t, shop.url, "127.0.0.1:0", 4)
	w := startWarden(t, fx.configPath)
	ctx := serveContext(t)
	const password = "hunter2-correct-horse"
	sessions := map[string]*mcp.ClientSession{
		testAPIKeyOwner: mustDialWarden(t, ctx, w.url, apiKeyCredential(testAPIKey), revSessions),
		"bob":           mustDialWarden(t, ctx, w.url, bearerCredential(fx.token(t, fx.issuerKey, nil)), revStateless),
	}
	allow, deny := audit.DecisionAllow, audit.DecisionDeny
	calls := []auditedCall{
		{"alice", "shop.get_order", map[string]any{"order_id": "A1"}, allow, []string{"orders-are-readable"}, true},
		{"alice", "shop.login", map[string]any{"user": "alice", "password": password}, allow, []string{"login"}, true},
		{"alice", "shop.refund_order", map[string]any{"order_id": "A1", "amount": 500}, deny, []string{"refunds-over-100"}, true},
		{"alice", "shop.refund_order", map[string]any{"order_id": "A1", "amount": 75}, audit.DecisionApprove, []string{"refunds-over-50-need-a-lead"}, true},
		{"alice", "shop.delete_order", map[string]any{"order_id": "A1"}, audit.DecisionConfirm, []string{"deletes-need-a-yes"}, true},
		{"alice", "shop.send_email", map[string]any{"to": "x@example.com"}, deny, []string{"default-deny"}, true},
		{"alice", "shop.refund_order", json.RawMessage(`{"order_id":"A1","amount":"100"}`), deny, []string{"input"}, false},
		{"bob", "shop.get_order", map[string]any{"order_id": "B1"}, allow, []string{"orders-are-readable"}, true},
		{"bob", "shop.refund_order", map[string]any{"order_id": "B1", "amount": 5}, deny, []string{"role"}, true},
	}
	denied := map[string]auditedCall{} // by decision id
	for _, c := range calls {
		r := callTool(t, ctx, sessions[c.principal], c.tool, c.args)
		if c.decision == allow {
			if r.isError {
				t.Fatalf("%s %s: %+v, want it allowed", c.principal, c.tool, r)
			}
			continue
		}
		d := parseDenial(t, r)
		if d.rules != strings.Join(c.rules, ",") {
			t.Fatalf("%s %s denied by %s, want %v", c.principal, c.tool, d.rules, c.rules)
		}
		denied[d.id] = c
	}
	policyVersion := w.rt.policy.Policy().Version()
	dbPath := w.rt.cfg.Store
	keyPath := audit.KeyPathFor(dbPath)
	w.stop(t) // flushes the log and writes the last checkpoint

	records := readAudit(t, dbPath)
	byID := map[string][]audit.Record{}
	var toolDecisions []audit.Record
	for _, r := range records {
		if r.Method != "tools/call" {
			continue
		}
		byID[r.DecisionID] = append(byID[r.DecisionID], r)
		if r.Kind == audit.KindDecision {
			toolDecisions = append(toolDecisions, r)
		}
	}
	if len(toolDecisions) != len(calls) {
		t.Errorf("%d tools/call decision records, want one per call: %d", len(toolDecisions), len(calls))
	}
	for id, c := range denied {
		recs := byID[id]
		if len(recs) != 1 || recs[0].Kind != audit.KindDecision {
			t.Errorf("denied call %s (%s %s): records %+v, want exactly one decision record", id, c.principal, c.tool, recs)
			continue
		}
		checkDecisionRecord(t, recs[0], c, "denied", policyVersion)
	}
	executed := 0
	for id, recs := range byID {
		if _, ok := denied[id]; ok {
			continue
		}
		if len(recs) != 2 || recs[0].Kind != audit.KindDecision || recs[1].Kind != audit.KindOutcome {
			t.Errorf("allowed call %s: records %+v, want a decision then an outcome", id, recs)
			continue
		}
		var c *auditedCall
		for i := range calls {
			if calls[i].decision == allow && calls[i].principal == recs[0].Principal && calls[i].tool == recs[0].Tool {
				c = &calls[i]
			}
		}
		if c == nil {
			t.Errorf("allowed call %s: %s %s is not a call the test allowed", id, recs[0].Principal, recs[0].Tool)
			continue
		}
		checkDecisionRecord(t, recs[0], *c, "allowed", policyVersion)
		if out := recs[1]; out.Status != "ok" || out.Upstream != "shop" || out.Seq <= recs[0].Seq || !slices.Equal(out.Rules, c.rules) {
			t.Errorf("outcome of %s: status %q upstream %q seq %d rules %v, want ok from shop after the decision (seq %d) with %v",
				id, out.Status, out.Upstream, out.Seq, out.Rules, recs[0].Seq, c.rules)
		}
		executed++
		if c.tool == "shop.login" {
			var args map[string]any
			if err := json.Unmarshal(recs[0].Args, &args); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string]any{"user": "alice", "password": "[REDACTED]"}, args); diff != "" {
				t.Errorf("login arguments in the audit log (-want +got):\n%s", diff)
			}
		}
	}
	if executed != 3 {
		t.Errorf("%d executed calls in the audit log, want 3", executed)
	}
	for _, f := range []string{dbPath, dbPath + "-wal"} {
		data, err := os.ReadFile(f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		for _, secret := range []string{password, testAPIKey} {
			if bytes.Contains(data, []byte(secret)) {
				t.Errorf("%s holds the secret %q", filepath.Base(f), secret)
			}
		}
	}
	if strings.Contains(w.log.String(), password) || strings.Contains(w.log.String(), testAPIKey) {
		t.Error("the gateway log holds a secret")
	}

	// The intact log verifies, against the key the server wrote beside
	// the store, which verify finds there without being told.
	var out, errOut bytes.Buffer
	err := runAuditVerify(ctx, &out, &errOut, dbPath, "", false)
	if err != nil || !strings.HasPrefix(out.String(), fmt.Sprintf("OK: %d records", len(records))) ||
		!strings.Contains(out.String(), "from "+keyPath) {
		t.Fatalf("verify of the intact log: %v\n%s%s", err, out.String(), errOut.String())
	}

	// Each tampering, on its own copy, is caught at the first bad record.
	deniedSeq := byID[firstKey(denied)][0].Seq
	first, last := records[1].Seq, records[len(records)-2].Seq
	tampers := []struct {
		name    string
		stmts   []string
		problem string
	}{
		{"edit a reason", []string{
			"DROP TRIGGER audit_records_no_update",
			fmt.Sprintf("UPDATE audit_records SET reason = 'allowed after all' WHERE seq = %d", deniedSeq),
		}, fmt.Sprintf("FAILED: record %d: hash_mismatch", deniedSeq)},
		{"delete a record", []string{
			"DROP TRIGGER audit_records_no_delete",
			fmt.Sprintf("DELETE FROM audit_records WHERE seq = %d", deniedSeq),
		}, fmt.Sprintf("FAILED: record %d: seq_gap", deniedSeq)},
		{"swap two records", []string{
			"DROP TRIGGER audit_records_no_update",
			fmt.Sprintf("UPDATE audit_records SET seq = -1 WHERE seq = %d", first),
			fmt.Sprintf("UPDATE audit_records SET seq = %d WHERE seq = %d", first, last),
			fmt.Sprintf("UPDATE audit_records SET seq = %d WHERE seq = -1", last),
		}, fmt.Sprintf("FAILED: record %d: hash_mismatch", first)},
	}
	for _, tc := range tampers {
		t.Run(tc.name, func(t *testing.T) {
			copyPath := copyDatabase(t, dbPath)
			execSQL(t, copyPath, tc.stmts...)
			out, err := verifyAudit(ctx, copyPath, keyPath)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitFailure {
				t.Errorf("verify: %v, want exit code %d", err, exitFailure)
			}
			if !strings.HasPrefix(out, tc.problem) {
				t.Errorf("verify reported:\n%s\nwant it to start %q", out, tc.problem)
			}
		})
	}
}

// checkDecisionRecord compares a decision record with the call it records.
func checkDecisionRecord(t *testing.T, r audit.Record, c auditedCall, status, policyVersion string) {
	t.Helper()
	wantVersion := policyVersion
	if !c.policyDecided {
		wantVersion = ""
	}
	if r.Principal != c.principal || r.Tool != c.tool || r.Decision != c.decision || !slices.Equal(r.Rules, c.rules) ||
		r.Status != status || r.PolicyVersion != wantVersion || r.Upstream != "shop" {
		t.Errorf("decision record %d = principal %q tool %q decision %q rules %v status %q policy %q upstream %q;\nwant %q %q %q %v %q %q %q",
			r.Seq, r.Principal, r.Tool, r.Decision, r.Rules, r.Status, r.PolicyVersion, r.Upstream,
			c.principal, c.tool, c.decision, c.rules, status, wantVersion, "shop")
	}
	if status == "denied" && r.Reason == "" {
		t.Errorf("decision record %d has no reason", r.Seq)
	}
	if c.policyDecided && len(r.Args) == 0 {
		t.Errorf("decision record %d has no arguments", r.Seq)
	}
}

func firstKey[V any](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys[0]
}

// readAudit returns every record of the audit log at dbPath, opened
// read-only as the audit commands open it.
func readAudit(t *testing.T, dbPath string) []audit.Record {
	t.Helper()
	db, err := sqlite.OpenReadOnly(dbPath, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open the audit database: %v", err)
	}
	defer db.Close()
	recs, err := db.Audit().Query(context.Background(), audit.Filter{Limit: audit.MaxQueryLimit})
	if err != nil {
		t.Fatalf("read the audit log: %v", err)
	}
	return recs
}

// verifyAudit runs `warden audit verify --db dbPath --key keyPath`.
func verifyAudit(ctx context.Context, dbPath, keyPath string) (string, error) {
	var out, errOut bytes.Buffer
	err := runAuditVerify(ctx, &out, &errOut, dbPath, keyPath, true)
	return out.String() + errOut.String(), err
}

// copyDatabase copies the database file (and its write-ahead log, if any)
// into a new directory.
func copyDatabase(t *testing.T, dbPath string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(dbPath))
	for _, suffix := range []string{"", "-wal"} {
		data, err := os.ReadFile(dbPath + suffix)
		if errors.Is(err, os.ErrNotExist) && suffix != "" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, dst+suffix, data)
	}
	return dst
}

// execSQL runs statements on the database file directly, as someone with
// the file could.
func execSQL(t *testing.T, dbPath string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}
