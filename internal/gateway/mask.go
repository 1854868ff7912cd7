package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/mask"
	"github.com/wardenmcp/warden/internal/mask/detect"
	"github.com/wardenmcp/warden/internal/policy"
)

// Masking, the second half of the filter stage. Tool, resource and prompt
// results are masked by the plan the policy's masking section gives the
// caller (policy.MaskPlan, from the same input the decide stage used).
// Masking is opt-in: with no policy, or a policy without a masking
// section, results pass unmasked. Once the policy asks for masking it
// fails closed: a result that cannot be masked, or that would release more
// findings of a class than max_per_class allows, is withheld, never
// passed on unmasked.

// TokenRecorder is a token sink that records whom each token was issued
// to, so that only the same principal and task can resolve it (the SQLite
// store's TokenStore). When Options.Tokens implements it, tokens are
// recorded for the calling principal (TokenOwner) and task.
type TokenRecorder interface {
	PutToken(ctx context.Context, token, class, value, principal, task string) error
}

// TokenOwner identifies a caller wherever Warden binds something to one
// (a masking token, a session, a confirmation, a parked call): the
// caller's authentication method, tenant and id, each path-escaped and
// joined by "/", so that an API key and a token subject of the same name
// are different owners.
func TokenOwner(p Principal) string {
	return url.PathEscape(p.Method) + "/" + url.PathEscape(p.Tenant) + "/" + url.PathEscape(p.ID)
}

// maxMaskedPaths bounds the paths a call records; the counts per class
// are always complete.
const maxMaskedPaths = 64

// masking is what masks one call's answers: the masker for the caller's
// plan, the plan, and the policy's limits.
type masking struct {
	m        *mask.Masker
	plan     mask.Plan
	settings policy.MaskSettings
}

// maskingFor returns the call's masking, or nil when the policy asks for
// none.
func (g *Gateway) maskingFor(ctx context.Context, call *Call) (*masking, error) {
	pol := call.pol
	if pol == nil {
		return nil, nil
	}
	settings, ok := pol.Masking()
	if !ok {
		return nil, nil
	}
	in := call.input
	if in == nil {
		in = g.policyInput(call)
	}
	plan, err := pol.MaskPlan(in)
	if err != nil {
		// The plan redacts what the failing rules cover; keep going.
		g.logger.Warn("masking rule failed; its classes are redacted", "id", call.ID, "err", err)
	}
	m, err := g.masker(ctx, call, pol, plan, settings)
	if err != nil {
		return nil, fmt.Errorf("building masker: %w", err)
	}
	return &masking{m: m, plan: plan, settings: settings}, nil
}

// overLimits says why what masking found may not be released, if it may
// not: more findings of a class than max_per_class, or more than the
// task's max_per_task (which this release is added to). tag is the short
// form the audit record keeps.
func (g *Gateway) overLimits(ctx context.Context, call *Call, mk *masking, rep mask.Report) (why, tag string, err error) {
	if rep.TokenFailures > 0 {
		g.logger.Warn("tokens could not be stored; those values were redacted", "id", call.ID, "count", rep.TokenFailures)
	}
	if class, limit, over := overLimit(rep, mk.plan, mk.settings.MaxPerClass); over {
		return fmt.Sprintf("more than %d %s values", limit, class), fmt.Sprintf("%s>%d", class, limit), nil
	}
	why, err = g.overTaskLimit(ctx, call, rep, mk.plan, mk.settings.MaxPerTask)
	return why, why, err
}

// maskResult masks a tool, resource or prompt result for the caller.
func (g *Gateway) maskResult(ctx context.Context, call *Call, res mcp.Result) (mcp.Result, error) {
	mk, err := g.maskingFor(ctx, call)
	if err != nil {
		return g.withhold(call, "could not be checked for sensitive data", err)
	}
	if mk == nil {
		return res, nil
	}
	raw, state, err := marshalResult(res)
	if err != nil {
		return g.withhold(call, "could not be checked for sensitive data", err)
	}
	out, rep, err := mask.MaskCallToolResult(raw, mk.m)
	switch {
	case err != nil:
		return g.withhold(call, "could not be checked for sensitive data", err)
	case rep.NotJSON:
		return g.withhold(call, "could not be checked for sensitive data", errors.New("the encoded result is not JSON"))
	}
	if withheld, res, err := g.release(ctx, call, mk, rep); withheld {
		return res, err
	}
	if len(rep.Paths) == 0 {
		return res, nil // nothing changed: the result is forwarded as it was
	}
	masked, err := unmarshalResult(res, out, state)
	if err != nil {
		return g.withhold(call, "could not be checked for sensitive data", err)
	}
	return masked, nil
}

