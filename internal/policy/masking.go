package policy

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"cel.dev/cel-go/cel"
	"go.yaml.in/yaml/v3"

	"github.com/wardenmcp/warden/internal/mask"
	"github.com/wardenmcp/warden/internal/mask/detect"
)

// The masking section says how results are masked by the caller's
// clearance:
//
//	masking:
//	  default: redact                  # classes no matching rule mentions
//	  hash_key_env: WARDEN_MASK_KEY    # required if any action is hash
//	  rules:
//	    - id: support-sees-partial-cards
//	      classes: [CREDIT_CARD]
//	      when: "'support-agent' in principal.roles"
//	      action: partial
//	  paths:
//	    - {path: "$.customers[*].email", class: EMAIL_ADDRESS}
//	  max_per_class: {CREDIT_CARD: 50}
//
// Every rule whose condition holds contributes its action to its classes,
// and per class the most restrictive action wins (redact > hash > tokenize >
// partial > pass), so a rule that hides data cannot be overridden by a
// rule that shows it, whatever their order. A class that no matching rule
// mentions gets the default. A condition that fails to evaluate makes its
// classes redact.
//
// A class entry is a class name (CREDIT_CARD), a data label (pii,
// financial, secret: every class carrying it) or a glob over both
// ("*secret*" covers AWS_SECRET_KEY and GENERIC_SECRET by name and every
// secret-labelled class such as GITHUB_TOKEN by label); matching ignores
// case. An entry must match a class Warden can report (a built-in one or
// the class of a path rule), so a typo is a compile error, not a rule that
// silently never applies.
//
// A policy without a masking section masks nothing: masking is opt-in.

// maskingDef is the parsed masking section. JSON tags define its canonical
// form; the hash key itself is never part of it.
type maskingDef struct {
	Default     string         `json:"default"`
	HashKeyEnv  string         `json:"hash_key_env,omitempty"`
	Rules       []maskRuleDef  `json:"rules,omitempty"`
	Paths       []maskPathDef  `json:"paths,omitempty"`
	Detectors   []maskDetector `json:"detectors,omitempty"`
	MaxPerClass map[string]int `json:"max_per_class,omitempty"`
	MaxPerTask  map[string]int `json:"max_per_task,omitempty"`

	at           pos
	defaultLine  int
	hashKeyLine  int
	maxClassLine map[string]int
	maxTaskLine  map[string]int
}

type maskRuleDef struct {
	ID      string   `json:"id"`
	Classes []string `json:"classes"`
	When    string   `json:"when,omitempty"`
	Action  string   `json:"action"`

	at          pos
	whenLine    int
	classesLine int
}

// maskDetector is an operator-defined detector: a pattern (with optional
// context words) or a dictionary of words, finding values of its class.
type maskDetector struct {
	Class   string   `json:"class"`
	Pattern string   `json:"pattern,omitempty"`
	Context []string `json:"context,omitempty"`
	Words   []string `json:"words,omitempty"`
	Score   float64  `json:"score,omitempty"`
	line    int
}

type maskPathDef struct {
	Path  string `json:"path"`
	Class string `json:"class"`
	line  int
}

// masking is the compiled masking section.
type masking struct {
	defaultAction mask.Action
	rules         []*maskRule // policy order
	settings      MaskSettings
}

// maskRule is a compiled masking rule.
type maskRule struct {
	id      string
	classes []string    // the concrete classes its entries cover
	prg     cel.Program // nil: the rule always applies
	action  mask.Action
}

// MaskSettings are the parts of masking the policy fixes for every caller.
type MaskSettings struct {
	// Paths are the operator's JSON path rules: a value there is of the
	// class whatever it holds.
	Paths []mask.PathRule
	// HashKey keys the hash action; read at compile time from the
	// environment variable hash_key_env names. Nil when no action hashes.
	HashKey []byte
	// Scanner finds sensitive values: the built-in detectors plus the
	// operator's (masking.detectors).
	Scanner *detect.Scanner
	// MaxPerClass refuses a result that would release more than this many
	// findings of a class (findings the plan redacts release nothing and
	// are not counted). Classes not listed are unlimited.
	MaxPerClass map[string]int
	// MaxPerTask refuses a result that would take the values of a class a
	// task has received, over all its calls, past this many (counted as
	// for MaxPerClass). Calls without a task are held to MaxPerClass only.
	MaxPerTask map[string]int
}

