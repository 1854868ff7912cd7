package policy

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// startsWithSelect stands in for the SQL classifier: it returns the same
// shape of map (read_only, unparseable) from a trivial rule.
func startsWithSelect(s string) map[string]any {
	ro := strings.HasPrefix(strings.ToUpper(strings.TrimSpace(s)), "SELECT")
	return map[string]any{"read_only": ro, "unparseable": false, "kinds": []string{}}
}

func testCompiler(t testing.TB) *Compiler {
	t.Helper()
	c, err := NewCompiler(WithFunction("sql", startsWithSelect))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTables runs each testdata/tables/<dir> policy against the table tests
// kept beside it, the same way `warden policy test` does.
func TestTables(t *testing.T) {
	dirs, err := filepath.Glob("testdata/tables/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no table directories: %v", err)
	}
	c := testCompiler(t)
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			p, err := c.Load(dir)
			if err != nil {
				t.Fatalf("Load(%s): %v", dir, err)
			}
			files, err := TestFiles([]string{dir})
			if err != nil || len(files) == 0 {
				t.Fatalf("TestFiles(%s) = %v, %v", dir, files, err)
			}
			var out bytes.Buffer
			failed, err := RunTests(&out, p, files)
			if err != nil {
				t.Fatalf("RunTests: %v", err)
			}
			if failed != 0 {
				t.Fatalf("%d cases failed:\n%s", failed, out.String())
			}
			if !strings.HasPrefix(out.String(), "ok: ") {
				t.Fatalf("summary %q, want ok", out.String())
			}
		})
	}
}

func TestRunTestsReportsMismatches(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "policy.yaml", `
version: 1
roles: {r: {tools: ["a.*"]}}
rules:
  - {id: allow-a, tool: "a.*", effect: allow}
`)
	writeFile(t, dir, "policy_test.yaml", `
cases:
  - name: right
    input: {principal: {roles: [r]}, tool: a.x}
    expect: {effect: allow, rules: [allow-a]}
  - name: wrong effect
    input: {principal: {roles: [r]}, tool: a.x}
    expect: {effect: deny}
  - name: wrong rules
    input: {principal: {roles: [r]}, tool: a.x}
    expect: {effect: allow, rules: [other]}
  - name: bad input
    input: {principal: {roles: [r]}, tool: a.x, arguments: {k: 1, K: 2}}
    expect: {effect: allow}
`)
	p, err := Load(filepath.Join(dir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := TestFiles([]string{filepath.Join(dir, "policy.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	failed, err := RunTests(&out, p, files)
	if err != nil {
		t.Fatal(err)
	}
	if failed != 3 {
		t.Fatalf("failed = %d, want 3; output:\n%s", failed, out.String())
	}
	for _, want := range []string{
		"policy_test.yaml:6: wrong effect: effect allow (rules allow-a",
		"wrong rules: rules [allow-a], want [other]",
		"bad input: bad input",
		"FAIL: 1 passed, 3 failed",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunTestsRejectsMalformedFiles(t *testing.T) {
	p, err := Compile([]byte("version: 1\nrules: []\n"), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown_test.yaml":   "cases: []\nextra: 1\n",
		"noeffect_test.yaml":  "cases:\n  - name: x\n    input: {}\n    expect: {}\n",
		"badeffect_test.yaml": "cases:\n  - name: x\n    input: {}\n    expect: {effect: maybe}\n",
		"typo_test.yaml":      "cases:\n  - name: x\n    inptu: {}\n    expect: {effect: deny}\n",
	} {
		f := writeFile(t, dir, name, body)
		if _, err := RunTests(&bytes.Buffer{}, p, []string{f}); err == nil {
			t.Errorf("%s: malformed test file accepted", name)
		}
	}
	if _, err := RunTests(&bytes.Buffer{}, p, nil); err == nil {
		t.Error("no test files accepted")
	}
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}
