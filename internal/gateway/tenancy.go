package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Tenancy on responses: where the operator's catalog names the field that
// holds an item's tenant, items of another tenant than the caller's are
// removed from the tool's result before anything else sees it. An item is
// any JSON object in the result that carries the field; a caller without a
// tenant sees no such items (fail closed).

// filterTenants removes other tenants' items from a tool result, in its
// structured content and in text content that is JSON, and records how many
// it removed.
func (g *Gateway) filterTenants(call *Call, res *mcp.CallToolResult) {
	entry, ok := g.cfg.Catalog[call.Name]
	if !ok || entry.TenantField == "" {
		return
	}
	removed := 0
	if res.StructuredContent != nil {
		if v, ok := asJSONValue(res.StructuredContent); ok {
			res.StructuredContent = dropTenants(v, entry.TenantField, call.Principal.Tenant, &removed)
		}
	}
	for _, c := range res.Content {
		t, ok := c.(*mcp.TextContent)
		if !ok {
			continue
		}
		v, ok := decodeExact([]byte(t.Text))
		if !ok {
			continue
		}
		n := removed
		v = dropTenants(v, entry.TenantField, call.Principal.Tenant, &removed)
		if removed != n {
			if b, err := encodeExact(v); err == nil {
				t.Text = string(b)
			}
		}
	}
	if removed > 0 {
		call.Masked = append(call.Masked, fmt.Sprintf("tenancy:%s:removed:%d", entry.TenantField, removed))
	}
}

func asJSONValue(x any) (any, bool) {
	b, err := json.Marshal(x)
	if err != nil {
		return nil, false
	}
	return decodeExact(b)
}

// decodeExact decodes one JSON value keeping numbers as written, so that
// what the filter re-encodes keeps every digit (an id above 2^53 too).
func decodeExact(b []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false // more than one value
	}
	return v, true
}

// encodeExact encodes v without escaping <, > and &, which a result's
// text keeps as the upstream wrote it.
func encodeExact(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// dropTenants returns v without the objects whose field is not tenant.
// An object that is itself another tenant's item becomes null where it is
// not inside an array.
func dropTenants(v any, field, tenant string, removed *int) any {
	switch t := v.(type) {
	case map[string]any:
		if other(t, field, tenant) {
			*removed++
			return nil
		}
		for k, e := range t {
			t[k] = dropTenants(e, field, tenant, removed)
		}
		return t
	case []any:
		kept := t[:0]
		for _, e := range t {
			if m, ok := e.(map[string]any); ok && other(m, field, tenant) {
				*removed++
				continue
			}
			kept = append(kept, dropTenants(e, field, tenant, removed))
		}
		return kept
	}
	return v
}

// other reports whether an object belongs to another tenant than tenant.
func other(m map[string]any, field, tenant string) bool {
	v, ok := m[field]
	if !ok {
		return false
	}
	s, isString := v.(string)
	return !isString || tenant == "" || s != tenant
}
