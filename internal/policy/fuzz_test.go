package policy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/wardenmcp/warden/internal/argschema"
)

// FuzzPolicy compiles a rule with a random condition and decides a call with
// random arguments: nothing may panic, a failed compile returns an error and
// no policy, and every decision is a valid effect naming its rules.
func FuzzPolicy(f *testing.F) {
	// Seeds: every condition in the table policies, plus odd ones.
	files, _ := filepath.Glob("testdata/tables/*/policy.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var doc struct {
			Rules []struct {
				When string `yaml:"when"`
			} `yaml:"rules"`
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			f.Fatal(err)
		}
		for _, r := range doc.Rules {
			if r.When != "" {
				f.Add(r.When, []byte(`{"amount":10000.5,"order_id":"1","sql":"SELECT 1","path":"/a","size":3,"items":[1,2]}`))
			}
		}
	}
	for _, w := range []string{
		`args.a.b.c[0] == 1`, `args == null`, `1/0 == 1`, `"a".matches("(")`, `args.x.size() > 2`,
		`[1,2,3].map(x, x * 2)[5] == 1`, `int(args.n) > 9223372036854775807`, `dyn(args).foo`,
		`has(args.__proto__)`, `principal.claims["k"] in ["a"]`, `request.time > timestamp("bad")`,
		`args.items.all(i, i.exists(j, j == 1))`, `sql(args.sql).read_only`, `""`, `)`,
	} {
		f.Add(w, []byte(`{"x":[1,2,3],"n":1e300,"items":[[1],[2]],"sql":"DROP"}`))
	}
	c := testCompiler(f)
	f.Fuzz(func(t *testing.T, when string, rawArgs []byte) {
		quoted, err := json.Marshal(when) // a JSON string is a YAML scalar
		if err != nil {
			return
		}
		src := `version: 1
roles: {r: {tools: ["*"]}}
rules:
  - {id: allow, tool: "*", effect: allow}
  - {id: fuzzed, tool: "*", effect: deny, when: ` + string(quoted) + `}
`
		p, err := c.Compile([]byte(src), "fuzz.yaml")
		if err != nil {
			if p != nil {
				t.Fatal("Compile returned a policy with an error")
			}
			return
		}
		var args any = string(rawArgs)
		if v, err := argschema.DecodeStrict(rawArgs, 0); err == nil {
			args = v
		}
		d := p.Decide(&Input{Tool: "t.x", Args: args, Principal: Principal{Roles: []string{"r"}}})
		if d.Effect != Allow && d.Effect != Deny {
			t.Fatalf("effect %v from a policy of allow and deny rules", d.Effect)
		}
		if len(d.Rules) == 0 {
			t.Fatal("decision names no rule")
		}
		if d.Effect == Deny && d.Rules[0] != "fuzzed" {
			t.Fatalf("deny by %v, want the fuzzed rule", d.Rules)
		}
	})
}