// release records on the call what masking found and, when a limit
// forbids releasing it, answers in its place (withheld is then true).
func (g *Gateway) release(ctx context.Context, call *Call, mk *masking, rep mask.Report) (withheld bool, res mcp.Result, err error) {
	call.Masked, call.Labels = maskedSummary(rep, mk.plan), rep.Labels
	why, tag, err := g.overLimits(ctx, call, mk, rep)
	switch {
	case err != nil:
		res, err = g.withhold(call, "the task's limits could not be checked", err)
		return true, res, err
	case why != "":
		call.Masked = append(call.Masked, "withheld:"+tag)
		res, err = g.withhold(call, why, nil)
		return true, res, err
	}
	return false, nil, nil
}

// maskUpstreamError masks an upstream's JSON-RPC error, its message and
// its data, as a result is masked: an upstream that puts what it holds,
// or what it was sent, into an error must not get it past masking that
// way. An error that cannot be checked is withheld.
func (g *Gateway) maskUpstreamError(ctx context.Context, call *Call, werr *jsonrpc.Error) (mcp.Result, error) {
	mk, err := g.maskingFor(ctx, call)
	if err == nil && mk == nil {
		return nil, werr
	}
	masked, rep := werr, mask.Report{}
	if err == nil {
		masked, rep, err = maskValue(mk.m, werr)
	}
	if err != nil {
		return g.withhold(call, "the upstream's error could not be checked for sensitive data", err)
	}
	if withheld, res, err := g.release(ctx, call, mk, rep); withheld {
		return res, err
	}
	return nil, masked
}

// maskNotice masks a notification an upstream sends the client during the
// call on ctx (a log message, a progress message) by the call's plan. It
// reports false when the notice must be dropped: it could not be checked,
// or it would release more than a limit allows. The call's own record is
// not touched: notices arrive while the call runs, on other goroutines.
//
// A notice that arrives when no call of its session is in flight (the
// library's client handles notifications apart from results, so one can
// come late) has no caller to take a plan from: it is masked as for a
// caller with no roles and no clearance.
func maskNotice[P any](g *Gateway, ctx context.Context, p *P) (*P, bool) {
	call := callFrom(ctx)
	if call == nil {
		call = &Call{ID: "-", pol: g.currentPolicy()}
	}
	mk, err := g.maskingFor(ctx, call)
	if err == nil && mk == nil {
		return p, true
	}
	masked, rep := p, mask.Report{}
	if err == nil {
		masked, rep, err = maskValue(mk.m, p)
	}
	why := "it could not be checked for sensitive data"
	if err == nil {
		why, _, err = g.overLimits(ctx, call, mk, rep)
	}
	if why != "" || err != nil {
		g.logger.Warn("upstream notice dropped", "id", call.ID, "reason", why, "err", err)
		return nil, false
	}
	return masked, true
}

// maskValue masks the JSON encoding of v with m. It returns v itself when
// nothing changed, else a masked copy, and what was found.
func maskValue[T any](m *mask.Masker, v *T) (*T, mask.Report, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, mask.Report{}, err
	}
	out, rep, err := m.JSON(raw)
	switch {
	case err != nil:
		return nil, rep, err
	case rep.NotJSON:
		return nil, rep, errors.New("its encoding is not JSON")
	case len(rep.Paths) == 0:
		return v, rep, nil
	}
	masked := new(T)
	if err := json.Unmarshal(out, masked); err != nil {
		return nil, rep, fmt.Errorf("decoding the masked copy: %w", err)
	}
	return masked, rep, nil
}

