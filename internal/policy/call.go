package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wardenmcp/warden/internal/argschema"
)

// RuleArguments names decisions made because the arguments failed the
// policy's argument schema.
const RuleArguments = "arguments"

// CheckArgs validates args against the policy's schema overlay for tool, if
// any. The error's message is safe for the caller.
func (p *Policy) CheckArgs(tool string, args any) error {
	s := p.schemas[tool]
	if s == nil {
		return nil
	}
	return s.Validate(args)
}

// callJSON is the JSON form of one call, as `warden policy eval` reads it and
// as policy table tests write their inputs.
type callJSON struct {
	Method    string          `json:"method"`
	Principal principalJSON   `json:"principal"`
	Tool      json.RawMessage `json:"tool"`
	Resource  string          `json:"resource"`
	Prompt    string          `json:"prompt"`
	Arguments json.RawMessage `json:"arguments"`
	Task      taskJSON        `json:"task"`
	Request   requestJSON     `json:"request"`
}

type principalJSON struct {
	ID        string         `json:"id"`
	Roles     []string       `json:"roles"`
	Tenant    string         `json:"tenant"`
	Clearance string         `json:"clearance"`
	Claims    map[string]any `json:"claims"`
}

type toolJSON struct {
	Name        string         `json:"name"`
	Server      string         `json:"server"`
	Risk        string         `json:"risk"`
	Labels      []string       `json:"labels"`
	Annotations map[string]any `json:"annotations"`
}

type taskJSON struct {
	ID       string           `json:"id"`
	Scope    map[string]any   `json:"scope"`
	Labels   []string         `json:"labels"`
	Counters map[string]int64 `json:"counters"`
}

type requestJSON struct {
	Time      string `json:"time"`
	Transport string `json:"transport"`
}

// ParseCall reads one call: {"principal":…, "tool":…, "arguments":…,
// "task":…} where tool is a name or an object {name, server, risk, labels,
// annotations}; "resource" or "prompt" replace "tool" for those calls. The
// method defaults from what is named; request.time (RFC 3339) defaults to now.
// The JSON is decoded strictly (no duplicate or unknown keys).
func ParseCall(raw []byte, now time.Time) (*Input, error) {
	if _, err := argschema.DecodeStrict(raw, 0); err != nil {
		return nil, fmt.Errorf("call: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var c callJSON
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("call: %w", err)
	}
	in := &Input{
		Method:   c.Method,
		Resource: c.Resource,
		Prompt:   c.Prompt,
		Principal: Principal{
			ID: c.Principal.ID, Roles: c.Principal.Roles, Tenant: c.Principal.Tenant,
			Clearance: c.Principal.Clearance, Claims: c.Principal.Claims,
		},
		Task: Task{ID: c.Task.ID, Scope: c.Task.Scope, Labels: c.Task.Labels, Counters: c.Task.Counters},
		Request: Request{
			Time:      now,
			Transport: c.Request.Transport,
		},
	}
	if c.Request.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, c.Request.Time)
		if err != nil {
			return nil, fmt.Errorf("call: request.time: %w", err)
		}
		in.Request.Time = t
	}
	if len(c.Tool) > 0 && !bytes.Equal(c.Tool, []byte("null")) {
		var name string
		if err := json.Unmarshal(c.Tool, &name); err == nil {
			in.Tool = name
		} else {
			var t toolJSON
			td := json.NewDecoder(bytes.NewReader(c.Tool))
			td.DisallowUnknownFields()
			td.UseNumber()
			if err := td.Decode(&t); err != nil {
				return nil, fmt.Errorf("call: tool is a name or an object {name, server, risk, labels, annotations}: %w", err)
			}
			if t.Name == "" {
				return nil, errors.New("call: tool object without a name")
			}
			in.Tool = t.Name
			in.ToolInfo = ToolInfo(t)
		}
	}
	if len(c.Arguments) > 0 {
		args, err := argschema.DecodeStrict(c.Arguments, 0)
		if err != nil {
			return nil, fmt.Errorf("call: arguments: %w", err)
		}
		in.Args = args
	}
	if in.Method == "" {
		switch {
		case in.Tool != "":
			in.Method = "tools/call"
		case in.Resource != "":
			in.Method = "resources/read"
		case in.Prompt != "":
			in.Method = "prompts/get"
		}
	}
	return in, nil
}

// DecideCall checks the arguments against the policy's schema overlay, then
// decides: what the gateway does after validating against the upstream's
// schema. An argument violation is a deny with rule RuleArguments.
func (p *Policy) DecideCall(in *Input) Decision {
	if in != nil && in.Tool != "" {
		if err := p.CheckArgs(in.Tool, in.Args); err != nil {
			d := Decision{Effect: Deny, Rules: []string{RuleArguments}, Reason: err.Error(), PolicyVersion: p.version, Err: err}
			if p.shadow {
				return Decision{Effect: Allow, Rules: []string{RuleShadowMode}, PolicyVersion: p.version,
					Shadowed: true, WouldBe: Deny, ShadowRules: d.Rules, ShadowReason: d.Reason, Err: err}
			}
			return d
		}
	}
	return p.Decide(in)
}

// decisionJSON is how the command line prints a decision.
type decisionJSON struct {
	Effect        string   `json:"effect"`
	Rules         []string `json:"rules"`
	Reason        string   `json:"reason"`
	Approvers     []string `json:"approvers,omitempty"`
	PolicyVersion string   `json:"policy_version,omitempty"`
	Shadowed      bool     `json:"shadowed,omitempty"`
	WouldBe       string   `json:"would_be,omitempty"`
	ShadowRules   []string `json:"shadow_rules,omitempty"`
	ShadowReason  string   `json:"shadow_reason,omitempty"`
	// Error is the internal evaluation error, shown to the policy author.
	Error string `json:"error,omitempty"`
}

func toDecisionJSON(d Decision) decisionJSON {
	out := decisionJSON{
		Effect: d.Effect.String(), Rules: d.Rules, Reason: d.Reason, Approvers: d.Approvers,
		PolicyVersion: d.PolicyVersion, Shadowed: d.Shadowed, ShadowRules: d.ShadowRules, ShadowReason: d.ShadowReason,
	}
	if out.Rules == nil {
		out.Rules = []string{}
	}
	if d.Shadowed {
		out.WouldBe = d.WouldBe.String()
	}
	if d.Err != nil {
		out.Error = d.Err.Error()
	}
	return out
}
