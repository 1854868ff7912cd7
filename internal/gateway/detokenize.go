package gateway

import (
	"context"
	"fmt"
	"strings"
)

// TokenResolver gives back the value behind a reversible token, only to
// the principal and task it was issued to.
type TokenResolver interface {
	Resolve(ctx context.Context, token, principal, task string) (value string, ok bool, err error)
}

// tokenPrefix starts every reversible token masking issues
// ("tok_EMAIL_ADDRESS_…").
const tokenPrefix = "tok_"

// detokenize replaces the reversible tokens in a call's arguments with the
// values they stand for, when the caller may resolve them: a token issued
// to this caller in this task. Any other token refuses the call, so a token
// cannot carry data to a caller who was not cleared to see it. It reports
// whether anything was replaced.
func (g *Gateway) detokenize(ctx context.Context, call *Call, v any) (any, bool, error) {
	res, ok := g.tokens.(TokenResolver)
	if !ok {
		return v, false, nil
	}
	owner, task := TokenOwner(call.Principal), call.taskID()
	var walk func(any) (any, bool, error)
	walk = func(x any) (any, bool, error) {
		switch t := x.(type) {
		case string:
			if !strings.HasPrefix(t, tokenPrefix) {
				return t, false, nil
			}
			value, found, err := res.Resolve(ctx, t, owner, task)
			switch {
			case err != nil:
				return nil, false, &Denial{Rule: "token", Reason: "a token in the arguments could not be checked", cause: err}
			case !found:
				return nil, false, &Denial{Rule: "token", Reason: fmt.Sprintf("the arguments hold a token this caller may not resolve (%s…)", truncate(t, 24))}
			}
			return value, true, nil
		case map[string]any:
			changed := false
			for k, e := range t {
				n, c, err := walk(e)
				if err != nil {
					return nil, false, err
				}
				t[k], changed = n, changed || c
			}
			return t, changed, nil
		case []any:
			changed := false
			for i, e := range t {
				n, c, err := walk(e)
				if err != nil {
					return nil, false, err
				}
				t[i], changed = n, changed || c
			}
			return t, changed, nil
		}
		return x, false, nil
	}
	return walk(v)
}
