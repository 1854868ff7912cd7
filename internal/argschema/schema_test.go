package argschema

import (
	"errors"
	"strings"
	"testing"
)

const refundSchema = `{
  "type": "object",
  "properties": {
    "order_id": {"type": "string", "pattern": "^[0-9]+$"},
    "amount": {"type": "number", "maximum": 10000, "exclusiveMinimum": 0},
    "currency": {"enum": ["EUR", "USD"]},
    "email": {"type": "string", "format": "email"},
    "lines": {"type": "array", "items": {"type": "object"}, "maxItems": 3}
  },
  "required": ["order_id", "amount"],
  "additionalProperties": false
}`

func mustUpstream(t *testing.T, s string) *Schema {
	t.Helper()
	sch, err := CompileUpstream([]byte(s))
	if err != nil {
		t.Fatalf("CompileUpstream: %v", err)
	}
	return sch
}

func validateJSON(t *testing.T, s *Schema, args string) error {
	t.Helper()
	v, err := DecodeStrict([]byte(args), 0)
	if err != nil {
		t.Fatalf("DecodeStrict(%s): %v", args, err)
	}
	return s.Validate(v)
}

func TestValidateArguments(t *testing.T) {
	sch := mustUpstream(t, refundSchema)
	cases := []struct {
		name    string
		args    string
		wantErr string // "" means valid
	}{
		{name: "at the limit", args: `{"order_id":"12","amount":10000}`},
		{name: "at the limit written as a decimal", args: `{"order_id":"12","amount":10000.0}`},
		{name: "just over the limit", args: `{"order_id":"12","amount":10000.0000000001}`, wantErr: "/amount: must be <= 10000"},
		{name: "over the limit beyond float precision", args: `{"order_id":"12","amount":10000.00000000000000000001}`, wantErr: "must be <= 10000"},
		{name: "string that looks like a number", args: `{"order_id":"12","amount":"10000"}`, wantErr: "/amount: must be number, got string"},
		{name: "negative zero is not above zero", args: `{"order_id":"12","amount":-0}`, wantErr: "/amount: must be > 0"},
		{name: "NaN-like string", args: `{"order_id":"12","amount":"NaN"}`, wantErr: "must be number"},
		{name: "array instead of object", args: `[{"order_id":"12","amount":1}]`, wantErr: "/: must be object, got array"},
		{name: "string instead of object", args: `"{\"order_id\":\"12\"}"`, wantErr: "must be object, got string"},
		{name: "object instead of array", args: `{"order_id":"12","amount":1,"lines":{"0":{}}}`, wantErr: "/lines: must be array"},
		{name: "missing required", args: `{"amount":1}`, wantErr: `missing required "order_id"`},
		{name: "unexpected property", args: `{"order_id":"1","amount":1,"__proto__":{}}`, wantErr: `unexpected "__proto__"`},
		{name: "enum", args: `{"order_id":"1","amount":1,"currency":"GBP"}`, wantErr: "/currency: is not one of the allowed values"},
		{name: "pattern", args: `{"order_id":"1; DROP TABLE x","amount":1}`, wantErr: "/order_id: does not match the required pattern"},
		{name: "too many items", args: `{"order_id":"1","amount":1,"lines":[{},{},{},{}]}`, wantErr: "/lines: must have at most 3 items"},
		{name: "format not asserted for upstream schemas", args: `{"order_id":"1","amount":1,"email":"not an address"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := validateJSON(t, sch, tc.args)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("valid arguments rejected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("arguments %s accepted, want error %q", tc.args, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q does not contain %q", err, tc.wantErr)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error is %T, want *ValidationError", err)
			}
		})
	}
}

func TestValidationErrorDoesNotEchoValues(t *testing.T) {
	sch := mustUpstream(t, refundSchema)
	secret := "sk_live_" + strings.Repeat("A", 5000)
	for _, args := range []string{
		`{"order_id":"` + secret + `","amount":1}`,
		`{"order_id":"1","amount":1,"currency":"` + secret + `"}`,
		`{"order_id":"1","amount":"` + secret + `"}`,
	} {
		err := validateJSON(t, sch, args)
		if err == nil {
			t.Fatalf("invalid arguments accepted")
		}
		if strings.Contains(err.Error(), "sk_live_") {
			t.Fatalf("error echoes the value: %.200s", err)
		}
	}
}

func TestCompileOverlay(t *testing.T) {
	// As the policy's YAML decoder produces it: ints, floats, nested maps.
	overlay := map[string]any{
		"type": "object",
		"properties": map[string]any{
			"amount": map[string]any{"maximum": 100, "minimum": 0.5},
			"email":  map[string]any{"format": "email"},
		},
	}
	sch, err := CompileOverlay(overlay)
	if err != nil {
		t.Fatalf("CompileOverlay: %v", err)
	}
	if err := validateJSON(t, sch, `{"amount":100,"email":"a@example.com"}`); err != nil {
		t.Fatalf("valid arguments rejected: %v", err)
	}
	if err := validateJSON(t, sch, `{"amount":0.4}`); err == nil || !strings.Contains(err.Error(), "must be >= 0.5") {
		t.Fatalf("minimum 0.5: got %v", err)
	}
	if err := validateJSON(t, sch, `{"email":"nope"}`); err == nil || !strings.Contains(err.Error(), "is not a valid email") {
		t.Fatalf("overlay formats must be asserted: got %v", err)
	}

	bad := []struct {
		name   string
		schema any
	}{
		{name: "not a schema", schema: "string"},
		{name: "invalid pattern", schema: map[string]any{"pattern": "("}},
		{name: "remote reference", schema: map[string]any{"$ref": "https://example.com/s.json"}},
		{name: "wrong keyword type", schema: map[string]any{"maximum": "ten"}},
		{name: "map with non-string keys", schema: map[any]any{1: "x"}},
	}
	for _, tc := range bad {
		if _, err := CompileOverlay(tc.schema); err == nil {
			t.Errorf("%s: CompileOverlay accepted %v", tc.name, tc.schema)
		}
	}
}

func TestCompileUpstreamHostile(t *testing.T) {
	deep := strings.Repeat(`{"type":"object","properties":{"a":`, 70) + `{}` + strings.Repeat(`}}`, 70)
	cases := []struct {
		name   string
		schema string
	}{
		{name: "empty", schema: ``},
		{name: "not an object", schema: `[]`},
		{name: "not type object", schema: `{"type":"string"}`},
		{name: "boolean schema", schema: `true`},
		{name: "duplicate keys", schema: `{"type":"object","type":"string"}`},
		{name: "remote ref", schema: `{"type":"object","$ref":"https://example.com/schema.json"}`},
		{name: "file ref", schema: `{"type":"object","$ref":"file:///etc/passwd"}`},
		{name: "unknown draft", schema: `{"$schema":"https://example.com/my-draft","type":"object"}`},
		{name: "dangling local ref", schema: `{"type":"object","$ref":"#/$defs/missing"}`},
		{name: "invalid regex", schema: `{"type":"object","properties":{"a":{"pattern":"(?<=x)"}}}`},
		{name: "deeply nested", schema: deep},
		{name: "too large", schema: `{"type":"object","description":"` + strings.Repeat("x", 300<<10) + `"}`},
		{name: "too many values", schema: `{"type":"object","enum":[` + strings.Repeat(`1,`, 30000) + `1]}`},
		{name: "huge number", schema: `{"type":"object","maxProperties":1e999999999}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := CompileUpstream([]byte(tc.schema)); err == nil {
				t.Fatalf("hostile schema accepted")
			}
		})
	}
}

func TestCompileUpstreamRecursiveRef(t *testing.T) {
	// Recursion through instance descent is legitimate (trees) and must
	// terminate; a reference loop without descent must not hang.
	tree := `{"type":"object","$defs":{"node":{"type":"object","properties":{"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}}}},"properties":{"root":{"$ref":"#/$defs/node"}}}`
	sch := mustUpstream(t, tree)
	if err := validateJSON(t, sch, `{"root":{"kids":[{"kids":[{"kids":[]}]}]}}`); err != nil {
		t.Fatalf("valid tree rejected: %v", err)
	}
	if err := validateJSON(t, sch, `{"root":{"kids":[{"kids":"x"}]}}`); err == nil {
		t.Fatal("invalid tree accepted")
	}

	loop := `{"type":"object","$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},"properties":{"x":{"$ref":"#/$defs/a"}}}`
	if sch, err := CompileUpstream([]byte(loop)); err == nil {
		if err := validateJSON(t, sch, `{"x":1}`); err == nil {
			t.Fatal("reference loop validated an argument")
		}
	}
}

func TestValidateNilSchema(t *testing.T) {
	var s *Schema
	if err := s.Validate(map[string]any{}); err == nil {
		t.Fatal("nil schema validated")
	}
}
