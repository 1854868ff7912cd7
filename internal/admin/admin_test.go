package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wardenmcp/warden/internal/admin"
	"github.com/wardenmcp/warden/internal/grant"
	"github.com/wardenmcp/warden/internal/identity"
)

const (
	adminKey = "admin-secret-key"
	mcpKey   = "mcp-agent-key"
)

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type server struct {
	url    string
	grants *grant.MemoryStore
	mu     sync.Mutex
	events []admin.Event
	fail   error // returned by the audit callback when set
}

func (s *server) audited() []admin.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]admin.Event(nil), s.events...)
}

func newServer(t *testing.T) *server {
	t.Helper()
	s := &server{grants: grant.NewMemoryStore()}
	h, err := admin.New(admin.Config{Keys: []admin.Key{{ID: "ops", Hash: identity.HashAPIKey(adminKey)}}}, admin.Options{
		Grants: s.grants,
		Audit: func(_ context.Context, e admin.Event) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.fail != nil {
				return s.fail
			}
			s.events = append(s.events, e)
			return nil
		},
		Logger: slog.New(slog.DiscardHandler),
		Status: func(context.Context) (map[string]any, error) {
			return map[string]any{"policy_version": "v7"}, nil
		},
		MCPKeys: []identity.APIKey{{ID: "agent", Hash: identity.HashAPIKey(mcpKey), Principal: identity.Principal{ID: "alice"}}},
		Now:     func() time.Time { return base },
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// call sends a request and decodes the JSON answer into out (when non-nil).
func call(t *testing.T, method, url, key, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, url, ct)
	}
	if bytes.Contains(data, []byte("sha256:")) {
		t.Errorf("%s %s: the answer shows a secret digest: %s", method, url, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, data)
		}
	}
	return resp.StatusCode
}

const createBody = `{"principal":"alice","tools":["shop.*","db.query"],"scope":{"order_id":"12345"},"budget":10,"rate":60,"ttl":"1h"}`

func TestAuthentication(t *testing.T) {
	s := newServer(t)
	_, token, err := grant.Issue(grant.Spec{Principal: "alice", ExpiresAt: base.Add(time.Hour)}, base)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, path, key string
		want                    int
	}{
		{"no key", "GET", "/v1/grants", "", http.StatusUnauthorized},
		{"wrong key", "GET", "/v1/grants", "guess", http.StatusUnauthorized},
		{"MCP key", "GET", "/v1/grants", mcpKey, http.StatusForbidden},
		{"MCP key creating", "POST", "/v1/grants", mcpKey, http.StatusForbidden},
		{"grant token", "GET", "/v1/status", token, http.StatusForbidden},
		{"no key for status", "GET", "/v1/status", "", http.StatusUnauthorized},
		{"admin key", "GET", "/v1/grants", adminKey, http.StatusOK},
		{"admin key deriving", "POST", "/v1/grants/x/derive", adminKey, http.StatusUnauthorized},
		{"unknown endpoint", "GET", "/v1/nothing", adminKey, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := ""
			if tc.method == "POST" {
				body = createBody
			}
			var e admin.ErrorResponse
			got := call(t, tc.method, s.url+tc.path, tc.key, body, &e)
			if got != tc.want {
				t.Fatalf("status %d, want %d (%s)", got, tc.want, e.Error)
			}
			if got >= 400 && e.Error == "" {
				t.Errorf("error answer without a message")
			}
		})
	}
	if n := len(s.audited()); n != 0 {
		t.Errorf("refused requests changed something: %d audit events", n)
	}
	if gs, _ := s.grants.List(context.Background(), grant.ListFilter{}); len(gs) != 0 {
		t.Errorf("a refused request created %d grants", len(gs))
	}
}