// withhold answers a result that may not be released: a tool error for
// tools/call, a JSON-RPC error otherwise. cause is for the log only.
func (g *Gateway) withhold(call *Call, why string, cause error) (mcp.Result, error) {
	g.logger.Warn("result withheld", "id", call.ID, "reason", why, "err", cause)
	return errorFor(call, jsonrpc.CodeInternalError, fmt.Sprintf("result withheld: %s (call %s)", why, call.ID))
}

// overLimit reports the first class (by name) whose findings the plan
// releases in some form (anything but redact) and exceed its limit.
func overLimit(rep mask.Report, plan mask.Plan, limits map[string]int) (string, int, bool) {
	var classes []string
	for class, limit := range limits {
		if rep.Counts[class] > limit && plan.ActionFor(class) != mask.Redact {
			classes = append(classes, class)
		}
	}
	if len(classes) == 0 {
		return "", 0, false
	}
	slices.Sort(classes)
	return classes[0], limits[classes[0]], true
}

// TaskCounters keeps running totals per task.
type TaskCounters interface {
	Add(ctx context.Context, task, name string, n int64) (int64, error)
}

// overTaskLimit adds what this result releases to its task's totals and
// says which per-task limit it would pass, if any. The counts are added
// even when the result is withheld: the attempt is what is limited.
func (g *Gateway) overTaskLimit(ctx context.Context, call *Call, rep mask.Report, plan mask.Plan, limits map[string]int) (string, error) {
	if len(limits) == 0 || call.Task == nil || call.Task.ID == "" || g.counters == nil {
		return "", nil
	}
	classes := make([]string, 0, len(limits))
	for class := range limits {
		classes = append(classes, class)
	}
	slices.Sort(classes)
	for _, class := range classes {
		n := rep.Counts[class]
		if n == 0 || plan.ActionFor(class) == mask.Redact {
			continue
		}
		total, err := g.counters.Add(ctx, call.Task.ID, "released:"+class, int64(n))
		if err != nil {
			return "", err
		}
		if total > int64(limits[class]) {
			return fmt.Sprintf("the task may receive at most %d %s values", limits[class], class), nil
		}
	}
	return "", nil
}

// maskedSummary lists "CLASS:count:action" per class found, sorted, then
// the changed paths (at most maxMaskedPaths).
func maskedSummary(rep mask.Report, plan mask.Plan) []string {
	if len(rep.Counts) == 0 && len(rep.Paths) == 0 {
		return nil
	}
	out := make([]string, 0, len(rep.Counts)+min(len(rep.Paths), maxMaskedPaths)+1)
	for class, n := range rep.Counts {
		out = append(out, class+":"+strconv.Itoa(n)+":"+string(plan.ActionFor(class)))
	}
	slices.Sort(out)
	if len(rep.Paths) > maxMaskedPaths {
		out = append(out, rep.Paths[:maxMaskedPaths]...)
		return append(out, fmt.Sprintf("… %d more paths", len(rep.Paths)-maxMaskedPaths))
	}
	return append(out, rep.Paths...)
}

// marshalResult encodes a result for masking. The requestState of an
// input-required result is Warden's own sealed state, not data: it is
// taken out before masking and put back after.
func marshalResult(res mcp.Result) (raw []byte, state string, err error) {
	switch r := res.(type) {
	case *mcp.CallToolResult:
		if r == nil {
			return nil, "", errors.New("nil tool result")
		}
		c := *r
		state, c.RequestState = c.RequestState, ""
		raw, err = json.Marshal(&c)
	case *mcp.ReadResourceResult:
		if r == nil {
			return nil, "", errors.New("nil resource result")
		}
		c := *r
		state, c.RequestState = c.RequestState, ""
		raw, err = json.Marshal(&c)
	case *mcp.GetPromptResult:
		if r == nil {
			return nil, "", errors.New("nil prompt result")
		}
		c := *r
		state, c.RequestState = c.RequestState, ""
		raw, err = json.Marshal(&c)
	default:
		return nil, "", fmt.Errorf("cannot mask a %T", res)
	}
	if err != nil {
		return nil, "", fmt.Errorf("encoding result: %w", err)
	}
	return raw, state, nil
}

