package policy

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func loadShop(t *testing.T) *Policy {
	t.Helper()
	p, err := testCompiler(t).Load("testdata/tables/shop/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEvalStreamOneCall(t *testing.T) {
	p := loadShop(t)
	in := `{"principal":{"id":"u1","roles":["support-agent"]},
	        "tool":"shop.refund_order",
	        "arguments":{"order_id":"1","amount":20000}}`
	var out bytes.Buffer
	if err := EvalStream(strings.NewReader(in), &out, p, false); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output %q is not JSON: %v", out.String(), err)
	}
	want := map[string]any{
		"effect":         "deny",
		"rules":          []any{"refunds-over-limit"},
		"reason":         "automated refunds are limited to 10,000",
		"policy_version": p.Version(),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("decision (-want +got):\n%s", diff)
	}
}

func TestEvalStreamJSONLines(t *testing.T) {
	p := loadShop(t)
	in := strings.Join([]string{
		`{"principal":{"roles":["support-agent"]},"tool":"db.query","arguments":{"sql":"SELECT 1"}}`,
		``,
		`{"principal":{"roles":["support-agent"]},"tool":{"name":"shop.delete_order","risk":"destructive"},"arguments":{"order_id":"1"},"principal":{}}`,
		`{"principal":{"roles":["support-agent"],"claims":{"mfa":true}},"tool":{"name":"shop.delete_order","risk":"destructive"},"arguments":{"order_id":"1"}}`,
		`{"principal":{"roles":["support-agent"]},"tool":"db.query","arguments":{"sql":"DROP TABLE x"},"unknown":1}`,
		`{"principal":{"roles":["support-agent"]},"tool":"db.query","arguments":{"sql":7}}`,
	}, "\n")
	var out bytes.Buffer
	err := EvalStream(strings.NewReader(in), &out, p, true)
	if err == nil || !strings.Contains(err.Error(), "2 of the input lines") {
		t.Fatalf("error = %v, want 2 bad lines counted", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d output lines, want 5:\n%s", len(lines), out.String())
	}
	type row struct {
		Effect string   `json:"effect"`
		Rules  []string `json:"rules"`
		Error  string   `json:"error"`
		Line   int      `json:"line"`
	}
	var rows []row
	for _, l := range lines {
		var r row
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		rows = append(rows, r)
	}
	if rows[0].Effect != "allow" {
		t.Errorf("select: %+v", rows[0])
	}
	if rows[1].Line != 3 || !strings.Contains(rows[1].Error, "duplicate key") {
		t.Errorf("duplicate principal: %+v", rows[1])
	}
	if rows[2].Effect != "confirm" || !cmp.Equal(rows[2].Rules, []string{"destructive-needs-a-yes"}) {
		t.Errorf("destructive tool object: %+v", rows[2])
	}
	if rows[3].Line != 5 || !strings.Contains(rows[3].Error, "unknown field") {
		t.Errorf("unknown field: %+v", rows[3])
	}
	if rows[4].Effect != "deny" || !strings.Contains(rows[4].Error, "database-is-read-only") {
		t.Errorf("evaluation error: %+v", rows[4])
	}
}

func TestParseCall(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	in, err := ParseCall([]byte(`{
	  "principal": {"id": "u", "roles": ["a"], "tenant": "t", "clearance": "internal", "claims": {"mfa": true}},
	  "tool": {"name": "x.y", "server": "x", "risk": "low", "labels": ["l"], "annotations": {"readOnlyHint": true}},
	  "arguments": {"n": 1.5},
	  "task": {"id": "task1", "scope": {"k": "v"}, "labels": ["confidential"], "counters": {"calls": 3}},
	  "request": {"transport": "stdio"}
	}`), now)
	if err != nil {
		t.Fatal(err)
	}
	want := &Input{
		Method: "tools/call", Tool: "x.y",
		Principal: Principal{ID: "u", Roles: []string{"a"}, Tenant: "t", Clearance: "internal", Claims: map[string]any{"mfa": true}},
		ToolInfo:  ToolInfo{Name: "x.y", Server: "x", Risk: "low", Labels: []string{"l"}, Annotations: map[string]any{"readOnlyHint": true}},
		Args:      map[string]any{"n": json.Number("1.5")},
		Task:      Task{ID: "task1", Scope: map[string]any{"k": "v"}, Labels: []string{"confidential"}, Counters: map[string]int64{"calls": 3}},
		Request:   Request{Time: now, Transport: "stdio"},
	}
	if diff := cmp.Diff(want, in); diff != "" {
		t.Fatalf("ParseCall (-want +got):\n%s", diff)
	}
	for _, bad := range []string{
		`{"tool": 5}`,
		`{"tool": {"risk": "x"}}`,
		`{"tool": "a", "arguments": {"a": 1, "a": 2}}`,
		`{"request": {"time": "yesterday"}}`,
		`[]`,
	} {
		if _, err := ParseCall([]byte(bad), now); err == nil {
			t.Errorf("ParseCall accepted %s", bad)
		}
	}
}

func TestLint(t *testing.T) {
	p := mustCompile(t, testCompiler(t), `
version: 1
roles:
  agent: {tools: ["shop.*"]}
rules:
  - {id: allow-shop, tool: "shop.*", effect: allow}
  - {id: no-reason, tool: shop.x, when: 'args.n > 1', effect: deny}
  - {id: nobody-has-db, tool: "db.*", effect: deny, reason: r}
  - {id: shop-closed, tool: "shop.admin.*", effect: deny, reason: closed}
  - {id: confirm-admin, tool: shop.admin.wipe, effect: confirm}
  - {id: escalate, tool: shop.y, effect: approve}
  - {id: fine, tool: shop.z, effect: deny, when: 'args.n > 2', reason: ok}
`)
	var out bytes.Buffer
	n := Lint(&out, p)
	got := out.String()
	for _, want := range []string{
		"test.yaml:7: rule no-reason: warning: deny rule without a reason",
		"test.yaml:8: rule nobody-has-db: warning: no role grants a tool matching \"db.*\"",
		"test.yaml:10: rule confirm-admin: warning: unreachable: every tool it matches is denied by rule shop-closed (test.yaml:9)",
		"test.yaml:11: rule escalate: warning: approve rule names no approvers",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("lint output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "rule fine:") || strings.Contains(got, "rule allow-shop:") {
		t.Errorf("lint warns about a sound rule:\n%s", got)
	}
	if n != 4 {
		t.Errorf("Lint returned %d, want 4:\n%s", n, got)
	}

	var none bytes.Buffer
	if n := Lint(&none, mustCompile(t, testCompiler(t), "version: 1\nrules:\n  - {id: d, tool: t, effect: deny, reason: x}\n")); n == 0 || !strings.Contains(none.String(), "no allow rule") {
		t.Errorf("policy without allow rules: %d warnings:\n%s", n, none.String())
	}
}
