package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/admin"
	"github.com/wardenmcp/warden/internal/audit"
	"github.com/wardenmcp/warden/internal/grant"
	"github.com/wardenmcp/warden/internal/identity"
)

// testAdminKey is the admin API's key in the grants fixture; it is no MCP
// key.
const testAdminKey = "wa_test_ops_8c2f7e51b3"

// withAdminAPI adds the admin listener and its key to the serve fixture's
// configuration.
func withAdminAPI(t *testing.T, fx *serveFixture) {
	t.Helper()
	cfg, err := os.ReadFile(fx.configPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg = fmt.Appendf(cfg, "admin_listen: 127.0.0.1:0\nadmin:\n  keys:\n    - {id: ops, hash: %q}\n", identity.HashAPIKey(testAdminKey))
	writeTestFile(t, fx.configPath, cfg)
}

// startAdmin serves the running Warden's admin API on its own listener, as
// `warden serve` does, and returns its base URL and a stop function (also
// called when the test ends).
func startAdmin(t *testing.T, w *wardenServer) (string, func()) {
	t.Helper()
	if w.rt.admin == nil {
		t.Fatal("the runtime has no admin API although admin_listen is set")
	}
	var base string
	stop, err := serveAdmin(w.rt.cfg.AdminListen, w.rt.admin, func(msg string, args ...any) {
		for i := 0; i+1 < len(args); i += 2 {
			if args[i] == "url" {
				base, _ = args[i+1].(string)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stopOnce := func() { once.Do(stop) }
	t.Cleanup(stopOnce)
	if !strings.HasPrefix(base, "http://127.0.0.1:") || strings.HasSuffix(base, ":0") {
		t.Fatalf("admin API serving at %q, want a loopback port", base)
	}
	return base, stopOnce
}

// grantsClient is `warden grants --admin base --key-env WARDEN_ADMIN_KEY
// --format json` with the admin key in its environment.
func grantsClient(t *testing.T, base string) *adminClient {
	t.Helper()
	c, err := newAdminClient(&adminFlags{adminURL: base, keyEnv: "WARDEN_ADMIN_KEY", format: "json"},
		func(k string) string {
			if k == "WARDEN_ADMIN_KEY" {
				return testAdminKey
			}
			return ""
		})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// createGrant runs `warden grants create` and returns what it printed.
func createGrant(t *testing.T, ctx context.Context, c *adminClient, req admin.GrantRequest) admin.GrantResponse {
	t.Helper()
	var out bytes.Buffer
	if err := runGrantsCreate(ctx, &out, c, req, "json"); err != nil {
		t.Fatalf("grants create: %v", err)
	}
	var resp admin.GrantResponse
	if err := json.Unmarshal(out.Bytes(), &resp); err != nil || !strings.HasPrefix(resp.Token, grant.TokenPrefix) {
		t.Fatalf("grants create printed %s (%v), want a grant and its token", out.Bytes(), err)
	}
	return resp
}

// taskHeader sends a task grant token in the Warden-Task header of every
// request, on top of the caller's credential.
type taskHeader struct {
	token string
	next  http.RoundTripper
}

func (h taskHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(grant.Header, h.token)
	return h.next.RoundTrip(r)
}

// readOrder calls shop.get_order presenting token in _meta.
func readOrder(t *testing.T, ctx context.Context, cs *mcp.ClientSession, token string) callResult {
	t.Helper()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "shop.get_order",
		Arguments: map[string]any{"order_id": "A1"}, Meta: mcp.Meta{grant.MetaKey: token}})
	if err != nil {
		t.Fatalf("shop.get_order: %v", err)
	}
	return callResult{text: toolText(res), isError: res.IsError}
}

// grantsStatus sends one request and returns its status code.
func grantsStatus(t *testing.T, method, url, authorization, apiKey string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(`{"principal":"alice","tools":["*"],"ttl":"1h"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if apiKey != "" {
		req.Header.Set("X-API-Key", apiKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestServeGrantsEndToEnd issues and revokes task grants through the admin
// listener of a real `warden serve` and presents them on its MCP listener:
// the admin API is reachable only on its own listener with its own key,
// grants and the budget they consumed survive a restart, and every change
// is in the audit log.
func TestServeGrantsEndToEnd(t *testing.T) {
	shop := startTestShop(t)
	fx := writeServeFixture(t, shop.url, "127.0.0.1:0", 0)
	withAdminAPI(t, fx)
	w := startWarden(t, fx.configPath)
	adminURL, stopAdmin := startAdmin(t, w)
	ctx := serveContext(t)
	c := grantsClient(t, adminURL)

	revoked := createGrant(t, ctx, c, admin.GrantRequest{Principal: testAPIKeyOwner, Tools: []string{"shop.get_order"}, TTL: "1h"})
	budgeted := createGrant(t, ctx, c, admin.GrantRequest{Principal: testAPIKeyOwner, Tools: []string{"shop.*"}, Budget: 2, TTL: "1h"})

	// The grant in the Warden-Task header.
	ct := apiKeyCredential(testAPIKey)
	client := mcp.NewClient(&mcp.Implementation{Name: "serve-test", Version: "1.0.0"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: w.url,
		HTTPClient: &http.Client{Transport: taskHeader{token: revoked.Token, next: ct}}, DisableStandaloneSSE: true, MaxRetries: -1},
		&mcp.ClientSessionOptions{ProtocolVersion: revStateless})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	r := callTool(t, ctx, cs, "shop.get_order", map[string]any{"order_id": "A1"})
	if r.isError || r.text != "get_order done" {
		t.Fatalf("a call under a fresh grant: %+v, want it allowed", r)
	}
	var out bytes.Buffer
	if err := runGrantsRevoke(ctx, &out, c, revoked.Grant.ID, "json"); err != nil {
		t.Fatalf("grants revoke: %v", err)
	}
	if d := parseDenial(t, callTool(t, ctx, cs, "shop.get_order", map[string]any{"order_id": "A1"})); d.rules != "task" || d.reason != grant.ErrRevoked.Error() {
		t.Errorf("a call under the revoked grant: denied by %q: %q, want task: %q", d.rules, d.reason, grant.ErrRevoked)
	}

	// The grant in _meta; one call of its budget of two before a restart.
	plain := mustDialWarden(t, ctx, w.url, apiKeyCredential(testAPIKey), revSessions)
	if r := readOrder(t, ctx, plain, budgeted.Token); r.isError {
		t.Fatalf("first call of the budget: %+v", r)
	}

	// The MCP listener serves no admin API, whatever the credential; the
	// admin listener refuses an MCP key and anything without its own key.
	for _, auth := range []struct{ authorization, apiKey string }{
		{"Bearer " + testAdminKey, ""}, {"", testAPIKey}, {"Bearer " + testAPIKey, ""},
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			if got := grantsStatus(t, method, w.base+"/v1/grants", auth.authorization, auth.apiKey); got != http.StatusNotFound {
				t.Errorf("%s /v1/grants on the MCP listener (%+v): status %d, want 404", method, auth, got)
			}
		}
	}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		if got := grantsStatus(t, method, adminURL+"/v1/grants", "Bearer "+testAPIKey, ""); got != http.StatusForbidden {
			t.Errorf("%s /v1/grants with the MCP key: status %d, want 403", method, got)
		}
		if got := grantsStatus(t, method, adminURL+"/v1/grants", "", testAPIKey); got != http.StatusUnauthorized {
			t.Errorf("%s /v1/grants with the MCP key as X-API-Key: status %d, want 401", method, got)
		}
	}

	// Restart on the same store: the budget spent is remembered, and so
	// is the revocation.
	_ = cs.Close()
	_ = plain.Close()
	stopAdmin()
	dbPath := w.rt.cfg.Store
	w.stop(t)
	w = startWarden(t, fx.configPath)
	plain = mustDialWarden(t, ctx, w.url, apiKeyCredential(testAPIKey), revStateless)
	if r := readOrder(t, ctx, plain, budgeted.Token); r.isError {
		t.Fatalf("second call of the budget, after the restart: %+v", r)
	}
	if d := parseDenial(t, readOrder(t, ctx, plain, budgeted.Token)); d.rules != "task" || d.reason != grant.ErrBudget.Error() {
		t.Errorf("third call of a budget of 2: denied by %q: %q, want task: %q", d.rules, d.reason, grant.ErrBudget)
	}
	if d := parseDenial(t, readOrder(t, ctx, plain, revoked.Token)); d.rules != "task" || d.reason != grant.ErrRevoked.Error() {
		t.Errorf("the revoked grant after the restart: denied by %q: %q, want task: %q", d.rules, d.reason, grant.ErrRevoked)
	}
	if n := len(shop.received("get_order")); n != 3 {
		t.Errorf("the shop received %d orders reads, want the 3 allowed", n)
	}
	_ = plain.Close()
	w.stop(t)

	// The audit log: one admin record per change, by the admin key's id;
	// the calls name their task.
	var admins []string
	tasks := map[string]int{}
	for _, rec := range readAudit(t, dbPath) {
		if rec.Kind == audit.KindAdmin {
			admins = append(admins, rec.Method+" "+rec.Task+" by "+rec.Principal)
		}
		if rec.Method == "tools/call" && rec.Kind == audit.KindDecision {
			tasks[rec.Task]++
		}
	}
	want := []string{
		admin.ActionCreate + " " + revoked.Grant.ID + " by ops",
		admin.ActionCreate + " " + budgeted.Grant.ID + " by ops",
		admin.ActionRevoke + " " + revoked.Grant.ID + " by ops",
	}
	if !slices.Equal(admins, want) {
		t.Errorf("admin records:\n%s\nwant:\n%s", strings.Join(admins, "\n"), strings.Join(want, "\n"))
	}
	// Every attempt on a grant names it, the refused ones too (after the
	// revocation, after the budget ran out), so a reviewer sees them.
	if tasks[revoked.Grant.ID] != 3 || tasks[budgeted.Grant.ID] != 3 {
		t.Errorf("decision records by task: %v, want 3 for %s and 3 for %s", tasks, revoked.Grant.ID, budgeted.Grant.ID)
	}
}