func TestNewRefusesAnAdminKeyThatIsAnMCPKey(t *testing.T) {
	_, err := admin.New(admin.Config{Keys: []admin.Key{{ID: "ops", Hash: identity.HashAPIKey("shared")}}}, admin.Options{
		Grants: grant.NewMemoryStore(), Audit: func(context.Context, admin.Event) error { return nil },
		Logger:  slog.New(slog.DiscardHandler),
		MCPKeys: []identity.APIKey{{ID: "agent", Hash: identity.HashAPIKey("shared")}},
	})
	if err == nil || !strings.Contains(err.Error(), "kept apart") {
		t.Fatalf("err = %v", err)
	}
	for _, cfg := range []admin.Config{
		{Keys: []admin.Key{{ID: "", Hash: identity.HashAPIKey("a")}}},
		{Keys: []admin.Key{{ID: "ops", Hash: "plaintext-key"}}},
		{Keys: []admin.Key{{ID: "a", Hash: identity.HashAPIKey("k")}, {ID: "b", Hash: identity.HashAPIKey("k")}}},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("Validate accepted %+v", cfg)
		}
	}
}

func TestGrantLifecycle(t *testing.T) {
	s := newServer(t)
	var created admin.GrantResponse
	if code := call(t, "POST", s.url+"/v1/grants", adminKey, createBody, &created); code != http.StatusCreated {
		t.Fatalf("create: status %d", code)
	}
	g := created.Grant
	if !strings.HasPrefix(created.Token, "wg_"+g.ID+".") {
		t.Fatalf("token %q does not name grant %s", created.Token, g.ID)
	}
	want := grant.Grant{
		ID: g.ID, Principal: "alice", Tools: []string{"db.query", "shop.*"}, Scope: map[string]string{"order_id": "12345"},
		Budget: 10, Rate: 60, ExpiresAt: base.Add(time.Hour), CreatedAt: base,
	}
	if diff := cmp.Diff(want, g); diff != "" {
		t.Errorf("created grant (-want +got):\n%s", diff)
	}
	// The token works for the gateway.
	if _, err := grant.NewResolver(s.grants).Resolve(context.Background(), created.Token, "alice", "shop.get_order", base); err != nil {
		t.Fatalf("the issued token does not resolve: %v", err)
	}

	var list admin.ListResponse
	if code := call(t, "GET", s.url+"/v1/grants?principal=alice", adminKey, "", &list); code != http.StatusOK || len(list.Grants) != 1 || list.Grants[0].ID != g.ID {
		t.Fatalf("list: status %d, %+v", code, list)
	}
	if code := call(t, "GET", s.url+"/v1/grants?principal=bob", adminKey, "", &list); code != http.StatusOK || len(list.Grants) != 0 {
		t.Fatalf("list bob: status %d, %+v", code, list)
	}
	if code := call(t, "GET", s.url+"/v1/grants?limit=x", adminKey, "", nil); code != http.StatusBadRequest {
		t.Fatalf("list with a bad limit: status %d", code)
	}
	var got admin.GrantResponse
	if code := call(t, "GET", s.url+"/v1/grants/"+g.ID, adminKey, "", &got); code != http.StatusOK || got.Grant.Used != 1 || got.Token != "" {
		t.Fatalf("get: status %d, %+v", code, got)
	}
	if code := call(t, "GET", s.url+"/v1/grants/nope", adminKey, "", nil); code != http.StatusNotFound {
		t.Fatalf("get unknown: status %d", code)
	}
	if code := call(t, "POST", s.url+"/v1/grants/"+g.ID+"/revoke", adminKey, "", &got); code != http.StatusOK || !got.Grant.RevokedAt.Equal(base) {
		t.Fatalf("revoke: status %d, %+v", code, got)
	}
	if code := call(t, "POST", s.url+"/v1/grants/nope/revoke", adminKey, "", nil); code != http.StatusNotFound {
		t.Fatalf("revoke unknown: status %d", code)
	}
	if _, err := grant.NewResolver(s.grants).Resolve(context.Background(), created.Token, "alice", "shop.get_order", base); !errors.Is(err, grant.ErrRevoked) {
		t.Fatalf("revoked token: err = %v", err)
	}

	events := s.audited()
	if len(events) != 2 || events[0].Action != admin.ActionCreate || events[1].Action != admin.ActionRevoke {
		t.Fatalf("audit events %+v", events)
	}
	for _, e := range events {
		if e.Actor != "ops" || e.Grant.ID != g.ID || e.Remote == "" {
			t.Errorf("audit event %+v lacks actor, grant or remote", e)
		}
	}
	if events[1].Grant.RevokedAt.IsZero() {
		t.Error("the revoke event does not show the revocation")
	}
	var status map[string]any
	if code := call(t, "GET", s.url+"/v1/status", adminKey, "", &status); code != http.StatusOK || status["policy_version"] != "v7" {
		t.Fatalf("status: %d %v", code, status)
	}
}