// Masking returns the policy's masking settings; ok is false when the
// policy has no masking section (results are then not masked).
func (p *Policy) Masking() (s MaskSettings, ok bool) {
	if p.masking == nil {
		return MaskSettings{}, false
	}
	return p.masking.settings, true
}

// actionRank orders actions from most restrictive (0) to least.
func actionRank(a mask.Action) int {
	switch a {
	case mask.Redact:
		return 0
	case mask.Hash:
		return 1
	case mask.Tokenize:
		return 2
	case mask.Partial:
		return 3
	case mask.Pass:
		return 4
	}
	return 0 // unknown: treated as redact
}

// MaskPlan decides the masking plan for one call: per class, the most
// restrictive action among the masking rules whose condition holds, and
// the section's default for the rest. The plan is always usable: a rule
// whose condition fails to evaluate makes its classes redact, and err
// (for the log, never for the caller) says which rules failed. A policy
// without a masking section gives a plan that passes everything.
func (p *Policy) MaskPlan(in *Input) (mask.Plan, error) {
	m := p.masking
	if m == nil {
		return mask.Plan{Default: mask.Pass}, nil
	}
	if in == nil {
		return mask.Plan{Default: mask.Redact}, errors.New("masking: nil input")
	}
	plan := mask.Plan{Default: m.defaultAction}
	act := activation{in: in}
	var errs []error
	for _, r := range m.rules {
		a := r.action
		if r.prg != nil {
			fires, err := evalCondition(r.prg, &act)
			if err != nil {
				errs = append(errs, fmt.Errorf("masking rule %s: %w", r.id, err))
				a, fires = mask.Redact, true
			}
			if !fires {
				continue
			}
		}
		if plan.Actions == nil {
			plan.Actions = make(map[string]mask.Action, len(r.classes))
		}
		for _, class := range r.classes {
			if cur, ok := plan.Actions[class]; !ok || actionRank(a) < actionRank(cur) {
				plan.Actions[class] = a
			}
		}
	}
	return plan, errors.Join(errs...)
}

// evalCondition evaluates a compiled boolean condition.
func evalCondition(prg cel.Program, act *activation) (bool, error) {
	r := rule{prg: prg}
	return r.eval(act)
}

// parseMasking parses the masking section of one file.
func (p *parser) parseMasking(k, n *yaml.Node, doc *document) {
	if doc.Masking != nil {
		p.errorf(k, "", "masking already set in %s:%d", doc.Masking.at.file, doc.Masking.at.line)
		return
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "", "masking must be a mapping (default, hash_key_env, rules, paths, max_per_class)")
		return
	}
	def := &maskingDef{Default: string(mask.Redact), at: pos{p.file, k.Line}, defaultLine: k.Line}
	doc.Masking = def
	for i := 0; i+1 < len(n.Content); i += 2 {
		mk, mv := n.Content[i], n.Content[i+1]
		switch mk.Value {
		case "default":
			def.defaultLine = mv.Line
			if mv.Kind != yaml.ScalarNode {
				p.errorf(mv, "", "masking.default must be an action")
				continue
			}
			def.Default = mv.Value
			if _, err := mask.ParseAction(mv.Value); err != nil {
				p.errorf(mv, "", "masking.default: %v", err)
			}
		case "hash_key_env":
			def.hashKeyLine = mv.Line
			if mv.Kind != yaml.ScalarNode || !identifier.MatchString(mv.Value) {
				p.errorf(mv, "", "masking.hash_key_env must name an environment variable")
				continue
			}
			def.HashKeyEnv = mv.Value
		case "rules":
			p.parseMaskRules(mv, def)
		case "paths":
			p.parseMaskPaths(mv, def)
		case "detectors":
			p.parseMaskDetectors(mv, def)
		case "max_per_class":
			def.MaxPerClass, def.maxClassLine = p.parseClassLimits(mv, "max_per_class")
		case "max_per_task":
			def.MaxPerTask, def.maxTaskLine = p.parseClassLimits(mv, "max_per_task")
		default:
			p.errorf(mk, "", "unknown field masking.%s", mk.Value)
		}
	}
}

