package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/config"
	"github.com/wardenmcp/warden/internal/gateway"
	"github.com/wardenmcp/warden/internal/identity"
	"github.com/wardenmcp/warden/internal/policy"
	"github.com/wardenmcp/warden/internal/store/sqlite"
)

const tokenPolicy = `
version: 1
roles:
  agent: {tools: ["crm.*"]}
rules:
  - {id: crm, tool: "crm.*", effect: allow}
masking:
  default: redact
  rules:
    - {id: agents-get-tokens, classes: [EMAIL_ADDRESS], when: "'agent' in principal.roles", action: tokenize}
`

// TestTokensResolveOnlyForTheirOwner: an email the caller may not see comes
// back as a reversible token; the same caller can hand the token to a later
// call, which reaches the upstream with the real address; another caller
// presenting the token is refused, and the audit log keeps the token.
func TestTokensResolveOnlyForTheirOwner(t *testing.T) {
	ctx := testContext(t)
	var mu sync.Mutex
	var sentTo []string
	up := newServer("crm", nil)
	up.AddTool(&mcp.Tool{Name: "get_customer", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "Jane Doe <jane.doe@example.com>"}}}, nil
		})
	up.AddTool(&mcp.Tool{Name: "send_note", InputSchema: json.RawMessage(`{"type":"object","properties":{"to":{"type":"string"}}}`)},
		func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var a struct{ To string }
			_ = json.Unmarshal(req.Params.Arguments, &a)
			mu.Lock()
			sentTo = append(sentTo, a.To)
			mu.Unlock()
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "sent"}}}, nil
		})
	u := startUpstream(t, up, false)

	cfg, err := config.Parse([]byte("upstreams:\n"+httpUpstreamYAML("crm", u.URL, []string{"*"})), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Compile([]byte(tokenPolicy), "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "warden.db"), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	tokens, err := sqlite.NewTokenStore(db, sqlite.TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	authn, err := identity.New(identity.Config{APIKeys: []identity.APIKey{
		{ID: "a", Hash: identity.HashAPIKey("key-alice"), Principal: identity.Principal{ID: "alice", Roles: []string{"agent"}}},
		{ID: "b", Hash: identity.HashAPIKey("key-bob"), Principal: identity.Principal{ID: "bob", Roles: []string{"agent"}}},
	}}, identity.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Options{Config: cfg, Logger: testLogger(t), Sealer: testSealer(t),
		Policy: fixedPolicy{pol}, Authn: authn, Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.Close(cctx)
	})
	endpoint := serveHTTP(t, g)
	dial := func(key string) *mcp.ClientSession {
		c := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil)
		cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{Transport: apiKeyTransport{key}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cs.Close() })
		return cs
	}
	alice, bob := dial("key-alice"), dial("key-bob")

	got := callText(ctx, t, alice, "crm.get_customer", map[string]any{})
	tok := regexp.MustCompile(`tok_EMAIL_ADDRESS_[A-Za-z0-9_-]+`).FindString(got)
	if tok == "" || strings.Contains(got, "jane.doe@example.com") {
		t.Fatalf("alice saw %q; want the email replaced by a token", got)
	}
	if txt := callText(ctx, t, alice, "crm.send_note", map[string]any{"to": tok}); txt != "sent" {
		t.Fatalf("alice's call with her token: %q", txt)
	}
	if txt := toolErrorText(ctx, t, bob, "crm.send_note", map[string]any{"to": tok}); !strings.Contains(txt, "denied by token") {
		t.Fatalf("bob's call with alice's token: %q, want it refused", txt)
	}
	if txt := toolErrorText(ctx, t, alice, "crm.send_note", map[string]any{"to": "tok_EMAIL_ADDRESS_forged"}); !strings.Contains(txt, "denied by token") {
		t.Fatalf("a forged token: %q, want it refused", txt)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sentTo) != 1 || sentTo[0] != "jane.doe@example.com" {
		t.Fatalf("the upstream received %v; want exactly one note, to the real address", sentTo)
	}
}
