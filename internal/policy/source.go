package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in a policy source, located by file, line and rule.
type Error struct {
	File string
	Line int
	Rule string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Rule != "" {
		fmt.Fprintf(&b, "rule %s: ", e.Rule)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// source is one policy file's name and contents.
type source struct {
	name string
	data []byte
}

// readSources reads the policy files named by paths: files as given,
// directories as their *.yaml and *.yml files (not recursive) minus the
// *_test.yaml table tests, in name order.
func readSources(paths []string) ([]source, error) {
	if len(paths) == 0 {
		return nil, errors.New("no policy file given")
	}
	var files []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		var found []string
		for _, e := range entries {
			n := e.Name()
			if e.IsDir() || isTestFile(n) || !(strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
				continue
			}
			found = append(found, filepath.Join(p, n))
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("policy: directory %s holds no *.yaml file", p)
		}
		sort.Strings(found)
		files = append(files, found...)
	}
	srcs := make([]source, 0, len(files))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		srcs = append(srcs, source{name: f, data: data})
	}
	return srcs, nil
}

func isTestFile(name string) bool {
	return strings.HasSuffix(name, "_test.yaml") || strings.HasSuffix(name, "_test.yml")
}

// The parsed, not yet compiled policy. JSON tags define the canonical form
// the policy version is hashed from.
type document struct {
	Version  int                `json:"version"`
	Defaults defaults           `json:"defaults"`
	Roles    map[string]roleDef `json:"roles"`
	Rules    []ruleDef          `json:"rules"`
	Tools    map[string]any     `json:"tools"`
	Masking  *maskingDef        `json:"masking,omitempty"`

	// Positions for errors and lint, not part of the canonical form.
	roleAt map[string]pos
	toolAt map[string]pos
}

type pos struct {
	file string
	line int
}

type defaults struct {
	Shadow bool `json:"shadow"`
}

type roleDef struct {
	Tools     []string `json:"tools,omitempty"`
	Resources []string `json:"resources,omitempty"`
	Prompts   []string `json:"prompts,omitempty"`
	Inherits  []string `json:"inherits,omitempty"`
}

type ruleDef struct {
	ID        string   `json:"id"`
	Kind      Kind     `json:"-"`
	Target    string   `json:"target"`
	KindName  string   `json:"kind"`
	When      string   `json:"when,omitempty"`
	Effect    string   `json:"effect"`
	Reason    string   `json:"reason,omitempty"`
	Approvers []string `json:"approvers,omitempty"`
	Shadow    bool     `json:"shadow,omitempty"`
	at        pos
	whenLine  int
}

// parser accumulates errors so that a policy's problems are reported at once.
type parser struct {
	file string
	errs []error
}

func (p *parser) errorf(n *yaml.Node, rule, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Rule: rule, Msg: fmt.Sprintf(format, args...)})
}

// parseSources parses and merges policy files. Everything that can be
// checked without CEL or schemas is checked here.
func parseSources(srcs []source) (*document, []error) {
	doc := &document{
		Roles:  map[string]roleDef{},
		Tools:  map[string]any{},
		roleAt: map[string]pos{},
		toolAt: map[string]pos{},
	}
	var errs []error
	defaultsAt := ""
	for _, src := range srcs {
		p := &parser{file: src.name}
		p.parseFile(src.data, doc, &defaultsAt)
		errs = append(errs, p.errs...)
	}
	seen := map[string]pos{}
	for _, r := range doc.Rules {
		if prev, dup := seen[r.ID]; dup && r.ID != "" {
			errs = append(errs, &Error{File: r.at.file, Line: r.at.line, Rule: r.ID,
				Msg: fmt.Sprintf("duplicate rule id (first defined at %s:%d)", prev.file, prev.line)})
			continue
		}
		seen[r.ID] = r.at
	}
	return doc, errs
}

