package policy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// This file holds the work behind `warden policy test`, `eval` and `lint`.

// maxEvalInput bounds what EvalStream reads for one call.
const maxEvalInput = 16 << 20

// EvalStream decides calls read from r and writes one JSON decision per call
// to w. Without jsonl, r holds one call; with jsonl, one call per line (blank
// lines skipped). A call that cannot be parsed produces {"error": …} and the
// stream goes on; the returned error then counts them.
func EvalStream(r io.Reader, w io.Writer, p *Policy, jsonl bool) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	now := time.Now()
	if !jsonl {
		raw, err := io.ReadAll(io.LimitReader(r, maxEvalInput+1))
		if err != nil {
			return fmt.Errorf("read call: %w", err)
		}
		if len(raw) > maxEvalInput {
			return fmt.Errorf("call is larger than %d bytes", maxEvalInput)
		}
		in, err := ParseCall(bytes.TrimSpace(raw), now)
		if err != nil {
			return err
		}
		return enc.Encode(toDecisionJSON(p.DecideCall(in)))
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEvalInput)
	line, bad := 0, 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		in, err := ParseCall(text, now)
		if err != nil {
			bad++
			if err := enc.Encode(map[string]any{"line": line, "error": err.Error()}); err != nil {
				return err
			}
			continue
		}
		if err := enc.Encode(toDecisionJSON(p.DecideCall(in))); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read calls: line %d: %w", line+1, err)
	}
	if bad > 0 {
		return fmt.Errorf("%d of the input lines were not valid calls", bad)
	}
	return nil
}

// TestFiles returns the table-test files kept beside the policy: the
// *_test.yaml (and *_test.yml) files in each policy directory, or in the
// directory of each policy file.
func TestFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		dir := p
		if info, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("policy tests: %w", err)
		} else if !info.IsDir() {
			dir = filepath.Dir(p)
		}
		for _, pat := range []string{"*_test.yaml", "*_test.yml"} {
			m, err := filepath.Glob(filepath.Join(dir, pat))
			if err != nil {
				return nil, fmt.Errorf("policy tests: %w", err)
			}
			for _, f := range m {
				if !slices.Contains(out, f) {
					out = append(out, f)
				}
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// testCase is one table test: a call and the decision expected for it.
type testCase struct {
	Name   string          `json:"name"`
	Input  json.RawMessage `json:"input"`
	Expect struct {
		Effect      string   `json:"effect"`
		Rules       []string `json:"rules"`
		Reason      string   `json:"reason"` // a substring of the reason
		Approvers   []string `json:"approvers"`
		Shadowed    *bool    `json:"shadowed"`
		WouldBe     string   `json:"would_be"`
		ShadowRules []string `json:"shadow_rules"`
	} `json:"expect"`
	line int
}

// RunTests runs the table tests in files against p and writes one line per
// failing case and a summary to w. It returns how many cases failed; err is
// for files that cannot be read or parsed.
func RunTests(w io.Writer, p *Policy, files []string) (failed int, err error) {
	if len(files) == 0 {
		return 0, errors.New("no policy test files (*_test.yaml beside the policy)")
	}
	passed := 0
	now := time.Now()
	for _, f := range files {
		cases, err := readTestFile(f)
		if err != nil {
			return failed, err
		}
		for _, tc := range cases {
			in, err := ParseCall(tc.Input, now)
			if err != nil {
				failed++
				fmt.Fprintf(w, "FAIL %s:%d: %s: bad input: %v\n", f, tc.line, tc.Name, err)
				continue
			}
			if problems := tc.check(p.DecideCall(in)); len(problems) > 0 {
				failed++
				fmt.Fprintf(w, "FAIL %s:%d: %s: %s\n", f, tc.line, tc.Name, strings.Join(problems, "; "))
				continue
			}
			passed++
		}
	}
	if failed > 0 {
		fmt.Fprintf(w, "FAIL: %d passed, %d failed\n", passed, failed)
	} else {
		fmt.Fprintf(w, "ok: %d passed\n", passed)
	}
	return failed, nil
}

func (tc *testCase) check(d Decision) []string {
	var problems []string
	if d.Effect.String() != tc.Expect.Effect {
		msg := fmt.Sprintf("effect %s (rules %s, reason %q), want %s", d.Effect, strings.Join(d.Rules, ","), d.Reason, tc.Expect.Effect)
		if d.Err != nil {
			msg += fmt.Sprintf(" [error: %v]", d.Err)
		}
		problems = append(problems, msg)
	}
	if tc.Expect.Rules != nil && !slices.Equal(d.Rules, tc.Expect.Rules) {
		problems = append(problems, fmt.Sprintf("rules [%s], want [%s]", strings.Join(d.Rules, ","), strings.Join(tc.Expect.Rules, ",")))
	}
	if tc.Expect.Reason != "" && !strings.Contains(d.Reason, tc.Expect.Reason) {
		problems = append(problems, fmt.Sprintf("reason %q does not contain %q", d.Reason, tc.Expect.Reason))
	}
	if tc.Expect.Approvers != nil && !slices.Equal(d.Approvers, tc.Expect.Approvers) {
		problems = append(problems, fmt.Sprintf("approvers [%s], want [%s]", strings.Join(d.Approvers, ","), strings.Join(tc.Expect.Approvers, ",")))
	}
	if tc.Expect.Shadowed != nil && d.Shadowed != *tc.Expect.Shadowed {
		problems = append(problems, fmt.Sprintf("shadowed %v, want %v", d.Shadowed, *tc.Expect.Shadowed))
	}
	if tc.Expect.WouldBe != "" && (!d.Shadowed || d.WouldBe.String() != tc.Expect.WouldBe) {
		problems = append(problems, fmt.Sprintf("would be %s (shadowed %v), want %s", d.WouldBe, d.Shadowed, tc.Expect.WouldBe))
	}
	if tc.Expect.ShadowRules != nil && !slices.Equal(d.ShadowRules, tc.Expect.ShadowRules) {
		problems = append(problems, fmt.Sprintf("shadow rules [%s], want [%s]", strings.Join(d.ShadowRules, ","), strings.Join(tc.Expect.ShadowRules, ",")))
	}
	return problems
}

func readTestFile(name string) ([]testCase, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("policy tests: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("policy tests: %s: %w", name, err)
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("policy tests: %s: want a mapping with a cases list", name)
	}
	top := root.Content[0]
	var casesNode *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		switch top.Content[i].Value {
		case "cases":
			casesNode = top.Content[i+1]
		default:
			return nil, fmt.Errorf("policy tests: %s:%d: unknown field %q", name, top.Content[i].Line, top.Content[i].Value)
		}
	}
	if casesNode == nil || casesNode.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("policy tests: %s: want a cases list", name)
	}
	var out []testCase
	for _, n := range casesNode.Content {
		var generic any
		if err := n.Decode(&generic); err != nil {
			return nil, fmt.Errorf("policy tests: %s:%d: %w", name, n.Line, err)
		}
		raw, err := json.Marshal(generic)
		if err != nil {
			return nil, fmt.Errorf("policy tests: %s:%d: %w", name, n.Line, err)
		}
		var tc testCase
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&tc); err != nil {
			return nil, fmt.Errorf("policy tests: %s:%d: %w", name, n.Line, err)
		}
		if tc.Name == "" || tc.Expect.Effect == "" {
			return nil, fmt.Errorf("policy tests: %s:%d: a case needs a name and expect.effect", name, n.Line)
		}
		if _, err := ParseEffect(tc.Expect.Effect); err != nil {
			return nil, fmt.Errorf("policy tests: %s:%d: %w", name, n.Line, err)
		}
		tc.line = n.Line
		out = append(out, tc)
	}
	return out, nil
}

