package policy

import (
	"errors"
	"fmt"
	"slices"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"

	"github.com/wardenmcp/warden/internal/argschema"
)

// Policy is a compiled policy. It is immutable and safe for concurrent use.
type Policy struct {
	version string
	shadow  bool
	rules   []*rule // policy order
	roles   map[string]*grants
	index   [numKinds]ruleIndex
	schemas map[string]*argschema.Schema
	doc     *document
	masking *masking // nil: results are not masked
}

// ruleIndex finds the rules for a name: exact targets by map lookup, glob
// targets by matching, both already split by tier.
type ruleIndex struct {
	exact map[string]*[numTiers][]*rule
	globs [numTiers][]*rule
}

func (p *Policy) buildIndex() {
	for k := range p.index {
		p.index[k].exact = map[string]*[numTiers][]*rule{}
	}
	for _, r := range p.rules {
		idx := &p.index[r.kind]
		t := r.effect.tier()
		if r.target.exact {
			tiers := idx.exact[r.target.pattern]
			if tiers == nil {
				tiers = &[numTiers][]*rule{}
				idx.exact[r.target.pattern] = tiers
			}
			tiers[t] = append(tiers[t], r)
			continue
		}
		idx.globs[t] = append(idx.globs[t], r)
	}
}

// Version is the SHA-256 (hex) of the policy's canonical form; approvals
// and audit records name it.
func (p *Policy) Version() string { return p.version }

// Shadow reports whether the whole policy runs in shadow mode.
func (p *Policy) Shadow() bool { return p.shadow }

// target returns what the input names; ok is false when it names more than
// one thing.
func (in *Input) target() (k Kind, name string, ok bool) {
	n := 0
	if in.Tool != "" {
		k, name, n = KindTool, in.Tool, n+1
	}
	if in.Resource != "" {
		k, name, n = KindResource, in.Resource, n+1
	}
	if in.Prompt != "" {
		k, name, n = KindPrompt, in.Prompt, n+1
	}
	return k, name, n <= 1
}

// granted reports whether any of roles grants kind/name.
func (p *Policy) granted(roles []string, k Kind, name string) bool {
	for _, rn := range roles {
		g := p.roles[rn]
		if g == nil {
			continue
		}
		for i := range g.globs[k] {
			if g.globs[k][i].match(name) {
				return true
			}
		}
	}
	return false
}

// Decide decides one call. It never fails: problems are deny decisions whose
// Err says what went wrong for the log.
func (p *Policy) Decide(in *Input) Decision {
	d := p.decide(in)
	d.PolicyVersion = p.version
	if p.shadow && d.Effect != Allow {
		return Decision{
			Effect:        Allow,
			Rules:         []string{RuleShadowMode},
			PolicyVersion: p.version,
			Shadowed:      true,
			WouldBe:       d.Effect,
			ShadowRules:   d.Rules,
			ShadowReason:  d.Reason,
			Err:           d.Err,
		}
	}
	return d
}

// evalState collects what the rules did during one decision.
type evalState struct {
	fired  [numTiers][]*rule
	shadow []*rule // shadow deny rules that fired or failed
	failed []*rule
	errs   []error
}

func (p *Policy) decide(in *Input) Decision {
	if in == nil {
		return Decision{Effect: Deny, Rules: []string{RuleInput}, Reason: "invalid request", Err: errors.New("nil input")}
	}
	kind, name, ok := in.target()
	if !ok {
		return Decision{Effect: Deny, Rules: []string{RuleInput}, Reason: "a call names one tool, resource or prompt",
			Err: errors.New("input names more than one of tool, resource and prompt")}
	}
	if kind != KindMethod && !p.granted(in.Principal.Roles, kind, name) {
		return Decision{Effect: Deny, Rules: []string{RuleRole},
			Reason: fmt.Sprintf("no role of the caller grants %s %q", kind, name)}
	}

	var exact *[numTiers][]*rule
	if kind != KindMethod {
		exact = p.index[kind].exact[name]
	}
	methodExact := p.index[KindMethod].exact[in.Method]
	act := activation{in: in}
	var st evalState
	// Backing arrays on the stack: a decision allocates no rule lists.
	var firedBuf [numTiers][4]*rule
	for t := range st.fired {
		st.fired[t] = firedBuf[t][:0]
	}
	for t := 0; t < numTiers; t++ {
		if exact != nil {
			p.evalRules(exact[t], &act, &st, false, "")
		}
		if kind != KindMethod {
			p.evalRules(p.index[kind].globs[t], &act, &st, true, name)
		}
		if methodExact != nil {
			p.evalRules(methodExact[t], &act, &st, false, "")
		}
		p.evalRules(p.index[KindMethod].globs[t], &act, &st, true, in.Method)
		if t == 0 && (len(st.fired[0]) > 0 || len(st.failed) > 0) {
			break // denied: lower tiers cannot change that
		}
	}
	return st.decision(kind, name, in.Method)
}

// evalRules evaluates rules; glob rules only when their target matches name.
func (p *Policy) evalRules(rules []*rule, act *activation, st *evalState, globs bool, name string) {
	for _, r := range rules {
		if globs && !r.target.match(name) {
			continue
		}
		fires, err := r.eval(act)
		switch {
		case r.shadow:
			if fires || err != nil {
				st.shadow = append(st.shadow, r)
			}
			if err != nil {
				st.errs = append(st.errs, fmt.Errorf("rule %s (shadow): %w", r.id, err))
			}
		case err != nil:
			st.failed = append(st.failed, r)
			st.errs = append(st.errs, fmt.Errorf("rule %s: %w", r.id, err))
		case fires:
			t := r.effect.tier()
			st.fired[t] = append(st.fired[t], r)
		}
	}
}

