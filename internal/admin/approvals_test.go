package admin_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenmcp/warden/internal/admin"
	"github.com/wardenmcp/warden/internal/approval"
	"github.com/wardenmcp/warden/internal/approval/approvaltest"
	"github.com/wardenmcp/warden/internal/grant"
	"github.com/wardenmcp/warden/internal/identity"
)

type approvalServer struct {
	url    string
	broker *approval.Broker
	mu     sync.Mutex
	events []admin.Event
	fail   error
}

func (s *approvalServer) audited() []admin.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]admin.Event(nil), s.events...)
}

func newApprovalServer(t *testing.T) *approvalServer {
	t.Helper()
	now := func() time.Time { return approvaltest.Base.Add(time.Minute) }
	broker, err := approval.NewBroker(approval.NewMemoryStore(), approval.BrokerOptions{Logger: slog.New(slog.DiscardHandler), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	s := &approvalServer{broker: broker}
	h, err := admin.New(admin.Config{Keys: []admin.Key{{ID: "ops", Hash: identity.HashAPIKey(adminKey)}}}, admin.Options{
		Grants: grant.NewMemoryStore(),
		Audit: func(_ context.Context, e admin.Event) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.fail != nil {
				return s.fail
			}
			s.events = append(s.events, e)
			return nil
		},
		Logger:    slog.New(slog.DiscardHandler),
		MCPKeys:   []identity.APIKey{{ID: "agent", Hash: identity.HashAPIKey(mcpKey), Principal: identity.Principal{ID: "alice"}}},
		Now:       now,
		Approvals: broker,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *approvalServer) escalate(t *testing.T, digest string) approval.Request {
	t.Helper()
	r, err := s.broker.Escalate(context.Background(), approval.Call{
		Principal: "alice", Task: "g_1", Tool: "shop.refund_order",
		Args:       []byte(`{"order_id":"12345","amount":250,"note":"<script>alert(1)</script>"}`),
		ArgsDigest: digest, PolicyVersion: "v7", Reason: "refunds over 100 need a lead",
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestApprovalEndpoints(t *testing.T) {
	s := newApprovalServer(t)
	a := s.escalate(t, "digest-a")
	b := s.escalate(t, "digest-b")

	var list admin.ApprovalListResponse
	if code := call(t, "GET", s.url+"/v1/approvals?state=pending", adminKey, "", &list); code != http.StatusOK || len(list.Approvals) != 2 {
		t.Fatalf("list = %d, %+v", code, list)
	}
	if code := call(t, "GET", s.url+"/v1/approvals", mcpKey, "", nil); code != http.StatusForbidden {
		t.Errorf("MCP key listing approvals: %d, want 403", code)
	}
	if code := call(t, "GET", s.url+"/v1/approvals", "", "", nil); code != http.StatusUnauthorized {
		t.Errorf("no key: %d, want 401", code)
	}
	if code := call(t, "GET", s.url+"/v1/approvals?state=maybe", adminKey, "", nil); code != http.StatusBadRequest {
		t.Errorf("bad state: %d, want 400", code)
	}
	var one admin.ApprovalResponse
	if code := call(t, "GET", s.url+"/v1/approvals/"+a.ID, adminKey, "", &one); code != http.StatusOK || one.Approval.ArgsDigest != "digest-a" {
		t.Fatalf("get = %d, %+v", code, one)
	}
	if code := call(t, "GET", s.url+"/v1/approvals/apr_missing", adminKey, "", nil); code != http.StatusNotFound {
		t.Errorf("get missing: %d, want 404", code)
	}

	if code := call(t, "POST", s.url+"/v1/approvals/"+a.ID+"/approve", adminKey, `{"comment":"verified with the customer"}`, &one); code != http.StatusOK {
		t.Fatalf("approve = %d", code)
	}
	if one.Approval.State != approval.StateApproved || one.Approval.DecidedBy != "ops" || one.Approval.Comment != "verified with the customer" {
		t.Fatalf("approved = %+v", one.Approval)
	}
	if code := call(t, "POST", s.url+"/v1/approvals/"+a.ID+"/deny", adminKey, "", nil); code != http.StatusConflict {
		t.Errorf("deciding twice: %d, want 409", code)
	}
	if code := call(t, "POST", s.url+"/v1/approvals/"+b.ID+"/deny", adminKey, `{"comment":"x","extra":1}`, nil); code != http.StatusBadRequest {
		t.Errorf("unknown field: %d, want 400", code)
	}
	if code := call(t, "POST", s.url+"/v1/approvals/"+b.ID+"/deny", adminKey, "", &one); code != http.StatusOK || one.Approval.State != approval.StateDenied {
		t.Fatalf("deny without body = %d, %+v", code, one.Approval)
	}
	events := s.audited()
	if len(events) != 2 || events[0].Action != admin.ActionApprove || events[0].Actor != "ops" || events[0].Approval == nil ||
		events[0].Approval.ID != a.ID || events[1].Action != admin.ActionDeny {
		t.Fatalf("audit events = %+v", events)
	}

	// Approved through the API, the exact call proceeds once.
	if r := s.escalate(t, "digest-a"); r.State != approval.StateUsed || r.ID != a.ID {
		t.Fatalf("retry after approval = %s %s", r.ID, r.State)
	}
}

func TestApprovalNotDecidedWhenAuditFails(t *testing.T) {
	s := newApprovalServer(t)
	r := s.escalate(t, "digest-a")
	s.mu.Lock()
	s.fail = errors.New("disk full")
	s.mu.Unlock()
	if code := call(t, "POST", s.url+"/v1/approvals/"+r.ID+"/approve", adminKey, "", nil); code != http.StatusInternalServerError {
		t.Fatalf("approve with failing audit: %d, want 500", code)
	}
	got, err := s.broker.Get(context.Background(), r.ID)
	if err != nil || got.State != approval.StatePending {
		t.Fatalf("after failed audit: %s, %v; want still pending", got.State, err)
	}
}

func TestApprovalsAbsentWithoutBroker(t *testing.T) {
	s := newServer(t)
	if code := call(t, "GET", s.url+"/v1/approvals", adminKey, "", nil); code != http.StatusNotFound {
		t.Fatalf("approvals without a broker: %d, want 404", code)
	}
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see them.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func send(t *testing.T, c *http.Client, method, u string, form url.Values, header map[string]string) (int, string, http.Header) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(data), resp.Header
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func TestConsoleApproveThroughForm(t *testing.T) {
	s := newApprovalServer(t)
	r := s.escalate(t, "digest-a")
	c := browser(t)

	if code, _, h := send(t, c, "GET", s.url+"/console/approvals", nil, nil); code != http.StatusSeeOther || h.Get("Location") != "/console/login" {
		t.Fatalf("without a session: %d to %q, want a redirect to the login page", code, h.Get("Location"))
	}
	if code, body, _ := send(t, c, "POST", s.url+"/console/login", url.Values{"key": {mcpKey}}, nil); code != http.StatusUnauthorized || !strings.Contains(body, "not an admin key") {
		t.Fatalf("login with an MCP key: %d", code)
	}
	code, _, h := send(t, c, "POST", s.url+"/console/login", url.Values{"key": {adminKey}}, nil)
	if code != http.StatusSeeOther {
		t.Fatalf("login = %d", code)
	}
	if ck := h.Get("Set-Cookie"); strings.Contains(ck, adminKey) || !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Strict") {
		t.Fatalf("session cookie %q", ck)
	}

	code, body, h := send(t, c, "GET", s.url+"/console/approvals", nil, nil)
	if code != http.StatusOK || !strings.Contains(body, `href="/console/approvals/`+r.ID+`"`) || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("list = %d:\n%s", code, body)
	}
	code, body, _ = send(t, c, "GET", s.url+"/console/approvals/"+r.ID, nil, nil)
	if code != http.StatusOK {
		t.Fatalf("detail = %d", code)
	}
	for _, want := range []string{`&#34;order_id&#34;: &#34;12345&#34;`, "&lt;script&gt;alert(1)&lt;/script&gt;", "refunds over 100 need a lead", `id="approve"`} {
		if !strings.Contains(body, want) {
			t.Errorf("detail lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<script>") {
		t.Fatal("the arguments reached the page unescaped")
	}
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token in the form:\n%s", body)
	}
	token := m[1]

	approveURL := s.url + "/console/approvals/" + r.ID + "/approve"
	wrong := "0" + token[1:]
	if token[0] == '0' {
		wrong = "1" + token[1:] // a token that starts with 0 must still be changed
	}
	if code, _, _ := send(t, c, "POST", approveURL, url.Values{"csrf": {wrong}, "comment": {"x"}}, nil); code != http.StatusForbidden {
		t.Errorf("wrong CSRF token: %d, want 403", code)
	}
	if code, _, _ := send(t, c, "POST", approveURL, url.Values{"csrf": {token}, "comment": {"x"}}, map[string]string{"Sec-Fetch-Site": "cross-site"}); code != http.StatusForbidden {
		t.Errorf("cross-site POST: %d, want 403", code)
	}
	if code, _, _ := send(t, http.DefaultClient, "POST", approveURL, url.Values{"csrf": {token}}, nil); code != http.StatusUnauthorized {
		t.Errorf("POST without a session: %d, want 401", code)
	}
	if got, _ := s.broker.Get(context.Background(), r.ID); got.State != approval.StatePending {
		t.Fatalf("a refused POST decided the request: %s", got.State)
	}

	code, _, h = send(t, c, "POST", approveURL, url.Values{"csrf": {token}, "comment": {"called the customer"}}, nil)
	if code != http.StatusSeeOther || h.Get("Location") != "/console/approvals/"+r.ID {
		t.Fatalf("approve = %d to %q", code, h.Get("Location"))
	}
	got, err := s.broker.Get(context.Background(), r.ID)
	if err != nil || got.State != approval.StateApproved || got.DecidedBy != "ops" || got.Comment != "called the customer" {
		t.Fatalf("after the form: %+v, %v", got, err)
	}
	if ev := s.audited(); len(ev) != 1 || ev[0].Action != admin.ActionApprove {
		t.Fatalf("audit = %+v", ev)
	}
	if code, body, _ := send(t, c, "POST", s.url+"/console/approvals/"+r.ID+"/deny", url.Values{"csrf": {token}}, nil); code != http.StatusConflict || !strings.Contains(body, "no longer pending") {
		t.Errorf("deciding twice through the form: %d", code)
	}
	if code, body, _ := send(t, c, "GET", s.url+"/console/approvals/"+r.ID, nil, nil); code != http.StatusOK || !strings.Contains(body, `id="state">approved<`) || strings.Contains(body, `id="approve"`) {
		t.Errorf("decided detail = %d:\n%s", code, body)
	}
}

func TestConsoleRejectsForgedSession(t *testing.T) {
	s := newApprovalServer(t)
	c := browser(t)
	u, _ := url.Parse(s.url + "/console/")
	c.Jar.SetCookies(u, []*http.Cookie{{Name: "warden_console", Value: "b3Bz.9999999999.deadbeef", Path: "/console"}})
	if code, _, h := send(t, c, "GET", s.url+"/console/approvals", nil, nil); code != http.StatusSeeOther || h.Get("Location") != "/console/login" {
		t.Fatalf("forged session: %d to %q, want the login page", code, h.Get("Location"))
	}
}