func (p *parser) parseMaskRules(n *yaml.Node, def *maskingDef) {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "", "masking.rules must be a list")
		return
	}
	seen := map[string]int{}
	for _, rn := range n.Content {
		if rn.Kind != yaml.MappingNode {
			p.errorf(rn, "", "a masking rule must be a mapping (id, classes, when, action)")
			continue
		}
		r := maskRuleDef{at: pos{p.file, rn.Line}}
		for i := 0; i+1 < len(rn.Content); i += 2 {
			if rn.Content[i].Value == "id" {
				r.ID = rn.Content[i+1].Value
			}
		}
		switch {
		case r.ID == "":
			p.errorf(rn, "", "masking rule without an id")
		case strings.ContainsAny(r.ID, " \t\n,"):
			p.errorf(rn, r.ID, "rule id may not contain spaces or commas")
		}
		if prev, dup := seen[r.ID]; dup && r.ID != "" {
			p.errorf(rn, r.ID, "duplicate masking rule id (first defined at line %d)", prev)
		}
		seen[r.ID] = rn.Line
		sawClasses, sawAction := false, false
		for i := 0; i+1 < len(rn.Content); i += 2 {
			k, v := rn.Content[i], rn.Content[i+1]
			switch k.Value {
			case "id":
			case "classes":
				sawClasses = true
				r.classesLine = v.Line
				r.Classes = p.stringList(v, r.ID, "classes")
				if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
					p.errorf(v, r.ID, "classes is empty")
				}
			case "when":
				r.whenLine = v.Line
				if v.Kind != yaml.ScalarNode {
					p.errorf(v, r.ID, "when must be a string")
					continue
				}
				r.When = v.Value
				if strings.TrimSpace(r.When) == "" {
					p.errorf(v, r.ID, "when is empty (leave it out for a rule that always applies)")
				}
			case "action":
				sawAction = true
				if v.Kind != yaml.ScalarNode {
					p.errorf(v, r.ID, "action must be a string")
					continue
				}
				r.Action = v.Value
				if _, err := mask.ParseAction(v.Value); err != nil {
					p.errorf(v, r.ID, "%v", err)
				}
			default:
				p.errorf(k, r.ID, "unknown field %q in masking rule", k.Value)
			}
		}
		if !sawClasses {
			p.errorf(rn, r.ID, "missing classes")
		}
		if !sawAction {
			p.errorf(rn, r.ID, "missing action")
		}
		def.Rules = append(def.Rules, r)
	}
}

func (p *parser) parseMaskPaths(n *yaml.Node, def *maskingDef) {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "", "masking.paths must be a list of {path, class}")
		return
	}
	for _, e := range n.Content {
		if e.Kind != yaml.MappingNode {
			p.errorf(e, "", "a masking path must be a mapping {path, class}")
			continue
		}
		d := maskPathDef{line: e.Line}
		for i := 0; i+1 < len(e.Content); i += 2 {
			k, v := e.Content[i], e.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				p.errorf(v, "", "masking path %s must be a string", k.Value)
				continue
			}
			switch k.Value {
			case "path":
				d.Path = v.Value
			case "class":
				d.Class = v.Value
			default:
				p.errorf(k, "", "unknown field %q in masking path", k.Value)
			}
		}
		if d.Path == "" || d.Class == "" {
			p.errorf(e, "", "a masking path needs both path and class")
			continue
		}
		if _, err := mask.New(mask.Options{Paths: []mask.PathRule{{Path: d.Path, Class: d.Class}}}); err != nil {
			p.errorf(e, "", "%v", err)
			continue
		}
		def.Paths = append(def.Paths, d)
	}
}

