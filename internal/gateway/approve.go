package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/approval"
)

// Approvals is what the gateway needs of escalation: an approval request
// bound to the exact call, and a way to wait for its decision.
type Approvals interface {
	Escalate(ctx context.Context, c approval.Call) (approval.Request, error)
	Wait(ctx context.Context, id string) (approval.Request, error)
}

// progressEvery is how often a held call tells its client it is waiting.
const progressEvery = 5 * time.Second

// escalate puts a call the policy says needs approval to the approvers:
// an approval for exactly this call (caller, task, tool, argument bytes,
// policy version) lets it proceed once; otherwise the call is held for the
// configured time, telling the client it waits, and then answered
// "pending approval <id>" so the client can retry once it is approved.
func (g *Gateway) escalate(ctx context.Context, call *Call, reason string, approvers []string) error {
	rules := strings.Join(call.Decision.Rules, ",")
	if g.approvals == nil || call.tool == nil {
		return &Denial{Rule: rules, Reason: "requires approval, which this deployment cannot ask for: " + reason}
	}
	sum := sha256.Sum256(call.argsJSON)
	req, err := g.approvals.Escalate(ctx, approval.Call{
		Principal: call.Principal.ID, Owner: TokenOwner(call.Principal), Task: call.taskID(), Tool: call.Name, Upstream: call.Upstream,
		Args: call.auditArgs, ArgsDigest: hex.EncodeToString(sum[:]), PolicyVersion: call.Decision.PolicyVersion,
		Rules: call.Decision.Rules, Reason: reason, Approvers: approvers,
	})
	if err != nil {
		return &Denial{Rule: rules, Reason: "requires approval, and the approval request could not be made", cause: err}
	}
	call.ApprovalID = req.ID
	if req.State == approval.StatePending {
		req, err = g.hold(ctx, call, req.ID)
		if err != nil {
			return &Denial{Rule: rules, Reason: "requires approval, and waiting for it failed", cause: err}
		}
	}
	switch req.State {
	case approval.StateUsed:
		call.Decision.Reason = fmt.Sprintf("approved by %s (approval %s): %s", req.DecidedBy, req.ID, reason)
		return nil
	case approval.StatePending:
		return &Denial{Rule: rules, Reason: fmt.Sprintf("pending approval %s: %s; call again with the same arguments once it is approved", req.ID, reason)}
	case approval.StateDenied:
		return &Denial{Rule: rules, Reason: fmt.Sprintf("approval %s was denied: %s", req.ID, req.Comment)}
	default:
		return &Denial{Rule: rules, Reason: fmt.Sprintf("approval %s is %s", req.ID, req.State)}
	}
}

// hold waits for a decision up to the configured time, sending progress
// notifications if the client asked for them.
func (g *Gateway) hold(ctx context.Context, call *Call, id string) (approval.Request, error) {
	hctx, cancel := context.WithTimeout(ctx, g.approvalHold)
	defer cancel()
	if p, ok := call.request.GetParams().(*mcp.CallToolParamsRaw); ok {
		if tok, ok := p.Meta["progressToken"]; ok {
			if ss, ok := call.request.GetSession().(*mcp.ServerSession); ok && ss != nil {
				go func() {
					t := time.NewTicker(progressEvery)
					defer t.Stop()
					for n := 1; ; n++ {
						select {
						case <-hctx.Done():
							return
						case <-t.C:
							_ = ss.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
								ProgressToken: tok, Progress: float64(n),
								Message: fmt.Sprintf("waiting for approval %s", id),
							})
						}
					}
				}()
			}
		}
	}
	return g.approvals.Wait(hctx, id)
}
