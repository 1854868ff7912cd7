// Package mask classifies and masks sensitive data in text, JSON and MCP
// results according to a plan the caller builds from the principal's
// clearance: per class, pass, redact, partial, keyed hash or reversible
// token.
//
// Masking fails closed: JSON that does not parse is masked as text, a token
// that cannot be stored is redacted, and an unknown class gets the plan's
// default action (redact unless the plan says otherwise). The package is
// pure: it knows nothing of the pipeline, the protocol library or storage.
package mask

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/wardenmcp/warden/internal/mask/detect"
)

// Action says what to do with a finding.
type Action string

// Actions.
const (
	// Pass leaves the value as it is (it is still counted and labelled).
	Pass Action = "pass"
	// Redact replaces the value by "[CLASS]".
	Redact Action = "redact"
	// Partial keeps a little of the value: the last four digits of cards,
	// phones, IBANs and SSNs ("****1234"), the first letter and domain of
	// an email ("j***@example.com"), the first octet of an IPv4 address.
	// Secrets are never partially shown: partial redacts them.
	Partial Action = "partial"
	// Hash replaces the value by a keyed HMAC-SHA256, truncated to 64 bits
	// and prefixed by its class: "hash_EMAIL_ADDRESS_3f2a9c1d0e4b5a67". The
	// same value under the same key always gives the same hash, so joins
	// across results still work; values are canonicalized first (emails
	// lower-cased, separators dropped from numbers).
	Hash Action = "hash"
	// Tokenize replaces the value by a random token
	// ("tok_EMAIL_ADDRESS_…") and hands the mapping to the TokenSink so an
	// authorized call can resolve it later.
	Tokenize Action = "tokenize"
)

// ParseAction parses an action name.
func ParseAction(s string) (Action, error) {
	switch a := Action(s); a {
	case Pass, Redact, Partial, Hash, Tokenize:
		return a, nil
	}
	return "", fmt.Errorf("mask: unknown action %q (want pass, redact, partial, hash or tokenize)", s)
}

// Plan is the action per class, decided by the policy engine for one
// caller.
type Plan struct {
	// Actions maps a class (detect.Email, an operator's class…) to its action.
	Actions map[string]Action
	// Default applies to classes not in Actions. The zero value redacts.
	Default Action
}

// ActionFor returns the action for class.
func (p Plan) ActionFor(class string) Action {
	if a, ok := p.Actions[class]; ok {
		return a
	}
	if p.Default == "" {
		return Redact
	}
	return p.Default
}

// TokenSink stores the mapping of a token to the value it replaces. The
// pipeline implements it on its store.
type TokenSink interface {
	Put(token, class, value string) error
}

// PathRule marks every value at a JSON path as a class, whatever it holds.
// Paths use a JSONPath subset: $ root, .name or ['name'] child, [n] index,
// [*] or .* any child, ..name descendant at any depth. Examples:
// "$.customers[*].email", "$..ssn". A rule that matches an object or array
// marks every string and number inside it.
type PathRule struct {
	Path  string
	Class string
}

// Options configures a Masker.
type Options struct {
	// Scanner finds the data; nil means detect.Default().
	Scanner *detect.Scanner
	// Plan says what to do per class.
	Plan Plan
	// HashKey keys the Hash action; at least 16 bytes, required when the
	// plan uses Hash.
	HashKey []byte
	// Tokens stores token mappings; required when the plan uses Tokenize.
	Tokens TokenSink
	// Random is the source for tokens; nil means crypto/rand.
	Random io.Reader
	// Paths are the operator's JSON path rules.
	Paths []PathRule
	// MaxPerClass, when positive, makes a call return an error wrapping
	// ErrLimitExceeded if any class has more findings than this.
	MaxPerClass int
	// MaxDepth bounds JSON nesting (including JSON inside strings); zero
	// means 1000. Deeper input is masked as text.
	MaxDepth int
}

// Masker applies a plan. It is immutable and safe for concurrent use.
type Masker struct {
	scanner  *detect.Scanner
	plan     Plan
	hashKey  []byte
	tokens   TokenSink
	random   io.Reader
	rules    []compiledRule
	maxClass int
	maxDepth int
	// pool holds walk buffers; it is the only part that changes, and is
	// safe for concurrent use.
	pool sync.Pool
}