// Lint writes warnings about a compiled policy to w (problems that make it
// fail to compile are Load's errors) and returns how many it wrote.
func Lint(w io.Writer, p *Policy) int {
	var warnings []*Error
	warn := func(r *rule, format string, args ...any) {
		warnings = append(warnings, &Error{File: r.at.file, Line: r.at.line, Rule: r.id, Msg: "warning: " + fmt.Sprintf(format, args...)})
	}
	hasAllow := false
	for _, r := range p.rules {
		if r.effect == Allow {
			hasAllow = true
		}
		if r.effect == Deny && !r.statedReason {
			warn(r, "deny rule without a reason; callers see only %q", r.reason)
		}
		if r.effect == Approve && len(r.approvers) == 0 {
			warn(r, "approve rule names no approvers")
		}
		if r.kind != KindMethod && !p.anyRoleOverlaps(r.kind, r.target.pattern) {
			warn(r, "no role grants a %s matching %q, so the rule never applies", r.kind, r.target.pattern)
		}
		for _, d := range p.rules {
			if d == r || d.effect != Deny || d.prg != nil || d.shadow || d.kind != r.kind {
				continue
			}
			if r.effect == Deny && r.prg == nil && d.seq > r.seq {
				continue // of two unconditional denies, report only the later one
			}
			if globCovers(d.target, r.target) {
				warn(r, "unreachable: every %s it matches is denied by rule %s (%s:%d)", r.kind, d.id, d.at.file, d.at.line)
				break
			}
		}
	}
	if !hasAllow && len(p.rules) > 0 {
		warnings = append(warnings, &Error{File: p.rules[0].at.file, Msg: "warning: no allow rule: every call is denied"})
	}
	for _, wn := range warnings {
		fmt.Fprintln(w, wn.Error())
	}
	return len(warnings)
}

func (p *Policy) anyRoleOverlaps(k Kind, pattern string) bool {
	for _, g := range p.roles {
		for _, gl := range g.globs[k] {
			if globsOverlap(gl.pattern, pattern) {
				return true
			}
		}
	}
	return false
}
