package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"

	"github.com/wardenmcp/warden/internal/argschema"
)

// Cost bounds for conditions. A cost unit is roughly one cheap operation
// (a comparison, a field access, a few bytes of a string scan).
const (
	// DefaultCostLimit stops an evaluation that exceeds it (and denies).
	DefaultCostLimit = 1_000_000
	// assumedValueSize is the size (string bytes, list or map entries) the
	// compile-time estimate assumes for any value.
	assumedValueSize = 10_000
)

// Fields of the structured variables; a condition selecting any other field
// is a compile error, so a typo cannot silently deny every call.
var variableFields = map[string][]string{
	"principal": {"id", "roles", "tenant", "clearance", "claims"},
	"tool":      {"name", "server", "risk", "labels", "annotations"},
	"task":      {"id", "scope", "labels", "counters"},
	"request":   {"method", "time", "transport"},
	"resource":  {"uri"},
	"prompt":    {"name"},
}

// Option configures a Compiler.
type Option func(*Compiler) error

// Classifier is a function conditions may call, such as sql(s) or url(u). It
// must be safe for concurrent use and must not panic (a panic is caught and
// denies the call).
type Classifier func(string) map[string]any

// WithFunction makes fn callable from conditions as name(string), returning
// a map. The SQL classifier is wired as
//
//	policy.WithFunction("sql", func(s string) map[string]any { return sqlclass.Classify(s).Map() })
func WithFunction(name string, fn Classifier) Option {
	return func(c *Compiler) error {
		if !identifier.MatchString(name) {
			return fmt.Errorf("function name %q is not an identifier", name)
		}
		if _, clash := variableFields[name]; clash || name == "args" {
			return fmt.Errorf("function name %q is a variable name", name)
		}
		if fn == nil {
			return fmt.Errorf("function %q is nil", name)
		}
		if _, dup := c.functions[name]; dup {
			return fmt.Errorf("function %q registered twice", name)
		}
		c.functions[name] = fn
		return nil
	}
}

// WithCostLimit replaces DefaultCostLimit for the evaluation of one
// condition and for the compile-time estimate.
func WithCostLimit(limit uint64) Option {
	return func(c *Compiler) error {
		if limit == 0 {
			return errors.New("cost limit must be positive")
		}
		c.costLimit = limit
		return nil
	}
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Compiler compiles policies against one CEL environment. Build it once;
// it is safe for concurrent use.
type Compiler struct {
	env       *cel.Env
	functions map[string]Classifier
	costLimit uint64
}

// NewCompiler builds a compiler with the given classifier functions.
func NewCompiler(opts ...Option) (*Compiler, error) {
	c := &Compiler{functions: map[string]Classifier{}, costLimit: DefaultCostLimit}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, fmt.Errorf("policy compiler: %w", err)
		}
	}
	mapType := cel.MapType(cel.StringType, cel.DynType)
	envOpts := []cel.EnvOption{
		cel.Variable("principal", mapType),
		cel.Variable("tool", mapType),
		cel.Variable("args", cel.DynType),
		cel.Variable("task", mapType),
		cel.Variable("request", mapType),
		cel.Variable("resource", mapType),
		cel.Variable("prompt", mapType),
		ext.Strings(),
		ext.Sets(),
	}
	names := make([]string, 0, len(c.functions))
	for n := range c.functions {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		envOpts = append(envOpts, cel.Function(name,
			cel.Overload(name+"_string", []*cel.Type{cel.StringType}, mapType,
				cel.UnaryBinding(classifierBinding(name, c.functions[name])))))
	}
	env, err := cel.NewEnv(envOpts...)
	if err != nil {
		return nil, fmt.Errorf("policy compiler: %w", err)
	}
	c.env = env
	return c, nil
}

func classifierBinding(name string, fn Classifier) func(ref.Val) ref.Val {
	return func(v ref.Val) (out ref.Val) {
		s, ok := v.(types.String)
		if !ok {
			return types.MaybeNoSuchOverloadErr(v)
		}
		defer func() {
			if r := recover(); r != nil {
				out = types.NewErr("%s(): classifier failed: %v", name, r)
			}
		}()
		return types.NewStringInterfaceMap(types.DefaultTypeAdapter, fn(string(s)))
	}
}

// Load compiles the policy files named by paths (files, or directories of
// *.yaml files) with no classifier functions.
func Load(paths ...string) (*Policy, error) {
	c, err := NewCompiler()
	if err != nil {
		return nil, err
	}
	return c.Load(paths...)
}

