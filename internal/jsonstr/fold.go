package jsonstr

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// FoldKey returns the canonical form of s under Unicode simple case
// folding: for valid UTF-8, FoldKey(a) == FoldKey(b) exactly when
// strings.EqualFold(a, b), the way Go decoders match keys to struct fields.
// Each rune becomes the smallest rune of its folding orbit; in ASCII that is
// the upper case, also for k and s, whose orbits hold KELVIN SIGN and LONG S.
// An ASCII key without lower-case letters is returned as it is.
func FoldKey(s string) string {
	i := 0
	for i < len(s) && s[i] < utf8.RuneSelf && (s[i] < 'a' || s[i] > 'z') {
		i++
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	// The smallest rune of an orbit never takes more bytes than another.
	b.Grow(len(s))
	b.WriteString(s[:i])
	for _, r := range s[i:] {
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
			b.WriteByte(byte(r))
			continue
		}
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

// foldRune returns the smallest rune that folds to the same as r.
func foldRune(r rune) rune {
	smallest := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		smallest = min(smallest, f)
	}
	return smallest
}
