package policy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wardenmcp/warden/internal/mask"
	"github.com/wardenmcp/warden/internal/mask/detect"
)

const maskingPolicy = `
version: 1
roles: {support-agent: {tools: ["shop.*"]}}
rules:
  - {id: allow-shop, tool: "shop.*", effect: allow}
masking:
  default: redact
  rules:
    - id: support-sees-partial-cards
      classes: [CREDIT_CARD]
      when: "'support-agent' in principal.roles"
      action: partial
    - id: pii-cleared-sees-pii
      classes: [EMAIL_ADDRESS, PHONE_NUMBER]
      when: principal.clearance == "pii"
      action: pass
    - id: auditors-see-everything
      classes: ["*"]
      when: principal.clearance == "audit"
      action: pass
    - id: secrets-never
      classes: ["*secret*"]
      action: redact
    - id: broken-claim
      classes: [IBAN_CODE]
      when: principal.claims.iban_ok == true
      action: pass
  paths:
    - {path: "$.customers[*].name", class: CUSTOMER_NAME}
  max_per_class: {CREDIT_CARD: 50}
`

func TestMaskPlanByPrincipal(t *testing.T) {
	p, err := Compile([]byte(maskingPolicy), "masking.yaml")
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{detect.AWSAccessKey, detect.AWSSecretKey, detect.GitHubToken, detect.SlackToken,
		detect.StripeKey, detect.JWT, detect.PrivateKey, detect.GenericSecret}
	withSecrets := func(m map[string]mask.Action) map[string]mask.Action {
		for _, s := range secrets {
			m[s] = mask.Redact
		}
		return m
	}
	cases := []struct {
		name      string
		principal Principal
		want      map[string]mask.Action
		wantErr   string
	}{
		{
			name:      "no roles, no clearance: only the unconditional rule applies",
			principal: Principal{ID: "bot", Claims: map[string]any{"iban_ok": false}},
			want:      withSecrets(map[string]mask.Action{}),
		},
		{
			name:      "support agent sees partial cards",
			principal: Principal{ID: "sam", Roles: []string{"support-agent"}, Claims: map[string]any{"iban_ok": false}},
			want:      withSecrets(map[string]mask.Action{detect.CreditCard: mask.Partial}),
		},
		{
			name:      "pii clearance passes emails and phones",
			principal: Principal{ID: "pat", Roles: []string{"support-agent"}, Clearance: "pii", Claims: map[string]any{"iban_ok": false}},
			want: withSecrets(map[string]mask.Action{detect.CreditCard: mask.Partial,
				detect.Email: mask.Pass, detect.Phone: mask.Pass}),
		},
		{
			name:      "a pass-everything rule cannot override the secrets rule",
			principal: Principal{ID: "aud", Clearance: "audit", Claims: map[string]any{"iban_ok": true}},
			want: func() map[string]mask.Action {
				m := map[string]mask.Action{}
				for _, c := range detect.BuiltinClasses {
					m[c] = mask.Pass
				}
				m["CUSTOMER_NAME"] = mask.Pass
				return withSecrets(m)
			}(),
		},
		{
			name:      "a condition that fails to evaluate redacts its classes",
			principal: Principal{ID: "nobody"}, // no claims.iban_ok: evaluation error
			want:      withSecrets(map[string]mask.Action{detect.IBAN: mask.Redact}),
			wantErr:   "masking rule broken-claim",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := p.MaskPlan(&Input{Method: "tools/call", Tool: "shop.get", Principal: tc.principal})
			if tc.wantErr == "" && err != nil {
				t.Fatalf("MaskPlan: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("MaskPlan error %v, want %q", err, tc.wantErr)
			}
			if plan.Default != mask.Redact {
				t.Errorf("default %q, want redact", plan.Default)
			}
			if diff := cmp.Diff(tc.want, plan.Actions, cmp.Transformer("nilEmpty", func(m map[string]mask.Action) map[string]mask.Action {
				if m == nil {
					return map[string]mask.Action{}
				}
				return m
			})); diff != "" {
				t.Errorf("plan actions (-want +got):\n%s", diff)
			}
		})
	}

	s, ok := p.Masking()
	if !ok {
		t.Fatal("Masking() reports no masking section")
	}
	if diff := cmp.Diff([]mask.PathRule{{Path: "$.customers[*].name", Class: "CUSTOMER_NAME"}}, s.Paths); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
	if s.MaxPerClass[detect.CreditCard] != 50 || len(s.MaxPerClass) != 1 {
		t.Errorf("max_per_class = %v", s.MaxPerClass)
	}
	if s.HashKey != nil {
		t.Errorf("hash key set although nothing hashes")
	}
}

