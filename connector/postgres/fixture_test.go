package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/wardenmcp/warden/internal/testpg"
)

func TestMain(m *testing.M) { testpg.Main(m) }

// fixture is one test's database: a schema owned by the superuser, the
// connector's roles created by Bootstrap, a pool logged in as the login role,
// and an MCP client connected to the connector over in-memory transports.
type fixture struct {
	server *testpg.Server
	db     string
	roles  BootstrapOptions
	admin  *pgx.Conn // superuser, for setup and snapshots
	pool   *pgxpool.Pool
	client *mcp.ClientSession
	cfg    Config
}

// fixtureSchema makes the corpus statements meaningful: accounts with a
// serial sequence, transfers, customers and orders (with a row-level security
// policy on the task scope), a function and a procedure that write, a table
// the connector is not granted, and the dblink extension.
const fixtureSchema = `
CREATE EXTENSION dblink;
CREATE TABLE accounts (id serial PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL CHECK (balance >= 0));
CREATE TABLE transfers (id serial PRIMARY KEY, account_id int NOT NULL REFERENCES accounts, amount numeric(12,2) NOT NULL);
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, total numeric(12,2) NOT NULL, note jsonb);
CREATE TABLE secrets (id int PRIMARY KEY, api_key text NOT NULL);

INSERT INTO accounts (owner, balance) VALUES ('alice', 100.50), ('bob', 20), ('carol', 0);
INSERT INTO transfers (account_id, amount) VALUES (1, 10), (1, 5.25), (2, 7);
INSERT INTO customers VALUES (42, 'Acme', 'ops@acme.example'), (7, 'Globex', 'it@globex.example');
INSERT INTO orders (customer_id, total, note) VALUES
  (42, 10, '{"gift": true}'), (42, 20, NULL), (7, 30, NULL), (7, 40, NULL), (7, 50, NULL);
INSERT INTO secrets VALUES (1, 'sk-live-0000');

-- Task scope: a session sees only its customer's orders, and none without a scope.
ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY orders_by_customer ON orders
  USING (customer_id = nullif(current_setting('warden.customer_id', true), '')::int)
  WITH CHECK (customer_id = nullif(current_setting('warden.customer_id', true), '')::int);

-- A definer-rights function that writes, callable by anyone by default.
CREATE FUNCTION archive_old_accounts() RETURNS int LANGUAGE sql SECURITY DEFINER
  AS 'DELETE FROM transfers; DELETE FROM accounts WHERE balance = 0; SELECT 1';
-- A procedure that commits, then writes.
CREATE PROCEDURE commit_then_wipe() LANGUAGE plpgsql
  AS $$ BEGIN COMMIT; DELETE FROM transfers; END $$;
`

func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	srv := testpg.Shared(t)
	f, err := buildFixture(srv, srv.NewDatabase(t), t.Cleanup)
	if err != nil {
		t.Fatal(err)
	}
	return f.withClient(t, cfg)
}

// sharedFixture is one fixture database for the tests that change no data,
// built on first use; it lives as long as the shared server, which Main
// stops. Each test still gets its own connector and client.
var sharedFixture struct {
	once sync.Once
	f    *fixture
	err  error
}

func newReadOnlyFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	srv := testpg.Shared(t)
	sharedFixture.once.Do(func() {
		db, err := srv.CreateDatabase(context.Background())
		if err != nil {
			sharedFixture.err = err
			return
		}
		sharedFixture.f, sharedFixture.err = buildFixture(srv, db, func(func()) {})
	})
	if sharedFixture.err != nil {
		t.Fatal(sharedFixture.err)
	}
	return sharedFixture.f.withClient(t, cfg)
}