func TestCreateRefusesBadRequests(t *testing.T) {
	s := newServer(t)
	for _, tc := range []struct{ name, body string }{
		{"duplicate key", `{"principal":"alice","principal":"root","tools":[],"ttl":"1h"}`},
		{"case-folded duplicate", `{"principal":"alice","Principal":"root","tools":[],"ttl":"1h"}`},
		{"unknown field", `{"principal":"alice","tools":[],"ttl":"1h","admin":true}`},
		{"not JSON", `principal=alice`},
		{"no expiry", `{"principal":"alice","tools":["t"]}`},
		{"ttl and expires_at", `{"principal":"alice","tools":["t"],"ttl":"1h","expires_at":"2026-03-01T13:00:00Z"}`},
		{"negative ttl", `{"principal":"alice","tools":["t"],"ttl":"-1h"}`},
		{"ttl over the lifetime", `{"principal":"alice","tools":["t"],"ttl":"10000h"}`},
		{"negative budget", `{"principal":"alice","tools":["t"],"ttl":"1h","budget":-1}`},
		{"no principal", `{"tools":["t"],"ttl":"1h"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e admin.ErrorResponse
			if code := call(t, "POST", s.url+"/v1/grants", adminKey, tc.body, &e); code != http.StatusBadRequest {
				t.Fatalf("status %d (%s), want 400", code, e.Error)
			}
		})
	}
	if gs, _ := s.grants.List(context.Background(), grant.ListFilter{}); len(gs) != 0 {
		t.Errorf("bad requests created %d grants", len(gs))
	}
}

func TestDerive(t *testing.T) {
	s := newServer(t)
	var parent admin.GrantResponse
	if code := call(t, "POST", s.url+"/v1/grants", adminKey, createBody, &parent); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	derive := s.url + "/v1/grants/" + parent.Grant.ID + "/derive"

	var child admin.GrantResponse
	narrower := `{"tools":["shop.get_order"],"scope":{"order_id":"12345","line":"2"},"budget":5,"rate":10,"ttl":"10m","labels":["subtask"]}`
	if code := call(t, "POST", derive, parent.Token, narrower, &child); code != http.StatusCreated {
		t.Fatalf("narrower derive: status %d", code)
	}
	if child.Grant.Parent != parent.Grant.ID || child.Token == "" || child.Grant.Principal != "alice" ||
		!child.Grant.ExpiresAt.Equal(base.Add(10*time.Minute)) {
		t.Fatalf("derived %+v", child)
	}

	for _, tc := range []struct{ name, body string }{
		{"wider tools", `{"tools":["fs.*"]}`},
		{"everything", `{"tools":["*"]}`},
		{"other scope value", `{"scope":{"order_id":"1"}}`},
		{"bigger budget", `{"budget":11}`},
		{"faster", `{"rate":120}`},
		{"longer", `{"ttl":"2h"}`},
		{"other principal", `{"principal":"bob"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e admin.ErrorResponse
			if code := call(t, "POST", derive, parent.Token, tc.body, &e); code != http.StatusForbidden {
				t.Fatalf("status %d (%s), want 403", code, e.Error)
			}
			if !strings.Contains(e.Error, "wider") {
				t.Errorf("message %q does not say why", e.Error)
			}
		})
	}

	// A derived grant derives from itself only, and only narrower still.
	var grandchild admin.GrantResponse
	childDerive := s.url + "/v1/grants/" + child.Grant.ID + "/derive"
	if code := call(t, "POST", childDerive, child.Token, `{"budget":1}`, &grandchild); code != http.StatusCreated || grandchild.Grant.Depth != 2 {
		t.Fatalf("grandchild: status %d %+v", code, grandchild)
	}
	if code := call(t, "POST", childDerive, child.Token, `{"tools":["db.query"]}`, nil); code != http.StatusForbidden {
		t.Fatalf("child widened to a parent-only tool: status %d", code)
	}
	if code := call(t, "POST", derive, child.Token, `{}`, nil); code != http.StatusForbidden {
		t.Fatalf("child token derived from its parent: status %d", code)
	}
	forged := "wg_" + parent.Grant.ID + "." + strings.Repeat("A", 43)
	if code := call(t, "POST", derive, forged, `{}`, nil); code != http.StatusUnauthorized {
		t.Fatalf("forged secret: status %d", code)
	}

	// Revoking the parent stops deriving from it.
	if code := call(t, "POST", s.url+"/v1/grants/"+parent.Grant.ID+"/revoke", adminKey, "", nil); code != http.StatusOK {
		t.Fatal("revoke failed")
	}
	if code := call(t, "POST", derive, parent.Token, `{}`, nil); code != http.StatusForbidden {
		t.Fatalf("revoked parent derived: status %d", code)
	}

	var derives []admin.Event
	for _, e := range s.audited() {
		if e.Action == admin.ActionDerive {
			derives = append(derives, e)
		}
	}
	if len(derives) != 2 || derives[0].Actor != "grant:"+parent.Grant.ID || derives[0].Grant.ID != child.Grant.ID {
		t.Fatalf("derive audit events %+v", derives)
	}
}