// Compile compiles one policy source with no classifier functions; name is
// used in error messages.
func Compile(src []byte, name string) (*Policy, error) {
	c, err := NewCompiler()
	if err != nil {
		return nil, err
	}
	return c.Compile(src, name)
}

// Load compiles the policy files named by paths. Files are merged; a
// duplicate rule id, role or tool schema across files is an error.
func (c *Compiler) Load(paths ...string) (*Policy, error) {
	srcs, err := readSources(paths)
	if err != nil {
		return nil, err
	}
	return c.compileSources(srcs)
}

// Compile compiles one policy source; name is used in error messages.
func (c *Compiler) Compile(src []byte, name string) (*Policy, error) {
	return c.compileSources([]source{{name: name, data: src}})
}

// compileSources compiles a whole policy. Every problem is reported (joined
// into one error); a policy with any problem is rejected whole.
func (c *Compiler) compileSources(srcs []source) (*Policy, error) {
	doc, errs := parseSources(srcs)
	p := &Policy{
		shadow:  doc.Defaults.Shadow,
		roles:   map[string]*grants{},
		schemas: map[string]*argschema.Schema{},
		doc:     doc,
	}
	errs = append(errs, c.compileRoles(doc, p)...)
	for tool, schema := range doc.Tools {
		s, err := argschema.CompileOverlay(schema)
		if err != nil {
			at := doc.toolAt[tool]
			errs = append(errs, &Error{File: at.file, Line: at.line, Msg: fmt.Sprintf("tools: %q: %v", tool, err)})
			continue
		}
		p.schemas[tool] = s
	}
	for i := range doc.Rules {
		r, err := c.compileRule(&doc.Rules[i], i)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if r == nil {
			continue // the parser reported why
		}
		p.rules = append(p.rules, r)
	}
	if doc.Masking != nil {
		m, merrs := c.compileMasking(doc.Masking, os.LookupEnv)
		errs = append(errs, merrs...)
		p.masking = m
	}
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, errors.Join(errs...)
	}
	p.buildIndex()
	canonical, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("policy: canonical form: %w", err)
	}
	sum := sha256.Sum256(canonical)
	p.version = hex.EncodeToString(sum[:])
	return p, nil
}

