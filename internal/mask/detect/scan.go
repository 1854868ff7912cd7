package detect

// Byte classes for the prefilter.
const (
	cNone  = iota
	cDigit // 0-9
	cUpper // A-Z
	cLower // a-z
	cAt    // @
	cPlus  // +
	cParen // (
	cDash  // -
	cKV    // : or =
	cUnder // _
)

// wordByte marks [A-Za-z0-9_].
var wordByte = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = isAlnum(byte(c)) || c == '_'
	}
	return t
}()

var byteClass = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = cDigit
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = cUpper
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = cLower
	}
	t['@'] = cAt
	t['+'] = cPlus
	t['('] = cParen
	t['-'] = cDash
	t[':'] = cKV
	t['='] = cKV
	t['_'] = cUnder
	return t
}()

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }
func isAlnum(c byte) bool  { return isDigit(c) || isLetter(c) }
func isWord(c byte) bool   { return wordByte[c] }
func isHex(c byte) bool    { return isDigit(c) || ((c|0x20) >= 'a' && (c|0x20) <= 'f') }
func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c | 0x20
	}
	return c
}

// scan is the state of one pass over a text.
type scan struct {
	s   *Scanner
	t   []byte
	key []byte
	dst []Finding
}

func (sc *scan) run() {
	t := sc.t
	n := len(t)
	if len(sc.key) > 0 {
		sc.keyedValue()
	}
	for i := 0; i < n; {
		switch byteClass[t[i]] {
		case cNone, cUnder:
			i++
		case cDigit:
			if i > 0 && continues(t, i) {
				i = skipWord(t, i)
				continue
			}
			i = sc.numeric(i)
		case cUpper, cLower:
			if escapeLetter(t, i) {
				i++ // what follows the escape starts afresh
				continue
			}
			if i > 0 && isWord(t[i-1]) && !escapeBreak(t, i) {
				i = skipWord(t, i)
				continue
			}
			// Most words cannot start a finding: skip them without a call.
			e := skipWord(t, i)
			if !(e-i >= 4 && sc.wordCandidate(i, e)) && !(e < n && t[e] == ':' && isHex(t[i])) {
				i = e
				continue
			}
			i = sc.word(i)
		case cAt:
			i = sc.email(i)
		case cPlus, cParen:
			if i+1 < n && isDigit(t[i+1]) && (i == 0 || !isWord(t[i-1])) {
				i = sc.numeric(i)
				continue
			}
			i++
		case cDash:
			if t[i+0] == '-' && hasPrefix(t[i:], "-----BEGIN ") {
				i = sc.pem(i)
				continue
			}
			i++
		case cKV:
			sc.keyValue(i)
			i++
		}
	}
}

// continues reports whether the digit at i is the middle of a larger token:
// after a letter or digit, or after a joiner that follows one ("a716-4466",
// "v1.2"), or after a currency sign.
func continues(t []byte, i int) bool {
	p := t[i-1]
	if escapeBreak(t, i) {
		return false
	}
	if isWord(p) {
		return true
	}
	switch p {
	case ':', '#':
		// After a letter these end a label ("card:4111…", "SSN#078…");
		// after a digit they join ("10:30").
		return i >= 2 && isWord(t[i-2]) && !isLetter(t[i-2])
	case '.', '-', '/':
		return i >= 2 && isWord(t[i-2])
	case '$', '%':
		return true
	}
	// Multi-byte currency signs: € (E2 82 AC), £ (C2 A3).
	if p == 0xAC && i >= 3 && t[i-2] == 0x82 && t[i-3] == 0xE2 {
		return true
	}
	if p == 0xA3 && i >= 2 && t[i-2] == 0xC2 {
		return true
	}
	return false
}

// escapeLetter reports whether t[i] is the letter of a JSON or C escape
// that breaks a line ("\n4111…", "\tAKIA…"): text that is escaped JSON,
// masked as text, must split where the decoded text would.
func escapeLetter(t []byte, i int) bool {
	return i >= 1 && t[i-1] == '\\' && (t[i] == 'n' || t[i] == 't' || t[i] == 'r')
}

// escapeBreak reports whether t[i] follows such an escape.
func escapeBreak(t []byte, i int) bool { return escapeLetter(t, i-1) }

func skipWord(t []byte, i int) int {
	for i < len(t) && isWord(t[i]) {
		i++
	}
	return i
}

func hasPrefix(t []byte, p string) bool {
	return len(t) >= len(p) && string(t[:len(p)]) == p
}

// hasPrefixFold is hasPrefix ignoring ASCII case; p must be lower case.
func hasPrefixFold(t []byte, p string) bool {
	if len(t) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		if lower(t[i]) != p[i] {
			return false
		}
	}
	return true
}

// Context windows, in bytes, before and after a candidate.
const (
	ctxBefore    = 48
	ctxAfter     = 24
	negCtxBefore = 28
)

// context reports whether any of words occurs in the field name or in the
// text around [start, end).
func (sc *scan) context(start, end int, words *wordSet) bool {
	return words.in(sc.t[max(start-ctxBefore, 0):start]) ||
		words.in(sc.t[end:min(end+ctxAfter, len(sc.t))]) ||
		words.in(sc.key)
}

// negContext is context with a shorter window before the candidate only, for
// words that argue against a class ("order 4111…").
func (sc *scan) negContext(start int, words *wordSet) bool {
	return words.in(sc.t[max(start-negCtxBefore, 0):start]) || words.in(sc.key)
}

// wordSet is a list of lower-case context words indexed by first byte.
type wordSet struct {
	byFirst [256][]string
}

func newWordSet(words ...string) *wordSet {
	ws := &wordSet{}
	for _, w := range words {
		if w != "" {
			ws.byFirst[w[0]] = append(ws.byFirst[w[0]], w)
		}
	}
	return ws
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isLower(c byte) bool { return c >= 'a' && c <= 'z' }

// in reports whether t contains one of the words, ignoring ASCII case,
// starting at a word boundary (a camelCase hump counts as one); words of
// three letters or fewer must also end at one ("ip" is not "ipsum").
func (ws *wordSet) in(t []byte) bool {
	for i, c := range t {
		cands := ws.byFirst[lower(c)]
		if len(cands) == 0 {
			continue
		}
		if i > 0 && isLetter(t[i-1]) && isLetter(c) && !(isUpper(c) && isLower(t[i-1])) {
			continue
		}
		for _, w := range cands {
			if !hasPrefixFold(t[i:], w) {
				continue
			}
			if e := i + len(w); len(w) <= 3 && e < len(t) && isLower(t[e]) {
				continue
			}
			if e := i + len(w); len(w) <= 3 && e < len(t) && isUpper(t[e]) && !isLower(t[e-1]) {
				continue
			}
			return true
		}
	}
	return false
}

// Context boosts, as in Presidio's context-aware enhancer.
const (
	boost   = 0.35
	penalty = 0.35
)

// wordCandidate is the cheap test before word: an IBAN shape (two letters,
// two digits), a known token prefix, "bearer".
func (sc *scan) wordCandidate(i, e int) bool {
	t := sc.t
	if isDigit(t[i+2]) && isDigit(t[i+3]) && isLetter(t[i+1]) {
		return true
	}
	switch t[i] {
	case 'A', 'g', 'x', 's', 'r', 'e', 'B', 'b', 'w':
		return true
	}
	return false
}