// unmarshalResult decodes the masked JSON into a result of the same type
// as res and puts the requestState back.
func unmarshalResult(res mcp.Result, raw []byte, state string) (mcp.Result, error) {
	var out mcp.Result
	var err error
	switch res.(type) {
	case *mcp.CallToolResult:
		r := new(mcp.CallToolResult)
		err = json.Unmarshal(raw, r)
		r.RequestState, out = state, r
	case *mcp.ReadResourceResult:
		r := new(mcp.ReadResourceResult)
		err = json.Unmarshal(raw, r)
		r.RequestState, out = state, r
	case *mcp.GetPromptResult:
		r := new(mcp.GetPromptResult)
		err = json.Unmarshal(raw, r)
		r.RequestState, out = state, r
	default:
		return nil, fmt.Errorf("cannot decode a %T", res)
	}
	if err != nil {
		return nil, fmt.Errorf("decoding masked result: %w", err)
	}
	return out, nil
}

// masker returns the masker for a plan. Maskers are cached per policy and
// plan (callers of the same role and clearance share one), except when the
// plan tokenizes into a TokenRecorder: the sink is then bound to this
// caller, so the masker is built for the call.
func (g *Gateway) masker(ctx context.Context, call *Call, pol *policy.Policy, plan mask.Plan, s policy.MaskSettings) (*mask.Masker, error) {
	opts := mask.Options{Scanner: s.Scanner, Plan: plan, HashKey: s.HashKey, Tokens: g.tokens, Paths: s.Paths}
	if opts.Scanner == nil {
		opts.Scanner = detect.Default()
	}
	if rec, ok := g.tokens.(TokenRecorder); ok && usesTokenize(plan) {
		opts.Tokens = boundTokens{ctx: ctx, rec: rec, principal: TokenOwner(call.Principal), task: call.taskID()}
		return mask.New(opts)
	}
	return g.maskers.get(pol, planKey(plan), func() (*mask.Masker, error) { return mask.New(opts) })
}

func usesTokenize(plan mask.Plan) bool {
	if plan.Default == mask.Tokenize {
		return true
	}
	for _, a := range plan.Actions {
		if a == mask.Tokenize {
			return true
		}
	}
	return false
}

// planKey is a plan's canonical form: its actions sorted by class, then
// the default.
func planKey(plan mask.Plan) string {
	classes := make([]string, 0, len(plan.Actions))
	for c := range plan.Actions {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	var b strings.Builder
	for _, c := range classes {
		b.WriteString(c)
		b.WriteByte('=')
		b.WriteString(string(plan.Actions[c]))
		b.WriteByte(',')
	}
	b.WriteString("default=")
	b.WriteString(string(plan.ActionFor("")))
	return b.String()
}

// boundTokens records tokens for one caller.
type boundTokens struct {
	ctx       context.Context
	rec       TokenRecorder
	principal string
	task      string
}

func (b boundTokens) Put(token, class, value string) error {
	return b.rec.PutToken(b.ctx, token, class, value, b.principal, b.task)
}

// maxCachedMaskers bounds the maskers kept per policy; plans beyond it
// get a masker per call.
const maxCachedMaskers = 256

// maskerCache keeps the maskers of the running policy by plan. A reload
// replaces the policy, and with it the whole cache.
type maskerCache struct {
	cur atomic.Pointer[maskerSet]
}

type maskerSet struct {
	pol    *policy.Policy
	byPlan sync.Map // plan key → *mask.Masker
	n      atomic.Int32
}

func (c *maskerCache) get(pol *policy.Policy, key string, build func() (*mask.Masker, error)) (*mask.Masker, error) {
	set := c.cur.Load()
	if set == nil || set.pol != pol {
		next := &maskerSet{pol: pol}
		if c.cur.CompareAndSwap(set, next) {
			set = next
		} else if set = c.cur.Load(); set.pol != pol {
			return build() // a concurrent reload: do not cache
		}
	}
	if m, ok := set.byPlan.Load(key); ok {
		return m.(*mask.Masker), nil
	}
	m, err := build()
	if err != nil {
		return nil, err
	}
	if set.n.Load() < maxCachedMaskers {
		if prev, loaded := set.byPlan.LoadOrStore(key, m); loaded {
			return prev.(*mask.Masker), nil
		}
		set.n.Add(1)
	}
	return m, nil
}
