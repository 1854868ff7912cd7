package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/connector/postgres"
	"github.com/wardenmcp/warden/internal/testpg"
)

// queryResult is the connector's result, decoded from its text content
// (the exact wire form; numbers stay as written).
type queryResult struct {
	Columns  []struct{ Name, Type string } `json:"columns"`
	Rows     [][]any                       `json:"rows"`
	RowCount int                           `json:"row_count"`
}

func decodeResult(t testing.TB, res *mcp.CallToolResult) queryResult {
	t.Helper()
	if res.IsError {
		t.Fatalf("tool error: %s", resultText(res))
	}
	var out queryResult
	dec := json.NewDecoder(strings.NewReader(resultText(res)))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("decode result %q: %v", resultText(res), err)
	}
	if out.RowCount != len(out.Rows) {
		t.Fatalf("row_count %d but %d rows", out.RowCount, len(out.Rows))
	}
	return out
}

// column returns the values of the named column as strings.
func (r queryResult) column(t testing.TB, name string) []string {
	t.Helper()
	i := slices.IndexFunc(r.Columns, func(c struct{ Name, Type string }) bool { return c.Name == name })
	if i < 0 {
		t.Fatalf("no column %q in %v", name, r.Columns)
	}
	var out []string
	for _, row := range r.Rows {
		out = append(out, fmt.Sprint(row[i]))
	}
	sort.Strings(out)
	return out
}

// connectorThroughWarden is the end-to-end setup: the fixture database,
// the built-in connector as upstream "db" of the example configuration,
// Warden with cfg's policy, and an analyst's client over Streamable HTTP.
func connectorThroughWarden(t testing.TB, cfg func(testing.TB) string) (*database, *warden, *mcp.ClientSession) {
	t.Helper()
	d := newDatabase(t)
	c := exampleConfig(t, "warden.yaml")
	if cfg != nil {
		c = withPolicy(t, c, cfg(t))
	}
	w := startWarden(t, c, map[string]*mcp.Server{"db": startConnector(t, d, c)})
	return d, w, w.connect(t)
}

// TestCorpusThroughWarden sends both SQL corpora through Warden, with the
// example policy, to the built-in connector: every deny case is refused by
// a SQL rule before it reaches the database, every allow case of the shared
// corpus returns rows, no allow case is refused by Warden, and the database
// is unchanged afterwards.
func TestCorpusThroughWarden(t *testing.T) {
	c := loadCorpus(t)
	d, w, cs := connectorThroughWarden(t, nil)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var tools []string
	for tool, err := range cs.Tools(ctx, nil) {
		if err != nil {
			t.Fatalf("tools/list: %v", err)
		}
		tools = append(tools, tool.Name)
	}
	sort.Strings(tools)
	if want := []string{"db.describe_table", "db.list_tables", "db.query"}; !slices.Equal(tools, want) {
		t.Errorf("the analyst sees tools %v, want %v", tools, want)
	}

	before := testpg.Snapshot(t, d.admin)
	denied := 0
	for _, tc := range c.all() {
		res := query(t, cs, tc.SQL, nil)
		switch {
		case tc.Expect == "deny":
			denied++
			if !deniedBySQLRule(res) {
				t.Errorf("%s: %q (%s) was not denied by a SQL rule: error=%v %s", tc.ID, tc.SQL, tc.Why, res.IsError, firstLine(resultText(res)))
			}
		case strings.HasPrefix(tc.ID, "shared/"):
			if r := decodeResult(t, res); r.RowCount == 0 {
				t.Errorf("%s: %q returned no rows", tc.ID, tc.SQL)
			}
		default:
			// The classifier's allow cases name tables this fixture lacks;
			// the database may refuse them, Warden must not.
			if deniedByWarden(res) {
				t.Errorf("%s: %q was denied by Warden: %s", tc.ID, tc.SQL, resultText(res))
			}
		}
	}
	if diff := cmp.Diff(before, testpg.Snapshot(t, d.admin)); diff != "" {
		t.Errorf("the corpus changed the database (-before +after):\n%s", diff)
	}
	if got := w.deniedDecisions(t, "db.query"); got != denied {
		t.Errorf("audit log holds %d denied db.query decisions, want %d", got, denied)
	}

	tables := decodeResult(t, call(t, cs, "db.list_tables", map[string]any{}))
	if got, want := tables.column(t, "name"), []string{"accounts", "customers", "orders", "transfers"}; !slices.Equal(got, want) {
		t.Errorf("db.list_tables = %v, want %v", got, want)
	}
	cols := decodeResult(t, call(t, cs, "db.describe_table", map[string]any{"table": "accounts"}))
	if got, want := cols.column(t, "column"), []string{"balance", "id", "owner"}; !slices.Equal(got, want) {
		t.Errorf("db.describe_table accounts = %v, want %v", got, want)
	}
}

