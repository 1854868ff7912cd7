package policy

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name string
		src  string
		// want are substrings that must all appear in the error: a policy's
		// problems are reported together.
		want []string
	}{
		{
			name: "several errors at once with lines and rule ids",
			src: `version: 1
rules:
  - id: a
    tool: x
    effect: allow
    when: args.n >
  - id: b
    tool: y
    effect: perhaps
  - id: c
    effect: deny
`,
			want: []string{"bad.yaml:6: rule a: when: 1:9: Syntax error", "bad.yaml:9: rule b: unknown effect \"perhaps\"", "bad.yaml:10: rule c: a rule names exactly one of tool, resource, prompt or method (found 0)"},
		},
		{name: "missing version", src: "rules: []\n", want: []string{"bad.yaml:1: missing version: 1"}},
		{name: "wrong version", src: "version: 2\n", want: []string{"bad.yaml:1: unsupported version \"2\""}},
		{name: "unknown top-level field", src: "version: 1\nrulez: []\n", want: []string{"bad.yaml:2: unknown field \"rulez\""}},
		{name: "duplicate rule id", src: "version: 1\nrules:\n  - {id: a, tool: x, effect: allow}\n  - {id: a, tool: y, effect: deny}\n", want: []string{"bad.yaml:4: rule a: duplicate rule id (first defined at bad.yaml:3)"}},
		{name: "duplicate key", src: "version: 1\nrules:\n  - {id: a, tool: x, effect: allow, effect: deny}\n", want: []string{"duplicate key \"effect\""}},
		{name: "two targets", src: "version: 1\nrules:\n  - {id: a, tool: x, resource: y, effect: allow}\n", want: []string{"rule a: a rule names exactly one of tool, resource, prompt or method (found 2)"}},
		{name: "missing effect", src: "version: 1\nrules:\n  - {id: a, tool: x}\n", want: []string{"rule a: missing effect"}},
		{name: "missing id", src: "version: 1\nrules:\n  - {tool: x, effect: allow}\n", want: []string{"bad.yaml:3: rule without an id"}},
		{name: "reserved id", src: "version: 1\nrules:\n  - {id: default-deny, tool: x, effect: allow}\n", want: []string{"rule id \"default-deny\" is reserved"}},
		{name: "unknown rule field", src: "version: 1\nrules:\n  - {id: a, tool: x, effect: allow, whenn: 'true'}\n", want: []string{"rule a: unknown field \"whenn\""}},
		{name: "empty when", src: "version: 1\nrules:\n  - {id: a, tool: x, effect: allow, when: ' '}\n", want: []string{"when is empty"}},
		{name: "non-bool condition", src: "version: 1\nrules:\n  - {id: a, tool: x, effect: deny, when: '1 + 2'}\n", want: []string{"rule a: when must be a boolean condition, not int"}},
		{name: "string condition", src: "version: 1\nrules:\n  - {id: a, tool: x, effect: deny, when: 'principal.id + \"x\"'}\n", want: []string{"when must be a boolean condition"}},
		{name: "undeclared variable", src: "version: 1\nrules:\n  - {id: a, tool: x, effect: deny, when: 'user.id == \"x\"'}\n", want: []string{"rule a: when: ", "undeclared reference to 'user'"}},
		{name: "typo in a field", src: "version: 1\nrules:\n  - {id: a, tool: x, effect: deny, when: 'principal.idd == \"x\"'}\n", want: []string{"principal has no field \"idd\""}},
		{name: "typo in has()", src: "version: 1\nrules:\n  - {id: a, tool: x, effect: deny, when: 'has(task.scop.x)'}\n", want: []string{"task has no field \"scop\""}},
		{name: "unregistered classifier", src: "version: 1\nrules:\n  - {id: a, tool: x, effect: deny, when: 'url(args.u).private'}\n", want: []string{"undeclared reference to 'url'"}},
		{name: "classifier with wrong argument", src: "version: 1\nrules:\n  - {id: a, tool: x, effect: deny, when: 'sql(1).read_only'}\n", want: []string{"found no matching overload for 'sql'"}},
		{name: "cost beyond the limit", src: "version: 1\nrules:\n  - {id: a, tool: x, effect: deny, when: 'args.a.all(x, args.b.all(y, args.c.all(z, x + y + z > 0)))'}\n", want: []string{"rule a: when may cost up to"}},
		{name: "shadow on an allow rule", src: "version: 1\nrules:\n  - {id: a, tool: x, effect: allow, shadow: true}\n", want: []string{"shadow applies to deny rules only"}},
		{name: "approvers on a deny rule", src: "version: 1\nrules:\n  - {id: a, tool: x, effect: deny, approvers: [x]}\n", want: []string{"approvers apply to approve rules only"}},
		{name: "empty target", src: "version: 1\nrules:\n  - {id: a, tool: '', effect: allow}\n", want: []string{"empty name pattern"}},
		{name: "inheritance cycle", src: "version: 1\nroles:\n  a: {inherits: [b]}\n  b: {inherits: [c]}\n  c: {inherits: [a]}\n", want: []string{"role inheritance cycle: a -> b -> c -> a"}},
		{name: "self inheritance", src: "version: 1\nroles:\n  a: {inherits: [a]}\n", want: []string{"bad.yaml:3: role inheritance cycle: a -> a"}},
		{name: "unknown inherited role", src: "version: 1\nroles:\n  a: {inherits: [nope]}\n", want: []string{"role \"a\" inherits unknown role \"nope\""}},
		{name: "unknown role field", src: "version: 1\nroles:\n  a: {tool: [x]}\n", want: []string{"unknown field \"tool\" in role \"a\""}},
		{name: "role grants not a list", src: "version: 1\nroles:\n  a: {tools: x}\n", want: []string{"role a tools must be a list of strings"}},
		{name: "bad argument schema", src: "version: 1\ntools:\n  shop.refund:\n    type: object\n    properties: {amount: {maximum: ten}}\n", want: []string{"bad.yaml:4: tools: \"shop.refund\": "}},
		{name: "argument schema on a glob", src: "version: 1\ntools:\n  shop.*: {type: object}\n", want: []string{"argument schemas take exact tool names"}},
		{name: "yaml alias", src: "version: 1\nroles:\n  a: &g {tools: [x]}\n  b: *g\n", want: []string{"YAML aliases are not supported"}},
		{name: "invalid yaml", src: "version: 1\nrules: [\n", want: []string{"bad.yaml: invalid YAML"}},
		{name: "empty file", src: "", want: []string{"bad.yaml: empty policy file"}},
		{name: "not a mapping", src: "- a\n", want: []string{"a policy file is a mapping"}},
		{name: "defaults field", src: "version: 1\ndefaults: {shadows: true}\n", want: []string{"unknown field defaults.shadows"}},
	}
	c := testCompiler(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := c.Compile([]byte(tc.src), "bad.yaml")
			if err == nil {
				t.Fatalf("policy compiled (version %s), want errors %q", p.Version(), tc.want)
			}
			if p != nil {
				t.Fatal("a policy was returned with an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestCompileErrorsAreLocated(t *testing.T) {
	_, err := testCompiler(t).Compile([]byte("version: 1\nrules:\n  - {id: r1, tool: x, effect: nope}\n"), "p.yaml")
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *policy.Error", err)
	}
	if pe.File != "p.yaml" || pe.Line != 3 || pe.Rule != "r1" {
		t.Fatalf("error located at %s:%d rule %q, want p.yaml:3 rule r1", pe.File, pe.Line, pe.Rule)
	}
}

func TestLoadDirectoryMergesFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "10-roles.yaml", "version: 1\nroles:\n  r: {tools: [\"a.*\", \"b.*\"]}\n")
	writeFile(t, dir, "20-rules.yaml", "version: 1\nrules:\n  - {id: allow-a, tool: \"a.*\", effect: allow}\n")
	writeFile(t, dir, "30-more.yml", "version: 1\nrules:\n  - {id: allow-b, tool: \"b.*\", effect: allow}\n")
	// Table tests and other files beside the policy are not policy.
	writeFile(t, dir, "policy_test.yaml", "cases: []\n")
	writeFile(t, dir, "README.md", "not yaml: [")
	p, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for _, tool := range []string{"a.x", "b.y"} {
		if d := p.Decide(&Input{Tool: tool, Principal: Principal{Roles: []string{"r"}}}); d.Effect != Allow {
			t.Errorf("%s: %v %v, want allow", tool, d.Effect, d.Rules)
		}
	}

	writeFile(t, dir, "40-dup.yaml", "version: 1\nrules:\n  - {id: allow-a, tool: c, effect: allow}\nroles:\n  r: {tools: [c]}\n")
	_, err = Load(dir)
	if err == nil {
		t.Fatal("duplicate rule id and role across files accepted")
	}
	for _, w := range []string{
		filepath.Join(dir, "40-dup.yaml") + ":3: rule allow-a: duplicate rule id (first defined at " + filepath.Join(dir, "20-rules.yaml") + ":3)",
		filepath.Join(dir, "40-dup.yaml") + ":5: role \"r\" already defined at",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(); err == nil {
		t.Error("Load with no paths succeeded")
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "holds no *.yaml file") {
		t.Errorf("Load of an empty directory: %v", err)
	}
}