// parseMaskDetectors reads masking.detectors: each is {class, pattern,
// context, score} or {class, words, score}.
func (p *parser) parseMaskDetectors(n *yaml.Node, def *maskingDef) {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "", "masking.detectors must be a list of {class, pattern | words}")
		return
	}
	for _, e := range n.Content {
		var d maskDetector
		if err := e.Decode(&struct {
			Class   *string   `yaml:"class"`
			Pattern *string   `yaml:"pattern"`
			Context *[]string `yaml:"context"`
			Words   *[]string `yaml:"words"`
			Score   *float64  `yaml:"score"`
		}{&d.Class, &d.Pattern, &d.Context, &d.Words, &d.Score}); err != nil {
			p.errorf(e, "", "masking detector: %v", err)
			continue
		}
		d.line = e.Line
		if _, err := d.detector(); err != nil {
			p.errorf(e, "", "%v", err)
			continue
		}
		def.Detectors = append(def.Detectors, d)
	}
}

// detector builds the detector d describes.
func (d maskDetector) detector() (detect.Detector, error) {
	switch {
	case d.Class == "":
		return nil, errors.New("a masking detector needs a class")
	case (d.Pattern == "") == (len(d.Words) == 0):
		return nil, fmt.Errorf("masking detector %s: give a pattern or words, not both", d.Class)
	case d.Pattern != "":
		return detect.NewRegexDetector(detect.RegexSpec{Class: d.Class, Pattern: d.Pattern, Score: d.Score, Context: d.Context})
	default:
		return detect.NewDictionaryDetector(d.Class, d.Words, d.Score)
	}
}

// parseClassLimits reads a mapping of class to a positive limit.
func (p *parser) parseClassLimits(n *yaml.Node, field string) (map[string]int, map[string]int) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "", "masking.%s must be a mapping of class to a number", field)
		return nil, nil
	}
	limits, lines := map[string]int{}, map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var limit int
		if err := v.Decode(&limit); err != nil || v.Tag != "!!int" || limit <= 0 {
			p.errorf(v, "", "masking.%s.%s must be a positive integer", field, k.Value)
			continue
		}
		limits[k.Value] = limit
		lines[k.Value] = k.Line
	}
	return limits, lines
}

// knownClasses lists the classes masking can meet: the built-in ones and
// the classes of the path rules.
func (def *maskingDef) knownClasses() []string {
	classes := slices.Clone(detect.BuiltinClasses)
	for _, pd := range def.Paths {
		if !slices.Contains(classes, pd.Class) {
			classes = append(classes, pd.Class)
		}
	}
	for _, d := range def.Detectors {
		if !slices.Contains(classes, d.Class) {
			classes = append(classes, d.Class)
		}
	}
	sort.Strings(classes)
	return classes
}

// classesFor expands a class entry (name, label or glob over both,
// case-insensitive) to the known classes it covers.
func classesFor(entry string, known []string) ([]string, error) {
	g, err := compileGlob(strings.ToLower(entry))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, class := range known {
		if g.match(strings.ToLower(class)) || slices.ContainsFunc(detect.Labels(class), func(l string) bool { return g.match(l) }) {
			out = append(out, class)
		}
	}
	return out, nil
}

