package postgres

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wardenmcp/warden/internal/testpg"
)

// TestScopeConfinesRowsByPolicy: the row-level security policy on orders (see
// README.md) reads warden.customer_id, which the connector sets from the
// call's task scope, so even SELECT * FROM orders sees only the task's rows.
func TestScopeConfinesRowsByPolicy(t *testing.T) {
	f := newFixture(t, Config{StatementTimeout: noDeadline, Tools: []string{ToolQuery, ToolExecute}})
	customers := func(res Result) []any {
		var out []any
		for _, row := range res.Rows {
			out = append(out, row[1])
		}
		return out
	}
	all := sqlArgs("SELECT * FROM orders ORDER BY id")

	got := mustResult(t, f.call(t, ToolQuery, all, map[string]any{"customer_id": "42"}))
	if diff := cmp.Diff([]any{json.Number("42"), json.Number("42")}, customers(got)); diff != "" {
		t.Errorf("customer 42 sees (-want +got):\n%s", diff)
	}
	// A number in the scope works as well as a string.
	got = mustResult(t, f.call(t, ToolQuery, all, map[string]any{"customer_id": 7}))
	if diff := cmp.Diff([]any{json.Number("7"), json.Number("7"), json.Number("7")}, customers(got)); diff != "" {
		t.Errorf("customer 7 sees (-want +got):\n%s", diff)
	}
	// No scope: the policy shows nothing, even after scoped calls on the same sessions.
	got = mustResult(t, f.call(t, ToolQuery, all, nil))
	if got.RowCount != 0 {
		t.Errorf("unscoped call sees %d orders, want 0", got.RowCount)
	}
	// The scope cannot be widened from inside the statement's own reads.
	got = mustResult(t, f.call(t, ToolQuery, sqlArgs("SELECT count(*) FROM orders WHERE customer_id = 7"), map[string]any{"customer_id": "42"}))
	if diff := cmp.Diff([][]any{{json.Number("0")}}, got.Rows); diff != "" {
		t.Errorf("customer 42 counting customer 7's orders (-want +got):\n%s", diff)
	}
	got = mustResult(t, f.call(t, ToolQuery, sqlArgs("SELECT current_setting('warden.customer_id'), current_setting('warden.region')"),
		map[string]any{"customer_id": "42", "region": "eu-west"}))
	if diff := cmp.Diff([][]any{{"42", "eu-west"}}, got.Rows); diff != "" {
		t.Errorf("scope settings (-want +got):\n%s", diff)
	}

	// Writes are confined too: the update touches only the task's rows, and
	// a row for another customer cannot be inserted.
	got = mustResult(t, f.call(t, ToolExecute, sqlArgs("UPDATE orders SET total = 0"), map[string]any{"customer_id": "42"}))
	if got.RowsAffected == nil || *got.RowsAffected != 2 {
		t.Errorf("scoped update affected %v rows, want 2", got.RowsAffected)
	}
	msg := mustFail(t, f.call(t, ToolExecute, sqlArgs("INSERT INTO orders (customer_id, total) VALUES (7, 1)"), map[string]any{"customer_id": "42"}))
	if !strings.Contains(msg, "42501") || !strings.Contains(msg, "row-level security") {
		t.Errorf("insert for another customer: %q, want a row-level security violation", msg)
	}
	totals := testpg.Strings(t, f.admin, "SELECT customer_id || ':' || total FROM orders ORDER BY id")
	if diff := cmp.Diff([]string{"42:0.00", "42:0.00", "7:30.00", "7:40.00", "7:50.00"}, totals); diff != "" {
		t.Errorf("orders after scoped writes (-want +got):\n%s", diff)
	}
}

func TestMalformedScopeIsRefused(t *testing.T) {
	f := newReadOnlyFixture(t, Config{StatementTimeout: noDeadline})
	for name, scope := range map[string]map[string]any{
		"upper-case key":      {"Customer_ID": "42"},
		"key with a dot":      {"customer.id": "42"},
		"key with a quote":    {"x'); DROP TABLE orders; --": "1"},
		"object value":        {"customer_id": map[string]any{"id": 42}},
		"array value":         {"customer_id": []any{42}},
		"null value":          {"customer_id": nil},
		"NUL in value":        {"customer_id": "4\x002"},
		"value with a quote":  {"customer_id": "42' OR true"},
		"oversized value":     {"customer_id": strings.Repeat("9", 2000)},
		"leading-digit key":   {"1customer": "42"},
		"settings-prefix key": {"": "42"},
	} {
		t.Run(name, func(t *testing.T) {
			res := f.call(t, ToolQuery, sqlArgs("SELECT count(*) FROM orders"), scope)
			if name == "value with a quote" {
				// A well-formed key with an odd value is allowed; the
				// value is data, and the policy's cast rejects it.
				msg := mustFail(t, res)
				if !strings.Contains(msg, "22P02") {
					t.Errorf("error %q, want SQLSTATE 22P02 from the policy's integer cast", msg)
				}
				return
			}
			mustFail(t, res)
		})
	}
}

