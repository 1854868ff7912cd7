package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Confirmation: a call the policy says needs a yes is put to the human at
// the client, in plain words, and proceeds only on an explicit yes for
// exactly these arguments. Clients of the handshake era are asked with an
// elicitation; clients of 2026-07-28 get an input-required result whose
// sealed requestState binds the answer to the call.

const (
	confirmPurpose = "warden/confirm"
	confirmKey     = "warden-confirm"
)

// confirmState is what the sealed requestState of a confirmation binds.
type confirmState struct {
	Digest string `json:"d"`
}

// needsInput stops a call to ask the client something: respond answers
// with an input-required result carrying these requests.
type needsInput struct {
	requests mcp.InputRequestMap
	state    string
}

func (n *needsInput) Error() string { return "the call needs input from the client" }

// confirm asks the user to confirm the call. It returns nil when the user
// said yes to exactly this call, a *needsInput to ask a sessionless client,
// or a denial.
func (g *Gateway) confirm(ctx context.Context, call *Call, reason string) error {
	p, ok := call.request.GetParams().(*mcp.CallToolParamsRaw)
	if !ok {
		return &Denial{Rule: strings.Join(call.Decision.Rules, ","), Reason: "requires confirmation, which can only be asked for tool calls: " + reason}
	}
	question := &mcp.ElicitParams{
		Message: confirmMessage(call, reason),
		RequestedSchema: map[string]any{
			"type": "object",
			"properties": map[string]any{
				"confirm": map[string]any{"type": "boolean", "title": "Allow this call", "description": "Yes lets Warden run the call once, with exactly these arguments."},
			},
			"required": []any{"confirm"},
		},
	}
	if !clientCanElicit(call, p) {
		return &Denial{Rule: strings.Join(call.Decision.Rules, ","), Reason: "requires confirmation by the user, and this client cannot ask: " + reason}
	}
	digest := g.confirmDigest(call)
	if call.Stateless {
		if p.RequestState != "" {
			var st confirmState
			if g.sealer.OpenJSON(confirmPurpose, p.RequestState, &st) == nil {
				if st.Digest != digest {
					return &Denial{Rule: "confirm", Reason: "the confirmation was given for a different call"}
				}
				answer, _ := p.InputResponses[confirmKey].(*mcp.ElicitResult)
				// The answer is Warden's, not the upstream's: it goes no further.
				p.RequestState, p.InputResponses = "", nil
				return confirmed(answer)
			}
		}
		state, err := g.sealer.SealJSON(confirmPurpose, confirmState{Digest: digest}, stateTTL)
		if err != nil {
			return err
		}
		return &needsInput{requests: mcp.InputRequestMap{confirmKey: question}, state: state}
	}
	ss, _ := call.request.GetSession().(*mcp.ServerSession)
	answer, err := ss.Elicit(ctx, question)
	if err != nil {
		return &Denial{Rule: "confirm", Reason: "the user could not be asked for confirmation", cause: err}
	}
	return confirmed(answer)
}

// clientCanElicit reports whether the client declared that it can ask its
// user: per request under 2026-07-28, per session before.
func clientCanElicit(call *Call, p *mcp.CallToolParamsRaw) bool {
	if call.Stateless {
		caps, _ := p.Meta[mcp.MetaKeyClientCapabilities].(map[string]any)
		_, ok := caps["elicitation"]
		return ok
	}
	ss, _ := call.request.GetSession().(*mcp.ServerSession)
	return ss != nil && ss.InitializeParams() != nil && ss.InitializeParams().Capabilities != nil &&
		ss.InitializeParams().Capabilities.Elicitation != nil
}

// confirmed proceeds only on an accepted answer whose confirm is true.
func confirmed(answer *mcp.ElicitResult) error {
	if answer == nil {
		return &Denial{Rule: "confirm", Reason: "no answer to the confirmation was given"}
	}
	if answer.Action != "accept" {
		return &Denial{Rule: "confirm", Reason: "the user did not confirm the call (" + answer.Action + ")"}
	}
	if yes, _ := answer.Content["confirm"].(bool); !yes {
		return &Denial{Rule: "confirm", Reason: "the user answered no"}
	}
	return nil
}

// confirmDigest binds a confirmation to the caller, the tool and the exact
// forwarded arguments.
func (g *Gateway) confirmDigest(call *Call) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", TokenOwner(call.Principal), call.taskID(), call.Name, call.Decision.PolicyVersion)
	h.Write(call.argsJSON)
	return hex.EncodeToString(h.Sum(nil))
}

// confirmMessage says plainly what will happen: the tool, its server and
// its arguments, and why Warden asks.
func confirmMessage(call *Call, reason string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Allow %s on %s", call.tool.upstream, call.Upstream)
	if m, ok := call.args.(map[string]any); ok && len(m) > 0 {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			v, _ := json.Marshal(m[k])
			parts = append(parts, k+"="+truncate(string(v), 80))
		}
		fmt.Fprintf(&b, " with %s", strings.Join(parts, ", "))
	}
	b.WriteString("?")
	if reason != "" {
		fmt.Fprintf(&b, " Warden asks because: %s.", strings.TrimSuffix(reason, "."))
	}
	return b.String()
}
