package postgres

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/wardenmcp/warden/internal/testpg"
)

const corpusPath = "/work/shared/corpus/sql-readonly.jsonl"

type corpusCase struct {
	ID     string `json:"id"`
	SQL    string `json:"sql"`
	Expect string `json:"expect"`
	Why    string `json:"why"`
}

func readCorpus(t *testing.T) []corpusCase {
	t.Helper()
	file, err := os.Open(corpusPath)
	if err != nil {
		t.Skipf("SQL corpus not available: %v", err)
	}
	defer file.Close()
	var cases []corpusCase
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var c corpusCase
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("corpus line %q: %v", sc.Text(), err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read corpus: %v", err)
	}
	if len(cases) == 0 {
		t.Fatal("empty corpus")
	}
	return cases
}

// TestCorpusDenyCasesChangeNothing sends every statement a read-only policy
// must deny straight to the query tool, with no SQL classifier in front, and
// checks the database by its state, not by what the client was told.
func TestCorpusDenyCasesChangeNothing(t *testing.T) {
	cases := readCorpus(t)
	f := newFixture(t, Config{StatementTimeout: noDeadline})
	before := testpg.Snapshot(t, f.admin)
	denied := 0
	for _, c := range cases {
		if c.Expect != "deny" {
			continue
		}
		denied++
		t.Run(c.ID, func(t *testing.T) {
			res := f.call(t, ToolQuery, sqlArgs(c.SQL), nil)
			t.Logf("%s -> isError=%v %s", c.SQL, res.IsError, firstLine(resultText(res)))
			if diff := cmp.Diff(before, testpg.Snapshot(t, f.admin)); diff != "" {
				t.Errorf("%s (%s) changed the database (-before +after):\n%s", c.SQL, c.Why, diff)
			}
		})
	}
	if denied == 0 {
		t.Fatal("corpus has no deny cases")
	}
}

// TestCorpusAllowCasesRun checks the benign statements work through the
// connector's roles: least privilege must not break ordinary reads.
func TestCorpusAllowCasesRun(t *testing.T) {
	cases := readCorpus(t)
	f := newReadOnlyFixture(t, Config{StatementTimeout: noDeadline})
	for _, c := range cases {
		if c.Expect != "allow" {
			continue
		}
		t.Run(c.ID, func(t *testing.T) {
			mustResult(t, f.call(t, ToolQuery, sqlArgs(c.SQL), nil))
		})
	}
}