func sortErrors(errs []error) {
	sort.SliceStable(errs, func(i, j int) bool {
		var a, b *Error
		if !errors.As(errs[i], &a) || !errors.As(errs[j], &b) {
			return false
		}
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
}

// grants are a role's effective globs (its own and inherited), per kind.
type grants struct {
	globs [numKinds][]glob
}

func (c *Compiler) compileRoles(doc *document, p *Policy) []error {
	var errs []error
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var visit func(name string, chain []string) *grants
	visit = func(name string, chain []string) *grants {
		if g, ok := p.roles[name]; ok && state[name] == done {
			return g
		}
		at := doc.roleAt[name]
		if state[name] == visiting {
			errs = append(errs, &Error{File: at.file, Line: at.line,
				Msg: fmt.Sprintf("role inheritance cycle: %s", strings.Join(append(chain, name), " -> "))})
			return nil
		}
		state[name] = visiting
		def := doc.Roles[name]
		g := &grants{}
		add := func(k Kind, patterns []string) {
			for _, pat := range patterns {
				gl, err := compileGlob(pat)
				if err != nil {
					continue // reported by the parser
				}
				if !slices.ContainsFunc(g.globs[k], func(x glob) bool { return x.pattern == pat }) {
					g.globs[k] = append(g.globs[k], gl)
				}
			}
		}
		add(KindTool, def.Tools)
		add(KindResource, def.Resources)
		add(KindPrompt, def.Prompts)
		for _, parent := range def.Inherits {
			if _, ok := doc.Roles[parent]; !ok {
				errs = append(errs, &Error{File: at.file, Line: at.line,
					Msg: fmt.Sprintf("role %q inherits unknown role %q", name, parent)})
				continue
			}
			pg := visit(parent, append(chain, name))
			if pg == nil {
				continue
			}
			for k := range pg.globs {
				for _, gl := range pg.globs[k] {
					add(Kind(k), []string{gl.pattern})
				}
			}
		}
		state[name] = done
		p.roles[name] = g
		return g
	}
	names := make([]string, 0, len(doc.Roles))
	for n := range doc.Roles {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if state[n] != done {
			visit(n, nil)
		}
	}
	return errs
}

// rule is a compiled policy rule.
type rule struct {
	id        string
	seq       int
	kind      Kind
	target    glob
	when      string
	prg       cel.Program // nil: the rule always applies
	effect    Effect
	reason    string
	approvers []string
	shadow    bool
	metered   bool // evaluation is stopped at the cost limit
	// statedReason is false when reason is the default one.
	statedReason bool
	at           pos
}

func (c *Compiler) compileRule(def *ruleDef, seq int) (*rule, error) {
	fail := func(format string, args ...any) error {
		line := def.at.line
		if def.whenLine > 0 {
			line = def.whenLine
		}
		return &Error{File: def.at.file, Line: line, Rule: def.ID, Msg: fmt.Sprintf(format, args...)}
	}
	effect, err := ParseEffect(def.Effect)
	if err != nil {
		return nil, nil // reported by the parser, which fails the policy
	}
	target, err := compileGlob(def.Target)
	if err != nil {
		return nil, nil // reported by the parser
	}
	r := &rule{
		id: def.ID, seq: seq, kind: def.Kind, target: target, when: def.When,
		effect: effect, reason: def.Reason, approvers: def.Approvers, shadow: def.Shadow, at: def.at,
	}
	r.statedReason = r.reason != ""
	if !r.statedReason {
		r.reason = defaultReason(r)
	}
	if def.When == "" {
		return r, nil
	}
	checked, iss := c.env.Compile(def.When)
	if iss != nil && iss.Err() != nil {
		return nil, fail("when: %s", celMessage(iss.Err().Error()))
	}
	if t := checked.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
		return nil, fail("when must be a boolean condition, not %s", t)
	}
	if err := checkFields(checked); err != nil {
		return nil, fail("when: %v", err)
	}
	est, err := c.env.EstimateCost(checked, costEstimator{functions: c.functions, size: assumedValueSize})
	if err != nil {
		return nil, fail("when: estimating cost: %v", err)
	}
	if est.Max > c.costLimit {
		return nil, fail("when may cost up to %d, more than the limit of %d (avoid nested loops over arguments)", est.Max, c.costLimit)
	}
	// Metering every evaluation costs time and allocations. A condition
	// without loops whose cost grows at most linearly with its input does no
	// more work than reading that input did; only the others are metered.
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	meter := hasComprehension(checked)
	if !meter {
		est2, err := c.env.EstimateCost(checked, costEstimator{functions: c.functions, size: 2 * assumedValueSize})
		meter = err != nil || est2.Max > 2*est.Max+2
	}
	if meter {
		opts = append(opts, cel.CostLimit(c.costLimit))
	}
	r.metered = meter
	prg, err := c.env.Program(checked, opts...)
	if err != nil {
		return nil, fail("when: %v", err)
	}
	r.prg = prg
	return r, nil
}

// celMessage shortens CEL's issues to one line each, without the source
// excerpt and caret lines.
func celMessage(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "|") {
			continue
		}
		parts = append(parts, strings.TrimPrefix(l, "ERROR: <input>:"))
	}
	return strings.Join(parts, "; ")
}

// checkFields rejects selections of fields the structured variables do not
// have (principal.idd).
func checkFields(checked *cel.Ast) error {
	var errs []error
	ast.PreOrderVisit(checked.NativeRep().Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() != ast.SelectKind {
			return
		}
		sel := e.AsSelect()
		if sel.Operand().Kind() != ast.IdentKind {
			return
		}
		v := sel.Operand().AsIdent()
		fields, ok := variableFields[v]
		if ok && !slices.Contains(fields, sel.FieldName()) {
			errs = append(errs, fmt.Errorf("%s has no field %q (fields: %s)", v, sel.FieldName(), strings.Join(fields, ", ")))
		}
	}))
	return errors.Join(errs...)
}

func hasComprehension(checked *cel.Ast) bool {
	found := false
	ast.PreOrderVisit(checked.NativeRep().Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() == ast.ComprehensionKind {
			found = true
		}
	}))
	return found
}

// costEstimator bounds every value to size so that the estimate is finite;
// a classifier call costs as much as scanning its input.
type costEstimator struct {
	functions map[string]Classifier
	size      uint64
}

func (e costEstimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if n.ComputedSize() != nil {
		return nil // constants, concatenations: derived from the expression
	}
	return &cost.SizeEstimate{Min: 0, Max: e.size}
}

func (e costEstimator) EstimateCallCost(function, _ string, _ *cost.AstNode, _ []cost.AstNode) *cost.CallEstimate {
	if _, ok := e.functions[function]; ok {
		return &cost.CallEstimate{
			CostEstimate: cost.Estimate{Min: 1, Max: e.size},
			ResultSize:   &cost.SizeEstimate{Min: 0, Max: e.size},
		}
	}
	return nil
}
