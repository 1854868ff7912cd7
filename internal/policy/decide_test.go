package policy

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mustCompile(t testing.TB, c *Compiler, src string) *Policy {
	t.Helper()
	p, err := c.Compile([]byte(src), "test.yaml")
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

func TestEvaluationErrorIsDenyWithLoggedCause(t *testing.T) {
	c, err := NewCompiler(WithFunction("boom", func(s string) map[string]any { panic("classifier bug: " + s) }))
	if err != nil {
		t.Fatal(err)
	}
	p := mustCompile(t, c, `
version: 1
roles: {r: {tools: ["*"]}}
rules:
  - {id: allow-all, tool: "*", effect: allow}
  - {id: missing-key, tool: a, when: 'args.secret_field == "x"', effect: deny}
  - {id: type-error, tool: b, when: 'args.n > 1', effect: deny}
  - {id: panicking, tool: c, when: 'boom(args.s).bad', effect: deny}
  - {id: not-bool, tool: d, when: 'args.flag', effect: allow}
`)
	cases := []struct {
		tool string
		args any
		rule string
	}{
		{tool: "a", args: map[string]any{}, rule: "missing-key"},
		{tool: "b", args: map[string]any{"n": "10000"}, rule: "type-error"},
		{tool: "c", args: map[string]any{"s": "x"}, rule: "panicking"},
		{tool: "d", args: map[string]any{"flag": "yes"}, rule: "not-bool"},
	}
	for _, tc := range cases {
		t.Run(tc.rule, func(t *testing.T) {
			d := p.Decide(&Input{Tool: tc.tool, Args: tc.args, Principal: Principal{Roles: []string{"r"}}})
			if d.Effect != Deny {
				t.Fatalf("effect %v, want deny", d.Effect)
			}
			if !cmp.Equal(d.Rules, []string{tc.rule}) {
				t.Fatalf("rules %v, want [%s]", d.Rules, tc.rule)
			}
			if want := "rule " + tc.rule + ": evaluation error"; d.Reason != want {
				t.Fatalf("reason %q, want %q", d.Reason, want)
			}
			if d.Err == nil || !strings.Contains(d.Err.Error(), tc.rule) {
				t.Fatalf("Err = %v, want the cause naming the rule", d.Err)
			}
		})
	}
}

func TestRuntimeCostLimitDenies(t *testing.T) {
	c, err := NewCompiler(WithCostLimit(100_000))
	if err != nil {
		t.Fatal(err)
	}
	p := mustCompile(t, c, `
version: 1
roles: {r: {tools: ["*"]}}
rules:
  - {id: allow-all, tool: "*", effect: allow}
  - {id: scan, tool: "*", when: 'args.items.exists(i, i == "needle")', effect: deny}
`)
	small := []any{"a", "b"}
	if d := p.Decide(&Input{Tool: "t", Args: map[string]any{"items": small}, Principal: Principal{Roles: []string{"r"}}}); d.Effect != Allow {
		t.Fatalf("small input: %v %v %v, want allow", d.Effect, d.Rules, d.Err)
	}
	big := make([]any, 100000)
	for i := range big {
		big[i] = "hay"
	}
	d := p.Decide(&Input{Tool: "t", Args: map[string]any{"items": big}, Principal: Principal{Roles: []string{"r"}}})
	if d.Effect != Deny || d.Err == nil || !strings.Contains(d.Err.Error(), "cost") {
		t.Fatalf("huge input: %v %v %v, want deny for cost", d.Effect, d.Rules, d.Err)
	}
}

func TestDecideInvalidInput(t *testing.T) {
	p := mustCompile(t, testCompiler(t), "version: 1\nrules: [{id: a, method: '*', effect: allow}]\n")
	if d := p.Decide(nil); d.Effect != Deny || d.Rules[0] != RuleInput {
		t.Fatalf("nil input: %+v", d)
	}
	if d := p.Decide(&Input{Tool: "a", Prompt: "b"}); d.Effect != Deny || d.Rules[0] != RuleInput {
		t.Fatalf("two targets: %+v", d)
	}
	// An empty policy denies everything.
	empty := mustCompile(t, testCompiler(t), "version: 1\n")
	if d := empty.Decide(&Input{Method: "ping"}); d.Effect != Deny || d.Rules[0] != RuleDefaultDeny {
		t.Fatalf("empty policy: %+v", d)
	}
}

func TestVisible(t *testing.T) {
	p := mustCompile(t, testCompiler(t), `
version: 1
roles:
  agent: {tools: ["shop.*", "db.query"], resources: ["file:///docs/*"]}
rules:
  - {id: allow, tool: "*", effect: allow}
  - {id: never-delete, tool: "shop.delete_*", effect: deny, reason: no}
  - {id: big-refunds, tool: shop.refund, when: 'args.amount > 10', effect: deny, reason: no}
  - {id: trial, tool: shop.export, effect: deny, shadow: true}
  - {id: no-wipe, tool: shop.wipe, effect: deny}
`)
	agent := Principal{Roles: []string{"agent"}}
	cases := []struct {
		kind Kind
		name string
		want bool
	}{
		{KindTool, "shop.get_order", true},
		{KindTool, "db.query", true},
		{KindTool, "shop.refund", true},        // denied only sometimes
		{KindTool, "shop.export", true},        // shadow rules do not hide
		{KindTool, "shop.delete_order", false}, // unconditional glob deny
		{KindTool, "shop.wipe", false},         // unconditional exact deny
		{KindTool, "crm.lookup", false},        // no role grants it
		{KindResource, "file:///docs/a", true},
		{KindPrompt, "file:///docs/a", false},
		{KindMethod, "tools/list", false},
	}
	for _, tc := range cases {
		if got := p.Visible(agent, tc.kind, tc.name); got != tc.want {
			t.Errorf("Visible(%s %s) = %v, want %v", tc.kind, tc.name, got, tc.want)
		}
	}
	if p.Visible(Principal{}, KindTool, "shop.get_order") {
		t.Error("a principal without roles sees a tool")
	}
}

func TestDecideConcurrent(t *testing.T) {
	p := mustCompile(t, testCompiler(t), `
version: 1
roles: {r: {tools: ["*"]}}
rules:
  - {id: allow, tool: "*", effect: allow}
  - {id: limit, tool: "*", when: 'args.n > 5', effect: deny}
`)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				n := (g + i) % 10
				d := p.Decide(&Input{Tool: "t", Args: map[string]any{"n": json.Number(string(rune('0' + n)))}, Principal: Principal{Roles: []string{"r"}}})
				if want := n <= 5; (d.Effect == Allow) != want {
					errs <- d.Effect.String()
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("wrong concurrent decision: %s", e)
	}
}

func TestEffectText(t *testing.T) {
	for _, e := range []Effect{Allow, Deny, Confirm, Approve} {
		b, err := e.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Effect
		if err := back.UnmarshalText(b); err != nil || back != e {
			t.Fatalf("%v round-trips to %v, %v", e, back, err)
		}
	}
	if _, err := ParseEffect("permit"); err == nil {
		t.Error("unknown effect parsed")
	}
	var zero Effect
	if zero != Deny {
		t.Error("the zero Effect must be Deny")
	}
	if _, err := Effect(9).MarshalText(); err == nil {
		t.Error("invalid effect marshalled")
	}
}

func TestGlobs(t *testing.T) {
	cases := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "", true},
		{"*", "a.b.c", true},
		{"**", "a.b", true},
		{"shop.*", "shop.a", true},
		{"shop.*", "shop.a.b", true},
		{"shop.*", "shop.", true},
		{"shop.*", "shop", false},
		{"shop.*", "xshop.a", false},
		{"*.admin", "a.admin", true},
		{"*.admin", "a.admin.b", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "acb", false},
		{"ab*ba", "aba", false},
		{"db.query", "db.query", true},
		{"db.query", "db.Query", false},
	}
	for _, tc := range cases {
		g, err := compileGlob(tc.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := g.match(tc.name); got != tc.want {
			t.Errorf("%q matches %q = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
	overlaps := []struct {
		a, b string
		want bool
	}{
		{"shop.*", "*.get", true},
		{"shop.*", "db.*", false},
		{"a", "a", true},
		{"a", "b", false},
		{"*x", "y*", true},
		{"ab*", "*ba", true},
	}
	for _, tc := range overlaps {
		if got := globsOverlap(tc.a, tc.b); got != tc.want {
			t.Errorf("overlap(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestMeteringChoice(t *testing.T) {
	p := mustCompile(t, testCompiler(t), `
version: 1
rules:
  - {id: compare, tool: t, when: 'args.amount > 10 && tool.risk == "x"', effect: deny}
  - {id: loop, tool: t, when: 'args.items.exists(i, i == 1)', effect: deny}
  - {id: linear, tool: t, when: 'args.s.replace("a", "aa").contains("b") || sql(args.q).read_only', effect: deny}
  - {id: classifier-loop, tool: t, when: 'sql(args.q).tables_read.exists(x, x == "users")', effect: deny}
`)
	want := map[string]bool{"compare": false, "loop": true, "linear": false, "classifier-loop": true}
	for _, r := range p.rules {
		if r.metered != want[r.id] {
			t.Errorf("rule %s metered = %v, want %v", r.id, r.metered, want[r.id])
		}
	}
}

func TestConditionVariables(t *testing.T) {
	in := &Input{
		Method: "tools/call", Tool: "shop.refund",
		Principal: Principal{ID: "u1", Roles: []string{"agent", "lead"}, Tenant: "acme", Clearance: "internal", Claims: map[string]any{"mfa": true, "groups": []any{"a"}}},
		ToolInfo:  ToolInfo{Server: "shop", Risk: "write", Labels: []string{"payments"}, Annotations: map[string]any{"readOnlyHint": false}},
		Args:      map[string]any{"amount": json.Number("250.5"), "lines": []any{map[string]any{"sku": "x"}}},
		Task:      Task{ID: "t1", Scope: map[string]any{"order_id": "1"}, Labels: []string{"confidential"}, Counters: map[string]int64{"calls": 4}},
		Request:   Request{Time: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC), Transport: "http"},
	}
	conditions := []string{
		`principal.id == "u1" && principal.tenant == "acme" && principal.clearance == "internal"`,
		`"lead" in principal.roles && principal.roles.exists(r, r == "agent") && size(principal.roles) == 2`,
		`principal.claims.mfa && "a" in principal.claims.groups && "mfa" in principal.claims`,
		`"id" in principal && size(principal) == 5 && !("password" in principal)`,
		`tool.name == "shop.refund" && tool.server == "shop" && tool.risk == "write" && "payments" in tool.labels`,
		`tool.annotations.readOnlyHint == false`,
		`args.amount > 250 && args.amount < 251 && args.lines[0].sku == "x" && size(args.lines) == 1`,
		`task.id == "t1" && task.scope.order_id == "1" && "confidential" in task.labels && task.counters.calls == 4`,
		`request.method == "tools/call" && request.transport == "http" && request.time < timestamp("2027-01-01T00:00:00Z")`,
		`request.time.getHours("UTC") == 10`,
		`resource.uri == "" && prompt.name == ""`,
		`has(task.scope.order_id) && !has(task.scope.customer)`,
		`sets.contains(principal.roles, ["agent"])`,
		`principal.id.startsWith("u") && principal.id.upperAscii() == "U1"`,
		`[principal.id, tool.name].join(",") == "u1,shop.refund"`,
		`principal == principal && tool != principal`,
	}
	c := testCompiler(t)
	for _, cond := range conditions {
		quoted, _ := json.Marshal(cond)
		p := mustCompile(t, c, "version: 1\nroles: {agent: {tools: [\"*\"]}}\nrules:\n  - {id: cond, tool: \"*\", effect: allow, when: "+string(quoted)+"}\n")
		d := p.Decide(in)
		if d.Effect != Allow {
			t.Errorf("%s: %v %v %v, want allow", cond, d.Effect, d.Rules, d.Err)
		}
	}
}
