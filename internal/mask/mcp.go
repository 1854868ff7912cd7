package mask

import "encoding/json"

// MaskCallToolResult masks the raw JSON of an MCP result: CallToolResult
// (content[].text, content[].resource.text, structuredContent),
// ReadResourceResult (contents[].text) or GetPromptResult
// (messages[].content). It works on the JSON shape, so every string in the
// result is examined, _meta and unknown fields included; only base64
// "data" and "blob" fields of content items and resources (images, audio,
// binary resources) are skipped. Text content that holds JSON is masked
// inside and re-encoded. Path rules match both from the result's root and
// from structuredContent ("$.customers[*].email" applies to
// "$.structuredContent.customers[*].email").
//
// A result that is not valid JSON is masked as text and returned as a
// CallToolResult error holding that text; the report says NotJSON.
func MaskCallToolResult(raw json.RawMessage, m *Masker) (json.RawMessage, Report, error) {
	var st state
	w := m.newWalker(&st, raw, nil, 0)
	defer w.release(&st)
	w.mcp = true
	if err := w.run(); err != nil {
		text, rep, lerr := m.textFallback(raw)
		out := append([]byte(`{"content":[{"type":"text","text":`), nil...)
		out = appendJSONString(out, text)
		out = append(out, `}],"isError":true}`...)
		return out, rep, lerr
	}
	return w.result(), st.finish(), st.err
}
