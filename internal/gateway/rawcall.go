package gateway

//lint:file-ignore SA1019 Warden relays upstream log messages to clients of the revisions that still have them.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// A tool call to an HTTP upstream that speaks 2026-07-28 is one
// self-contained POST: Warden sends it itself rather than through the
// protocol library's client, whose per-message machinery (a JSON-RPC
// connection, a goroutine and several decodes per call) cost more than
// the rest of the relay. The library still opens and probes the session
// (server/discover), and serves every other request and revision.

// rawCallIDs numbers the calls Warden posts itself. The ids are strings
// with a prefix of their own, so that they can never be mistaken for the
// library's integer ids.
var rawCallIDs atomic.Uint64

// rawToolCall reports whether a tool call on cs can be posted directly:
// an HTTP upstream that negotiated 2026-07-28 without a session, a tool
// whose arguments bind no request headers, and no progress token (the
// library's client relays progress as it comes).
func rawToolCall(rt *toolRoute, cs *mcp.ClientSession, meta mcp.Meta) bool {
	if rt.up.single() || rt.up.http == nil || rt.headerParams || cs.ID() != "" {
		return false
	}
	init := cs.InitializeResult()
	if init == nil || init.ProtocolVersion != firstStatelessRevision {
		return false
	}
	_, progress := meta["progressToken"]
	return !progress
}

// upstreamClientCapabilities are the capabilities Warden declares to
// upstreams for a call whose client declared none of its own (a client
// with a session declared them once, to Warden): the same the library's
// client declares for Warden's handlers.
var upstreamClientCapabilities = map[string]any{
	"roots":       map[string]any{"listChanged": true},
	"sampling":    map[string]any{},
	"elicitation": map[string]any{"form": map[string]any{}},
}

// rawParams are the params of a posted tools/call.
type rawParams struct {
	Meta           mcp.Meta             `json:"_meta,omitempty"`
	Name           string               `json:"name"`
	Arguments      json.RawMessage      `json:"arguments,omitempty"`
	InputResponses mcp.InputResponseMap `json:"inputResponses,omitempty"`
	RequestState   string               `json:"requestState,omitempty"`
}

// postToolCall sends one tools/call to the upstream and reads its answer,
// as JSON or as an event stream. Protocol errors come back as
// *jsonrpc.Error, as the library's client returns them.
func (g *Gateway) postToolCall(ctx context.Context, up *upstream, p rawParams) (*mcp.CallToolResult, error) {
	client, err := up.rawClient()
	if err != nil {
		return nil, err
	}
	meta := make(mcp.Meta, len(p.Meta)+2)
	for k, v := range p.Meta {
		meta[k] = v
	}
	meta[mcp.MetaKeyProtocolVersion] = firstStatelessRevision
	meta[mcp.MetaKeyClientInfo] = g.clientImpl
	if _, ok := meta[mcp.MetaKeyClientCapabilities]; !ok {
		meta[mcp.MetaKeyClientCapabilities] = upstreamClientCapabilities
	}
	p.Meta = meta
	params, err := json.Marshal(&p)
	if err != nil {
		return nil, fmt.Errorf("encoding the call: %w", err)
	}
	id := `"wr-` + strconv.FormatUint(rawCallIDs.Add(1), 36) + `"`
	var body bytes.Buffer
	body.Grow(len(params) + len(id) + 64)
	body.WriteString(`{"jsonrpc":"2.0","id":`)
	body.WriteString(id)
	body.WriteString(`,"method":"tools/call","params":`)
	body.Write(params)
	body.WriteByte('}')

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, up.cfg.URL, &body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", firstStatelessRevision)
	req.Header.Set("Mcp-Method", "tools/call")
	req.Header.Set("Mcp-Name", p.Name)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	maxBytes := g.cfg.Limits.MaxMessageBytes
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var raw []byte
	switch {
	case mt == "text/event-stream" && resp.StatusCode == http.StatusOK:
		// The limit is per message: a stream may carry many notifications
		// before its answer, and the call's time limit bounds it.
		raw, err = readEventResponse(resp.Body, id, maxBytes, g.relayLog(ctx))
	case mt == "application/json":
		raw, err = io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
		if err == nil && int64(len(raw)) > maxBytes {
			err = fmt.Errorf("the answer exceeds %d bytes", maxBytes)
		}
	default:
		return nil, fmt.Errorf("the upstream answered HTTP %d (%s)", resp.StatusCode, truncate(resp.Header.Get("Content-Type"), 60))
	}
	if err != nil {
		return nil, err
	}
	return decodeToolAnswer(raw, id, resp.StatusCode)
}

