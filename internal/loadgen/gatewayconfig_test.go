package loadgen

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardenmcp/warden/internal/config"
	"github.com/wardenmcp/warden/internal/policy"
)

func benchInput(t *testing.T, args map[string]any) *policy.Input {
	t.Helper()
	// The gateway decides on arguments decoded with numbers kept exact.
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var decoded map[string]any
	if err := dec.Decode(&decoded); err != nil {
		t.Fatal(err)
	}
	return &policy.Input{
		Method:    "tools/call",
		Tool:      "bench.echo",
		Principal: policy.Principal{ID: "bench-client", Roles: []string{BenchRole}, Tenant: "acme", Clearance: "internal"},
		ToolInfo:  policy.ToolInfo{Server: "bench", Risk: "read", Labels: []string{"bench"}},
		Args:      decoded,
		Request:   policy.Request{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Transport: "http"},
	}
}

func TestBenchPolicyAllowsTheBenchCallAfterEveryRule(t *testing.T) {
	src := BenchPolicy("bench.echo")
	if n := strings.Count(src, "\n  - {id: "); n != PolicyRules {
		t.Fatalf("policy has %d rules, want %d", n, PolicyRules)
	}
	if n := strings.Count(src, `tool: "bench.echo"`); n != benchRuleCount {
		t.Errorf("policy has %d rules on the bench tool, want %d", n, benchRuleCount)
	}
	c, err := policy.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Compile([]byte(src), "bench.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := p.Decide(benchInput(t, BenchArgs(256)))
	if d.Effect != policy.Allow || !slices.Equal(d.Rules, []string{"bench-allow"}) || d.Err != nil {
		t.Fatalf("decision %v %v %v, want allow by bench-allow", d.Effect, d.Rules, d.Err)
	}
	// The argument rules are live: arguments that break them are stopped.
	for rule, change := range map[string]func(map[string]any){
		"bench-amount-limit":   func(a map[string]any) { a["amount"] = 20000 },
		"bench-path-traversal": func(a map[string]any) { a["path"] = "/srv/../etc/passwd" },
		"bench-order-id":       func(a map[string]any) { a["order_id"] = "12;drop" },
	} {
		args := BenchArgs(8)
		change(args)
		d := p.Decide(benchInput(t, args))
		if d.Effect != policy.Deny || !slices.Contains(d.Rules, rule) {
			t.Errorf("%s: decision %v %v, want deny by it", rule, d.Effect, d.Rules)
		}
	}
}

func TestWriteGatewayConfigLoads(t *testing.T) {
	dir := t.TempDir()
	f, err := WriteGatewayConfig(dir, "http://127.0.0.1:9/mcp", "echo")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(f.Config)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Policy != f.Policy || cfg.Store != f.Store || cfg.Audit.Disabled {
		t.Errorf("policy %q store %q audit off %v; want %q %q and audit on", cfg.Policy, cfg.Store, cfg.Audit.Disabled, f.Policy, f.Store)
	}
	if keys := cfg.Identity.APIKeys; len(keys) != 1 || keys[0].Principal.ID != "bench-client" || cfg.Identity.Anonymous != nil {
		t.Errorf("identity %+v: want one API key for bench-client and no anonymous access", cfg.Identity)
	}
	if strings.Contains(mustRead(t, f.Config), f.APIKey) {
		t.Error("the API key itself is in the configuration")
	}
	if cfg.Catalog[UpstreamName+".echo"].Risk != "read" {
		t.Errorf("catalog %+v: want bench.echo read", cfg.Catalog)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
