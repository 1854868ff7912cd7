// Package policy compiles Warden's policy (roles, rules with CEL conditions,
// per-tool argument schemas) and decides calls against it.
//
// A decision is fail-closed: the principal's roles must grant the tool,
// resource or prompt; then every rule whose target matches is evaluated and
// the strongest effect wins (deny > approve > confirm > allow). No matching
// allow rule, an invalid input or any evaluation error is a deny.
//
// The package is pure: it knows nothing of the protocol, the pipeline or
// storage. Classifier functions (sql, path, url) are supplied by the caller
// through WithFunction.
package policy

import (
	"fmt"
	"time"
)

// Effect is what a decision tells the gateway to do. The zero value is Deny.
type Effect uint8

// Effects, in the order the zero value makes safe; precedence is given by rank.
const (
	Deny Effect = iota
	Allow
	Confirm
	Approve
)

var effectNames = [...]string{Deny: "deny", Allow: "allow", Confirm: "confirm", Approve: "approve"}

func (e Effect) String() string {
	if int(e) < len(effectNames) {
		return effectNames[e]
	}
	return fmt.Sprintf("effect(%d)", uint8(e))
}

// MarshalText encodes the effect as its name.
func (e Effect) MarshalText() ([]byte, error) {
	if int(e) >= len(effectNames) {
		return nil, fmt.Errorf("unknown effect %d", uint8(e))
	}
	return []byte(effectNames[e]), nil
}

// UnmarshalText parses an effect name.
func (e *Effect) UnmarshalText(b []byte) error {
	v, err := ParseEffect(string(b))
	if err != nil {
		return err
	}
	*e = v
	return nil
}

// ParseEffect parses "allow", "deny", "confirm" or "approve".
func ParseEffect(s string) (Effect, error) {
	for i, n := range effectNames {
		if n == s {
			return Effect(i), nil
		}
	}
	return Deny, fmt.Errorf("unknown effect %q (want allow, deny, confirm or approve)", s)
}

// tier is the evaluation and precedence order: lower tiers win.
func (e Effect) tier() int {
	switch e {
	case Deny:
		return 0
	case Approve:
		return 1
	case Confirm:
		return 2
	default:
		return 3
	}
}

const numTiers = 4

// Kind is what a call targets: a tool, a resource or a prompt. Other methods
// (completion, list methods) are matched by method rules only.
type Kind uint8

// Kinds of target.
const (
	KindMethod Kind = iota
	KindTool
	KindResource
	KindPrompt
	numKinds
)

var kindNames = [...]string{KindMethod: "method", KindTool: "tool", KindResource: "resource", KindPrompt: "prompt"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Reserved rule ids that decisions use for outcomes no rule of the policy
// produced. Policy rules may not use them.
const (
	RuleRole        = "role"
	RuleDefaultDeny = "default-deny"
	RuleInput       = "input"
	RuleShadowMode  = "shadow-mode"
)

// Input is one call to decide. Exactly one of Tool, Resource and Prompt is
// set for tools/call, resources/read and prompts/get; none for other methods.
type Input struct {
	// Method is the protocol method ("tools/call", "completion/complete").
	Method   string
	Tool     string
	Resource string
	Prompt   string

	Principal Principal
	// ToolInfo is the operator's catalog entry for Tool; its Name defaults
	// to Tool.
	ToolInfo ToolInfo
	// Args are the validated arguments as argschema.DecodeStrict returns
	// them (maps, slices, json.Number, strings, booleans, nil).
	Args    any
	Task    Task
	Request Request
}

// Principal is who is calling. Unknown roles grant nothing.
type Principal struct {
	ID        string
	Roles     []string
	Tenant    string
	Clearance string
	Claims    map[string]any
}

// ToolInfo is what the operator's catalog says about a tool, plus the
// upstream's annotations (hints, not truth).
type ToolInfo struct {
	Name        string
	Server      string
	Risk        string
	Labels      []string
	Annotations map[string]any
}

// Task is the task grant the call belongs to.
type Task struct {
	ID       string
	Scope    map[string]any
	Labels   []string
	Counters map[string]int64
}

// Request carries facts about the request itself.
type Request struct {
	Time      time.Time
	Transport string
}

// Decision is the outcome of Decide.
type Decision struct {
	Effect Effect
	// Rules are the ids of the rules behind Effect, in policy order; one of
	// the reserved ids (RuleRole, RuleDefaultDeny, RuleInput) when no rule
	// of the policy decided.
	Rules []string
	// Reason is safe to show the caller.
	Reason string
	// Approvers are the approvers named by the approve rules behind Effect.
	Approvers     []string
	PolicyVersion string

	// Shadowed is set when shadow mode let the call through: WouldBe,
	// ShadowRules and ShadowReason say what would have been enforced.
	Shadowed     bool
	WouldBe      Effect
	ShadowRules  []string
	ShadowReason string

	// Err holds evaluation errors for the log; never show it to the caller.
	Err error
}
