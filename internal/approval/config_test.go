package approval_test

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wardenmcp/warden/internal/approval"
)

func TestConfigDecodes(t *testing.T) {
	src := `
hold: 45s
expiry: 2h
console_url: https://warden-admin.example.com
webhooks:
  - {url: "https://hooks.example.com/T0/B0", secret_env: WARDEN_HOOK}
rules:
  - id: small-refunds
    when: request.tool == "shop.refund_order" && double(request.args.amount) <= 5000.0
    effect: approve
`
	var c approval.Config
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.Hold != 45*time.Second || c.Expiry != 2*time.Hour || len(c.Webhooks) != 1 || c.Webhooks[0].SecretEnv != "WARDEN_HOOK" || len(c.Rules) != 1 {
		t.Fatalf("decoded %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := approval.CompileRules(c.Rules); err != nil {
		t.Fatal(err)
	}
	if d := (approval.Config{}).WithDefaults(); d.Hold != approval.DefaultHold || d.Expiry != approval.DefaultExpiry {
		t.Errorf("defaults = %+v", d)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, c := range map[string]approval.Config{
		"hold over expiry": {Hold: 2 * time.Hour, Expiry: time.Hour},
		"webhook scheme":   {Webhooks: []approval.WebhookConfig{{URL: "ftp://x", SecretEnv: "S"}}},
		"webhook secret":   {Webhooks: []approval.WebhookConfig{{URL: "https://x"}}},
		"rule effect":      {Rules: []approval.RuleConfig{{ID: "r", When: "true", Effect: "allow"}}},
		"rule id twice":    {Rules: []approval.RuleConfig{{ID: "r", When: "true", Effect: "deny"}, {ID: "r", When: "true", Effect: "deny"}}},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: valid", name)
		}
	}
}