// compileMasking compiles the masking section; lookupEnv reads the hash key.
func (c *Compiler) compileMasking(def *maskingDef, lookupEnv func(string) (string, bool)) (*masking, []error) {
	var errs []error
	fail := func(line int, rule, format string, args ...any) {
		errs = append(errs, &Error{File: def.at.file, Line: line, Rule: rule, Msg: fmt.Sprintf(format, args...)})
	}
	m := &masking{}
	var err error
	if m.defaultAction, err = mask.ParseAction(def.Default); err != nil {
		return nil, nil // reported by the parser
	}
	known := def.knownClasses()
	usesHash := m.defaultAction == mask.Hash
	for i := range def.Rules {
		rd := &def.Rules[i]
		action, err := mask.ParseAction(rd.Action)
		if err != nil {
			continue // reported by the parser
		}
		usesHash = usesHash || action == mask.Hash
		r := &maskRule{id: rd.ID, action: action}
		for _, entry := range rd.Classes {
			classes, err := classesFor(entry, known)
			switch {
			case err != nil:
				fail(rd.classesLine, rd.ID, "classes: %v", err)
			case len(classes) == 0:
				fail(rd.classesLine, rd.ID, "classes: %q matches no class or label (classes: %s; labels: pii, financial, secret, sensitive)",
					entry, strings.Join(known, ", "))
			}
			for _, class := range classes {
				if !slices.Contains(r.classes, class) {
					r.classes = append(r.classes, class)
				}
			}
		}
		if rd.When != "" {
			line := rd.whenLine
			if line == 0 {
				line = rd.at.line
			}
			prg, err := c.compileCondition(rd.When)
			if err != nil {
				fail(line, rd.ID, "when: %v", err)
				continue
			}
			r.prg = prg
		}
		m.rules = append(m.rules, r)
	}
	for _, pd := range def.Paths {
		m.settings.Paths = append(m.settings.Paths, mask.PathRule{Path: pd.Path, Class: pd.Class})
	}
	m.settings.Scanner = detect.Default()
	if len(def.Detectors) > 0 {
		var custom []detect.Detector
		for _, d := range def.Detectors {
			det, err := d.detector()
			if err != nil {
				fail(d.line, "", "%v", err)
				continue
			}
			custom = append(custom, det)
		}
		scanner, err := detect.NewScanner(detect.Options{Detectors: custom})
		if err != nil {
			fail(def.at.line, "", "masking.detectors: %v", err)
		} else {
			m.settings.Scanner = scanner
		}
	}
	limits := func(field string, defs, lines map[string]int) map[string]int {
		if len(defs) == 0 {
			return nil
		}
		out := make(map[string]int, len(defs))
		for class, limit := range defs {
			if !slices.Contains(known, class) {
				fail(lines[class], "", "masking.%s: unknown class %q (classes: %s)", field, class, strings.Join(known, ", "))
				continue
			}
			out[class] = limit
		}
		return out
	}
	m.settings.MaxPerClass = limits("max_per_class", def.MaxPerClass, def.maxClassLine)
	m.settings.MaxPerTask = limits("max_per_task", def.MaxPerTask, def.maxTaskLine)
	switch {
	case usesHash && def.HashKeyEnv == "":
		fail(def.at.line, "", "masking hashes values but sets no hash_key_env")
	case usesHash:
		key, ok := lookupEnv(def.HashKeyEnv)
		if !ok || len(key) < 16 {
			fail(def.hashKeyLine, "", "masking.hash_key_env: environment variable %s must hold a key of at least 16 bytes", def.HashKeyEnv)
		}
		m.settings.HashKey = []byte(key)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return m, nil
}

// compileCondition compiles a boolean CEL condition as rules' conditions
// are compiled: type-checked, field names checked, cost bounded, metered
// when its cost could grow faster than its input.
func (c *Compiler) compileCondition(expr string) (cel.Program, error) {
	checked, iss := c.env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return nil, errors.New(celMessage(iss.Err().Error()))
	}
	if t := checked.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
		return nil, fmt.Errorf("must be a boolean condition, not %s", t)
	}
	if err := checkFields(checked); err != nil {
		return nil, err
	}
	est, err := c.env.EstimateCost(checked, costEstimator{functions: c.functions, size: assumedValueSize})
	if err != nil {
		return nil, fmt.Errorf("estimating cost: %w", err)
	}
	if est.Max > c.costLimit {
		return nil, fmt.Errorf("may cost up to %d, more than the limit of %d", est.Max, c.costLimit)
	}
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	meter := hasComprehension(checked)
	if !meter {
		est2, err := c.env.EstimateCost(checked, costEstimator{functions: c.functions, size: 2 * assumedValueSize})
		meter = err != nil || est2.Max > 2*est.Max+2
	}
	if meter {
		opts = append(opts, cel.CostLimit(c.costLimit))
	}
	return c.env.Program(checked, opts...)
}
