package mask

import (
	"fmt"
	"strconv"
	"strings"
)

// pathSeg is one step of the walker's current position: an object key or
// an array index.
type pathSeg struct {
	key   []byte // decoded key, for matching rules
	shown []byte // key as reported (masked if the key itself was sensitive)
	index int
	isKey bool
}

type ruleTok struct {
	name    string
	any     bool // * : any key or index
	index   int  // -1 unless an exact index
	descend bool // ..: zero or more steps before this one
}

type compiledRule struct {
	class string
	toks  []ruleTok
}

// compileRule parses the JSONPath subset described on PathRule.
func compileRule(r PathRule) (compiledRule, error) {
	bad := func(why string) (compiledRule, error) {
		return compiledRule{}, fmt.Errorf("mask: path rule %q: %s", r.Path, why)
	}
	if r.Class == "" {
		return bad("no class")
	}
	p := r.Path
	if !strings.HasPrefix(p, "$") {
		return bad("must start with $")
	}
	p = p[1:]
	var toks []ruleTok
	for len(p) > 0 {
		tok := ruleTok{index: -1}
		switch {
		case strings.HasPrefix(p, ".."):
			tok.descend = true
			p = p[2:]
			if strings.HasPrefix(p, "[") {
				goto bracket
			}
			fallthrough
		case p[0] == '.':
			if !tok.descend {
				p = p[1:]
			}
			n := 0
			for n < len(p) && p[n] != '.' && p[n] != '[' {
				n++
			}
			if n == 0 {
				return bad("empty name")
			}
			if p[:n] == "*" {
				tok.any = true
			} else {
				tok.name = p[:n]
			}
			p = p[n:]
			toks = append(toks, tok)
			continue
		case p[0] == '[':
		default:
			return bad(fmt.Sprintf("unexpected %q", p[0]))
		}
	bracket:
		end := strings.IndexByte(p, ']')
		if end < 0 {
			return bad("unclosed [")
		}
		in := p[1:end]
		p = p[end+1:]
		switch {
		case in == "*":
			tok.any = true
		case len(in) >= 2 && (in[0] == '\'' || in[0] == '"') && in[len(in)-1] == in[0]:
			tok.name = in[1 : len(in)-1]
		default:
			n, err := strconv.Atoi(in)
			if err != nil || n < 0 {
				return bad(fmt.Sprintf("bad index %q", in))
			}
			tok.index = n
		}
		toks = append(toks, tok)
	}
	if len(toks) == 0 {
		return bad("matches only the root")
	}
	return compiledRule{class: r.Class, toks: toks}, nil
}

func (t ruleTok) matches(s pathSeg) bool {
	switch {
	case t.any:
		return true
	case t.index >= 0:
		return !s.isKey && s.index == t.index
	default:
		return s.isKey && string(s.key) == t.name
	}
}

func matchPath(toks []ruleTok, segs []pathSeg) bool {
	if len(toks) == 0 {
		return len(segs) == 0
	}
	t := toks[0]
	if t.descend {
		for k := range segs {
			if t.matches(segs[k]) && matchPath(toks[1:], segs[k+1:]) {
				return true
			}
		}
		return false
	}
	return len(segs) > 0 && t.matches(segs[0]) && matchPath(toks[1:], segs[1:])
}

// appendPath renders segments as JSONPath.
func appendPath(b []byte, segs []pathSeg) []byte {
	b = append(b, '$')
	for _, s := range segs {
		switch {
		case !s.isKey:
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(s.index), 10)
			b = append(b, ']')
		case simpleName(s.shown):
			b = append(b, '.')
			b = append(b, s.shown...)
		default:
			b = append(b, '[')
			b = strconv.AppendQuote(b, string(s.shown))
			b = append(b, ']')
		}
	}
	return b
}

func simpleName(k []byte) bool {
	if len(k) == 0 {
		return false
	}
	for i, c := range k {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
