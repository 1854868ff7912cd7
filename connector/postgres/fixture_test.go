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
	cleanup(func() { dropRoles(admin, roles) })

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

// dropRoles removes a fixture's roles; a failure leaves roles behind in a
// server that is thrown away at the end of the run, so it is not fatal.
func dropRoles(admin *pgx.Conn, roles BootstrapOptions) {
	ctx := context.Background()
	for _, r := range []string{roles.LoginRole, roles.WriteRole, roles.ReadRole} {
		id := pgx.Identifier{r}.Sanitize()
		_, _ = admin.Exec(ctx, "DROP OWNED BY "+id+"; DROP ROLE IF EXISTS "+id)
	}
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

// snapshot is everything a statement could change that the tests watch,
// read by the superuser: the content digest of every table (including
// temporary ones), the schema and its grants, sequences, functions, roles
// and memberships, per-role and per-database settings, ALTER SYSTEM
// settings, extensions, policies, large objects, prepared transactions and
// advisory locks.
type snapshot map[string][]string

var snapshotQueries = map[string]string{
	"relations": `SELECT n.nspname || '.' || c.relname || ' ' || c.relkind::text || ' owner=' || c.relowner::regrole ||
		' acl=' || coalesce(c.relacl::text, '') || ' rls=' || c.relrowsecurity
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1`,
	"columns": `SELECT c.oid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' notnull=' || a.attnotnull
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
		AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1`,
	"sequences": `SELECT schemaname || '.' || sequencename || '=' || coalesce(last_value::text, 'unset') FROM pg_sequences ORDER BY 1`,
	"functions": `SELECT p.oid::regprocedure || ' ' || md5(p.prosrc) || ' definer=' || p.prosecdef || ' acl=' || coalesce(p.proacl::text, '')
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
	"roles": `SELECT rolname || ' super=' || rolsuper || ' inherit=' || rolinherit || ' createrole=' || rolcreaterole ||
		' createdb=' || rolcreatedb || ' login=' || rolcanlogin || ' bypassrls=' || rolbypassrls || ' repl=' || rolreplication
		FROM pg_roles ORDER BY 1`,
	"members":       `SELECT roleid::regrole || ' <- ' || member::regrole || ' admin=' || admin_option FROM pg_auth_members ORDER BY 1`,
	"role_settings": `SELECT setdatabase || ' ' || setrole || ' ' || array_to_string(setconfig, ',') FROM pg_db_role_setting ORDER BY 1`,
	"auto_conf":     `SELECT pg_read_file('postgresql.auto.conf')`,
	"extensions":    `SELECT extname || ' ' || extversion FROM pg_extension ORDER BY 1`,
	"policies":      `SELECT polrelid::regclass || ' ' || polname || ' ' || pg_get_expr(polqual, polrelid) FROM pg_policy ORDER BY 1`,
	"largeobjects":  `SELECT count(*)::text FROM pg_largeobject_metadata`,
	"prepared_xact": `SELECT gid FROM pg_prepared_xacts ORDER BY 1`,
	"advisory":      `SELECT objid::text || ' ' || mode FROM pg_locks WHERE locktype = 'advisory' ORDER BY 1`,
	"db_acl":        `SELECT datname || ' ' || coalesce(datacl::text, '') FROM pg_database ORDER BY 1`,
	"schema_acl":    `SELECT nspname || ' ' || coalesce(nspacl::text, '') FROM pg_namespace ORDER BY 1`,
}

func (f *fixture) snapshot(t testing.TB) snapshot {
	t.Helper()
	ctx := context.Background()
	snap := snapshot{}
	for name, q := range snapshotQueries {
		snap[name] = f.strings(t, q)
	}
	// Table contents, including every row of every temporary table.
	for _, rel := range f.strings(t, `SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1`) {
		var digest string
		q := fmt.Sprintf("SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM %s t", rel)
		if err := f.admin.QueryRow(ctx, q).Scan(&digest); err != nil {
			// A temporary table of another session cannot be read; its
			// existence is already in "relations".
			if strings.Contains(rel, "pg_temp") {
				continue
			}
			t.Fatalf("snapshot %s: %v", rel, err)
		}
		snap["table "+rel] = []string{digest}
	}
	return snap
}

func (f *fixture) strings(t testing.TB, q string) []string {
	t.Helper()
	rows, err := f.admin.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("snapshot query %q: %v", q, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("snapshot query %q: %v", q, err)
	}
	return out
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