// decodeToolAnswer reads the JSON-RPC response to a posted call.
func decodeToolAnswer(raw []byte, id string, status int) (*mcp.CallToolResult, error) {
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  *jsonrpc.Error  `json:"error"`
	}
	if err := json.Unmarshal(raw, &msg); err != nil {
		return nil, fmt.Errorf("the upstream's answer (HTTP %d) is not a JSON-RPC response: %w", status, err)
	}
	if string(msg.ID) != id && (msg.Error == nil || string(msg.ID) != "null") {
		return nil, fmt.Errorf("the upstream answered request %s, not %s", truncate(string(msg.ID), 40), id)
	}
	if msg.Error != nil {
		return nil, msg.Error
	}
	if status != http.StatusOK || len(msg.Result) == 0 {
		return nil, fmt.Errorf("the upstream answered HTTP %d without a result", status)
	}
	var res mcp.CallToolResult
	if err := json.Unmarshal(msg.Result, &res); err != nil {
		return nil, fmt.Errorf("decoding the upstream's result: %w", err)
	}
	return &res, nil
}

// readEventResponse reads an event stream until the message that answers
// id; events of other types are skipped, and no message may exceed limit
// bytes. Notifications before it go to notify (log messages reach a client
// with a session; a sessionless call has nowhere to send them). Anything
// else the upstream sends is an error.
func readEventResponse(r io.Reader, id string, limit int64, notify func(method string, params json.RawMessage)) ([]byte, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), int(limit)+len("data: \r\n"))
	tooLong := fmt.Errorf("the upstream sent an event over %d bytes", limit)
	var data []byte
	message := true // the event's type is "message", the default
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if len(data) > 0 && message {
				answer, err := eventAnswer(data, id, notify)
				if answer != nil || err != nil {
					return answer, err
				}
			}
			data, message = data[:0], true
		case bytes.HasPrefix(line, []byte("event:")):
			message = string(bytes.TrimSpace(line[len("event:"):])) == "message"
		case bytes.HasPrefix(line, []byte("data:")):
			v := bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" "))
			if len(data) > 0 {
				data = append(data, '\n')
			}
			if data = append(data, v...); int64(len(data)) > limit {
				return nil, tooLong
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, tooLong
		}
		return nil, fmt.Errorf("reading the upstream's event stream: %w", err)
	}
	if len(data) > 0 && message {
		if answer, err := eventAnswer(data, id, notify); answer != nil || err != nil {
			return answer, err
		}
	}
	return nil, errors.New("the upstream's event stream ended without an answer")
}

// eventAnswer returns data if it is the response to id, nil if it is a
// notification (which it hands to notify).
func eventAnswer(data []byte, id string, notify func(string, json.RawMessage)) ([]byte, error) {
	var head struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("the upstream sent an event that is not JSON-RPC: %w", err)
	}
	switch {
	case head.Method != "" && len(head.ID) == 0:
		if notify != nil {
			notify(head.Method, head.Params)
		}
		return nil, nil
	case head.Method != "":
		return nil, fmt.Errorf("the upstream sent a %s request during a sessionless call", truncate(head.Method, 60))
	case string(head.ID) != id:
		return nil, fmt.Errorf("the upstream answered request %s, not %s", truncate(string(head.ID), 40), id)
	}
	return append([]byte(nil), data...), nil
}

// inflightKey carries the client request a posted call serves, so that
// the upstream's log messages can reach its client.
type inflightKey struct{}

// relayLog returns where the log messages of the call on ctx go: to the
// client's session, if it has one, as the library's client would send
// them, masked by the call's plan.
func (g *Gateway) relayLog(ctx context.Context) func(string, json.RawMessage) {
	in, _ := ctx.Value(inflightKey{}).(*inflight)
	if in == nil || in.ss == nil || in.bridge != nil {
		return nil
	}
	return func(method string, params json.RawMessage) {
		if method != "notifications/message" {
			return
		}
		var p mcp.LoggingMessageParams
		if json.Unmarshal(params, &p) != nil {
			return
		}
		if masked, ok := maskNotice(g, in.ctx, &p); ok {
			_ = in.ss.Log(in.ctx, masked)
		}
	}
}

// rawClient is the HTTP client for posted calls: the upstream's own
// connection pool, with its configured headers and each call's credential.
// It is made once; the headers come from the environment, read then.
func (u *upstream) rawClient() (*http.Client, error) {
	u.rawOnce.Do(func() {
		headers, err := u.staticHeaders()
		if err != nil {
			u.rawErr = err
			return
		}
		u.raw = u.httpClient(headers)
	})
	return u.raw, u.rawErr
}