func TestAuditFailureFailsTheRequest(t *testing.T) {
	s := newServer(t)
	var ok admin.GrantResponse
	if code := call(t, "POST", s.url+"/v1/grants", adminKey, createBody, &ok); code != http.StatusCreated {
		t.Fatal("create failed")
	}
	s.mu.Lock()
	s.fail = errors.New("audit log unavailable")
	s.mu.Unlock()

	var resp map[string]any
	if code := call(t, "POST", s.url+"/v1/grants", adminKey, createBody, &resp); code != http.StatusInternalServerError {
		t.Fatalf("create without audit: status %d", code)
	}
	if _, has := resp["token"]; has || strings.Contains(resp["error"].(string), "unavailable") {
		t.Fatalf("answer %v shows a token or the internal error", resp)
	}
	gs, err := s.grants.List(context.Background(), grant.ListFilter{})
	if err != nil || len(gs) != 2 || gs[1].RevokedAt.IsZero() {
		t.Fatalf("the unaudited grant is usable: %+v (%v)", gs, err)
	}
	if code := call(t, "POST", s.url+"/v1/grants/"+ok.Grant.ID+"/derive", ok.Token, `{}`, nil); code != http.StatusInternalServerError {
		t.Fatalf("derive without audit: status %d", code)
	}
	if code := call(t, "POST", s.url+"/v1/grants/"+ok.Grant.ID+"/revoke", adminKey, "", nil); code != http.StatusInternalServerError {
		t.Fatalf("revoke without audit: status %d", code)
	}
	// The revocation itself stands: failing closed.
	if g, err := s.grants.Get(context.Background(), ok.Grant.ID); err != nil || g.RevokedAt.IsZero() {
		t.Fatalf("revocation did not take effect: %+v %v", g, err)
	}
}