// buildFixture loads the fixture schema into db, creates the roles with
// Bootstrap and opens a pool as the login role. cleanup registers teardown.
func buildFixture(srv *testpg.Server, db string, cleanup func(func())) (*fixture, error) {
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, srv.DSN(db))
	if err != nil {
		return nil, fmt.Errorf("connect as superuser: %w", err)
	}
	cleanup(func() { admin.Close(context.Background()) })
	if _, err := admin.Exec(ctx, fixtureSchema); err != nil {
		return nil, fmt.Errorf("fixture schema: %w", err)
	}

	// Roles are global to the server, so each fixture's roles carry its
	// database's name.
	roles := BootstrapOptions{
		ReadTables:  []string{"accounts", "transfers", "customers", "orders"},
		WriteTables: []string{"accounts", "transfers", "orders"},
		ReadRole:    db + "_reader",
		WriteRole:   db + "_writer",
		LoginRole:   db + "_login",
	}
	if err := ApplyBootstrap(ctx, srv.DSN(db), roles); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	cleanup(func() { testpg.DropRoles(admin, roles.LoginRole, roles.WriteRole, roles.ReadRole) })

	pool, err := pgxpool.New(ctx, srv.UserDSN(roles.LoginRole, db))
	if err != nil {
		return nil, fmt.Errorf("pool: %w", err)
	}
	cleanup(pool.Close)
	return &fixture{server: srv, db: db, roles: roles, admin: admin, pool: pool}, nil
}

// withClient returns a copy of f served by a connector with cfg (and the
// fixture's roles), with an MCP client connected to it for t.
func (f *fixture) withClient(t testing.TB, cfg Config) *fixture {
	t.Helper()
	g := *f
	cfg.ReadRole, cfg.WriteRole = f.roles.ReadRole, f.roles.WriteRole
	g.cfg = cfg
	g.client = connect(t, cfg, f.pool)
	return &g
}

func connect(t testing.TB, cfg Config, pool *pgxpool.Pool) *mcp.ClientSession {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := NewServer(cfg, pool, logger)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	serverTransport, clientTransport := mcp.NewInMemoryTransports()
	ss, err := srv.Connect(ctx, serverTransport, nil)
	if err != nil {
		t.Fatalf("server connect: %v", err)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "0"}, nil)
	cs, err := client.Connect(ctx, clientTransport, nil)
	if err != nil {
		t.Fatalf("client connect: %v", err)
	}
	t.Cleanup(func() {
		_ = cs.Close()
		_ = ss.Wait()
	})
	return cs
}

// call invokes a tool through the MCP client. scope, when non-nil, is sent as
// the call's task scope in _meta.
func (f *fixture) call(t testing.TB, tool string, args map[string]any, scope map[string]any) *mcp.CallToolResult {
	t.Helper()
	params := &mcp.CallToolParams{Name: tool, Arguments: args}
	if scope != nil {
		params.Meta = mcp.Meta{ScopeMetaKey: scope}
	}
	res, err := f.client.CallTool(context.Background(), params)
	if err != nil {
		t.Fatalf("CallTool %s %v: protocol error: %v", tool, args, err)
	}
	return res
}

// mustResult asserts a successful call and decodes its structured result.
func mustResult(t testing.TB, res *mcp.CallToolResult) Result {
	t.Helper()
	if res.IsError {
		t.Fatalf("tool error: %s", resultText(res))
	}
	// The text content is the exact wire form (the client library decodes
	// structured content numbers as float64).
	text := resultText(res)
	var out Result
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("decode text content %s: %v", text, err)
	}
	raw, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatalf("marshal structured content: %v", err)
	}
	var a, b any
	if json.Unmarshal([]byte(text), &a) != nil || json.Unmarshal(raw, &b) != nil || !cmp.Equal(a, b) {
		t.Errorf("text content %s differs from structured content %s", text, raw)
	}
	return out
}

// mustFail asserts a tool error result and returns its text.
func mustFail(t testing.TB, res *mcp.CallToolResult) string {
	t.Helper()
	if !res.IsError {
		t.Fatalf("call succeeded, want a tool error: %s", resultText(res))
	}
	return resultText(res)
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

func (f *fixture) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := f.admin.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("admin %q: %v", sql, err)
	}
}

func sqlArgs(sql string, params ...any) map[string]any {
	args := map[string]any{"sql": sql}
	if len(params) > 0 {
		args["params"] = params
	}
	return args
}

// noDeadline keeps time-dependent settings out of tests that do not test them.
const noDeadline = 30 * time.Second

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
