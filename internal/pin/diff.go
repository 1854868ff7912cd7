package pin

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// diffContext is how many unchanged lines a hunk shows around a change.
const diffContext = 3

// maxDiffCells bounds the line-diff table (lines × lines); larger fields are
// shown as wholly removed and added rather than aligned.
const maxDiffCells = 4 << 20

// Diff is a readable, unified-style diff from a pin's approved definition
// to its pending one, field by field: title and description as text (one
// sentence per line), schemas and annotations as canonical indented JSON.
// Unchanged fields are left out. Invisible and control characters are
// spelled out as <U+XXXX>, so what the operator reviews is what the model
// would read. A pin with nothing pending says so.
func Diff(p Pin) string {
	var b strings.Builder
	if p.Pending == nil {
		fmt.Fprintf(&b, "%s: no pending change (approved %s)\n", Visible(p.Ref()), p.Digest)
		return b.String()
	}
	old, cur := p.Definition, *p.Pending
	if p.Approved() {
		fmt.Fprintf(&b, "--- %s approved %s\n", Visible(p.Ref()), p.Digest)
	} else {
		fmt.Fprintf(&b, "--- %s (never approved)\n", Visible(p.Ref()))
	}
	fmt.Fprintf(&b, "+++ %s pending %s\n", Visible(p.Ref()), p.PendingDigest)
	fields := []struct {
		name     string
		old, cur []string
	}{
		{"title", proseLines(old.Title), proseLines(cur.Title)},
		{"description", proseLines(old.Description), proseLines(cur.Description)},
		{"inputSchema", jsonLines(old.InputSchema), jsonLines(cur.InputSchema)},
		{"outputSchema", jsonLines(old.OutputSchema), jsonLines(cur.OutputSchema)},
		{"annotations", jsonLines(old.Annotations), jsonLines(cur.Annotations)},
	}
	changed := false
	for _, f := range fields {
		if slices.Equal(f.old, f.cur) {
			continue
		}
		changed = true
		fmt.Fprintf(&b, "@@ %s @@\n", f.name)
		writeHunks(&b, diffLines(f.old, f.cur))
	}
	if !changed {
		// Same content, different bytes (for example a schema that is not
		// valid JSON, or a reordering inside one): say so rather than
		// showing nothing.
		b.WriteString("@@ (no difference in the readable form; the definitions differ byte for byte) @@\n")
	}
	if len(p.Findings) > 0 {
		b.WriteString("findings in the pending definition:\n")
		for _, f := range p.Findings {
			fmt.Fprintf(&b, "  %s %s %s: %s\n", f.Severity, f.Kind, f.Field, f.Detail)
		}
	}
	return b.String()
}

var sentenceBreak = regexp.MustCompile(`([.!?])\s+`)

// proseLines splits text into its lines and each line into sentences, so
// that a sentence added to a one-line description shows as one added line.
func proseLines(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for _, line := range strings.Split(s, "\n") {
		line = sentenceBreak.ReplaceAllString(line, "$1\n")
		for _, part := range strings.Split(line, "\n") {
			out = append(out, Visible(part))
		}
	}
	return out
}

func jsonLines(v []byte) []string {
	s := prettyJSON(v)
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = Visible(l)
	}
	return lines
}

// edit is one line of a line diff: ' ' kept, '-' removed, '+' added.
type edit struct {
	op   byte
	line string
}

// diffLines aligns a and b by their longest common subsequence.
func diffLines(a, b []string) []edit {
	// Trim the common prefix and suffix first: most changes are small.
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var out []edit
	for _, l := range a[:pre] {
		out = append(out, edit{' ', l})
	}
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]
	if len(ma)*len(mb) > maxDiffCells {
		for _, l := range ma {
			out = append(out, edit{'-', l})
		}
		for _, l := range mb {
			out = append(out, edit{'+', l})
		}
	} else {
		out = append(out, lcsEdits(ma, mb)...)
	}
	for _, l := range a[len(a)-suf:] {
		out = append(out, edit{' ', l})
	}
	return out
}

func lcsEdits(a, b []string) []edit {
	n, m := len(a), len(b)
	// lcs[i][j] is the LCS length of a[i:] and b[j:].
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []edit
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case a[i] == b[j]:
			out = append(out, edit{' ', a[i]})
			i++
			j++
		case lcs[i+1][j] >= lcs[i][j+1]:
			out = append(out, edit{'-', a[i]})
			i++
		default:
			out = append(out, edit{'+', b[j]})
			j++
		}
	}
	for ; i < n; i++ {
		out = append(out, edit{'-', a[i]})
	}
	for ; j < m; j++ {
		out = append(out, edit{'+', b[j]})
	}
	return out
}

// writeHunks writes the edits with diffContext unchanged lines around each
// change; longer unchanged runs are elided with a "…" line.
func writeHunks(b *strings.Builder, edits []edit) {
	keep := make([]bool, len(edits))
	for i, e := range edits {
		if e.op == ' ' {
			continue
		}
		for k := max(0, i-diffContext); k <= min(len(edits)-1, i+diffContext); k++ {
			keep[k] = true
		}
	}
	elided := false
	for i, e := range edits {
		if !keep[i] {
			if !elided {
				b.WriteString(" …\n")
				elided = true
			}
			continue
		}
		elided = false
		b.WriteByte(e.op)
		b.WriteString(e.line)
		b.WriteByte('\n')
	}
}