func (r *rule) eval(act *activation) (bool, error) {
	if r.prg == nil {
		return true, nil
	}
	out, _, err := r.prg.Eval(act)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("condition returned %s, not a bool", out.Type())
	}
	return bool(b), nil
}

func (st *evalState) decision(kind Kind, name, method string) Decision {
	var d Decision
	switch {
	case len(st.fired[0]) > 0 || len(st.failed) > 0:
		rules := append(append([]*rule(nil), st.fired[0]...), st.failed...)
		sortBySeq(rules)
		d = Decision{Effect: Deny, Rules: ruleIDs(rules)}
		if len(st.fired[0]) > 0 {
			d.Reason = reasonOf(firstBySeq(st.fired[0]))
		} else {
			d.Reason = fmt.Sprintf("rule %s: evaluation error", firstBySeq(st.failed).id)
		}
	case len(st.fired[1]) > 0:
		d = st.positive(Approve)
	case len(st.fired[2]) > 0:
		d = st.positive(Confirm)
	case len(st.fired[3]) > 0:
		d = st.positive(Allow)
	default:
		target := fmt.Sprintf("%s %q", kind, name)
		if kind == KindMethod {
			target = fmt.Sprintf("method %q", method)
		}
		d = Decision{Effect: Deny, Rules: []string{RuleDefaultDeny}, Reason: "no rule allows " + target}
	}
	if len(st.errs) > 0 {
		d.Err = errors.Join(st.errs...)
	}
	if d.Effect != Deny && len(st.shadow) > 0 {
		sortBySeq(st.shadow)
		d.Shadowed = true
		d.WouldBe = Deny
		d.ShadowRules = ruleIDs(st.shadow)
		d.ShadowReason = reasonOf(st.shadow[0])
	}
	return d
}

func (st *evalState) positive(e Effect) Decision {
	rules := st.fired[e.tier()]
	sortBySeq(rules)
	d := Decision{Effect: e, Rules: ruleIDs(rules), Reason: reasonOf(rules[0])}
	if e == Approve {
		for _, r := range rules {
			for _, a := range r.approvers {
				if !slices.Contains(d.Approvers, a) {
					d.Approvers = append(d.Approvers, a)
				}
			}
		}
	}
	return d
}

func reasonOf(r *rule) string { return r.reason }

// defaultReason is the reason a rule gives when the policy states none.
func defaultReason(r *rule) string {
	switch r.effect {
	case Deny:
		return "denied by rule " + r.id
	case Approve:
		return "approval required by rule " + r.id
	case Confirm:
		return "confirmation required by rule " + r.id
	}
	return ""
}

func sortBySeq(rules []*rule) {
	// Few rules fire per decision: insertion sort, no allocation.
	for i := 1; i < len(rules); i++ {
		for j := i; j > 0 && rules[j].seq < rules[j-1].seq; j-- {
			rules[j], rules[j-1] = rules[j-1], rules[j]
		}
	}
}

func firstBySeq(rules []*rule) *rule {
	first := rules[0]
	for _, r := range rules[1:] {
		if r.seq < first.seq {
			first = r
		}
	}
	return first
}

func ruleIDs(rules []*rule) []string {
	ids := make([]string, len(rules))
	for i, r := range rules {
		ids[i] = r.id
	}
	return ids
}

// Visible reports whether principal may possibly use kind/name: a role
// grants it and no unconditional, enforced deny rule covers it. tools/list
// shows exactly the visible tools. Under global shadow mode everything is
// visible, as every call would be let through.
func (p *Policy) Visible(principal Principal, kind Kind, name string) bool {
	if p.shadow {
		return true
	}
	if kind == KindMethod || kind >= numKinds || !p.granted(principal.Roles, kind, name) {
		return false
	}
	unconditionalDeny := func(r *rule) bool { return r.prg == nil && !r.shadow }
	if tiers := p.index[kind].exact[name]; tiers != nil && slices.ContainsFunc(tiers[0], unconditionalDeny) {
		return false
	}
	for _, r := range p.index[kind].globs[0] {
		if unconditionalDeny(r) && r.target.match(name) {
			return false
		}
	}
	return true
}

// activation resolves the condition variables from an Input. Structured
// variables are inputVar views of the Input, boxed once per decision and
// only if a condition reads them.
type activation struct {
	in   *Input
	vars [len(varNames)]inputVar
	args any
}

var _ interpreter.Activation = (*activation)(nil)

func (a *activation) Parent() interpreter.Activation { return nil }

func (a *activation) ResolveName(name string) (any, bool) {
	var k varKind
	switch name {
	case "args":
		if a.args == nil {
			a.args = a.in.Args
			if a.args == nil {
				a.args = map[string]any{}
			}
		}
		return a.args, true
	case "principal":
		k = varPrincipal
	case "tool":
		k = varTool
	case "task":
		k = varTask
	case "request":
		k = varRequest
	case "resource":
		k = varResource
	case "prompt":
		k = varPrompt
	default:
		return nil, false
	}
	v := &a.vars[k]
	if v.in == nil {
		*v = inputVar{in: a.in, kind: k}
	}
	return v, true
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
