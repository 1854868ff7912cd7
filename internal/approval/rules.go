package approval

import (
	"encoding/json"
	"fmt"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
)

// ruleCostLimit bounds one rule evaluation, as policy conditions are
// bounded.
const ruleCostLimit = 100_000

// Rule is a compiled automated approval rule.
type Rule struct {
	ID      string
	Approve bool
	prg     cel.Program
}

// CompileRules compiles automated approval rules; one that does not
// compile, or does not yield a bool, fails the whole set.
func CompileRules(defs []RuleConfig) ([]Rule, error) {
	if len(defs) == 0 {
		return nil, nil
	}
	env, err := cel.NewEnv(
		cel.Variable("request", cel.MapType(cel.StringType, cel.DynType)),
		cel.CrossTypeNumericComparisons(true),
	)
	if err != nil {
		return nil, fmt.Errorf("approval rules: %w", err)
	}
	out := make([]Rule, 0, len(defs))
	for i, d := range defs {
		if d.Effect != "approve" && d.Effect != "deny" {
			return nil, fmt.Errorf("approval rule %d (%s): effect %q: use approve or deny", i, d.ID, d.Effect)
		}
		checked, iss := env.Compile(d.When)
		if iss.Err() != nil {
			return nil, fmt.Errorf("approval rule %d (%s): %w", i, d.ID, iss.Err())
		}
		if t := checked.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
			return nil, fmt.Errorf("approval rule %d (%s): when yields %s, not bool", i, d.ID, t)
		}
		prg, err := env.Program(checked, cel.CostLimit(ruleCostLimit), cel.EvalOptions(cel.OptOptimize))
		if err != nil {
			return nil, fmt.Errorf("approval rule %d (%s): %w", i, d.ID, err)
		}
		out = append(out, Rule{ID: d.ID, Approve: d.Effect == "approve", prg: prg})
	}
	return out, nil
}

// Matches evaluates the rule against r. An error (a missing field, a
// type mismatch, a non-bool) is no match: the request waits for a human.
func (rule Rule) Matches(vars map[string]any) (bool, error) {
	v, _, err := rule.prg.Eval(map[string]any{"request": vars})
	if err != nil {
		return false, fmt.Errorf("approval rule %s: %w", rule.ID, err)
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, fmt.Errorf("approval rule %s: yields %s, not bool", rule.ID, v.Type())
	}
	return bool(b), nil
}

// ruleVars is what rules read as request.
func ruleVars(r Request) (map[string]any, error) {
	var args any = map[string]any{}
	if len(r.Args) > 0 {
		if err := json.Unmarshal(r.Args, &args); err != nil {
			return nil, fmt.Errorf("request %s: arguments: %w", r.ID, err)
		}
	}
	list := func(s []string) []any {
		out := make([]any, len(s))
		for i, v := range s {
			out[i] = v
		}
		return out
	}
	return map[string]any{
		"id":             r.ID,
		"principal":      r.Principal,
		"task":           r.Task,
		"tool":           r.Tool,
		"upstream":       r.Upstream,
		"args":           args,
		"args_digest":    r.ArgsDigest,
		"policy_version": r.PolicyVersion,
		"rules":          list(r.Rules),
		"reason":         r.Reason,
		"approvers":      list(r.Approvers),
	}, nil
}
