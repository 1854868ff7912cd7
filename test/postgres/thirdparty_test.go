package postgres_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/testpg"
)

// thirdPartyServer finds Node 22 and @modelcontextprotocol/server-postgres
// where scripts/npm-deps.sh installs them (.cache/npm, or $WARDEN_CACHE/npm),
// and skips t when they are not there.
func thirdPartyServer(t testing.TB) (node, entry string) {
	t.Helper()
	cache := os.Getenv("WARDEN_CACHE")
	if cache == "" {
		cache = filepath.Join("..", "..", ".cache")
	}
	dir, err := filepath.Abs(filepath.Join(cache, "npm", "node_modules"))
	if err != nil {
		t.Fatal(err)
	}
	node = filepath.Join(dir, ".bin", "node")
	entry = filepath.Join(dir, "@modelcontextprotocol", "server-postgres", "dist", "index.js")
	for _, p := range []string{node, entry} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("third-party server not installed (%v); run scripts/npm-deps.sh", err)
		}
	}
	return node, entry
}

// TestThirdPartyServerBehindWarden puts Warden in front of the reference
// PostgreSQL MCP server, configured as examples/postgres/third-party.yaml
// but with the URL of the role that owns every table. The server's own
// read-only mode does not hold (shown first, without Warden), so the SQL
// rules are all that stands in the way: every deny case of both corpora
// must be refused by Warden, and the database must be unchanged.
func TestThirdPartyServerBehindWarden(t *testing.T) {
	node, entry := thirdPartyServer(t)
	c := loadCorpus(t)
	d := newDatabase(t)

	t.Run("the server alone commits a write", func(t *testing.T) {
		if _, err := d.admin.Exec(context.Background(),
			"CREATE TABLE canary (id int); ALTER TABLE canary OWNER TO "+pgx.Identifier{d.owner}.Sanitize()); err != nil {
			t.Fatal(err)
		}
		cs := connectCommand(t, node, entry, d.ownerDSN())
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		// The result is malformed or an error; only the database says what
		// happened.
		_, _ = cs.CallTool(ctx, &mcp.CallToolParams{Name: "query", Arguments: map[string]any{"sql": "COMMIT; DROP TABLE canary"}})
		var gone bool
		if err := d.admin.QueryRow(context.Background(), "SELECT to_regclass('canary') IS NULL").Scan(&gone); err != nil {
			t.Fatal(err)
		}
		if !gone {
			t.Fatal("the server alone did not run COMMIT; DROP TABLE: the premise of this test no longer holds")
		}
	})

	cfg := exampleConfig(t, "third-party.yaml")
	up := cfg.Upstreams["db"]
	up.Command = []string{node, entry, d.ownerDSN()}
	delete(up.Env, "PGPASSWORD") // the test server trusts local connections
	w := startWarden(t, cfg, nil)
	cs := w.connect(t)

	// Warden lists the server's tools, resources and resource templates
	// when it starts. An upstream it cannot list has no tools, and every
	// call to it is refused as unknown: closed, but not by the SQL rules.
	listed := hasTool(t, cs, "db.query")

	before := testpg.Snapshot(t, d.admin)
	denied := 0
	for _, tc := range c.all() {
		switch {
		case tc.Expect == "deny":
			denied++
			res := query(t, cs, tc.SQL, nil)
			if listed && !deniedBySQLRule(res) || !deniedByWarden(res) {
				t.Errorf("%s: %q (%s) was not denied by a SQL rule: error=%v %s", tc.ID, tc.SQL, tc.Why, res.IsError, firstLine(resultText(res)))
			}
		case listed && strings.HasPrefix(tc.ID, "shared/"):
			// The path through Warden works: allowed reads reach the server.
			if res := query(t, cs, tc.SQL, nil); res.IsError || !strings.HasPrefix(resultText(res), "[") {
				t.Errorf("%s: %q: error=%v %s, want rows", tc.ID, tc.SQL, res.IsError, firstLine(resultText(res)))
			}
		}
	}
	if diff := cmp.Diff(before, testpg.Snapshot(t, d.admin)); diff != "" {
		t.Errorf("the corpus changed the database through the third-party server (-before +after):\n%s", diff)
	}
	if got := w.deniedDecisions(t, "db.query"); got != denied {
		t.Errorf("audit log holds %d denied db.query decisions, want %d", got, denied)
	}
	if !listed {
		t.Skip("Warden could not list the third-party server (it advertises resources but answers " +
			"resources/templates/list with Method not found), so every call was refused as an unknown tool: " +
			"the database is unchanged, but the SQL rules were not reached")
	}
}

// hasTool reports whether the client sees the tool named.
func hasTool(t testing.TB, cs *mcp.ClientSession, name string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for tool, err := range cs.Tools(ctx, nil) {
		if err != nil {
			t.Fatalf("tools/list: %v", err)
		}
		if tool.Name == name {
			return true
		}
	}
	return false
}

// connectCommand spawns a stdio MCP server and connects a client to it
// directly, without Warden, until t ends.
func connectCommand(t testing.TB, name string, args ...string) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	transport := &mcp.CommandTransport{Command: exec.Command(name, args...), TerminateDuration: 2 * time.Second}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "direct", Version: "1.0.0"}, nil).Connect(ctx, transport, nil)
	if err != nil {
		t.Fatalf("spawn %s: %v", name, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}