func (p *parser) parseFile(data []byte, doc *document, defaultsAt *string) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		p.errs = append(p.errs, &Error{File: p.file, Msg: fmt.Sprintf("invalid YAML: %v", err)})
		return
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		p.errorf(nil, "", "empty policy file")
		return
	}
	top := root.Content[0]
	if !p.checkNodes(top) {
		return
	}
	if top.Kind != yaml.MappingNode {
		p.errorf(top, "", "a policy file is a mapping with version, roles, rules, defaults and tools")
		return
	}
	sawVersion := false
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		switch k.Value {
		case "version":
			sawVersion = true
			var n int
			if err := v.Decode(&n); err != nil || n != 1 {
				p.errorf(v, "", "unsupported version %q (want 1)", v.Value)
			}
			doc.Version = 1
		case "roles":
			p.parseRoles(v, doc)
		case "rules":
			p.parseRules(v, doc)
		case "defaults":
			if *defaultsAt != "" {
				p.errorf(k, "", "defaults already set in %s", *defaultsAt)
				continue
			}
			*defaultsAt = p.file
			p.parseDefaults(v, doc)
		case "tools":
			p.parseTools(v, doc)
		case "masking":
			p.parseMasking(k, v, doc)
		default:
			p.errorf(k, "", "unknown field %q", k.Value)
		}
	}
	if !sawVersion {
		p.errorf(top, "", "missing version: 1")
	}
}

// checkNodes rejects aliases (a policy is read literally, and aliases can
// expand exponentially) and duplicate keys anywhere in the file.
func (p *parser) checkNodes(n *yaml.Node) bool {
	ok := true
	switch n.Kind {
	case yaml.AliasNode:
		p.errorf(n, "", "YAML aliases are not supported in policy files")
		return false
	case yaml.MappingNode:
		seen := make(map[string]int, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if prev, dup := seen[k.Value]; dup {
				p.errorf(k, "", "duplicate key %q (first at line %d)", k.Value, prev)
				ok = false
			}
			seen[k.Value] = k.Line
		}
	}
	for _, c := range n.Content {
		if !p.checkNodes(c) {
			ok = false
		}
	}
	return ok
}

func (p *parser) parseDefaults(n *yaml.Node, doc *document) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "", "defaults must be a mapping")
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "shadow":
			if err := v.Decode(&doc.Defaults.Shadow); err != nil {
				p.errorf(v, "", "defaults.shadow must be true or false")
			}
		default:
			p.errorf(k, "", "unknown field defaults.%s", k.Value)
		}
	}
}

func (p *parser) stringList(n *yaml.Node, rule, field string) []string {
	var out []string
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, rule, "%s must be a list of strings", field)
		return nil
	}
	for _, e := range n.Content {
		if e.Kind != yaml.ScalarNode || e.Tag != "!!str" && e.Tag != "" {
			p.errorf(e, rule, "%s must be a list of strings", field)
			continue
		}
		out = append(out, e.Value)
	}
	return out
}

func (p *parser) parseRoles(n *yaml.Node, doc *document) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "", "roles must be a mapping of role name to grants")
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := k.Value
		if prev, dup := doc.roleAt[name]; dup {
			p.errorf(k, "", "role %q already defined at %s:%d", name, prev.file, prev.line)
			continue
		}
		doc.roleAt[name] = pos{p.file, k.Line}
		if v.Kind != yaml.MappingNode {
			p.errorf(v, "", "role %q must be a mapping (tools, resources, prompts, inherits)", name)
			continue
		}
		var r roleDef
		for j := 0; j+1 < len(v.Content); j += 2 {
			rk, rv := v.Content[j], v.Content[j+1]
			field := "role " + name + " " + rk.Value
			switch rk.Value {
			case "tools":
				r.Tools = p.globList(rv, field)
			case "resources":
				r.Resources = p.globList(rv, field)
			case "prompts":
				r.Prompts = p.globList(rv, field)
			case "inherits":
				r.Inherits = p.stringList(rv, "", field)
			default:
				p.errorf(rk, "", "unknown field %q in role %q", rk.Value, name)
			}
		}
		doc.Roles[name] = r
	}
}

func (p *parser) globList(n *yaml.Node, field string) []string {
	list := p.stringList(n, "", field)
	for i, g := range list {
		if _, err := compileGlob(g); err != nil {
			p.errorf(n.Content[i], "", "%s: %v", field, err)
		}
	}
	return list
}

