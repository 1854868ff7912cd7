package postgres_test

import (
	"bytes"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wardenmcp/warden/internal/classify/sqlclass"
	"github.com/wardenmcp/warden/internal/config"
	"github.com/wardenmcp/warden/internal/policy"
)

// newCompiler is the policy compiler Warden runs with: sql(text) is the
// real classifier, as in cmd/warden.
func newCompiler(t testing.TB) *policy.Compiler {
	t.Helper()
	c, err := policy.NewCompiler(policy.WithFunction("sql", func(s string) map[string]any {
		return sqlclass.Classify(s).Map()
	}))
	if err != nil {
		t.Fatalf("policy compiler: %v", err)
	}
	return c
}

func loadExamplePolicy(t testing.TB) *policy.Policy {
	t.Helper()
	p, err := newCompiler(t).Load(filepath.Join(exampleDir, "policy.yaml"))
	if err != nil {
		t.Fatalf("example policy: %v", err)
	}
	return p
}

// sqlRules are the rules of the example policy that refuse SQL.
var sqlRules = []string{"unparseable-sql", "database-is-read-only"}

// TestCorpusThroughExamplePolicy decides every case of both SQL corpora
// with the example policy, as the gateway would for an analyst's db.query.
func TestCorpusThroughExamplePolicy(t *testing.T) {
	c := loadCorpus(t)
	p := loadExamplePolicy(t)
	counts := map[string]int{}
	for _, tc := range c.all() {
		d := p.Decide(&policy.Input{
			Method:    "tools/call",
			Tool:      "db.query",
			Principal: policy.Principal{ID: "analyst-1", Roles: []string{"analyst"}},
			Args:      map[string]any{"sql": tc.SQL},
		})
		counts[tc.Expect]++
		switch tc.Expect {
		case "allow":
			if d.Effect != policy.Allow || !slices.Equal(d.Rules, []string{"analysts-may-query"}) {
				t.Errorf("%s: %q (%s): got %s by %v (%s), want allow by analysts-may-query", tc.ID, tc.SQL, tc.Why, d.Effect, d.Rules, d.Reason)
			}
		case "deny":
			if d.Effect != policy.Deny || len(d.Rules) == 0 || !onlySQLRules(d.Rules) {
				t.Errorf("%s: %q (%s): got %s by %v (%s), want deny by %v", tc.ID, tc.SQL, tc.Why, d.Effect, d.Rules, d.Reason, sqlRules)
			}
			if d.Reason == "" {
				t.Errorf("%s: denied without a reason", tc.ID)
			}
		}
	}
	if counts["allow"] == 0 || counts["deny"] == 0 {
		t.Fatalf("corpus cases by expectation %v: want both", counts)
	}
	t.Logf("decided %d allow and %d deny cases", counts["allow"], counts["deny"])
}

func onlySQLRules(rules []string) bool {
	for _, r := range rules {
		if !slices.Contains(sqlRules, r) {
			return false
		}
	}
	return true
}

// TestUnparseableHasItsOwnReason pins that the caller of an unparseable
// statement reads why, and that the read-only rule fires too: removing the
// unparseable rule would still deny.
func TestUnparseableHasItsOwnReason(t *testing.T) {
	p := loadExamplePolicy(t)
	d := p.Decide(&policy.Input{Method: "tools/call", Tool: "db.query",
		Principal: policy.Principal{ID: "a", Roles: []string{"analyst"}}, Args: map[string]any{"sql": "SELEC 1"}})
	if d.Effect != policy.Deny || !slices.Equal(d.Rules, sqlRules) || !strings.Contains(d.Reason, "cannot be parsed") {
		t.Fatalf("unparseable: %s by %v (%q), want deny by %v saying it cannot be parsed", d.Effect, d.Rules, d.Reason, sqlRules)
	}
}

// TestExamplePolicyTables runs the table tests kept beside the example
// policy, as `warden policy test` does, and lints the policy.
func TestExamplePolicyTables(t *testing.T) {
	p := loadExamplePolicy(t)
	files, err := policy.TestFiles([]string{filepath.Join(exampleDir, "policy.yaml")})
	if err != nil || len(files) != 1 {
		t.Fatalf("TestFiles = %v, %v; want policy_test.yaml", files, err)
	}
	var out bytes.Buffer
	failed, err := policy.RunTests(&out, p, files)
	if err != nil {
		t.Fatal(err)
	}
	if failed != 0 || !strings.HasPrefix(out.String(), "ok: ") {
		t.Fatalf("%d cases failed:\n%s", failed, out.String())
	}
	out.Reset()
	if n := policy.Lint(&out, p); n != 0 {
		t.Errorf("lint: %d findings:\n%s", n, out.String())
	}
}

// TestExampleConfigs loads both example configurations as Warden would and
// checks that they put the example policy in front of a read-only "db".
func TestExampleConfigs(t *testing.T) {
	wantPolicy, err := filepath.Abs(filepath.Join(exampleDir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file  string
		tools []string
	}{
		{"warden.yaml", []string{"query", "list_tables", "describe_table"}},
		{"third-party.yaml", []string{"query"}},
	} {
		cfg, err := config.Load(filepath.Join(exampleDir, tc.file))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if got, _ := filepath.Abs(cfg.Policy); got != wantPolicy {
			t.Errorf("%s: policy %s, want %s", tc.file, cfg.Policy, wantPolicy)
		}
		db := cfg.Upstreams["db"]
		if db == nil || len(cfg.Upstreams) != 1 {
			t.Fatalf("%s: upstreams %v, want only db", tc.file, cfg.UpstreamNames())
		}
		if !slices.Equal(db.AllowTools, tc.tools) {
			t.Errorf("%s: allow_tools %v, want %v", tc.file, db.AllowTools, tc.tools)
		}
		if db.Allows("execute") {
			t.Errorf("%s: execute is allowed", tc.file)
		}
		if p := cfg.StdioPrincipal; p == nil || !slices.Equal(p.Roles, []string{"analyst"}) {
			t.Errorf("%s: stdio principal %+v, want the analyst role", tc.file, p)
		}
		for _, tool := range tc.tools {
			if r := cfg.Catalog["db."+tool].Risk; r != "read" {
				t.Errorf("%s: catalog db.%s risk %q, want read", tc.file, tool, r)
			}
		}
		switch tc.file {
		case "warden.yaml":
			if db.Postgres == nil || db.Postgres.DSNEnv != "WARDEN_PG_DSN" || !slices.Equal(db.Postgres.Tools, tc.tools) {
				t.Errorf("%s: postgres %+v, want dsn_env WARDEN_PG_DSN and tools %v", tc.file, db.Postgres, tc.tools)
			}
		case "third-party.yaml":
			if len(db.Command) != 2 || db.Env["PGPASSWORD"] != "$APP_DB_PASSWORD" {
				t.Fatalf("%s: command %v env %v, want the server and a URL, and PGPASSWORD from the environment", tc.file, db.Command, db.Env)
			}
			u, err := url.Parse(db.Command[1])
			if err != nil || u.Scheme != "postgresql" || u.User == nil {
				t.Fatalf("%s: database URL %q: want postgresql://user@host/db (%v)", tc.file, db.Command[1], err)
			}
			if _, set := u.User.Password(); set {
				t.Errorf("%s: the database URL carries a password; it belongs in the environment", tc.file)
			}
		}
	}
}
