// Package detect finds sensitive data in text: personal data (emails, phone
// numbers, payment cards, IBANs, US social security numbers, IP addresses),
// credentials (cloud keys, API tokens, JWTs, private keys, passwords) and
// operator-defined classes.
//
// Detectors follow the recognizer design of Microsoft Presidio: a candidate
// is found by a pattern, confirmed by a validator (Luhn, mod-97, range
// tables), and scored; context words near the candidate (or the JSON field
// name that holds it) raise or lower the score, and only findings at or above
// a threshold are reported.
//
// The built-in detectors share one pass over the bytes: a byte-class table
// finds the few positions where a finding could start ('@', digit groups,
// known token prefixes, "key = value" pairs) and the precise matcher runs
// only on a small window there. The scan loop does not allocate.
package detect

import (
	"fmt"
	"slices"
)

// Built-in classes. The personal-data names match Presidio's entity types.
const (
	Email         = "EMAIL_ADDRESS"
	Phone         = "PHONE_NUMBER"
	CreditCard    = "CREDIT_CARD"
	IBAN          = "IBAN_CODE"
	USSSN         = "US_SSN"
	IPAddress     = "IP_ADDRESS"
	AWSAccessKey  = "AWS_ACCESS_KEY"
	AWSSecretKey  = "AWS_SECRET_KEY"
	GitHubToken   = "GITHUB_TOKEN"
	SlackToken    = "SLACK_TOKEN"
	StripeKey     = "STRIPE_KEY"
	JWT           = "JWT"
	PrivateKey    = "PRIVATE_KEY"
	GenericSecret = "GENERIC_SECRET"
)

// BuiltinClasses lists every class the default scanner can report.
var BuiltinClasses = []string{
	Email, Phone, CreditCard, IBAN, USSSN, IPAddress,
	AWSAccessKey, AWSSecretKey, GitHubToken, SlackToken, StripeKey, JWT, PrivateKey, GenericSecret,
}

// DefaultThreshold is the minimum score a finding needs to be reported.
const DefaultThreshold = 0.5

// Finding is one detected span. Start and End are byte offsets into the
// scanned text (End exclusive).
type Finding struct {
	Class string
	Start int
	End   int
	Score float64
}

// Labels returns the data labels a class implies: "pii" for personal data,
// "financial" for payment data, "secret" for credentials. Classes it does
// not know (operator-defined ones) get "sensitive".
func Labels(class string) []string {
	switch class {
	case Email, Phone, USSSN, IPAddress:
		return []string{"pii"}
	case CreditCard, IBAN:
		return []string{"financial", "pii"}
	case AWSAccessKey, AWSSecretKey, GitHubToken, SlackToken, StripeKey, JWT, PrivateKey, GenericSecret:
		return []string{"secret"}
	}
	return []string{"sensitive"}
}

// Detector is an additional detector run after the built-in pass. key is the
// name of the JSON field holding text (nil for free text); implementations
// append their findings to dst and return it.
type Detector interface {
	Detect(text, key []byte, dst []Finding) []Finding
}

// Options configures a Scanner.
type Options struct {
	// Threshold is the minimum score reported, in (0, 1]. Zero means
	// DefaultThreshold.
	Threshold float64
	// Disabled lists built-in classes not to report.
	Disabled []string
	// Detectors are operator-defined detectors run after the built-ins.
	Detectors []Detector
}

// Scanner runs the built-in detectors and any operator-defined ones. It is
// immutable after construction and safe for concurrent use.
type Scanner struct {
	threshold float64
	disabled  map[string]bool
	custom    []Detector
}

// NewScanner builds a Scanner.
func NewScanner(opts Options) (*Scanner, error) {
	t := opts.Threshold
	if t == 0 {
		t = DefaultThreshold
	}
	if t < 0 || t > 1 {
		return nil, fmt.Errorf("detect: threshold %v outside (0, 1]", opts.Threshold)
	}
	s := &Scanner{threshold: t, custom: slices.Clone(opts.Detectors)}
	for _, c := range opts.Disabled {
		if !slices.Contains(BuiltinClasses, c) {
			return nil, fmt.Errorf("detect: cannot disable unknown class %q", c)
		}
		if s.disabled == nil {
			s.disabled = map[string]bool{}
		}
		s.disabled[c] = true
	}
	for i, d := range s.custom {
		if d == nil {
			return nil, fmt.Errorf("detect: detector %d is nil", i)
		}
	}
	return s, nil
}

