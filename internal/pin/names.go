package pin

import (
	"cmp"
	"slices"
	"strings"
)

// nameHomoglyphs maps characters that pass for others in a tool name to the
// one they imitate: Cyrillic and Greek look-alikes, and digits read as
// letters.
var nameHomoglyphs = map[rune]rune{
	'а': 'a', 'е': 'e', 'о': 'o', 'р': 'p', 'с': 'c', 'х': 'x',
	'ο': 'o',
	'0': 'o', '1': 'l',
}

// MinEditDistanceName is the shortest (normalised) name compared by edit
// distance: shorter names differ by one character too easily to mean
// anything.
const MinEditDistanceName = 6

// nameKey is a name as a reader might confuse it: case folded, separators
// (_ - .) removed, look-alike characters folded.
func nameKey(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch r {
		case '_', '-', '.':
			continue
		}
		if h, ok := nameHomoglyphs[r]; ok {
			r = h
		}
		b.WriteRune(r)
	}
	return b.String()
}

// splitNamespace splits an exposed name at its first dot into the
// upstream's prefix and the tool's own name; the prefix is "" for an
// unprefixed name.
func splitNamespace(name string) (ns, rest string) {
	ns, rest, ok := strings.Cut(name, ".")
	if !ok {
		return "", name
	}
	return strings.ToLower(ns), rest
}

// SimilarNames returns the pairs of exposed tool names that a model or a
// person could confuse: equal after case folding, after removing the
// separators _ - and ., or after folding look-alike characters (Cyrillic
// а е о р с х, Greek ο, digits 0 and 1 for o and l); or, for names of at
// least MinEditDistanceName characters so normalised, one edit apart. The
// edit-distance rule skips pairs in the same namespace ("shop.get_order",
// "shop.get_orders"; unprefixed names have no namespace and are always
// compared): one upstream's own tools often differ by a letter,
// while look-alikes across upstreams are how one shadows another. It also
// skips pairs whose only difference is the namespace ("pg1.query",
// "pg2.query"): the operator names upstreams, an upstream names its tools.
//
// Each pair is ordered (a < b), the list is sorted, and exact duplicates
// are ignored (a repeated name is a collision, reported elsewhere).
func SimilarNames(names []string) [][2]string {
	uniq := slices.Clone(names)
	slices.Sort(uniq)
	uniq = slices.Compact(uniq)
	keys := make([]string, len(uniq))
	nss := make([]string, len(uniq))
	rests := make([]string, len(uniq))
	for i, n := range uniq {
		keys[i] = nameKey(n)
		ns, rest := splitNamespace(n)
		nss[i], rests[i] = ns, nameKey(rest)
	}
	var out [][2]string
	for i := range uniq {
		for j := i + 1; j < len(uniq); j++ {
			if keys[i] == keys[j] ||
				(!sameUpstream(nss[i], nss[j]) && rests[i] != rests[j] && oneEditApart(keys[i], keys[j])) {
				out = append(out, [2]string{uniq[i], uniq[j]})
			}
		}
	}
	slices.SortFunc(out, func(a, b [2]string) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	})
	return out
}

// sameUpstream reports whether two namespaces are known to be one
// upstream's; unprefixed names ("") may come from any upstream.
func sameUpstream(a, b string) bool { return a != "" && a == b }

// oneEditApart reports whether a and b, both at least MinEditDistanceName
// runes long, differ by exactly one insertion, deletion or substitution.
func oneEditApart(a, b string) bool {
	ra, rb := []rune(a), []rune(b)
	if min(len(ra), len(rb)) < MinEditDistanceName {
		return false
	}
	if len(ra) > len(rb) {
		ra, rb = rb, ra
	}
	switch len(rb) - len(ra) {
	case 0:
		diff := 0
		for i := range ra {
			if ra[i] != rb[i] {
				diff++
			}
		}
		return diff == 1
	case 1:
		i := 0
		for i < len(ra) && ra[i] == rb[i] {
			i++
		}
		return slices.Equal(ra[i:], rb[i+1:])
	}
	return false
}
