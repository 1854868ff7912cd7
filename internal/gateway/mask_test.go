package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/audit"
	"github.com/wardenmcp/warden/internal/config"
	"github.com/wardenmcp/warden/internal/gateway"
	"github.com/wardenmcp/warden/internal/identity"
	"github.com/wardenmcp/warden/internal/policy"
)

// The data every caller asks for; what each one sees depends on the policy.
const (
	custEmail = "jane.doe@example.com"
	custPhone = "+44 20 7946 0958"
	custCard  = "4111 1111 1111 1111"
	custAWS   = "AKIAIOSFODNN7EXAMPLE"
)

type customer struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Phone string `json:"phone"`
	Card  string `json:"card,omitempty"`
	Note  string `json:"note,omitempty"`
}

type customers struct {
	Customers []customer `json:"customers"`
}

const maskingTestPolicy = `
version: 1
roles:
  viewer: {tools: ["crm.*"]}
  support-agent: {tools: ["crm.*"]}
  analyst: {tools: ["crm.*"]}
rules:
  - {id: allow-crm, tool: "crm.*", effect: allow}
masking:
  default: redact
  rules:
    - id: support-sees-partial-cards-and-phones
      classes: [CREDIT_CARD, PHONE_NUMBER]
      when: "'support-agent' in principal.roles"
      action: partial
    - id: pii-cleared-sees-pii
      classes: [EMAIL_ADDRESS, PHONE_NUMBER]
      when: principal.clearance == "pii"
      action: pass
    - id: secrets-never
      classes: ["*secret*"]
      action: redact
    - id: analysts-get-tokens
      classes: [EMAIL_ADDRESS]
      when: "'analyst' in principal.roles"
      action: tokenize
  max_per_class: {CREDIT_CARD: 3}
`

// fixedPolicy is a PolicySource that never reloads.
type fixedPolicy struct{ p *policy.Policy }

func (f fixedPolicy) Policy() *policy.Policy { return f.p }

// memTokens is an in-memory token sink.
type memTokens struct {
	mu     sync.Mutex
	values map[string]string
}

func (m *memTokens) Put(token, class, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.values == nil {
		m.values = map[string]string{}
	}
	m.values[token] = value
	return nil
}

func (m *memTokens) snapshot() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]string, len(m.values))
	for k, v := range m.values {
		out[k] = v
	}
	return out
}

// memAudit keeps records in memory.
type memAudit struct {
	mu      sync.Mutex
	records []audit.Record
}

func (a *memAudit) Append(_ context.Context, r audit.Record) (uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.records = append(a.records, r)
	return uint64(len(a.records)), nil
}

func (a *memAudit) Enqueue(ctx context.Context, r audit.Record) error {
	_, err := a.Append(ctx, r)
	return err
}

func (a *memAudit) outcomes() []audit.Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []audit.Record
	for _, r := range a.records {
		if r.Kind == audit.KindOutcome {
			out = append(out, r)
		}
	}
	return out
}

// apiKeyTransport adds an API key to every request.
type apiKeyTransport struct{ key string }

func (t apiKeyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-API-Key", t.key)
	return http.DefaultTransport.RoundTrip(r)
}

// maskingSetup is a CRM upstream behind a gateway with the masking policy,
// and API keys for four callers.
type maskingSetup struct {
	endpoint string
	tokens   *memTokens
	audit    *memAudit
}