// TestWriteAttemptsChangeNothing tries further ways out of a read-only call:
// sequences, large objects, server files and programs, code blocks, DDL,
// grants, role changes, transaction control, settings and another connection.
func TestWriteAttemptsChangeNothing(t *testing.T) {
	f := newFixture(t, Config{StatementTimeout: noDeadline})
	leak := filepath.Join(f.server.Dir, "leak.csv")
	loginDSN := fmt.Sprintf("host=127.0.0.1 port=%d dbname=%s user=postgres", f.server.Port, f.db)
	attempts := []string{
		"SELECT setval('accounts_id_seq', 1000)",
		"SELECT lo_import('/etc/hostname')",
		"SELECT lo_from_bytea(0, 'x')",
		"COPY accounts TO '" + leak + "'",
		"COPY accounts FROM PROGRAM 'echo 9,eve,1'",
		"COPY (SELECT 1) TO PROGRAM 'touch " + leak + "'",
		"DO $$ BEGIN DELETE FROM transfers; END $$",
		"CREATE FUNCTION evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
		"CREATE TEMP TABLE scratch AS SELECT * FROM accounts",
		"CREATE TABLE stolen AS SELECT * FROM accounts",
		"GRANT ALL ON accounts TO PUBLIC",
		"ALTER ROLE " + f.roles.ReadRole + " SUPERUSER",
		"ALTER ROLE " + f.roles.LoginRole + " INHERIT",
		"ALTER DATABASE " + f.db + " SET default_transaction_read_only = off",
		"ALTER SYSTEM SET fsync = on",
		"SET ROLE " + f.roles.LoginRole,
		"SET ROLE " + f.roles.WriteRole,
		"SET ROLE postgres",
		"RESET ROLE",
		"SET SESSION AUTHORIZATION postgres",
		"COMMIT; DELETE FROM transfers",
		"COMMIT",
		"SET TRANSACTION READ WRITE",
		"SELECT set_config('transaction_read_only', 'off', true)",
		"SELECT set_config('role', '" + f.roles.WriteRole + "', true), nextval('accounts_id_seq')",
		"SELECT set_config('role', '" + f.roles.LoginRole + "', true), (SELECT count(*) FROM transfers)",
		"SELECT dblink_exec('" + loginDSN + "', 'DELETE FROM transfers')",
		"CALL commit_then_wipe()",
		"SELECT archive_old_accounts()",
		"PREPARE TRANSACTION 'stuck'",
		"SELECT pg_advisory_lock(1)",
		"PREPARE wipe AS DELETE FROM transfers",
		"LISTEN warden",
		"DECLARE c CURSOR WITH HOLD FOR SELECT * FROM accounts",
		"TRUNCATE transfers",
		"DELETE FROM transfers",
		"MERGE INTO accounts a USING (SELECT 1 AS id) s ON a.id = s.id WHEN MATCHED THEN DELETE",
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'postgres'",
		"VACUUM accounts",
		"LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE",
	}
	before := testpg.Snapshot(t, f.admin)
	for _, sql := range attempts {
		t.Run(sql, func(t *testing.T) {
			res := f.call(t, ToolQuery, sqlArgs(sql), nil)
			t.Logf("isError=%v %s", res.IsError, firstLine(resultText(res)))
			if diff := cmp.Diff(before, testpg.Snapshot(t, f.admin)); diff != "" {
				t.Errorf("%q changed the database (-before +after):\n%s", sql, diff)
			}
			if _, err := os.Stat(leak); err == nil {
				t.Errorf("%q wrote %s", sql, leak)
			}
		})
	}

	// Nothing a call did stays in its pooled session: the next calls run as
	// the read role, read-only, with the configured timeout, no prepared
	// statements, cursors or advisory locks.
	for range 4 {
		got := mustResult(t, f.call(t, ToolQuery, sqlArgs(`SELECT current_user::text, session_user::text,
			current_setting('transaction_read_only'), current_setting('statement_timeout'),
			(SELECT count(*) FROM pg_prepared_statements), (SELECT count(*) FROM pg_cursors WHERE name <> ''),
			(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'), (SELECT count(*) FROM pg_listening_channels())`), nil))
		want := [][]any{{f.roles.ReadRole, f.roles.LoginRole, "on", "30s", json.Number("0"), json.Number("0"), json.Number("0"), json.Number("0")}}
		if diff := cmp.Diff(want, got.Rows); diff != "" {
			t.Errorf("session state after the attempts (-want +got):\n%s", diff)
		}
	}
}

// TestLoginRoleHoldsNothing: a statement that leaves the call's role (RESET
// ROLE, set_config('role', ...)) lands on the login role, which is NOINHERIT
// and holds no grants, so escaping gains nothing. Checked by connecting as
// the login role directly, without any SET ROLE.
func TestLoginRoleHoldsNothing(t *testing.T) {
	f := newFixture(t, Config{StatementTimeout: noDeadline})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.server.UserDSN(f.roles.LoginRole, f.db))
	if err != nil {
		t.Fatalf("connect as login role: %v", err)
	}
	defer conn.Close(ctx)
	before := testpg.Snapshot(t, f.admin)
	for _, sql := range []string{
		"SELECT * FROM accounts",
		"SELECT * FROM orders",
		"SELECT * FROM secrets",
		"INSERT INTO transfers (account_id, amount) VALUES (1, 1)",
		"UPDATE accounts SET balance = 0",
		"DELETE FROM transfers",
		"SELECT nextval('accounts_id_seq')",
		"SET ROLE postgres",
		"CREATE TABLE public.mine (id int)",
	} {
		_, err := conn.Exec(ctx, sql)
		if err == nil {
			t.Errorf("login role ran %q", sql)
			continue
		}
		if !strings.Contains(err.Error(), "42501") {
			t.Errorf("login role %q: %v, want SQLSTATE 42501 (insufficient privilege)", sql, err)
		}
	}
	if diff := cmp.Diff(before, testpg.Snapshot(t, f.admin)); diff != "" {
		t.Errorf("database changed (-before +after):\n%s", diff)
	}
	if err := Preflight(ctx, f.pool, f.cfg); err != nil {
		t.Errorf("Preflight on the bootstrap roles: %v", err)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