// Default returns a scanner with every built-in detector and the default
// threshold.
func Default() *Scanner {
	return &Scanner{threshold: DefaultThreshold}
}

// Threshold reports the scanner's minimum score.
func (s *Scanner) Threshold() float64 { return s.threshold }

// Scan appends the findings in text to dst and returns it. key is the name
// of the JSON field holding text, used as context (nil for free text).
// Overlapping findings are resolved: the higher score (then the longer span)
// wins. Findings come out sorted by Start.
func (s *Scanner) Scan(text, key []byte, dst []Finding) []Finding {
	base := len(dst)
	sc := scan{s: s, t: text, key: key, dst: dst}
	if len(s.custom) == 0 && len(text) < 20 && plainShort(text) {
		// Short text of letters and spaces ("gold", "Ann Lee") can only be
		// a secret by the name of its field.
		if len(key) > 0 {
			sc.keyedValue()
		}
		return sc.dst
	}
	sc.run()
	dst = sc.dst
	if len(s.custom) == 0 {
		return resolve(dst, base)
	}
	built := len(dst)
	for _, d := range s.custom {
		dst = d.Detect(text, key, dst)
	}
	// Drop what custom detectors reported below the threshold or out of range.
	out := dst[:built]
	for _, f := range dst[built:] {
		if f.Score >= s.threshold && f.Start >= 0 && f.End <= len(text) && f.Start < f.End {
			out = append(out, f)
		}
	}
	return resolve(out, base)
}

// Plain reports whether text certainly holds no finding when scanned
// without a field name: it is short and has none of the bytes a built-in
// pattern starts with, and no operator-defined detector is configured.
// Callers use it to skip scanning object keys.
func (s *Scanner) Plain(text []byte) bool {
	return len(s.custom) == 0 && len(text) < 20 && plainShort(text)
}

// emit records a finding if its class is enabled and it clears the threshold.
func (sc *scan) emit(class string, start, end int, score float64) {
	if score > 1 {
		score = 1
	}
	if score < sc.s.threshold || start >= end {
		return
	}
	if sc.s.disabled != nil && sc.s.disabled[class] {
		return
	}
	sc.dst = append(sc.dst, Finding{Class: class, Start: start, End: end, Score: score})
}

// resolve sorts dst[base:] by start and removes overlaps, keeping the higher
// score and then the longer span.
func resolve(dst []Finding, base int) []Finding {
	fs := dst[base:]
	if len(fs) < 2 {
		return dst
	}
	slices.SortFunc(fs, func(a, b Finding) int {
		if a.Start != b.Start {
			return a.Start - b.Start
		}
		return b.End - a.End
	})
	out := fs[:1]
	for _, f := range fs[1:] {
		last := &out[len(out)-1]
		if f.Start >= last.End {
			out = append(out, f)
			continue
		}
		if f.Score > last.Score || (f.Score == last.Score && f.End-f.Start > last.End-last.Start) {
			*last = f
			// The replacement may now overlap the one before it.
			for len(out) > 1 && out[len(out)-2].End > out[len(out)-1].Start {
				prev, cur := out[len(out)-2], out[len(out)-1]
				if prev.Score >= cur.Score {
					out = out[:len(out)-1]
				} else {
					out[len(out)-2] = cur
					out = out[:len(out)-1]
				}
			}
		}
	}
	return dst[:base+len(out)]
}

// plainShort reports text with no digit, '@', '-', ':' or '=': none of the
// built-in patterns can start in it.
func plainShort(t []byte) bool {
	for _, c := range t {
		if isDigit(c) || c == '@' || c == '-' || c == ':' || c == '=' {
			return false
		}
	}
	return true
}
