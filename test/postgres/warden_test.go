package postgres_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/connector/postgres"
	"github.com/wardenmcp/warden/internal/audit"
	"github.com/wardenmcp/warden/internal/config"
	"github.com/wardenmcp/warden/internal/gateway"
	"github.com/wardenmcp/warden/internal/identity"
	"github.com/wardenmcp/warden/internal/policy"
	"github.com/wardenmcp/warden/internal/seal"
	"github.com/wardenmcp/warden/internal/store/sqlite"
)

// testTimeout bounds each end-to-end step; nothing should come close.
const testTimeout = 60 * time.Second

// analystKey is the API key the test client presents; Warden's identity
// stage maps it to a principal holding the analyst role.
const analystKey = "test-analyst-key"

// warden is a running gateway on a loopback HTTP listener, assembled the
// way cmd/warden builds one: request-state sealing, the policy holder, a
// hash-chained audit log in SQLite and API-key identity.
type warden struct {
	url   string
	audit *sqlite.DB
}

// startWarden starts a gateway for cfg with the built-in servers in local
// and serves it over Streamable HTTP until t ends.
func startWarden(t testing.TB, cfg *config.Config, local map[string]*mcp.Server) *warden {
	t.Helper()
	logger := discardLogger()
	dir := t.TempDir()
	sealer, err := seal.LoadOrCreate(filepath.Join(dir, "state.key"), seal.Options{})
	if err != nil {
		t.Fatalf("sealer: %v", err)
	}
	holder, err := policy.NewHolder(newCompiler(t), cfg.Policy)
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	db, err := sqlite.Open(filepath.Join(dir, "warden.db"), logger)
	if err != nil {
		t.Fatalf("store: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	key, err := audit.LoadOrCreateKey(filepath.Join(dir, "audit.key"))
	if err != nil {
		t.Fatalf("audit key: %v", err)
	}
	log, err := audit.Open(db.Audit(), key, audit.Options{Logger: logger})
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	t.Cleanup(func() { _ = log.Close() })
	authn, err := identity.New(identity.Config{APIKeys: []identity.APIKey{{
		ID: "analyst", Hash: identity.HashAPIKey(analystKey),
		Principal: identity.Principal{ID: "analyst-1", Roles: []string{"analyst"}},
	}}}, identity.Options{Logger: logger})
	if err != nil {
		t.Fatalf("identity: %v", err)
	}
	g, err := gateway.New(gateway.Options{
		Config: cfg, Logger: logger, Sealer: sealer, Policy: holder, Audit: log,
		Authn: authn, Local: local,
	})
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := g.Start(ctx); err != nil {
		t.Fatalf("gateway start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := g.Close(ctx); err != nil {
			t.Errorf("gateway close: %v", err)
		}
	})
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	return &warden{url: srv.URL + "/mcp", audit: db}
}

// apiKeyTransport adds the analyst's API key to every request.
type apiKeyTransport struct{ base http.RoundTripper }

func (a apiKeyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Api-Key", analystKey)
	return a.base.RoundTrip(r)
}

// connect returns an MCP client session to the gateway, closed when t ends.
func (w *warden) connect(t testing.TB) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	transport := &mcp.StreamableClientTransport{
		Endpoint:             w.url,
		HTTPClient:           &http.Client{Transport: apiKeyTransport{http.DefaultTransport}},
		MaxRetries:           -1,
		DisableStandaloneSSE: true,
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "analyst-agent", Version: "1.0.0"}, nil).Connect(ctx, transport, nil)
	if err != nil {
		t.Fatalf("connect to warden: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// deniedDecisions counts the deny decisions the audit log holds for tool.
func (w *warden) deniedDecisions(t testing.TB, tool string) int {
	t.Helper()
	recs, err := w.audit.Audit().Query(context.Background(), audit.Filter{
		Tool: tool, Decision: audit.DecisionDeny, Kind: audit.KindDecision, Limit: audit.MaxQueryLimit,
	})
	if err != nil {
		t.Fatalf("audit query: %v", err)
	}
	return len(recs)
}

// exampleConfig loads an example configuration as `warden` would.
func exampleConfig(t testing.TB, file string) *config.Config {
	t.Helper()
	cfg, err := config.Load(filepath.Join(exampleDir, file))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return cfg
}

// withPolicy returns cfg with its policy replaced by the file written from
// text in a temporary directory.
func withPolicy(t testing.TB, cfg *config.Config, text string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Policy = path
	return cfg
}

// startConnector opens the built-in connector for cfg's "db" upstream the
// way cmd/warden does: the DSN from the environment variable the
// configuration names, Preflight, NewServer. The fixture's role names
// replace the defaults, since roles are global to the test server.
func startConnector(t testing.TB, d *database, cfg *config.Config) *mcp.Server {
	t.Helper()
	pc := cfg.Upstreams["db"].Postgres
	t.Setenv(pc.DSNEnv, d.loginDSN())
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	pool, err := postgres.OpenPool(ctx, os.Getenv(pc.DSNEnv))
	if err != nil {
		t.Fatalf("connector pool: %v", err)
	}
	t.Cleanup(pool.Close)
	cc := postgres.Config{
		ReadRole: d.roles.ReadRole, WriteRole: d.roles.WriteRole, StatementTimeout: pc.StatementTimeout,
		MaxRows: pc.MaxRows, MaxResultBytes: pc.MaxResultBytes, Tools: pc.Tools,
	}
	if err := postgres.Preflight(ctx, pool, cc); err != nil {
		t.Fatalf("preflight: %v", err)
	}
	srv, err := postgres.NewServer(cc, pool, discardLogger())
	if err != nil {
		t.Fatalf("connector: %v", err)
	}
	return srv
}

// query calls db.query through cs with meta as the request's _meta.
func query(t testing.TB, cs *mcp.ClientSession, sql string, meta mcp.Meta) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Meta: meta, Name: "db.query", Arguments: map[string]any{"sql": sql}})
	if err != nil {
		t.Fatalf("db.query %q: protocol error: %v", sql, err)
	}
	return res
}

func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// deniedBySQLRule reports whether res is Warden's denial by one of the
// example policy's SQL rules.
func deniedBySQLRule(res *mcp.CallToolResult) bool {
	text := resultText(res)
	if !res.IsError || !strings.HasPrefix(text, "denied by ") {
		return false
	}
	rules, _, _ := strings.Cut(strings.TrimPrefix(text, "denied by "), ":")
	return rules != "" && onlySQLRules(strings.Split(rules, ","))
}

// deniedByWarden reports whether res is any denial by Warden.
func deniedByWarden(res *mcp.CallToolResult) bool {
	return res.IsError && strings.HasPrefix(resultText(res), "denied by ")
}