// ErrLimitExceeded is wrapped by the error returned when a class has more
// findings than Options.MaxPerClass. The output returned with it is still
// fully masked; the caller decides whether to refuse the result.
var ErrLimitExceeded = errors.New("mask: too many findings of one class")

// LimitError reports which class went over the limit.
type LimitError struct {
	Class string
	Count int
	Limit int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("mask: %d findings of %s, limit %d", e.Count, e.Class, e.Limit)
}

// Is makes errors.Is(err, ErrLimitExceeded) true.
func (e *LimitError) Is(target error) bool { return target == ErrLimitExceeded }

// New builds a Masker, checking the plan against what it needs.
func New(opts Options) (*Masker, error) {
	m := &Masker{
		scanner:  opts.Scanner,
		plan:     opts.Plan,
		tokens:   opts.Tokens,
		random:   opts.Random,
		maxClass: opts.MaxPerClass,
		maxDepth: opts.MaxDepth,
	}
	if m.scanner == nil {
		m.scanner = detect.Default()
	}
	if m.random == nil {
		m.random = rand.Reader
	}
	if m.maxDepth <= 0 {
		m.maxDepth = 1000
	}
	if opts.MaxPerClass < 0 {
		return nil, fmt.Errorf("mask: MaxPerClass %d is negative", opts.MaxPerClass)
	}
	uses := map[Action]bool{}
	for class, a := range opts.Plan.Actions {
		if _, err := ParseAction(string(a)); err != nil {
			return nil, fmt.Errorf("mask: plan for %s: %w", class, err)
		}
		uses[a] = true
	}
	if opts.Plan.Default != "" {
		if _, err := ParseAction(string(opts.Plan.Default)); err != nil {
			return nil, fmt.Errorf("mask: plan default: %w", err)
		}
		uses[opts.Plan.Default] = true
	}
	if uses[Hash] {
		if len(opts.HashKey) < 16 {
			return nil, errors.New("mask: the plan hashes values but the hash key is shorter than 16 bytes")
		}
		m.hashKey = append([]byte(nil), opts.HashKey...)
	}
	if uses[Tokenize] && opts.Tokens == nil {
		return nil, errors.New("mask: the plan tokenizes values but no token sink is configured")
	}
	for _, r := range opts.Paths {
		cr, err := compileRule(r)
		if err != nil {
			return nil, err
		}
		m.rules = append(m.rules, cr)
	}
	return m, nil
}

// Text masks free text.
func (m *Masker) Text(text string) (string, Report, error) {
	var st state
	out, changed := m.maskText(&st, []byte(text), nil, nil)
	if changed {
		st.rep.Paths = append(st.rep.Paths, "$")
		text = string(out)
	}
	return text, st.finish(), st.err
}

// Value masks a whole value known to be of class (an argument the caller
// classified itself, a column declared sensitive) by the plan's action for
// class. A token that cannot be stored gives the redacted form.
func (m *Masker) Value(class, value string) string {
	var st state
	out, changed := m.maskWhole(&st, class, []byte(value), nil)
	if !changed {
		return value
	}
	return string(out)
}

// state is what one masking call accumulates.
type state struct {
	rep Report
	fs  []detect.Finding
	err error
}

func (st *state) count(m *Masker, class string) {
	if st.rep.Counts == nil {
		st.rep.Counts = map[string]int{}
	}
	st.rep.Counts[class]++
	if n := st.rep.Counts[class]; m.maxClass > 0 && n > m.maxClass && st.err == nil {
		st.err = &LimitError{Class: class, Count: n, Limit: m.maxClass}
	} else if le, ok := st.err.(*LimitError); ok && le.Class == class {
		le.Count = n
	}
}

func (st *state) finish() Report {
	st.rep.Labels = labelsFor(st.rep.Counts)
	return st.rep
}

