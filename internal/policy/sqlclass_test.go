package policy

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"

	"github.com/wardenmcp/warden/internal/classify/sqlclass"
)

// TestSQLClassifierWiring wires the real SQL classifier the way the gateway
// does and checks the read-only rule against the shared corpus of
// statements with the verdict a read-only policy must give.
func TestSQLClassifierWiring(t *testing.T) {
	c, err := NewCompiler(WithFunction("sql", func(s string) map[string]any { return sqlclass.Classify(s).Map() }))
	if err != nil {
		t.Fatal(err)
	}
	p := mustCompile(t, c, `
version: 1
roles: {analyst: {tools: [db.query]}}
rules:
  - id: database-is-read-only
    tool: db.query
    when: '!sql(args.sql).read_only'
    effect: deny
    reason: the database is read-only for agents
  - {id: analysts-query, tool: db.query, effect: allow}
`)
	f, err := os.Open("../../../shared/corpus/sql-readonly.jsonl")
	if err != nil {
		t.Skipf("corpus not available: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var tc struct {
			ID     string `json:"id"`
			SQL    string `json:"sql"`
			Expect string `json:"expect"`
		}
		if err := json.Unmarshal(sc.Bytes(), &tc); err != nil {
			t.Fatal(err)
		}
		n++
		d := p.Decide(&Input{Tool: "db.query", Args: map[string]any{"sql": tc.SQL}, Principal: Principal{Roles: []string{"analyst"}}})
		if d.Effect.String() != tc.Expect {
			t.Errorf("%s: %q: %v %v, want %s", tc.ID, tc.SQL, d.Effect, d.Rules, tc.Expect)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("empty corpus")
	}
}
