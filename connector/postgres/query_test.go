package postgres

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/testpg"
)

func TestQueryReturnsRows(t *testing.T) {
	f := newReadOnlyFixture(t, Config{StatementTimeout: noDeadline})
	got := mustResult(t, f.call(t, ToolQuery, sqlArgs(
		"SELECT id, owner, balance, balance > 50 AS rich, NULL::text AS none, '{\"a\":[1]}'::jsonb AS doc FROM accounts ORDER BY id"), nil))

	wantColumns := []Column{{"id", "int4"}, {"owner", "text"}, {"balance", "numeric"}, {"rich", "bool"}, {"none", "text"}, {"doc", "jsonb"}}
	if diff := cmp.Diff(wantColumns, got.Columns); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	want := [][]any{
		{json.Number("1"), "alice", json.Number("100.50"), true, nil, map[string]any{"a": []any{json.Number("1")}}},
		{json.Number("2"), "bob", json.Number("20.00"), false, nil, map[string]any{"a": []any{json.Number("1")}}},
		{json.Number("3"), "carol", json.Number("0.00"), false, nil, map[string]any{"a": []any{json.Number("1")}}},
	}
	if diff := cmp.Diff(want, got.Rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if got.RowCount != 3 || got.Truncated {
		t.Errorf("row_count=%d truncated=%v, want 3 and false", got.RowCount, got.Truncated)
	}
}

func TestQueryParamsAreTypedByPostgres(t *testing.T) {
	f := newReadOnlyFixture(t, Config{StatementTimeout: noDeadline})
	got := mustResult(t, f.call(t, ToolQuery, sqlArgs(
		"SELECT owner FROM accounts WHERE balance > $1 AND owner <> $2 AND $3::bool AND $4::jsonb ? 'k' AND $5::text IS NULL ORDER BY id",
		10, "bob", true, map[string]any{"k": 1}, nil), nil))
	if diff := cmp.Diff([][]any{{"alice"}}, got.Rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}

	// A string that looks like SQL is only ever a value.
	got = mustResult(t, f.call(t, ToolQuery, sqlArgs("SELECT count(*) FROM accounts WHERE owner = $1", "x' OR '1'='1"), nil))
	if diff := cmp.Diff([][]any{{json.Number("0")}}, got.Rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestQueryFloatSpecialsAreStrings(t *testing.T) {
	f := newReadOnlyFixture(t, Config{StatementTimeout: noDeadline})
	got := mustResult(t, f.call(t, ToolQuery, sqlArgs("SELECT 'NaN'::float8, 'Infinity'::numeric, 1.5::float4, '2026-01-02'::date"), nil))
	want := [][]any{{"NaN", "Infinity", json.Number("1.5"), "2026-01-02"}}
	if diff := cmp.Diff(want, got.Rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestRowCapTruncates(t *testing.T) {
	f := newReadOnlyFixture(t, Config{StatementTimeout: noDeadline, MaxRows: 3})
	got := mustResult(t, f.call(t, ToolQuery, sqlArgs("SELECT g FROM generate_series(1, 100000) g"), nil))
	if got.RowCount != 3 || len(got.Rows) != 3 || !got.Truncated {
		t.Fatalf("row_count=%d rows=%d truncated=%v, want 3, 3, true", got.RowCount, len(got.Rows), got.Truncated)
	}
	if diff := cmp.Diff([][]any{{json.Number("1")}, {json.Number("2")}, {json.Number("3")}}, got.Rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}

	// Exactly the cap is not truncated.
	got = mustResult(t, f.call(t, ToolQuery, sqlArgs("SELECT g FROM generate_series(1, 3) g"), nil))
	if got.RowCount != 3 || got.Truncated {
		t.Errorf("row_count=%d truncated=%v, want 3 and false", got.RowCount, got.Truncated)
	}

	// The connection is usable after a truncated read.
	got = mustResult(t, f.call(t, ToolQuery, sqlArgs("SELECT current_user::text"), nil))
	if diff := cmp.Diff([][]any{{f.roles.ReadRole}}, got.Rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestSizeCapTruncates(t *testing.T) {
	const maxBytes = 200
	f := newReadOnlyFixture(t, Config{StatementTimeout: noDeadline, MaxResultBytes: maxBytes})
	got := mustResult(t, f.call(t, ToolQuery, sqlArgs("SELECT repeat('x', 50) FROM generate_series(1, 100)"), nil))
	if !got.Truncated {
		t.Fatal("result not truncated")
	}
	if got.RowCount == 0 || got.RowCount >= 100 {
		t.Fatalf("row_count=%d, want some rows but not all", got.RowCount)
	}
	size := 0
	for _, row := range got.Rows {
		size += len(row[0].(string))
	}
	if size > maxBytes {
		t.Errorf("returned %d bytes of values, cap is %d", size, maxBytes)
	}

	// A single value larger than the cap returns no rows rather than a partial value.
	got = mustResult(t, f.call(t, ToolQuery, sqlArgs("SELECT repeat('y', 1000)"), nil))
	if got.RowCount != 0 || !got.Truncated {
		t.Errorf("row_count=%d truncated=%v, want 0 and true", got.RowCount, got.Truncated)
	}
}

func TestStatementTimeoutFires(t *testing.T) {
	f := newReadOnlyFixture(t, Config{StatementTimeout: 200 * time.Millisecond})
	msg := mustFail(t, f.call(t, ToolQuery, sqlArgs("SELECT pg_sleep(5)"), nil))
	if !strings.Contains(msg, "57014") || !strings.Contains(msg, "statement timeout") {
		t.Errorf("error %q, want SQLSTATE 57014 statement timeout", msg)
	}
	// The timeout is the call's own: the next call runs normally.
	got := mustResult(t, f.call(t, ToolQuery, sqlArgs("SELECT current_setting('statement_timeout')"), nil))
	if diff := cmp.Diff([][]any{{"200ms"}}, got.Rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestMultipleStatementsAreRejected(t *testing.T) {
	f := newReadOnlyFixture(t, Config{StatementTimeout: noDeadline, Tools: []string{ToolQuery, ToolExecute}})
	before := testpg.Snapshot(t, f.admin)
	for _, tool := range []string{ToolQuery, ToolExecute} {
		for _, sql := range []string{
			"SELECT 1; UPDATE accounts SET balance = 0",
			"UPDATE accounts SET balance = 1; DELETE FROM transfers",
			"SELECT 1;/*x*/TrUnCaTe/**/accounts",
		} {
			msg := mustFail(t, f.call(t, tool, sqlArgs(sql), nil))
			if !strings.Contains(msg, "42601") || !strings.Contains(msg, "multiple commands") {
				t.Errorf("%s %q: error %q, want SQLSTATE 42601 about multiple commands", tool, sql, msg)
			}
		}
	}
	if diff := cmp.Diff(before, testpg.Snapshot(t, f.admin)); diff != "" {
		t.Errorf("database changed (-before +after):\n%s", diff)
	}
}

func TestQueryCannotWrite(t *testing.T) {
	f := newReadOnlyFixture(t, Config{StatementTimeout: noDeadline})
	msg := mustFail(t, f.call(t, ToolQuery, sqlArgs("UPDATE accounts SET balance = 0"), nil))
	if !strings.Contains(msg, "25006") {
		t.Errorf("error %q, want SQLSTATE 25006 (read-only transaction)", msg)
	}
	got := mustResult(t, f.call(t, ToolQuery, sqlArgs("SELECT current_user::text, current_setting('transaction_read_only')"), nil))
	if diff := cmp.Diff([][]any{{f.roles.ReadRole, "on"}}, got.Rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestListTablesShowsOnlyGrantedTables(t *testing.T) {
	f := newReadOnlyFixture(t, Config{StatementTimeout: noDeadline})
	got := mustResult(t, f.call(t, ToolListTables, map[string]any{}, nil))
	var names []string
	for _, row := range got.Rows {
		names = append(names, row[0].(string)+"."+row[1].(string))
	}
	want := []string{"public.accounts", "public.customers", "public.orders", "public.transfers"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("tables (-want +got):\n%s", diff)
	}
}

func TestDescribeTable(t *testing.T) {
	f := newReadOnlyFixture(t, Config{StatementTimeout: noDeadline})
	got := mustResult(t, f.call(t, ToolDescribeTable, map[string]any{"table": "public.accounts"}, nil))
	want := [][]any{
		{"id", "integer", false, "nextval('accounts_id_seq'::regclass)"},
		{"owner", "text", false, nil},
		{"balance", "numeric(12,2)", false, nil},
	}
	if diff := cmp.Diff(want, got.Rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	for _, table := range []string{"secrets", "no_such_table", "accounts; DROP TABLE accounts"} {
		msg := mustFail(t, f.call(t, ToolDescribeTable, map[string]any{"table": table}, nil))
		if strings.Contains(msg, "api_key") {
			t.Errorf("describe %q revealed a column of a table the read role cannot read: %s", table, msg)
		}
	}
}

func TestArgumentsAreChecked(t *testing.T) {
	f := newReadOnlyFixture(t, Config{StatementTimeout: noDeadline})
	for _, tc := range []struct {
		name string
		tool string
		args map[string]any
		want string
	}{
		{"missing sql", ToolQuery, map[string]any{}, "sql"},
		{"empty sql", ToolQuery, map[string]any{"sql": ""}, "sql"},
		{"unknown argument", ToolQuery, map[string]any{"sql": "SELECT 1", "role": "postgres"}, "role"},
		{"params not an array", ToolQuery, map[string]any{"sql": "SELECT $1", "params": "x"}, "params"},
		{"NUL in sql", ToolQuery, map[string]any{"sql": "SELECT 1\x00"}, "NUL"},
		{"missing table", ToolDescribeTable, map[string]any{}, "table"},
		{"arguments to list_tables", ToolListTables, map[string]any{"schema": "x"}, "schema"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := mustFail(t, f.call(t, tc.tool, tc.args, nil))
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not mention %q", msg, tc.want)
			}
		})
	}
}

func TestDisabledToolsAreNotServed(t *testing.T) {
	f := newReadOnlyFixture(t, Config{StatementTimeout: noDeadline})
	list, err := f.client.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatalf("ListTools: %v", err)
	}
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
	}
	if diff := cmp.Diff([]string{ToolDescribeTable, ToolListTables, ToolQuery}, names); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
	_, err = f.client.CallTool(context.Background(), &mcp.CallToolParams{Name: ToolExecute, Arguments: sqlArgs("DELETE FROM transfers")})
	if err == nil {
		t.Fatal("calling the disabled execute tool succeeded")
	}
}

func TestErrorsDoNotLeakTheDSN(t *testing.T) {
	f := newFixture(t, Config{StatementTimeout: noDeadline})
	dsn := f.server.UserDSN(f.roles.LoginRole, f.db)
	msg := mustFail(t, f.call(t, ToolQuery, sqlArgs("SELECT * FROM secrets"), nil))
	if !strings.Contains(msg, "42501") {
		t.Errorf("error %q, want SQLSTATE 42501", msg)
	}

	// A pool that cannot reach its server.
	f.pool.Close()
	msg = mustFail(t, f.call(t, ToolQuery, sqlArgs("SELECT 1"), nil))
	for _, secret := range []string{dsn, "127.0.0.1", f.roles.LoginRole, "postgres://"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q reveals %q", msg, secret)
		}
	}
}

func TestGuardRecoversPanics(t *testing.T) {
	s := &server{logger: discardLogger()}
	h := s.guard("boom", func(context.Context, *mcp.CallToolRequest, []scopeSetting) (*Result, error) {
		panic("kaboom: secret detail")
	})
	res, err := h(context.Background(), &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{}})
	if err != nil {
		t.Fatalf("guard returned a protocol error: %v", err)
	}
	if !res.IsError || strings.Contains(resultText(res), "secret detail") {
		t.Errorf("result %+v: want a tool error without the panic's text", res)
	}
}
