package argschema

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// Bounds on schemas read from upstream servers. A schema beyond them is
// refused rather than compiled: it could make compilation or validation slow.
const (
	maxSchemaBytes = 256 << 10
	maxSchemaDepth = 64
	maxSchemaNodes = 20000
	// maxReportedErrors bounds how many violations one error message lists.
	maxReportedErrors = 5
)

// schemaURL is the address the schema is registered under; nothing is ever
// fetched from it.
const schemaURL = "urn:warden:schema"

// Schema is a compiled JSON Schema, safe for concurrent use.
type Schema struct {
	compiled *jsonschema.Schema
}

// CompileUpstream compiles a tool's inputSchema as sent by an upstream
// server, which Warden does not trust: the schema is size- and
// depth-limited, decoded strictly, must describe an object, and may not
// reference anything outside itself (no URL, file or unknown meta-schema is
// ever loaded). An error means the tool cannot be validated; the caller
// decides what that means (normally: the tool is not callable).
func CompileUpstream(inputSchema json.RawMessage) (*Schema, error) {
	if len(inputSchema) == 0 {
		return nil, errors.New("upstream input schema is empty")
	}
	if len(inputSchema) > maxSchemaBytes {
		return nil, fmt.Errorf("upstream input schema is %d bytes, more than the limit of %d", len(inputSchema), maxSchemaBytes)
	}
	doc, err := DecodeStrict(inputSchema, maxSchemaDepth)
	if err != nil {
		return nil, fmt.Errorf("upstream input schema: %w", err)
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, errors.New("upstream input schema is not a JSON object")
	}
	if t, _ := obj["type"].(string); t != "object" {
		return nil, errors.New(`upstream input schema must have "type": "object"`)
	}
	return compile(doc, false)
}

// CompileOverlay compiles the policy's per-tool argument schema, a JSON
// Schema given as decoded YAML or JSON (maps, slices, strings, numbers,
// booleans, nil). Formats are asserted ("format": "email" rejects a
// non-address), as an operator writing an overlay means them as checks.
func CompileOverlay(schema any) (*Schema, error) {
	// Round-trip through the strict decoder so numbers become exact
	// json.Number values and non-JSON values (NaN, map keys that are not
	// strings) are errors here rather than surprises later.
	raw, err := json.Marshal(schema)
	if err != nil {
		return nil, fmt.Errorf("argument schema overlay is not JSON: %w", err)
	}
	if len(raw) > maxSchemaBytes {
		return nil, fmt.Errorf("argument schema overlay is %d bytes, more than the limit of %d", len(raw), maxSchemaBytes)
	}
	doc, err := DecodeStrict(raw, maxSchemaDepth)
	if err != nil {
		return nil, fmt.Errorf("argument schema overlay: %w", err)
	}
	switch doc.(type) {
	case map[string]any, bool:
	default:
		return nil, errors.New("argument schema overlay must be an object or a boolean")
	}
	return compile(doc, true)
}

func compile(doc any, assertFormat bool) (*Schema, error) {
	if n := countNodes(doc, 0); n > maxSchemaNodes {
		return nil, fmt.Errorf("schema has more than %d values", maxSchemaNodes)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(refuseLoader{})
	if assertFormat {
		c.AssertFormat()
	}
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("add schema: %w", err)
	}
	sch, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("compile schema: %w", err)
	}
	return &Schema{compiled: sch}, nil
}

// countNodes counts values in a decoded document, stopping early once the
// count passes the limit.
func countNodes(v any, n int) int {
	n++
	if n > maxSchemaNodes {
		return n
	}
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			if n = countNodes(e, n); n > maxSchemaNodes {
				return n
			}
		}
	case []any:
		for _, e := range v {
			if n = countNodes(e, n); n > maxSchemaNodes {
				return n
			}
		}
	}
	return n
}

// refuseLoader refuses every URL: a schema may only refer to itself.
type refuseLoader struct{}

func (refuseLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("schema references %s: external references are not loaded", quoteShort(url))
}

// ValidationError lists the arguments that violate a schema. Its message
// names each argument (as a JSON pointer) and the constraint, never the
// argument's value, so it is safe to return to the caller.
type ValidationError struct {
	Violations []Violation
}

