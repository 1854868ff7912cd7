package shop

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenmcp/warden/internal/config"
	"github.com/wardenmcp/warden/internal/policy"
)

// TestPolicyTables runs policy_test.yaml against policy.yaml, as
// `warden policy test` does.
func TestPolicyTables(t *testing.T) {
	p, err := policy.Load("policy.yaml")
	if err != nil {
		t.Fatalf("policy.yaml: %v", err)
	}
	files, err := policy.TestFiles([]string{"policy.yaml"})
	if err != nil || len(files) != 1 {
		t.Fatalf("TestFiles = %v, %v; want policy_test.yaml", files, err)
	}
	var out bytes.Buffer
	failed, err := policy.RunTests(&out, p, files)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	if failed != 0 || !strings.HasPrefix(out.String(), "ok: ") {
		t.Fatalf("%d cases failed:\n%s", failed, out.String())
	}
}

// TestWardenConfig loads warden.yaml as `warden serve` would and checks
// that its catalog gives every tool the shop offers the intended risk.
func TestWardenConfig(t *testing.T) {
	cfg, err := config.Load("warden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := filepath.Abs("policy.yaml"); cfg.Policy != want {
		if got, _ := filepath.Abs(cfg.Policy); got != want {
			t.Errorf("policy = %s, want %s", cfg.Policy, want)
		}
	}
	up := cfg.Upstreams["shop"]
	if up == nil || up.URL != "http://127.0.0.1:9000/mcp" || !up.Allows("get_order") {
		t.Fatalf("upstream shop = %+v", up)
	}
	wantRisk := map[string]string{
		"get_order": "read", "list_orders": "read", "get_customer": "read",
		"refund_order": "write", "delete_order": "destructive", "send_email": "egress",
	}
	for tool, risk := range wantRisk {
		if got := cfg.Catalog["shop."+tool].Risk; got != risk {
			t.Errorf("catalog shop.%s risk = %q, want %q", tool, got, risk)
		}
	}
	res, err := connect(t).ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range res.Tools {
		if _, ok := wantRisk[tool.Name]; !ok {
			t.Errorf("the shop offers %s, which the catalog does not describe", tool.Name)
		}
	}
	if len(res.Tools) != len(wantRisk) || len(cfg.Catalog) != len(wantRisk) {
		t.Errorf("shop offers %d tools, catalog has %d entries, want %d", len(res.Tools), len(cfg.Catalog), len(wantRisk))
	}
}