func TestVersionIsCanonical(t *testing.T) {
	a, err := Compile([]byte("version: 1\nrules:\n  - {id: x, tool: t, effect: allow}\n"), "a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Same policy, other layout and comments.
	b, err := Compile([]byte("# comment\nrules:\n  - id: x\n    effect: allow\n    tool: t\nversion: 1\n"), "b.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Compile([]byte("version: 1\nrules:\n  - {id: x, tool: t, effect: deny}\n"), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Version()) != 64 {
		t.Fatalf("version %q is not a hex sha256", a.Version())
	}
	if a.Version() != b.Version() {
		t.Errorf("same policy, different versions: %s %s", a.Version(), b.Version())
	}
	if a.Version() == c.Version() {
		t.Error("different policies share a version")
	}
	if d := a.Decide(&Input{Tool: "t"}); d.PolicyVersion != a.Version() {
		t.Errorf("decision names version %q, want %q", d.PolicyVersion, a.Version())
	}
}

func TestWithFunctionValidation(t *testing.T) {
	fn := func(string) map[string]any { return nil }
	for _, name := range []string{"", "1x", "a-b", "args", "principal"} {
		if _, err := NewCompiler(WithFunction(name, fn)); err == nil {
			t.Errorf("function name %q accepted", name)
		}
	}
	if _, err := NewCompiler(WithFunction("sql", nil)); err == nil {
		t.Error("nil function accepted")
	}
	if _, err := NewCompiler(WithFunction("sql", fn), WithFunction("sql", fn)); err == nil {
		t.Error("function registered twice accepted")
	}
	if _, err := NewCompiler(WithCostLimit(0)); err == nil {
		t.Error("zero cost limit accepted")
	}
}
