package jsonstr

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// TestFoldKeyMatchesEqualFold pins, over every rune, that folded keys agree
// with strings.EqualFold: a rune and every rune of its folding orbit fold to
// the same key, the smallest rune of the orbit.
func TestFoldKeyMatchesEqualFold(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		s := string(r)
		f := FoldKey(s)
		for o := unicode.SimpleFold(r); o != r; o = unicode.SimpleFold(o) {
			if g := FoldKey(string(o)); g != f {
				t.Fatalf("FoldKey(%q) = %q but FoldKey(%q) = %q", s, f, string(o), g)
			}
		}
		if fr, _ := utf8.DecodeRuneInString(f); !strings.EqualFold(s, f) || fr > r {
			t.Fatalf("FoldKey(%q) = %q, want the smallest rune of the same fold", s, f)
		}
	}
}

func FuzzFoldKey(f *testing.F) {
	for _, p := range [][2]string{{"a", "A"}, {"k", "K"}, {"ǅ", "ǆ"}, {"İ", "i"}, {"ss", "ß"}, {"Σς", "σΣ"}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !utf8.ValidString(a) || !utf8.ValidString(b) {
			return
		}
		if got, want := FoldKey(a) == FoldKey(b), strings.EqualFold(a, b); got != want {
			t.Fatalf("FoldKey(%q) == FoldKey(%q) is %v, EqualFold is %v", a, b, got, want)
		}
	})
}
