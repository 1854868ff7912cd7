package policy

import (
	"strings"
	"testing"
)

// TestMaskingDetectors: operator-defined patterns and dictionaries join the
// built-in detectors, their classes can be named by rules, and a malformed
// one is a compile error with its line.
func TestMaskingDetectors(t *testing.T) {
	src := `
version: 1
roles:
  agent: {tools: ["*"]}
rules:
  - {id: all, tool: "*", effect: allow}
masking:
  default: redact
  detectors:
    - {class: EMPLOYEE_ID, pattern: 'EMP-[0-9]{6}', context: [employee]}
    - {class: CODENAME, words: [Falcon, "Blue Heron"]}
  rules:
    - {id: hr-sees-ids, classes: [EMPLOYEE_ID], when: "'hr' in principal.roles", action: pass}
`
	p, err := Compile([]byte(src), "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, ok := p.Masking()
	if !ok || s.Scanner == nil {
		t.Fatal("no masking settings or scanner")
	}
	text := []byte("employee EMP-123456 works on project Blue Heron")
	found := map[string]bool{}
	for _, f := range s.Scanner.Scan(text, nil, nil) {
		found[f.Class] = true
	}
	if !found["EMPLOYEE_ID"] || !found["CODENAME"] {
		t.Fatalf("custom detectors found %v, want EMPLOYEE_ID and CODENAME", found)
	}
	plan, err := p.MaskPlan(&Input{Principal: Principal{Roles: []string{"hr"}}})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Actions["EMPLOYEE_ID"] != "pass" {
		t.Errorf("plan for hr: %v, want EMPLOYEE_ID passed", plan.Actions)
	}

	bad := strings.Replace(src, "pattern: 'EMP-[0-9]{6}'", "pattern: 'EMP-[0-9'", 1)
	if _, err := Compile([]byte(bad), "policy.yaml"); err == nil || !strings.Contains(err.Error(), "policy.yaml:") {
		t.Errorf("a malformed pattern compiled, or the error does not point at the file: %v", err)
	}
}