// TestDefenseInDepthWithoutSQLRules switches the classifier off: a policy
// that allows every db.query. Every statement the read-only policy would
// deny now reaches the connector, and the database must still be unchanged
// after each one: the connector's role and read-only transaction refuse
// what the parser would have.
func TestDefenseInDepthWithoutSQLRules(t *testing.T) {
	c := loadCorpus(t)
	d, w, cs := connectorThroughWarden(t, func(testing.TB) string {
		return `
version: 1
roles:
  analyst: {tools: [db.query]}
rules:
  - id: any-query
    tool: db.query
    effect: allow
`
	})
	before := testpg.Snapshot(t, d.admin)
	reached, refused := 0, 0
	for _, tc := range c.denied() {
		res := query(t, cs, tc.SQL, nil)
		if deniedByWarden(res) {
			t.Fatalf("%s: denied by Warden with the SQL rules off: %s", tc.ID, resultText(res))
		}
		reached++
		if res.IsError {
			refused++
		}
		if diff := cmp.Diff(before, testpg.Snapshot(t, d.admin)); diff != "" {
			t.Fatalf("%s: %q (%s) changed the database (-before +after):\n%s", tc.ID, tc.SQL, tc.Why, diff)
		}
	}
	if reached == 0 || w.deniedDecisions(t, "db.query") != 0 {
		t.Fatalf("%d statements reached the connector, %d were denied: the SQL rules were not off", reached, w.deniedDecisions(t, "db.query"))
	}
	// Most fail in the database (read-only transaction, missing privilege,
	// one statement per call); the rest ran and changed nothing.
	t.Logf("%d statements reached the connector: %d refused by the database, %d ran without effect", reached, refused, reached-refused)
}

// TestClientCannotSetTaskScope: the task scope that row-level security
// reads must come from Warden, never from the agent. A scope the client
// puts in _meta is dropped, so the row-level security policy on orders
// shows such a call nothing (the connector's own tests show a scope set by
// Warden confining a call to its customer's rows).
func TestClientCannotSetTaskScope(t *testing.T) {
	_, _, cs := connectorThroughWarden(t, nil)
	scope := func(customer string) mcp.Meta {
		return mcp.Meta{postgres.ScopeMetaKey: map[string]any{"customer_id": customer}}
	}
	for _, tc := range []struct {
		name string
		sql  string
		meta mcp.Meta
	}{
		{"client claims customer 42", "SELECT * FROM orders", scope("42")},
		{"client claims customer 7", "SELECT * FROM orders WHERE customer_id = 7", scope("7")},
		{"no scope", "SELECT * FROM orders", nil},
	} {
		r := decodeResult(t, query(t, cs, tc.sql, tc.meta))
		if got := r.column(t, "customer_id"); len(got) != 0 {
			t.Errorf("%s: rows of customers %v reached a call whose scope Warden did not set", tc.name, got)
		}
	}
	// Rewriting the scope from inside the statement is stopped by the SQL
	// rules before the connector sees it.
	res := query(t, cs, "SELECT set_config('warden.customer_id', '7', true), (SELECT count(*) FROM orders)", scope("42"))
	if !deniedBySQLRule(res) {
		t.Errorf("scope rewrite was not denied by a SQL rule: %s", resultText(res))
	}
}

// call calls a tool through cs and fails t on a protocol error.
func call(t testing.TB, cs *mcp.ClientSession, tool string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error: %v", tool, err)
	}
	return res
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