func startMaskingSetup(t *testing.T) *maskingSetup {
	t.Helper()
	up := newServer("crm", nil)
	mcp.AddTool(up, &mcp.Tool{Name: "list_customers", Description: "lists customers"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, customers, error) {
			return nil, customers{Customers: []customer{
				{Name: "Jane", Email: custEmail, Phone: custPhone, Card: custCard, Note: "deploy key " + custAWS},
				{Name: "Joe", Email: "joe@example.org", Phone: "+1 415 555 0132"},
			}}, nil
		})
	mcp.AddTool(up, &mcp.Tool{Name: "export_cards", Description: "exports many cards"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, customers, error) {
			var out customers
			for i := range 5 {
				out.Customers = append(out.Customers, customer{Name: fmt.Sprintf("c%d", i), Card: custCard})
			}
			return nil, out, nil
		})
	u := startUpstream(t, up, false)

	cfg, err := config.Parse([]byte("upstreams:\n"+httpUpstreamYAML("crm", u.URL, []string{"*"})), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Compile([]byte(maskingTestPolicy), "masking.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var keys []identity.APIKey
	for _, p := range []identity.Principal{
		{ID: "low", Roles: []string{"viewer"}},
		{ID: "support", Roles: []string{"support-agent"}},
		{ID: "cleared", Roles: []string{"support-agent"}, Clearance: "pii"},
		{ID: "analyst", Roles: []string{"analyst"}},
	} {
		keys = append(keys, identity.APIKey{ID: p.ID, Hash: identity.HashAPIKey("key-" + p.ID), Principal: p})
	}
	authn, err := identity.New(identity.Config{APIKeys: keys}, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := &maskingSetup{tokens: &memTokens{}, audit: &memAudit{}}
	g, err := gateway.New(gateway.Options{Config: cfg, Logger: testLogger(t), Sealer: testSealer(t),
		Policy: fixedPolicy{pol}, Authn: authn, Tokens: s.tokens, Audit: s.audit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Close(ctx); err != nil {
			t.Errorf("gateway.Close: %v", err)
		}
	})
	if err := g.Start(testContext(t)); err != nil {
		t.Fatal(err)
	}
	s.endpoint = serveHTTP(t, g)
	return s
}

// connectAs connects an SDK client with the API key of caller.
func (s *maskingSetup) connectAs(t *testing.T, caller string) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1.0.0"}, nil)
	cs, err := c.Connect(testContext(t), &mcp.StreamableClientTransport{Endpoint: s.endpoint,
		HTTPClient: &http.Client{Transport: apiKeyTransport{key: "key-" + caller}}}, nil)
	if err != nil {
		t.Fatalf("connecting as %s: %v", caller, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// seen is a result as the client got it: its text and its structured
// content, both as text.
func seen(ctx context.Context, t *testing.T, cs *mcp.ClientSession, tool string) (textOut, structured string) {
	t.Helper()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool})
	if err != nil {
		t.Fatalf("calling %s: %v", tool, err)
	}
	if res.IsError {
		t.Fatalf("calling %s: tool error %q", tool, text(t, res))
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	return text(t, res), string(b)
}

func TestMaskingByClearance(t *testing.T) {
	s := startMaskingSetup(t)
	ctx := testContext(t)
	cases := []struct {
		caller       string
		present      []string // in both the text and the structured content
		absent       []string
		wantTokenize bool
	}{
		{caller: "low",
			present: []string{"[EMAIL_ADDRESS]", "[PHONE_NUMBER]", "[CREDIT_CARD]", "[AWS_ACCESS_KEY]", "Jane"},
			absent:  []string{custEmail, "7946", "1111", custAWS, "joe@example.org"}},
		{caller: "support",
			present: []string{"[EMAIL_ADDRESS]", "****0958", "****1111", "[AWS_ACCESS_KEY]"},
			absent:  []string{custEmail, custPhone, custCard, custAWS}},
		{caller: "cleared", // the pass rule for phones loses to the partial one
			present: []string{custEmail, "joe@example.org", "****0958", "****1111", "[AWS_ACCESS_KEY]"},
			absent:  []string{custPhone, custCard, custAWS}},
		{caller: "analyst",
			present:      []string{"tok_EMAIL_ADDRESS_", "[CREDIT_CARD]", "[AWS_ACCESS_KEY]"},
			absent:       []string{custEmail, "joe@example.org", custCard, custAWS},
			wantTokenize: true},
	}
	for _, tc := range cases {
		t.Run(tc.caller, func(t *testing.T) {
			before := len(s.tokens.snapshot())
			textOut, structured := seen(ctx, t, s.connectAs(t, tc.caller), "crm.list_customers")
			for name, got := range map[string]string{"text": textOut, "structuredContent": structured} {
				for _, want := range tc.present {
					if !strings.Contains(got, want) {
						t.Errorf("%s lacks %q:\n%s", name, want, got)
					}
				}
				for _, leak := range tc.absent {
					if strings.Contains(got, leak) {
						t.Errorf("%s shows %q:\n%s", name, leak, got)
					}
				}
			}
			toks := s.tokens.snapshot()
			if !tc.wantTokenize {
				if len(toks) != before {
					t.Errorf("tokens stored for a plan that does not tokenize")
				}
				return
			}
			// Every token in the result maps to one of the two emails.
			vals := map[string]bool{}
			for tok, v := range toks {
				if strings.Contains(textOut+structured, tok) {
					vals[v] = true
				}
			}
			if !vals[custEmail] || !vals["joe@example.org"] || len(vals) != 2 {
				t.Errorf("tokens in the result resolve to %v, want the two emails", vals)
			}
		})
	}

	// The audit outcome names classes, counts and paths, never a value.
	var rec *audit.Record
	for _, r := range s.audit.outcomes() {
		if r.Principal == "low" {
			rec = &r
		}
	}
	if rec == nil {
		t.Fatal("no outcome record for the low-clearance call")
	}
	all := strings.Join(rec.Masked, "\n")
	for _, want := range []string{"EMAIL_ADDRESS:", "CREDIT_CARD:", ":redact", "$.structuredContent.customers[0].email"} {
		if !strings.Contains(all, want) {
			t.Errorf("masked %q lacks %q", rec.Masked, want)
		}
	}
	if strings.Contains(all, custEmail) || strings.Contains(all, "1111 1111") {
		t.Errorf("masked record holds a value: %q", rec.Masked)
	}
	if !slices.Contains(rec.Labels, "pii") || !slices.Contains(rec.Labels, "secret") {
		t.Errorf("labels %q, want pii and secret", rec.Labels)
	}
}

func TestMaskingMaxPerClassWithholdsResult(t *testing.T) {
	s := startMaskingSetup(t)
	ctx := testContext(t)

	// Partial cards are released: five of them exceed the limit of three.
	msg := toolErrorText(ctx, t, s.connectAs(t, "support"), "crm.export_cards", nil)
	if !strings.HasPrefix(msg, "result withheld: more than 3 CREDIT_CARD values (call ") || strings.Contains(msg, "1111") {
		t.Errorf("withheld message %q", msg)
	}
	// Redacted cards release nothing: the same result passes, masked.
	textOut, _ := seen(ctx, t, s.connectAs(t, "low"), "crm.export_cards")
	if strings.Count(textOut, "[CREDIT_CARD]") != 5 {
		t.Errorf("low-clearance export: %s", textOut)
	}
	var withheld bool
	for _, r := range s.audit.outcomes() {
		if r.Principal == "support" && slices.Contains(r.Masked, "withheld:CREDIT_CARD>3") {
			withheld = true
		}
	}
	if !withheld {
		t.Error("the withheld result is not recorded in the audit outcome")
	}
}
