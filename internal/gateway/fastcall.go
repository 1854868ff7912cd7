package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The fast path serves the commonest request, a sessionless (2026-07-28)
// tools/call, without the protocol library's server: the front parses the
// message once, builds the request the library would have built, runs the
// same pipeline, and answers application/json. Per call this saves a
// server session, a JSON-RPC connection and several decodes of the body,
// which were most of the gateway's own cost.
//
// It serves only calls it can answer exactly as the library would. Any
// other request, or any call it is unsure of (a progress token, a retry
// carrying requestState or inputResponses, headers that disagree with the
// body, a tool with x-mcp-header parameters, a _meta the library would
// refuse), goes to the library, which answers it or says what is wrong.

// fastCall is a tools/call the fast path will serve.
type fastCall struct {
	id  json.RawMessage
	req *mcp.CallToolRequest
}

// parseFastCall returns the call if the fast path can serve it.
func (g *Gateway) parseFastCall(r *http.Request, body []byte) (*fastCall, bool) {
	h := r.Header
	if r.Method != http.MethodPost || h.Get("Mcp-Protocol-Version") != firstStatelessRevision ||
		h.Get("Mcp-Method") != "tools/call" || len(h.Values("Last-Event-ID")) > 0 || !acceptsBoth(h.Values("Accept")) {
		return nil, false
	}
	if mt, _, err := mime.ParseMediaType(h.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, false
	}
	// Keys are matched exactly, as the library matches them; a message
	// with any key the library would read differently is not ours.
	var msg map[string]json.RawMessage
	if err := json.Unmarshal(body, &msg); err != nil || len(msg) != 4 ||
		string(msg["jsonrpc"]) != `"2.0"` || string(msg["method"]) != `"tools/call"` {
		return nil, false
	}
	id := msg["id"]
	if !plainID(id) {
		return nil, false
	}
	var params map[string]json.RawMessage
	if err := json.Unmarshal(msg["params"], &params); err != nil {
		return nil, false
	}
	p := &mcp.CallToolParamsRaw{}
	for k, v := range params {
		switch k {
		case "name":
			if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &p.Name) != nil {
				return nil, false
			}
		case "arguments":
			p.Arguments = v
		case "_meta":
			if json.Unmarshal(v, &p.Meta) != nil || p.Meta == nil {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	if p.Name == "" || h.Get("Mcp-Name") != p.Name || !g.fastMeta(p.Meta) {
		return nil, false
	}
	if rt, ok := g.catalog.Load().tools[p.Name]; ok && rt.headerParams {
		return nil, false
	}
	return &fastCall{id: id, req: &mcp.CallToolRequest{Params: p, Extra: &mcp.RequestExtra{Header: h}}}, true
}

// fastMeta reports whether a call's _meta is one the fast path serves: the
// revision's fields present and well formed, and no progress token (whose
// notifications ride the library's event stream).
func (g *Gateway) fastMeta(m mcp.Meta) bool {
	if v, _ := m[mcp.MetaKeyProtocolVersion].(string); v != firstStatelessRevision {
		return false
	}
	if _, ok := m["progressToken"]; ok {
		return false
	}
	caps, ok := m[mcp.MetaKeyClientCapabilities].(map[string]any)
	if !ok {
		return false
	}
	var c struct {
		mcp.ClientCapabilities
		Roots *struct {
			ListChanged bool `json:"listChanged,omitempty"`
		} `json:"roots,omitempty"`
	}
	if !remarshals(caps, &c) {
		return false
	}
	if info, present := m[mcp.MetaKeyClientInfo]; present {
		var impl mcp.Implementation
		if info == nil || !remarshals(info, &impl) {
			return false
		}
	}
	return true
}

// plainID reports whether id is a string or an integer: the ids the
// library reads the same way Warden echoes them.
func plainID(id json.RawMessage) bool {
	if len(id) > 0 && id[0] == '"' {
		return true
	}
	digits := bytes.TrimPrefix(id, []byte("-"))
	if len(digits) == 0 || len(digits) > 15 {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func remarshals(from, to any) bool {
	b, err := json.Marshal(from)
	return err == nil && json.Unmarshal(b, to) == nil
}

// acceptsBoth reports whether Accept names both JSON and event streams, as
// the revision requires of every POST.
func acceptsBoth(values []string) bool {
	var jsonOK, streamOK bool
	for _, value := range values {
		for raw := range strings.SplitSeq(value, ",") {
			base, _, _ := strings.Cut(raw, ";")
			switch strings.ToLower(strings.TrimSpace(base)) {
			case "application/json", "application/*":
				jsonOK = true
			case "text/event-stream", "text/*":
				streamOK = true
			case "*/*":
				jsonOK, streamOK = true, true
			}
		}
	}
	return jsonOK && streamOK
}

// serveFast runs the pipeline for a fast-path call and writes its answer.
func (g *Gateway) serveFast(w http.ResponseWriter, r *http.Request, fc *fastCall) {
	res, err := g.serve(r.Context(), "tools/call", fc.req, true, g.callRoutedTool)
	status, body := g.encodeCallAnswer(fc.id, res, err)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache, no-transform")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// callRoutedTool is the execute stage's next step on the fast path: the
// forwarder of the tool route found, as the library's server would call it.
func (g *Gateway) callRoutedTool(ctx context.Context, _ string, req mcp.Request) (mcp.Result, error) {
	return g.forwardTool(callFrom(ctx).tool)(ctx, req.(*mcp.CallToolRequest))
}

// encodeCallAnswer encodes a tools/call outcome as the library's server
// would under 2026-07-28: the result typed "complete" or "input_required",
// empty content as [], Warden named in _meta, and errors with the HTTP
// status the revision gives their codes.
func (g *Gateway) encodeCallAnswer(id json.RawMessage, res mcp.Result, err error) (int, []byte) {
	if err == nil {
		var typed *mcp.CallToolResult
		typed, err = g.typedResult(res)
		if err == nil {
			b, merr := json.Marshal(typed)
			if merr == nil {
				return http.StatusOK, rpcEnvelope(id, "result", b)
			}
			err = merr
		}
	}
	var werr *jsonrpc.Error
	if !errors.As(err, &werr) {
		werr = &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: err.Error()}
	}
	b, merr := json.Marshal(werr)
	if merr != nil {
		b, _ = json.Marshal(&jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "internal error"})
	}
	status := http.StatusOK
	switch werr.Code {
	case jsonrpc.CodeMethodNotFound:
		status = http.StatusNotFound
	case jsonrpc.CodeInvalidParams, mcp.CodeUnsupportedProtocolVersion, mcp.CodeMissingRequiredClientCapabilities:
		status = http.StatusBadRequest
	}
	return status, rpcEnvelope(id, "error", b)
}

// Prototypes of typed results: the result type is unexported in the
// library, and decoding is the only way to set it.
var completeResult, inputRequiredResult mcp.CallToolResult

func init() {
	for proto, raw := range map[*mcp.CallToolResult]string{
		&completeResult:      `{"resultType":"complete","content":[]}`,
		&inputRequiredResult: `{"resultType":"input_required","content":[]}`,
	} {
		if err := json.Unmarshal([]byte(raw), proto); err != nil {
			panic("gateway: typed result prototype: " + err.Error())
		}
	}
}

// typedResult is res as the library's server sends it.
func (g *Gateway) typedResult(res mcp.Result) (*mcp.CallToolResult, error) {
	r, ok := res.(*mcp.CallToolResult)
	if !ok || r == nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "internal error: no tool result"}
	}
	if r.InputRequests != nil && (len(r.Content) > 0 || r.StructuredContent != nil) {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "server bug: result has both content and inputRequests"}
	}
	out := r // serve typed it, on a copy of its own
	if out.Content == nil && r.InputRequests == nil {
		out.Content = []mcp.Content{}
	}
	if _, ok := out.Meta[mcp.MetaKeyServerInfo]; !ok {
		m := make(mcp.Meta, len(out.Meta)+1)
		for k, v := range out.Meta {
			m[k] = v
		}
		m[mcp.MetaKeyServerInfo] = g.impl
		out.Meta = m
	}
	return out, nil
}

// withResultType returns a copy of r typed "input_required" if it asks
// for input and "complete" otherwise, as the revision requires of every
// tool result. The library types only the results its own tool dispatch
// returns, not those Warden answers in the pipeline (denials, questions).
func withResultType(r *mcp.CallToolResult) *mcp.CallToolResult {
	out := completeResult
	if r.InputRequests != nil {
		out = inputRequiredResult
	}
	out.Meta, out.Content, out.StructuredContent, out.IsError = r.Meta, r.Content, r.StructuredContent, r.IsError
	out.InputRequests, out.RequestState = r.InputRequests, r.RequestState
	return &out
}

// rpcEnvelope wraps an encoded result or error in a JSON-RPC response.
func rpcEnvelope(id json.RawMessage, field string, payload []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(payload) + len(id) + 40)
	b.WriteString(`{"jsonrpc":"2.0","id":`)
	b.Write(id)
	b.WriteString(`,"` + field + `":`)
	b.Write(payload)
	b.WriteByte('}')
	return b.Bytes()
}