func TestExecuteWritesAndCommits(t *testing.T) {
	f := newFixture(t, Config{StatementTimeout: noDeadline, Tools: []string{ToolQuery, ToolExecute}})
	got := mustResult(t, f.call(t, ToolExecute, sqlArgs(
		"INSERT INTO accounts (owner, balance) VALUES ($1, $2) RETURNING id, owner, current_user::text", "dave", "12.34"), nil))
	if diff := cmp.Diff([][]any{{json.Number("4"), "dave", f.roles.WriteRole}}, got.Rows); diff != "" {
		t.Errorf("returned rows (-want +got):\n%s", diff)
	}
	if got.Command != "INSERT 0 1" || got.RowsAffected == nil || *got.RowsAffected != 1 {
		t.Errorf("command %q rows_affected %v, want INSERT 0 1 and 1", got.Command, got.RowsAffected)
	}
	got = mustResult(t, f.call(t, ToolExecute, sqlArgs("UPDATE accounts SET balance = balance + 1 WHERE owner <> 'dave'"), nil))
	if got.Command != "UPDATE 3" {
		t.Errorf("command %q, want UPDATE 3", got.Command)
	}
	// Committed: the superuser sees it.
	if diff := cmp.Diff([]string{"alice:101.50", "bob:21.00", "carol:1.00", "dave:12.34"},
		testpg.Strings(t, f.admin, "SELECT owner || ':' || balance FROM accounts ORDER BY id")); diff != "" {
		t.Errorf("accounts (-want +got):\n%s", diff)
	}

	// A failed write is rolled back whole.
	msg := mustFail(t, f.call(t, ToolExecute, sqlArgs("UPDATE accounts SET balance = balance - 50"), nil))
	if !strings.Contains(msg, "23514") {
		t.Errorf("error %q, want SQLSTATE 23514 (check violation)", msg)
	}
	if diff := cmp.Diff([]string{"alice:101.50", "bob:21.00", "carol:1.00", "dave:12.34"},
		testpg.Strings(t, f.admin, "SELECT owner || ':' || balance FROM accounts ORDER BY id")); diff != "" {
		t.Errorf("accounts after a failed write (-want +got):\n%s", diff)
	}
}

func TestWriteRoleCannotChangeSchema(t *testing.T) {
	f := newFixture(t, Config{StatementTimeout: noDeadline, Tools: []string{ToolQuery, ToolExecute}})
	before := testpg.Snapshot(t, f.admin)
	for _, sql := range []string{
		"DROP TABLE transfers",
		"ALTER TABLE accounts ADD COLUMN hacked int",
		"ALTER TABLE orders DISABLE ROW LEVEL SECURITY",
		"DROP POLICY orders_by_customer ON orders",
		"TRUNCATE transfers",
		"CREATE TABLE public.mine (id int)",
		"GRANT SELECT ON secrets TO PUBLIC",
		"SELECT * FROM secrets",
		"UPDATE customers SET name = 'x'",
		"CREATE INDEX ON accounts (owner)",
		"ALTER SEQUENCE accounts_id_seq RESTART 1",
		"CREATE OR REPLACE FUNCTION archive_old_accounts() RETURNS int LANGUAGE sql AS 'SELECT 2'",
		"SET ROLE postgres",
		"ALTER ROLE " + f.roles.WriteRole + " BYPASSRLS",
	} {
		msg := mustFail(t, f.call(t, ToolExecute, sqlArgs(sql), nil))
		if !strings.Contains(msg, "42501") {
			t.Errorf("%q: %q, want SQLSTATE 42501 (insufficient privilege)", sql, msg)
		}
	}
	if diff := cmp.Diff(before, testpg.Snapshot(t, f.admin)); diff != "" {
		t.Errorf("database changed (-before +after):\n%s", diff)
	}
}