// maskText scans text (with key as context) and appends the masked text to
// dst. It reports whether anything changed; when nothing did, dst is
// returned as it was.
func (m *Masker) maskText(st *state, text, key, dst []byte) ([]byte, bool) {
	st.fs = m.scanner.Scan(text, key, st.fs[:0])
	if len(st.fs) == 0 {
		return dst, false
	}
	base := len(dst)
	prev := 0
	changed := false
	for _, f := range st.fs {
		st.count(m, f.Class)
		a := m.plan.ActionFor(f.Class)
		if a == Pass {
			continue
		}
		if !changed {
			changed = true
		}
		dst = append(dst, text[prev:f.Start]...)
		dst = m.apply(st, dst, f.Class, text[f.Start:f.End], a)
		prev = f.End
	}
	if !changed {
		return dst[:base], false
	}
	dst = append(dst, text[prev:]...)
	return dst, true
}

// maskWhole masks all of value as class (path rules, numbers).
func (m *Masker) maskWhole(st *state, class string, value, dst []byte) ([]byte, bool) {
	st.count(m, class)
	a := m.plan.ActionFor(class)
	if a == Pass {
		return dst, false
	}
	return m.apply(st, dst, class, value, a), true
}

var tokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// apply appends the masked form of value to dst.
func (m *Masker) apply(st *state, dst []byte, class string, value []byte, a Action) []byte {
	switch a {
	case Partial:
		return partial(dst, class, value)
	case Hash:
		mac := hmac.New(sha256.New, m.hashKey)
		mac.Write([]byte(class))
		mac.Write([]byte{0})
		mac.Write(canonical(class, value))
		var sum [sha256.Size]byte
		dst = append(dst, "hash_"...)
		dst = append(dst, class...)
		dst = append(dst, '_')
		return hex.AppendEncode(dst, mac.Sum(sum[:0])[:8])
	case Tokenize:
		var raw [15]byte
		if _, err := io.ReadFull(m.random, raw[:]); err == nil {
			tok := "tok_" + class + "_" + tokenEncoding.EncodeToString(raw[:])
			if err := m.tokens.Put(tok, class, string(value)); err == nil {
				return append(dst, tok...)
			}
		}
		st.rep.TokenFailures++
	}
	return redact(dst, class)
}

func redact(dst []byte, class string) []byte {
	dst = append(dst, '[')
	dst = append(dst, class...)
	return append(dst, ']')
}

// canonical normalizes a value so that equal data hashes equally.
func canonical(class string, v []byte) []byte {
	switch class {
	case detect.Email:
		return []byte(strings.ToLower(string(v)))
	case detect.CreditCard, detect.Phone, detect.USSSN, detect.IBAN:
		out := make([]byte, 0, len(v))
		for _, c := range v {
			switch {
			case c >= '0' && c <= '9', c >= 'A' && c <= 'Z':
				out = append(out, c)
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+'A')
			case c == '+' && class == detect.Phone:
				out = append(out, c)
			}
		}
		return out
	}
	return v
}

// partial appends the partly hidden form of value.
func partial(dst []byte, class string, v []byte) []byte {
	switch class {
	case detect.CreditCard, detect.Phone, detect.USSSN, detect.IBAN:
		var last [4]byte
		n := 0
		for i := len(v) - 1; i >= 0 && n < 4; i-- {
			if isAlnum(v[i]) {
				n++
				last[4-n] = v[i]
			}
		}
		total := 0
		for _, c := range v {
			if isAlnum(c) {
				total++
			}
		}
		if total <= 6 {
			return append(dst, "****"...)
		}
		dst = append(dst, "****"...)
		return append(dst, last[4-n:]...)
	case detect.Email:
		at := strings.LastIndexByte(string(v), '@')
		if at <= 0 {
			return redact(dst, class)
		}
		dst = append(dst, v[0])
		dst = append(dst, "***"...)
		return append(dst, v[at:]...)
	case detect.IPAddress:
		if dot := strings.IndexByte(string(v), '.'); dot > 0 && !strings.Contains(string(v), ":") {
			dst = append(dst, v[:dot]...)
			return append(dst, ".*.*.*"...)
		}
		if c := strings.IndexByte(string(v), ':'); c > 0 {
			dst = append(dst, v[:c]...)
			return append(dst, ":*"...)
		}
	}
	return redact(dst, class)
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
