package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// realisticPolicy builds a 100-rule policy: 10 servers of 8 tools, an allow
// rule per server, conditional deny/approve/confirm rules on single tools,
// and a few rules every call meets (task scope, destructive tools, labels).
func realisticPolicy() string {
	var b strings.Builder
	b.WriteString("version: 1\nroles:\n  agent:\n    tools:\n")
	for s := 0; s < 10; s++ {
		fmt.Fprintf(&b, "      - \"srv%d.*\"\n", s)
	}
	b.WriteString("rules:\n")
	n := 0
	add := func(format string, args ...any) {
		fmt.Fprintf(&b, "  - "+format+"\n", args...)
		n++
	}
	add(`{id: stay-on-the-task, tool: "*", when: 'has(task.scope.order_id) && has(args.order_id) && args.order_id != task.scope.order_id', effect: deny, reason: other order}`)
	add(`{id: destructive-needs-a-yes, tool: "*", when: 'tool.risk == "destructive"', effect: confirm}`)
	add(`{id: no-egress-after-confidential, tool: "*", when: '"confidential" in task.labels && "egress" in tool.labels', effect: deny, reason: flow}`)
	add(`{id: budget, tool: "*", when: 'has(task.counters.calls) && task.counters.calls > 1000', effect: deny, reason: budget}`)
	for s := 0; s < 10; s++ {
		add(`{id: allow-srv%d, tool: "srv%d.*", effect: allow}`, s, s)
	}
	for s := 0; s < 10 && n < 100; s++ {
		for t := 0; t < 8 && n < 100; t++ {
			switch t % 4 {
			case 0:
				add(`{id: limit-%d-%d, tool: srv%d.tool%d, when: 'args.amount > 10000', effect: deny, reason: limit}`, s, t, s, t)
			case 1:
				add(`{id: approve-%d-%d, tool: srv%d.tool%d, when: 'args.amount > 100', effect: approve, approvers: ["role:lead"]}`, s, t, s, t)
			case 2:
				add(`{id: prefix-%d-%d, tool: srv%d.tool%d, when: '!args.path.startsWith("/srv/")', effect: deny, reason: path}`, s, t, s, t)
			case 3:
				add(`{id: tenant-%d-%d, tool: srv%d.tool%d, when: 'principal.tenant != "acme"', effect: deny, reason: tenant}`, s, t, s, t)
			}
		}
	}
	for ; n < 100; n++ {
		fmt.Fprintf(&b, "  - {id: method-%d, method: \"x/m%d\", effect: allow}\n", n, n)
	}
	return b.String()
}

func benchInput() *Input {
	return &Input{
		Method: "tools/call",
		Tool:   "srv3.tool1",
		Principal: Principal{
			ID: "u1", Roles: []string{"agent"}, Tenant: "acme",
			Claims: map[string]any{"mfa": true},
		},
		ToolInfo: ToolInfo{Server: "srv3", Risk: "write", Labels: []string{"payments"}},
		Args:     map[string]any{"order_id": "12345", "amount": json.Number("250")},
		Task: Task{
			ID: "t1", Scope: map[string]any{"order_id": "12345"},
			Labels: []string{"internal"}, Counters: map[string]int64{"calls": 12},
		},
		Request: Request{Time: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC), Transport: "http"},
	}
}

func benchPolicy(b *testing.B) *Policy {
	b.Helper()
	p, err := testCompiler(b).Compile([]byte(realisticPolicy()), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	if got := len(p.rules); got != 100 {
		b.Fatalf("policy has %d rules, want 100", got)
	}
	d := p.Decide(benchInput())
	if d.Effect != Approve || !slices.Equal(d.Rules, []string{"approve-3-1"}) {
		b.Fatalf("benchmark decision %v %v %v, want approve [approve-3-1]", d.Effect, d.Rules, d.Err)
	}
	return p
}

func BenchmarkDecide100Rules(b *testing.B) {
	p := benchPolicy(b)
	in := benchInput()
	b.ReportAllocs()
	for b.Loop() {
		p.Decide(in)
	}
}

// BenchmarkDecideLatency records each decision's duration and reports the
// median and 99th percentile.
func BenchmarkDecideLatency(b *testing.B) {
	p := benchPolicy(b)
	in := benchInput()
	durations := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		p.Decide(in)
		durations = append(durations, time.Since(start))
	}
	slices.Sort(durations)
	pct := func(q float64) float64 {
		return float64(durations[int(q*float64(len(durations)-1))].Nanoseconds())
	}
	b.ReportMetric(pct(0.50), "p50-ns")
	b.ReportMetric(pct(0.99), "p99-ns")
}

func BenchmarkVisible(b *testing.B) {
	p := benchPolicy(b)
	who := Principal{Roles: []string{"agent"}}
	for b.Loop() {
		p.Visible(who, KindTool, "srv7.tool5")
	}
}
