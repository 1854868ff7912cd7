package testpg

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// userSchemas filters pg_namespace (aliased n) down to the schemas a
// statement could create objects in.
const userSchemas = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`

// snapshotQueries read, each as a sorted list of strings, everything but
// table contents that the tests watch.
var snapshotQueries = map[string]string{
	"relations": `SELECT n.nspname || '.' || c.relname || ' ' || c.relkind::text || ' owner=' || c.relowner::regrole ||
		' acl=' || coalesce(c.relacl::text, '') || ' rls=' || c.relrowsecurity || ' force=' || c.relforcerowsecurity
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE ` + userSchemas + ` ORDER BY 1`,
	"columns": `SELECT c.oid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' notnull=' || a.attnotnull ||
		' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE ` + userSchemas + ` AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1`,
	"constraints": `SELECT co.conrelid::regclass || ' ' || co.conname || ' ' || pg_get_constraintdef(co.oid)
		FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
		WHERE ` + userSchemas + ` ORDER BY 1`,
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

// Snapshot reads, through the superuser connection conn, everything a
// statement could change that tests watch: every table's row count and
// content digest (partitioned tables, materialized views and temporary
// tables included), the schema from pg_catalog with owners, grants, row
// security (enabled and forced), columns with their defaults, constraints,
// sequences, functions, roles and memberships, per-role and per-database
// settings, ALTER SYSTEM settings, extensions, policies, large objects,
// prepared transactions, advisory locks and database and schema grants.
// Two snapshots are equal when nothing of that changed in between.
func Snapshot(t testing.TB, conn *pgx.Conn) map[string][]string {
	t.Helper()
	snap := map[string][]string{}
	for name, q := range snapshotQueries {
		snap[name] = Strings(t, conn, q)
	}
	for _, rel := range Strings(t, conn, `SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'm') AND `+userSchemas+` ORDER BY 1`) {
		var digest string
		q := fmt.Sprintf("SELECT count(*) || ' rows ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM %s t", rel)
		if err := conn.QueryRow(context.Background(), q).Scan(&digest); err != nil {
			// Another session's temporary table cannot be read; its
			// existence is already in "relations".
			if strings.Contains(rel, "pg_temp") {
				continue
			}
			t.Fatalf("testpg: snapshot %s: %v", rel, err)
		}
		snap["table "+rel] = []string{digest}
	}
	return snap
}

// Strings runs q, which returns one text column, through conn and returns
// its rows.
func Strings(t testing.TB, conn *pgx.Conn, q string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("testpg: query %q: %v", q, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("testpg: query %q: %v", q, err)
	}
	return out
}

// DropRoles drops each role, in order, with everything it owns or is granted
// in conn's database. It is best effort: a role left behind lives only in a
// server that is thrown away at the end of the run, so a failure is not
// worth failing a test over.
func DropRoles(conn *pgx.Conn, roles ...string) {
	ctx := context.Background()
	for _, r := range roles {
		id := pgx.Identifier{r}.Sanitize()
		_, _ = conn.Exec(ctx, "DROP OWNED BY "+id+"; DROP ROLE IF EXISTS "+id)
	}
}