func TestPreflightRefusesASuperuserPool(t *testing.T) {
	f := newFixture(t, Config{StatementTimeout: noDeadline})
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, f.server.DSN(f.db))
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	defer pool.Close()
	err = Preflight(ctx, pool, f.cfg)
	if err == nil || !strings.Contains(err.Error(), "superuser") {
		t.Errorf("Preflight as a superuser: %v, want an error naming superuser", err)
	}

	// A login role that inherits, or holds grants of its own, is refused too.
	f.exec(t, "ALTER ROLE "+f.roles.LoginRole+" INHERIT")
	f.exec(t, "GRANT SELECT ON secrets TO "+f.roles.LoginRole)
	err = Preflight(ctx, f.pool, f.cfg)
	if err == nil || !strings.Contains(err.Error(), "NOINHERIT") || !strings.Contains(err.Error(), "privileges on 1 relations") {
		t.Errorf("Preflight with an inheriting login role holding a grant: %v", err)
	}
	// With execute enabled, the write role must not read more than the read
	// role: a read-only call can switch to it.
	f.exec(t, "ALTER ROLE "+f.roles.LoginRole+" NOINHERIT")
	f.exec(t, "REVOKE SELECT ON secrets FROM "+f.roles.LoginRole)
	withExecute := f.cfg
	withExecute.Tools = []string{ToolQuery, ToolExecute}
	if err := Preflight(ctx, f.pool, withExecute); err != nil {
		t.Fatalf("Preflight with execute on the bootstrap roles: %v", err)
	}
	f.exec(t, "GRANT SELECT ON secrets TO "+f.roles.WriteRole)
	err = Preflight(ctx, f.pool, withExecute)
	if err == nil || !strings.Contains(err.Error(), "secrets") {
		t.Errorf("Preflight with a write role that reads more: %v, want an error naming secrets", err)
	}
	f.exec(t, "REVOKE SELECT ON secrets FROM "+f.roles.WriteRole)

	// Execute enabled but the write role missing.
	cfg := f.cfg
	cfg.Tools = []string{ToolQuery, ToolExecute}
	cfg.WriteRole = "no_such_role"
	if err := Preflight(ctx, f.pool, cfg); err == nil || !strings.Contains(err.Error(), `"no_such_role" does not exist`) {
		t.Errorf("Preflight with a missing write role: %v", err)
	}
}

// TestHardenedScopeCannotBeRewritten: with BootstrapOptions.HardenScope, a
// statement cannot change the warden.* settings it runs under, so the
// row-level security policy holds even against statements written to escape it.
func TestHardenedScopeCannotBeRewritten(t *testing.T) {
	f := newFixture(t, Config{StatementTimeout: noDeadline, Tools: []string{ToolQuery, ToolExecute}})
	hardened := f.roles
	hardened.HardenScope = true
	if err := ApplyBootstrap(context.Background(), f.server.DSN(f.db), hardened); err != nil {
		t.Fatalf("hardened bootstrap: %v", err)
	}
	scope := map[string]any{"customer_id": "42"}
	// Scoped calls still work: the connector sets the scope as the login role.
	got := mustResult(t, f.call(t, ToolQuery, sqlArgs("SELECT count(*) FROM orders"), scope))
	if diff := cmp.Diff([][]any{{json.Number("2")}}, got.Rows); diff != "" {
		t.Fatalf("scoped count (-want +got):\n%s", diff)
	}
	before := testpg.Snapshot(t, f.admin)
	for _, tool := range []string{ToolQuery, ToolExecute} {
		for _, sql := range []string{
			"SELECT set_config('warden.customer_id', '7', true), query_to_xml('SELECT * FROM orders WHERE customer_id = 7', false, false, '')",
			"SELECT o.* FROM (SELECT set_config('warden.customer_id', '7', true)) s, LATERAL (SELECT * FROM orders WHERE customer_id = 7) o",
			"DO $$ BEGIN SET LOCAL warden.customer_id = '7'; RAISE EXCEPTION 'leak %', (SELECT string_agg(total::text, ',') FROM orders); END $$",
			"UPDATE pg_settings SET setting = '7' WHERE name = 'warden.customer_id'",
			"SELECT set_config('role', '" + f.roles.LoginRole + "', true)",
		} {
			res := f.call(t, tool, sqlArgs(sql), scope)
			text := resultText(res)
			if !res.IsError {
				t.Errorf("%s %q succeeded: %s", tool, sql, text)
			}
			if strings.Contains(text, "30.00") || strings.Contains(text, ">30") {
				t.Errorf("%s %q revealed customer 7's orders: %s", tool, sql, text)
			}
		}
	}
	if diff := cmp.Diff(before, testpg.Snapshot(t, f.admin)); diff != "" {
		t.Errorf("database changed (-before +after):\n%s", diff)
	}
}
