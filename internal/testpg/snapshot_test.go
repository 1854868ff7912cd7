package testpg

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

// snapshotSchema has one of each kind of object the snapshot reads.
const snapshotSchema = `
CREATE TABLE accounts (id serial PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL CHECK (balance >= 0));
INSERT INTO accounts (owner, balance) VALUES ('alice', 100.50), ('bob', 20), ('carol', 0);
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE events (id int NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE MATERIALIZED VIEW balances AS SELECT sum(balance) AS total FROM accounts;
ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON accounts USING (owner = current_user);
CREATE SCHEMA app;
`

// snapshotDatabase returns a superuser connection to a new database holding
// snapshotSchema, and a role that lives as long as the test.
func snapshotDatabase(t *testing.T) (*pgx.Conn, string) {
	t.Helper()
	s := Shared(t)
	db := s.NewDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.DSN(db))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	role := db + "_role"
	if _, err := conn.Exec(ctx, snapshotSchema+"CREATE ROLE "+pgx.Identifier{role}.Sanitize()); err != nil {
		t.Fatalf("schema: %v", err)
	}
	t.Cleanup(func() { DropRoles(conn, role) })
	return conn, role
}

// TestSnapshotSeesChanges checks the judge: a snapshot differs after each
// kind of change the tests rely on it to see.
func TestSnapshotSeesChanges(t *testing.T) {
	conn, role := snapshotDatabase(t)
	id := pgx.Identifier{role}.Sanitize()
	for _, change := range []string{
		"UPDATE accounts SET balance = balance + 1 WHERE id = 3",
		// The update above left the materialized view stale.
		"REFRESH MATERIALIZED VIEW balances",
		"INSERT INTO events VALUES (1, '2024-06-01')",
		"SELECT nextval('accounts_id_seq')",
		"ALTER TABLE customers ADD COLUMN phone text",
		"ALTER TABLE customers ALTER COLUMN name SET DEFAULT 'unknown'",
		"ALTER TABLE customers ADD CONSTRAINT name_set CHECK (name <> '')",
		"GRANT SELECT ON accounts TO PUBLIC",
		"ALTER TABLE accounts FORCE ROW LEVEL SECURITY",
		"ALTER SCHEMA app OWNER TO " + id,
		"ALTER ROLE " + id + " SET work_mem = '8MB'",
		"SELECT pg_advisory_lock(7)",
	} {
		before := Snapshot(t, conn)
		if _, err := conn.Exec(context.Background(), change); err != nil {
			t.Fatalf("%s: %v", change, err)
		}
		if cmp.Equal(before, Snapshot(t, conn)) {
			t.Errorf("snapshot did not change after %s", change)
		}
	}
}

// TestSnapshotIsStable: with nothing changed, two snapshots are equal, and
// another session's temporary table, whose rows the superuser cannot read,
// is still listed among the relations.
func TestSnapshotIsStable(t *testing.T) {
	conn, _ := snapshotDatabase(t)
	ctx := context.Background()
	other, err := pgx.Connect(ctx, conn.Config().ConnString())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer other.Close(ctx)
	if _, err := other.Exec(ctx, "CREATE TEMP TABLE scratch AS SELECT 1 AS x"); err != nil {
		t.Fatalf("temp table: %v", err)
	}

	before := Snapshot(t, conn)
	if diff := cmp.Diff(before, Snapshot(t, conn)); diff != "" {
		t.Errorf("snapshot changed with nothing done (-before +after):\n%s", diff)
	}
	if !slices.ContainsFunc(before["relations"], func(r string) bool {
		return strings.HasPrefix(r, "pg_temp_") && strings.Contains(r, ".scratch ")
	}) {
		t.Errorf("another session's temporary table is missing from relations: %v", before["relations"])
	}
}

// TestDropRolesDropsWhatTheyOwn: DropRoles removes roles that own objects
// and hold grants, and ignores a role that does not exist.
func TestDropRolesDropsWhatTheyOwn(t *testing.T) {
	conn, role := snapshotDatabase(t)
	id := pgx.Identifier{role}.Sanitize()
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "GRANT SELECT ON customers TO "+id+"; CREATE TABLE owned (x int); ALTER TABLE owned OWNER TO "+id); err != nil {
		t.Fatalf("setup: %v", err)
	}
	DropRoles(conn, "no_such_role", role)
	var left bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", role).Scan(&left); err != nil {
		t.Fatalf("query: %v", err)
	}
	if left {
		t.Errorf("role %s still exists", role)
	}
}
