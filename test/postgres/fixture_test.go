package postgres_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/wardenmcp/warden/connector/postgres"
	"github.com/wardenmcp/warden/internal/testpg"
)

func TestMain(m *testing.M) { testpg.Main(m) }

// database is one test's PostgreSQL database: the fixture schema owned by a
// login role (the powerful role a third-party server is typically given),
// the connector's least-privilege roles created by postgres.ApplyBootstrap,
// and a superuser connection for setup and snapshots. Roles are global to
// the server, so their names carry the database's name.
type database struct {
	server *testpg.Server
	name   string
	admin  *pgx.Conn
	owner  string // LOGIN, owns every fixture object
	roles  postgres.BootstrapOptions
}

// fixtureSchema gives the corpus statements something real to hit:
// accounts with a serial sequence and transfers (the tables the corpus
// writes to), customers and orders with a row-level security policy on the
// task scope, a definer-rights function that writes, and a procedure that
// commits. It runs as the owner role.
const fixtureSchema = `
CREATE TABLE accounts (id serial PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL CHECK (balance >= 0));
CREATE TABLE transfers (id serial PRIMARY KEY, account_id int NOT NULL REFERENCES accounts, amount numeric(12,2) NOT NULL);
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, total numeric(12,2) NOT NULL);

INSERT INTO accounts (owner, balance) VALUES ('alice', 100.50), ('bob', 20), ('carol', 0);
INSERT INTO transfers (account_id, amount) VALUES (1, 10), (1, 5.25), (2, 7);
INSERT INTO customers VALUES (42, 'Acme', 'ops@acme.example'), (7, 'Globex', 'it@globex.example');
INSERT INTO orders (customer_id, total) VALUES (42, 10), (42, 20), (7, 30), (7, 40), (7, 50);

-- Task scope: a call sees only its customer's orders, and none without a scope.
ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY orders_by_customer ON orders
  USING (customer_id = nullif(current_setting('warden.customer_id', true), '')::int)
  WITH CHECK (customer_id = nullif(current_setting('warden.customer_id', true), '')::int);

CREATE FUNCTION archive_old_accounts() RETURNS int LANGUAGE sql SECURITY DEFINER
  AS 'DELETE FROM transfers; DELETE FROM accounts WHERE balance = 0; SELECT 1';
CREATE PROCEDURE commit_then_wipe() LANGUAGE plpgsql
  AS $$ BEGIN COMMIT; DELETE FROM transfers; END $$;
`

// newDatabase creates a database with the fixture for t. It skips t when
// PostgreSQL is not installed.
func newDatabase(t testing.TB) *database {
	t.Helper()
	srv := testpg.Shared(t)
	name := srv.NewDatabase(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, srv.DSN(name))
	if err != nil {
		t.Fatalf("connect as superuser: %v", err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	d := &database{server: srv, name: name, admin: admin, owner: name + "_owner", roles: postgres.BootstrapOptions{
		ReadTables: []string{"accounts", "transfers", "customers", "orders"},
		ReadRole:   name + "_reader",
		WriteRole:  name + "_writer",
		LoginRole:  name + "_login",
	}}
	owner := pgx.Identifier{d.owner}.Sanitize()
	setup := fmt.Sprintf(`CREATE EXTENSION dblink;
		CREATE ROLE %[1]s LOGIN;
		GRANT USAGE, CREATE ON SCHEMA public TO %[1]s;
		SET ROLE %[1]s;
		%[2]s
		RESET ROLE;`, owner, fixtureSchema)
	// Several statements: the simple protocol runs them in order.
	if _, err := admin.PgConn().Exec(ctx, setup).ReadAll(); err != nil {
		t.Fatalf("fixture schema: %v", err)
	}
	if err := postgres.ApplyBootstrap(ctx, srv.DSN(name), d.roles); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	t.Cleanup(d.dropRoles)
	return d
}

// dropRoles removes the database's roles once nothing uses them; a failure
// leaves roles in a server that is thrown away after the run.
func (d *database) dropRoles() {
	ctx := context.Background()
	for _, r := range []string{d.roles.LoginRole, d.roles.WriteRole, d.roles.ReadRole, d.owner} {
		id := pgx.Identifier{r}.Sanitize()
		_, _ = d.admin.Exec(ctx, "DROP OWNED BY "+id+"; DROP ROLE IF EXISTS "+id)
	}
}

// loginDSN is the connection string of the connector's login role.
func (d *database) loginDSN() string { return d.server.UserDSN(d.roles.LoginRole, d.name) }

// ownerDSN is the connection string of the role that owns every table.
func (d *database) ownerDSN() string { return d.server.UserDSN(d.owner, d.name) }

// snapshot is everything a statement could change, read by the superuser:
// every table's row count and content digest (temporary tables included),
// the schema from pg_catalog with owners, grants and row security, columns,
// sequences, functions, roles and memberships, per-role and per-database
// settings, ALTER SYSTEM settings, extensions, policies, large objects,
// prepared transactions and advisory locks.
type snapshot map[string][]string

var snapshotQueries = map[string]string{
	"relations": `SELECT n.nspname || '.' || c.relname || ' ' || c.relkind::text || ' owner=' || c.relowner::regrole ||
		' acl=' || coalesce(c.relacl::text, '') || ' rls=' || c.relrowsecurity || ' force=' || c.relforcerowsecurity
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1`,
	"columns": `SELECT c.oid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' notnull=' || a.attnotnull ||
		' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
		AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1`,
	"constraints": `SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
		WHERE connamespace = 'public'::regnamespace ORDER BY 1`,
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
	"schema_acl":    `SELECT nspname || ' owner=' || nspowner::regrole || ' ' || coalesce(nspacl::text, '') FROM pg_namespace ORDER BY 1`,
}

func (d *database) snapshot(t testing.TB) snapshot {
	t.Helper()
	snap := snapshot{}
	for name, q := range snapshotQueries {
		snap[name] = d.strings(t, q)
	}
	for _, rel := range d.strings(t, `SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1`) {
		var digest string
		q := fmt.Sprintf("SELECT count(*) || ' rows ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM %s t", rel)
		if err := d.admin.QueryRow(context.Background(), q).Scan(&digest); err != nil {
			// Another session's temporary table cannot be read; its
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

func (d *database) strings(t testing.TB, q string) []string {
	t.Helper()
	rows, err := d.admin.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("snapshot query %q: %v", q, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("snapshot query %q: %v", q, err)
	}
	return out
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
