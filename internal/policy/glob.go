package policy

import (
	"errors"
	"strings"
)

// glob is a precompiled name pattern. '*' matches any run of characters,
// dots and slashes included ('**' is the same), so "shop.*" covers every tool
// of the shop server, "shop.admin.delete" too: a deny rule on a namespace
// cannot be sidestepped by a dotted tool name. Every other character matches
// itself; matching is case-sensitive.
type glob struct {
	pattern string
	// parts are the literal pieces between stars; with no star the pattern
	// is exact and parts holds it alone.
	parts []string
	exact bool
}

func compileGlob(pattern string) (glob, error) {
	if pattern == "" {
		return glob{}, errors.New("empty name pattern")
	}
	if !strings.Contains(pattern, "*") {
		return glob{pattern: pattern, parts: []string{pattern}, exact: true}, nil
	}
	return glob{pattern: pattern, parts: strings.Split(pattern, "*")}, nil
}

func (g *glob) match(name string) bool {
	if g.exact {
		return name == g.pattern
	}
	first, last := g.parts[0], g.parts[len(g.parts)-1]
	if len(name) < len(first)+len(last) || !strings.HasPrefix(name, first) || !strings.HasSuffix(name, last) {
		return false
	}
	rest := name[len(first) : len(name)-len(last)]
	for _, p := range g.parts[1 : len(g.parts)-1] {
		if p == "" {
			continue
		}
		i := strings.Index(rest, p)
		if i < 0 {
			return false
		}
		rest = rest[i+len(p):]
	}
	return true
}

// MatchGlob reports whether name matches pattern by the rule above; task
// grants name their tools the same way as policy targets do.
func MatchGlob(pattern, name string) bool {
	g, err := compileGlob(pattern)
	return err == nil && g.match(name)
}

// matchesAll reports whether the glob matches every name.
func (g *glob) matchesAll() bool {
	return strings.Trim(g.pattern, "*") == ""
}

// globsOverlap reports whether some name matches both patterns.
func globsOverlap(a, b string) bool {
	memo := make(map[[2]int]bool)
	var rec func(i, j int) bool
	rec = func(i, j int) bool {
		key := [2]int{i, j}
		if v, ok := memo[key]; ok {
			return v
		}
		var r bool
		switch {
		case i == len(a) && j == len(b):
			r = true
		case i < len(a) && a[i] == '*':
			r = rec(i+1, j) || (j < len(b) && rec(i, j+1))
		case j < len(b) && b[j] == '*':
			r = rec(i, j+1) || (i < len(a) && rec(i+1, j))
		case i < len(a) && j < len(b):
			r = a[i] == b[j] && rec(i+1, j+1)
		}
		memo[key] = r
		return r
	}
	return rec(0, 0)
}

// globCovers reports whether every name matched by inner is matched by
// outer. It is exact when inner has no star and conservative (may answer
// false) otherwise.
func globCovers(outer, inner glob) bool {
	if outer.matchesAll() || outer.pattern == inner.pattern {
		return true
	}
	if inner.exact {
		return outer.match(inner.pattern)
	}
	// outer "prefix*" covers any inner starting with that prefix.
	if len(outer.parts) == 2 && outer.parts[1] == "" {
		return strings.HasPrefix(inner.parts[0], outer.parts[0])
	}
	return false
}
