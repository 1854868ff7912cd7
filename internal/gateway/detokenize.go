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
// cannot carry data to a caller who was not cleared to see it.
func (g *Gateway) detokenize(ctx context.Context, call *Call, v any) (any, error) {
	res, ok := g.tokens.(TokenResolver)
	if !ok {
		return v, nil
	}
	owner, task := TokenOwner(call.Principal), call.taskID()
	var walk func(any) (any, error)
	walk = func(x any) (any, error) {
		switch t := x.(type) {
		case string:
			if !strings.HasPrefix(t, tokenPrefix) {
				return t, nil
			}
			value, found, err := res.Resolve(ctx, t, owner, task)
			switch {
			case err != nil:
				return nil, &Denial{Rule: "token", Reason: "a token in the arguments could not be checked", cause: err}
			case !found:
				return nil, &Denial{Rule: "token", Reason: fmt.Sprintf("the arguments hold a token this caller may not resolve (%s…)", truncate(t, 24))}
			}
			return value, nil
		case map[string]any:
			for k, e := range t {
				n, err := walk(e)
				if err != nil {
					return nil, err
				}
				t[k] = n
			}
		case []any:
			for i, e := range t {
				n, err := walk(e)
				if err != nil {
					return nil, err
				}
				t[i] = n
			}
		}
		return x, nil
	}
	return walk(v)
}
