package detect

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// RegexSpec defines an operator's pattern detector.
type RegexSpec struct {
	// Class names what the pattern finds, e.g. "EMPLOYEE_ID".
	Class string
	// Pattern is a Go regular expression (RE2 syntax).
	Pattern string
	// Score is the score of a match, in (0, 1]; zero means 0.6.
	Score float64
	// Context words raise the score by 0.35 when they occur near a match or
	// in the field name.
	Context []string
	// Validate, if set, must accept the matched text for it to count.
	Validate func(match string) bool
}

// RegexDetector is an operator-defined pattern detector.
type RegexDetector struct {
	spec    RegexSpec
	re      *regexp.Regexp
	context *wordSet
}

// NewRegexDetector compiles spec.
func NewRegexDetector(spec RegexSpec) (*RegexDetector, error) {
	if spec.Class == "" {
		return nil, errors.New("detect: regex detector needs a class")
	}
	if spec.Score == 0 {
		spec.Score = 0.6
	}
	if spec.Score < 0 || spec.Score > 1 {
		return nil, fmt.Errorf("detect: regex detector %s: score %v outside (0, 1]", spec.Class, spec.Score)
	}
	re, err := regexp.Compile(spec.Pattern)
	if err != nil {
		return nil, fmt.Errorf("detect: regex detector %s: %w", spec.Class, err)
	}
	if re.MatchString("") {
		return nil, fmt.Errorf("detect: regex detector %s: pattern matches the empty string", spec.Class)
	}
	ctx := newWordSet()
	for _, w := range spec.Context {
		w = strings.ToLower(w)
		if w != "" {
			ctx.byFirst[w[0]] = append(ctx.byFirst[w[0]], w)
		}
	}
	return &RegexDetector{spec: spec, re: re, context: ctx}, nil
}

// Detect implements Detector.
func (d *RegexDetector) Detect(text, key []byte, dst []Finding) []Finding {
	for _, m := range d.re.FindAllIndex(text, -1) {
		if m[0] == m[1] {
			continue
		}
		if d.spec.Validate != nil && !d.spec.Validate(string(text[m[0]:m[1]])) {
			continue
		}
		score := d.spec.Score
		if len(d.spec.Context) > 0 {
			sc := scan{t: text, key: key}
			if sc.context(m[0], m[1], d.context) {
				score = min(score+boost, 1)
			}
		}
		dst = append(dst, Finding{Class: d.spec.Class, Start: m[0], End: m[1], Score: score})
	}
	return dst
}

// DictionaryDetector finds whole words or phrases from a list, ignoring
// ASCII case: project code names, customer names, internal host names.
type DictionaryDetector struct {
	class string
	score float64
	// byFirst maps the lower-case first word of each entry to the entries
	// (as lower-case word lists) that start with it.
	byFirst map[string][][]string
}

// NewDictionaryDetector builds a detector reporting class for each entry of
// words found as whole words. score zero means 0.8.
func NewDictionaryDetector(class string, words []string, score float64) (*DictionaryDetector, error) {
	if class == "" {
		return nil, errors.New("detect: dictionary detector needs a class")
	}
	if score == 0 {
		score = 0.8
	}
	if score < 0 || score > 1 {
		return nil, fmt.Errorf("detect: dictionary detector %s: score %v outside (0, 1]", class, score)
	}
	d := &DictionaryDetector{class: class, score: score, byFirst: map[string][][]string{}}
	for _, w := range words {
		parts := dictWords(strings.ToLower(w))
		if len(parts) == 0 {
			return nil, fmt.Errorf("detect: dictionary detector %s: entry %q has no word", class, w)
		}
		d.byFirst[parts[0]] = append(d.byFirst[parts[0]], parts)
	}
	return d, nil
}

func dictWords(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r < 0x80 && !isAlnum(byte(r)) && r != '_' })
}

// dictByte reports bytes that belong to a dictionary word; non-ASCII bytes
// do, so that "Zoë" is one word.
func dictByte(c byte) bool { return isWord(c) || c >= 0x80 }

// Detect implements Detector.
func (d *DictionaryDetector) Detect(text, _ []byte, dst []Finding) []Finding {
	var buf [64]byte
	for i := 0; i < len(text); {
		if !dictByte(text[i]) {
			i++
			continue
		}
		e := i
		for e < len(text) && dictByte(text[e]) {
			e++
		}
		if e-i <= len(buf) {
			w := buf[:e-i]
			for k := range w {
				w[k] = lower(text[i+k])
			}
			for _, entry := range d.byFirst[string(w)] {
				if end, ok := matchRest(text, e, entry[1:]); ok {
					dst = append(dst, Finding{Class: d.class, Start: i, End: end, Score: d.score})
					break
				}
			}
		}
		i = e
	}
	return dst
}

// matchRest matches the remaining words of a phrase after position p,
// separated by non-word bytes.
func matchRest(text []byte, p int, rest []string) (int, bool) {
	for _, w := range rest {
		for p < len(text) && !dictByte(text[p]) {
			p++
		}
		e := p
		for e < len(text) && dictByte(text[e]) {
			e++
		}
		if e-p != len(w) || !hasPrefixFold(text[p:e], w) {
			return 0, false
		}
		p = e
	}
	return p, true
}