// Violation is one failed constraint.
type Violation struct {
	// Path is a JSON pointer to the argument ("" for the whole object).
	Path string
	// Keyword is the schema keyword that failed ("maximum", "type", ...).
	Keyword string
	// Message describes the constraint without the argument's value.
	Message string
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid arguments: ")
	for i, v := range e.Violations {
		if i == maxReportedErrors {
			fmt.Fprintf(&b, "; and %d more", len(e.Violations)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		path := v.Path
		if path == "" {
			path = "/"
		}
		fmt.Fprintf(&b, "%s: %s", path, v.Message)
	}
	return b.String()
}

// Validate checks a value from DecodeStrict against the schema. The error, if
// any, is a *ValidationError whose message is safe for the caller.
func (s *Schema) Validate(v any) error {
	if s == nil || s.compiled == nil {
		return errors.New("no schema to validate against")
	}
	err := s.compiled.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		// Not a violation: report the kind of failure, not its text, which may
		// quote the value.
		return &ValidationError{Violations: []Violation{{Keyword: "", Message: "arguments could not be validated"}}}
	}
	out := &ValidationError{}
	collectViolations(ve, &out.Violations)
	if len(out.Violations) == 0 {
		out.Violations = append(out.Violations, Violation{Message: "does not match the schema"})
	}
	return out
}

func collectViolations(e *jsonschema.ValidationError, out *[]Violation) {
	if len(e.Causes) > 0 {
		for _, c := range e.Causes {
			collectViolations(c, out)
		}
		return
	}
	kw := ""
	if p := e.ErrorKind.KeywordPath(); len(p) > 0 {
		kw = p[len(p)-1]
	}
	*out = append(*out, Violation{
		Path:    pointer(e.InstanceLocation),
		Keyword: kw,
		Message: describe(e.ErrorKind, kw),
	})
}

func pointer(loc []string) string {
	var b strings.Builder
	for _, seg := range loc {
		b.WriteByte('/')
		seg = strings.ReplaceAll(strings.ReplaceAll(seg, "~", "~0"), "/", "~1")
		if len(seg) > 40 {
			seg = strings.Trim(quoteShort(seg), `"`)
		}
		b.WriteString(seg)
	}
	return b.String()
}

// describe explains a violation using only what the schema says; values
// from the instance appear only as types, lengths, counts or property names.
func describe(k jsonschema.ErrorKind, kw string) string {
	switch k := k.(type) {
	case *kind.Type:
		return fmt.Sprintf("must be %s, got %s", strings.Join(k.Want, " or "), k.Got)
	case *kind.Required:
		names := make([]string, len(k.Missing))
		for i, m := range k.Missing {
			names[i] = quoteShort(m)
		}
		return "missing required " + strings.Join(names, ", ")
	case *kind.AdditionalProperties:
		names := make([]string, 0, len(k.Properties))
		for i, p := range k.Properties {
			if i == maxReportedErrors {
				names = append(names, "…")
				break
			}
			names = append(names, quoteShort(p))
		}
		return "unexpected " + strings.Join(names, ", ")
	case *kind.Enum:
		return "is not one of the allowed values"
	case *kind.Const:
		return "is not the required value"
	case *kind.Pattern:
		return "does not match the required pattern"
	case *kind.Format:
		return fmt.Sprintf("is not a valid %s", k.Want)
	case *kind.Minimum:
		return "must be >= " + ratString(k.Want)
	case *kind.Maximum:
		return "must be <= " + ratString(k.Want)
	case *kind.ExclusiveMinimum:
		return "must be > " + ratString(k.Want)
	case *kind.ExclusiveMaximum:
		return "must be < " + ratString(k.Want)
	case *kind.MultipleOf:
		return "must be a multiple of " + ratString(k.Want)
	case *kind.MinLength:
		return fmt.Sprintf("must be at least %d characters", k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("must be at most %d characters", k.Want)
	case *kind.MinItems:
		return fmt.Sprintf("must have at least %d items", k.Want)
	case *kind.MaxItems:
		return fmt.Sprintf("must have at most %d items", k.Want)
	case *kind.MinProperties:
		return fmt.Sprintf("must have at least %d properties", k.Want)
	case *kind.MaxProperties:
		return fmt.Sprintf("must have at most %d properties", k.Want)
	case *kind.FalseSchema:
		return "is not allowed"
	}
	if kw != "" {
		return "violates " + kw
	}
	return "does not match the schema"
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	s := r.FloatString(12)
	s = strings.TrimRight(s, "0")
	return s
}
