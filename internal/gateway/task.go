package gateway

import (
	"context"
	"slices"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/grant"
	"github.com/wardenmcp/warden/internal/policy"
)

// Grants is what the gateway needs of the task grants: resolving the grant
// a call presents (which charges the call to it), and labelling a task
// with what its calls have seen.
type Grants interface {
	Resolve(ctx context.Context, token, principal, tool string, now time.Time) (policy.Task, error)
	AddLabels(ctx context.Context, id string, labels ...string) error
}

// task resolves the task grant a tool call presents: the grant must belong
// to the caller, cover the tool, be live and within budget and rate; the
// call is charged to it. Rules then read it as task (scope, labels,
// counters). A call that presents no grant has no task (task.id == ""), and
// policy decides whether that is allowed. The call is charged to the grant
// before the policy decides, so denied attempts spend budget too.
func (g *Gateway) task(ctx context.Context, call *Call) error {
	if call.tool == nil || g.grants == nil {
		return nil
	}
	token := ""
	if extra := call.request.GetExtra(); extra != nil && extra.Header != nil {
		token = extra.Header.Get(grant.Header)
	}
	if p, ok := call.request.GetParams().(*mcp.CallToolParamsRaw); ok && token == "" {
		token, _ = p.Meta[grant.MetaKey].(string)
	}
	if token == "" && call.Transport == "stdio" {
		token = g.stdioTask
	}
	if token == "" {
		return nil
	}
	t, err := g.grants.Resolve(ctx, token, call.Principal.ID, call.Name, call.Started)
	if err != nil {
		// The grant id is not secret: it lets the audit log show attempts
		// on a revoked or exhausted grant.
		if id, _, perr := grant.ParseToken(token); perr == nil {
			call.Task = &policy.Task{ID: id}
		}
		return &Denial{Rule: "task", Reason: grant.CallerMessage(err), cause: err}
	}
	call.Task = &t
	return nil
}

// flowLabels are the labels a task carries forward to later calls: what
// its results contained, and what the operator's catalog says of the tool
// that produced them (untrusted content from outside, confidential data).
var flowLabels = []string{"pii", "secret", "financial", "sensitive", "confidential", "untrusted"}

// labelTask records on the task what this call's result brought into it,
// so that flow rules can refuse what would turn a read into a leak ('pii'
// in task.labels && tool.risk == 'egress').
func (g *Gateway) labelTask(ctx context.Context, call *Call) error {
	if call.Task == nil || g.grants == nil {
		return nil
	}
	var add []string
	for _, l := range call.Labels {
		if slices.Contains(flowLabels, l) && !slices.Contains(call.Task.Labels, l) {
			add = append(add, l)
		}
	}
	if e, ok := g.cfg.Catalog[call.Name]; ok {
		for _, l := range e.Labels {
			if slices.Contains(flowLabels, l) && !slices.Contains(call.Task.Labels, l) && !slices.Contains(add, l) {
				add = append(add, l)
			}
		}
	}
	if len(add) == 0 {
		return nil
	}
	call.Labels = append(call.Labels, add...)
	if err := g.grants.AddLabels(ctx, call.Task.ID, add...); err != nil {
		// Forgetting a label would let a later call leak what this one
		// read: the result is withheld instead.
		return &Denial{Rule: "task", Reason: "the task could not be labelled with what this result contains, so the result is withheld", cause: err}
	}
	return nil
}