func TestNoMaskingSectionPassesEverything(t *testing.T) {
	p, err := Compile([]byte("version: 1\nrules: []\n"), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Masking(); ok {
		t.Error("Masking() reports a section that is not there")
	}
	plan, err := p.MaskPlan(&Input{})
	if err != nil || plan.ActionFor(detect.Email) != mask.Pass {
		t.Errorf("plan %+v, %v; want everything passed", plan, err)
	}
}

func TestMaskingVersionChangesWithSection(t *testing.T) {
	a, err := Compile([]byte("version: 1\nmasking: {default: redact}\n"), "a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Compile([]byte("version: 1\nmasking: {default: partial}\n"), "b.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if a.Version() == b.Version() {
		t.Error("policies that mask differently have the same version")
	}
}

func TestMaskingHashKeyFromEnvironment(t *testing.T) {
	src := "version: 1\nmasking:\n  default: hash\n  hash_key_env: WARDEN_TEST_MASK_KEY\n"
	t.Setenv("WARDEN_TEST_MASK_KEY", "short")
	_, err := Compile([]byte(src), "h.yaml")
	if err == nil || !strings.Contains(err.Error(), "h.yaml:4: masking.hash_key_env: environment variable WARDEN_TEST_MASK_KEY") {
		t.Fatalf("short key: error %v", err)
	}
	t.Setenv("WARDEN_TEST_MASK_KEY", "0123456789abcdef0123")
	p, err := Compile([]byte(src), "h.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := p.Masking()
	if string(s.HashKey) != "0123456789abcdef0123" {
		t.Errorf("hash key %q", s.HashKey)
	}
	if strings.Contains(string(mustJSON(t, p.doc)), "0123456789abcdef") {
		t.Error("the hash key is part of the canonical form")
	}
}

func TestMaskingErrorsHaveLines(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"unknown action", "version: 1\nmasking:\n  default: blur\n", "p.yaml:3: masking.default: mask: unknown action \"blur\""},
		{"unknown field", "version: 1\nmasking:\n  defualt: redact\n", "p.yaml:3: unknown field masking.defualt"},
		{"class typo", "version: 1\nmasking:\n  rules:\n    - id: r\n      classes: [CREDITCARD]\n      action: pass\n",
			"p.yaml:5: rule r: classes: \"CREDITCARD\" matches no class"},
		{"bad condition", "version: 1\nmasking:\n  rules:\n    - id: r\n      classes: [pii]\n      when: principal.clearence == 'x'\n      action: pass\n",
			"p.yaml:6: rule r: when: principal has no field \"clearence\""},
		{"non-boolean condition", "version: 1\nmasking:\n  rules:\n    - id: r\n      classes: [pii]\n      when: size(principal.roles)\n      action: pass\n",
			"p.yaml:6: rule r: when: must be a boolean condition"},
		{"hash without key", "version: 1\nmasking:\n  rules:\n    - {id: r, classes: [EMAIL_ADDRESS], action: hash}\n",
			"p.yaml:2: masking hashes values but sets no hash_key_env"},
		{"bad path", "version: 1\nmasking:\n  paths:\n    - {path: customers.email, class: EMAIL_ADDRESS}\n",
			"p.yaml:4: mask: path rule \"customers.email\": must start with $"},
		{"bad limit", "version: 1\nmasking:\n  max_per_class: {CREDIT_CARD: -1}\n",
			"p.yaml:3: masking.max_per_class.CREDIT_CARD must be a positive integer"},
		{"unknown limit class", "version: 1\nmasking:\n  max_per_class: {CARDS: 3}\n",
			"p.yaml:3: masking.max_per_class: unknown class \"CARDS\""},
		{"missing action", "version: 1\nmasking:\n  rules:\n    - {id: r, classes: [pii]}\n", "p.yaml:4: rule r: missing action"},
		{"duplicate id", "version: 1\nmasking:\n  rules:\n    - {id: r, classes: [pii], action: pass}\n    - {id: r, classes: [pii], action: redact}\n",
			"p.yaml:5: rule r: duplicate masking rule id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile([]byte(tc.src), "p.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestMaskingSectionOnceAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", "version: 1\nmasking: {default: redact}\n")
	writeFile(t, dir, "b.yaml", "version: 1\nmasking: {default: pass}\n")
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), "masking already set in") {
		t.Fatalf("error %v, want masking already set", err)
	}
}

func BenchmarkMaskPlan(b *testing.B) {
	p, err := Compile([]byte(maskingPolicy), "masking.yaml")
	if err != nil {
		b.Fatal(err)
	}
	in := &Input{Method: "tools/call", Tool: "shop.get",
		Principal: Principal{ID: "pat", Roles: []string{"support-agent"}, Clearance: "pii", Claims: map[string]any{"iban_ok": false}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.MaskPlan(in); err != nil {
			b.Fatal(err)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
