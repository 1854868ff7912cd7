package postgres_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
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
	t.Cleanup(func() { testpg.DropRoles(admin, d.roles.LoginRole, d.roles.WriteRole, d.roles.ReadRole, d.owner) })
	return d
}

// loginDSN is the connection string of the connector's login role.
func (d *database) loginDSN() string { return d.server.UserDSN(d.roles.LoginRole, d.name) }

// ownerDSN is the connection string of the role that owns every table.
func (d *database) ownerDSN() string { return d.server.UserDSN(d.owner, d.name) }

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