func (p *parser) parseTools(n *yaml.Node, doc *document) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "", "tools must be a mapping of tool name to argument schema")
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if strings.Contains(k.Value, "*") {
			p.errorf(k, "", "tools: %q: argument schemas take exact tool names", k.Value)
			continue
		}
		if prev, dup := doc.toolAt[k.Value]; dup {
			p.errorf(k, "", "tools: %q already has a schema at %s:%d", k.Value, prev.file, prev.line)
			continue
		}
		var schema any
		if err := v.Decode(&schema); err != nil {
			p.errorf(v, "", "tools: %q: %v", k.Value, err)
			continue
		}
		doc.Tools[k.Value] = schema
		doc.toolAt[k.Value] = pos{p.file, v.Line}
	}
}

var reservedRuleIDs = map[string]bool{RuleRole: true, RuleDefaultDeny: true, RuleInput: true, RuleShadowMode: true, RuleArguments: true}

func (p *parser) parseRules(n *yaml.Node, doc *document) {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "", "rules must be a list")
		return
	}
	for _, rn := range n.Content {
		if rn.Kind != yaml.MappingNode {
			p.errorf(rn, "", "a rule must be a mapping")
			continue
		}
		r := ruleDef{at: pos{p.file, rn.Line}}
		// The id first, so every other error can name the rule.
		for i := 0; i+1 < len(rn.Content); i += 2 {
			if rn.Content[i].Value == "id" {
				r.ID = rn.Content[i+1].Value
			}
		}
		if r.ID == "" {
			p.errorf(rn, "", "rule without an id")
		} else if reservedRuleIDs[r.ID] {
			p.errorf(rn, r.ID, "rule id %q is reserved", r.ID)
		} else if strings.ContainsAny(r.ID, " \t\n,") {
			p.errorf(rn, r.ID, "rule id may not contain spaces or commas")
		}
		targets := 0
		effectSet := false
		for i := 0; i+1 < len(rn.Content); i += 2 {
			k, v := rn.Content[i], rn.Content[i+1]
			scalar := func() string {
				if v.Kind != yaml.ScalarNode {
					p.errorf(v, r.ID, "%s must be a string", k.Value)
					return ""
				}
				return v.Value
			}
			switch k.Value {
			case "id":
			case "tool", "resource", "prompt", "method":
				targets++
				r.KindName = k.Value
				r.Kind = map[string]Kind{"tool": KindTool, "resource": KindResource, "prompt": KindPrompt, "method": KindMethod}[k.Value]
				r.Target = scalar()
				if _, err := compileGlob(r.Target); err != nil {
					p.errorf(v, r.ID, "%s: %v", k.Value, err)
				}
			case "when":
				r.When = scalar()
				r.whenLine = v.Line
				if strings.TrimSpace(r.When) == "" {
					p.errorf(v, r.ID, "when is empty (leave it out for a rule that always applies)")
				}
			case "effect":
				effectSet = true
				r.Effect = scalar()
				if _, err := ParseEffect(r.Effect); err != nil {
					p.errorf(v, r.ID, "%v", err)
				}
			case "reason":
				r.Reason = scalar()
			case "approvers":
				r.Approvers = p.stringList(v, r.ID, "approvers")
			case "shadow":
				if err := v.Decode(&r.Shadow); err != nil {
					p.errorf(v, r.ID, "shadow must be true or false")
				}
			default:
				p.errorf(k, r.ID, "unknown field %q", k.Value)
			}
		}
		if targets != 1 {
			p.errorf(rn, r.ID, "a rule names exactly one of tool, resource, prompt or method (found %d)", targets)
		}
		if !effectSet {
			p.errorf(rn, r.ID, "missing effect")
		}
		if r.Shadow && r.Effect != "deny" {
			p.errorf(rn, r.ID, "shadow applies to deny rules only")
		}
		if len(r.Approvers) > 0 && r.Effect != "approve" {
			p.errorf(rn, r.ID, "approvers apply to approve rules only")
		}
		doc.Rules = append(doc.Rules, r)
	}
}
