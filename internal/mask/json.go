package mask

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/wardenmcp/warden/internal/jsonstr"
	"github.com/wardenmcp/warden/internal/mask/detect"
)

// JSON masks a JSON document, preserving it byte for byte except where a
// value is masked: keys, order, whitespace and numbers stay as written.
//
//   - Every string is scanned, object keys included (a key can be an email);
//     the enclosing key is the context for its value ("ssn": "…").
//   - A string that itself holds a JSON object or array is masked inside
//     and re-encoded.
//   - Integers of seven or more digits are scanned too (a card number stored
//     as a number); a masked number becomes a JSON string ("[CREDIT_CARD]"),
//     so the type changes but the value never leaks.
//   - true, false and null are left alone, even under a path rule.
//
// When nothing is masked the input slice itself is returned. Input that is
// not valid JSON (RFC 8259, UTF-8) is masked as free text and the report
// says NotJSON.
func (m *Masker) JSON(raw []byte) ([]byte, Report, error) {
	var st state
	w := m.newWalker(&st, raw, nil, 0)
	defer w.release(&st)
	if err := w.run(); err != nil {
		return m.textFallback(raw)
	}
	return w.result(), st.finish(), st.err
}

func (m *Masker) textFallback(raw []byte) ([]byte, Report, error) {
	var st state
	out, changed := m.maskText(&st, raw, nil, nil)
	if !changed {
		out = raw
	} else {
		st.rep.Paths = append(st.rep.Paths, "$")
	}
	st.rep.NotJSON = true
	return out, st.finish(), st.err
}

// The walk stops at the first of these; every caller then masks the input
// as text, so why it stopped is not kept.
var (
	errSyntax = errors.New("invalid JSON")
	errDepth  = errors.New("nesting too deep")
)

// walker validates and masks one JSON document in a single pass. Output is
// built lazily: until a value changes, nothing is copied.
type walker struct {
	m      *Masker
	st     *state
	src    []byte
	out    []byte
	copied int
	dirty  bool
	path   []pathSeg
	// parent is the walker of the string this document is embedded in.
	parent *walker
	depth  int
	// mcp enables the MCP result shape: skip base64 blobs, match path
	// rules relative to structuredContent too.
	mcp     bool
	relBase int

	scratch []byte // decoded string
	tmp     []byte // masked text
	// spare is a pooled buffer for out, used when the output is consumed
	// before the walk ends (embedded documents).
	spare    []byte
	useSpare bool
	// bufs holds the pooled buffers, returned by release.
	bufs *buffers
}

// buffers are the scratch space of one walk, pooled across calls.
type buffers struct {
	path    []pathSeg
	scratch []byte
	tmp     []byte
	out     []byte
	fs      []detect.Finding
}

// newWalker prepares a walk over src with pooled buffers. Call release
// when done.
func (m *Masker) newWalker(st *state, src []byte, parent *walker, depth int) walker {
	b, _ := m.pool.Get().(*buffers)
	if b == nil {
		b = &buffers{}
	}
	if st.fs == nil {
		st.fs = b.fs[:0]
	}
	return walker{m: m, st: st, src: src, parent: parent, depth: depth,
		path: b.path[:0], scratch: b.scratch[:0], tmp: b.tmp[:0], spare: b.out[:0], bufs: b}
}

// release returns the buffers to the pool; huge ones are dropped.
func (w *walker) release(st *state) {
	b := w.bufs
	const keep = 1 << 20
	b.path, b.scratch, b.tmp = w.path[:0], w.scratch[:0], w.tmp[:0]
	out := w.spare
	if w.useSpare && cap(w.out) > cap(out) {
		out = w.out
	}
	if cap(out) <= keep {
		b.out = out[:0]
	}
	if cap(st.fs) <= 1024 && w.parent == nil {
		b.fs = st.fs[:0]
	}
	if cap(b.scratch) > keep {
		b.scratch = nil
	}
	if cap(b.tmp) > keep {
		b.tmp = nil
	}
	clear(b.path[:cap(b.path)])
	w.m.pool.Put(b)
}

func (w *walker) run() error {
	i := skipWS(w.src, 0)
	i, err := w.value(i, nil, "", w.depth)
	if err != nil {
		return err
	}
	if i = skipWS(w.src, i); i != len(w.src) {
		return errSyntax
	}
	return nil
}

func (w *walker) result() []byte {
	if !w.dirty {
		return w.src
	}
	return append(w.out, w.src[w.copied:]...)
}

// replace swaps src[s:e] for the JSON string encoding of content.
func (w *walker) replace(s, e int, content []byte) {
	if !w.dirty {
		n := len(w.src) + len(w.src)/8 + 16
		if w.useSpare {
			w.out = slices.Grow(w.spare[:0], n)
		} else {
			w.out = make([]byte, 0, n)
		}
		w.dirty = true
	}
	w.out = append(w.out, w.src[w.copied:s]...)
	w.out = appendJSONString(w.out, content)
	w.copied = e
}

// appendPath renders the current position, with the path of the string
// holding this document (if any) before it.
func (w *walker) appendPath(b []byte) []byte {
	if w.parent != nil {
		b = w.parent.appendPath(b)
		b = append(b, '|')
	}
	return appendPath(b, w.path)
}

func (w *walker) addPath() {
	var buf [128]byte
	w.st.rep.Paths = append(w.st.rep.Paths, string(w.appendPath(buf[:0])))
}

// ruleClass returns the class of the first path rule matching the current
// position.
func (w *walker) ruleClass() string {
	for _, r := range w.m.rules {
		if matchPath(r.toks, w.path) || (w.relBase > 0 && len(w.path) >= w.relBase && matchPath(r.toks, w.path[w.relBase:])) {
			return r.class
		}
	}
	return ""
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

func (w *walker) value(i int, key []byte, forced string, depth int) (int, error) {
	src := w.src
	if i >= len(src) {
		return 0, errSyntax
	}
	if forced == "" && len(w.m.rules) > 0 && len(w.path) > 0 {
		forced = w.ruleClass()
	}
	switch c := src[i]; {
	case c == '{':
		return w.object(i, forced, depth+1)
	case c == '[':
		return w.array(i, forced, depth+1)
	case c == '"':
		return w.stringValue(i, key, forced, depth)
	case c == 't':
		return literal(src, i, "true")
	case c == 'f':
		return literal(src, i, "false")
	case c == 'n':
		return literal(src, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return w.number(i, key, forced)
	}
	return 0, errSyntax
}

func literal(src []byte, i int, lit string) (int, error) {
	if len(src)-i < len(lit) || string(src[i:i+len(lit)]) != lit {
		return 0, errSyntax
	}
	return i + len(lit), nil
}

func (w *walker) object(i int, forced string, depth int) (int, error) {
	if depth > w.m.maxDepth {
		return 0, errDepth
	}
	src := w.src
	i = skipWS(src, i+1)
	if i < len(src) && src[i] == '}' {
		return i + 1, nil
	}
	var masked [][]byte // keys masked in this object
	for {
		if i >= len(src) || src[i] != '"' {
			return 0, errSyntax
		}
		ke, esc, fault, _ := jsonstr.Scan(src, i)
		if fault != jsonstr.None {
			return 0, errSyntax
		}
		key := src[i+1 : ke-1]
		if esc {
			key = jsonstr.AppendUnescaped(nil, key)
		}
		shown := w.maskKey(i, ke, key, &masked)
		i = skipWS(src, ke)
		if i >= len(src) || src[i] != ':' {
			return 0, errSyntax
		}
		i = skipWS(src, i+1)
		w.path = append(w.path, pathSeg{key: key, shown: shown, isKey: true})
		rel := w.relBase
		if w.mcp && len(w.path) == 1 && string(key) == "structuredContent" {
			w.relBase = 1
		}
		var err error
		i, err = w.value(i, key, forced, depth)
		w.relBase = rel
		w.path = w.path[:len(w.path)-1]
		if err != nil {
			return 0, err
		}
		i = skipWS(src, i)
		if i >= len(src) {
			return 0, errSyntax
		}
		switch src[i] {
		case ',':
			i = skipWS(src, i+1)
		case '}':
			return i + 1, nil
		default:
			return 0, errSyntax
		}
	}
}

// maskKey scans an object key and masks it in place if it holds sensitive
// data. It returns the key as it should appear in reported paths. Masked
// keys that would repeat one already written in the same object get a
// "#n" suffix, so the output never has duplicate keys.
func (w *walker) maskKey(s, e int, key []byte, seen *[][]byte) []byte {
	if w.m.scanner.Plain(key) {
		return key
	}
	var changed bool
	w.tmp, changed = w.m.maskText(w.st, key, nil, w.tmp[:0])
	if !changed {
		return key
	}
	shown := append([]byte(nil), w.tmp...)
	for n := 2; slices.ContainsFunc(*seen, func(k []byte) bool { return bytes.Equal(k, shown) }); n++ {
		shown = append(append([]byte(nil), w.tmp...), '#')
		shown = strconv.AppendInt(shown, int64(n), 10)
	}
	*seen = append(*seen, shown)
	w.replace(s, e, shown)
	w.path = append(w.path, pathSeg{shown: shown, isKey: true})
	w.addPath()
	w.path = w.path[:len(w.path)-1]
	return shown
}

func (w *walker) array(i int, forced string, depth int) (int, error) {
	if depth > w.m.maxDepth {
		return 0, errDepth
	}
	src := w.src
	i = skipWS(src, i+1)
	if i < len(src) && src[i] == ']' {
		return i + 1, nil
	}
	for n := 0; ; n++ {
		var err error
		w.path = append(w.path, pathSeg{index: n})
		i, err = w.value(i, nil, forced, depth)
		w.path = w.path[:len(w.path)-1]
		if err != nil {
			return 0, err
		}
		i = skipWS(src, i)
		if i >= len(src) {
			return 0, errSyntax
		}
		switch src[i] {
		case ',':
			i = skipWS(src, i+1)
		case ']':
			return i + 1, nil
		default:
			return 0, errSyntax
		}
	}
}

func (w *walker) stringValue(i int, key []byte, forced string, depth int) (int, error) {
	src := w.src
	e, esc, fault, _ := jsonstr.Scan(src, i)
	if fault != jsonstr.None {
		return 0, errSyntax
	}
	content := src[i+1 : e-1]
	if esc {
		w.scratch = jsonstr.AppendUnescaped(slices.Grow(w.scratch[:0], len(content)), content)
		content = w.scratch
	}
	if len(content) == 0 {
		return e, nil
	}
	var changed bool
	if forced != "" {
		w.tmp, changed = w.m.maskWhole(w.st, forced, content, w.tmp[:0])
		if changed {
			w.replace(i, e, w.tmp)
			w.addPath()
		}
		return e, nil
	}
	if w.mcp && w.isBlob(key, content) {
		return e, nil
	}
	if c := content[skipWS(content, 0):]; len(c) > 0 && (c[0] == '{' || c[0] == '[') {
		if w.embedded(i, e, content, depth) {
			return e, nil
		}
	}
	w.tmp, changed = w.m.maskText(w.st, content, key, w.tmp[:0])
	if changed {
		w.replace(i, e, w.tmp)
		w.addPath()
	}
	return e, nil
}

// embedded masks a string holding a JSON document. It reports false if the
// content is not JSON (or nests too deep), leaving it to be masked as text.
func (w *walker) embedded(s, e int, content []byte, depth int) bool {
	var st state
	// The content may live in w.scratch; the sub-walker has its own buffers.
	sub := w.m.newWalker(&st, content, w, depth)
	sub.useSpare = true
	defer sub.release(&st)
	if sub.run() != nil {
		return false
	}
	// Merge what the document held into this call's state.
	for class, n := range st.rep.Counts {
		for range n {
			w.st.count(w.m, class)
		}
	}
	w.st.rep.Paths = append(w.st.rep.Paths, st.rep.Paths...)
	w.st.rep.TokenFailures += st.rep.TokenFailures
	if sub.dirty {
		w.replace(s, e, sub.result())
	}
	return true
}

// isBlob reports base64 data in MCP image, audio and blob resource
// content: it is binary, not text, and is not scanned.
func (w *walker) isBlob(key, content []byte) bool {
	if string(key) != "data" && string(key) != "blob" {
		return false
	}
	n := len(w.path)
	inItem := n >= 3 && !w.path[n-2].isKey && w.path[n-3].isKey &&
		(string(w.path[n-3].key) == "content" || string(w.path[n-3].key) == "contents")
	inResource := n >= 2 && w.path[n-2].isKey &&
		(string(w.path[n-2].key) == "resource" || string(w.path[n-2].key) == "content")
	return (inItem || inResource) && isBase64(content)
}

func isBase64(b []byte) bool {
	if len(b)%4 != 0 {
		return false
	}
	pad := 0
	for k, c := range b {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
			if pad > 0 {
				return false
			}
		case c == '=' && k >= len(b)-2:
			pad++
		default:
			return false
		}
	}
	return true
}

func (w *walker) number(i int, key []byte, forced string) (int, error) {
	src := w.src
	j := i
	if src[j] == '-' {
		j++
	}
	ds := j
	for j < len(src) && src[j] >= '0' && src[j] <= '9' {
		j++
	}
	if j == ds || (src[ds] == '0' && j-ds > 1) {
		return 0, errSyntax
	}
	integer := true
	if j < len(src) && src[j] == '.' {
		integer = false
		j++
		f := j
		for j < len(src) && src[j] >= '0' && src[j] <= '9' {
			j++
		}
		if j == f {
			return 0, errSyntax
		}
	}
	if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
		integer = false
		j++
		if j < len(src) && (src[j] == '+' || src[j] == '-') {
			j++
		}
		x := j
		for j < len(src) && src[j] >= '0' && src[j] <= '9' {
			j++
		}
		if j == x {
			return 0, errSyntax
		}
	}
	text := src[i:j]
	var changed bool
	switch {
	case forced != "":
		w.tmp, changed = w.m.maskWhole(w.st, forced, text, w.tmp[:0])
	case integer && src[i] != '-' && j-i >= 7:
		w.tmp, changed = w.m.maskText(w.st, text, key, w.tmp[:0])
	}
	if changed {
		w.replace(i, j, w.tmp)
		w.addPath()
	}
	return j, nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		i += safeRun(s[i:])
		if i >= len(s) {
			break
		}
		c := s[i]
		if c >= 0x80 {
			r, size := utf8.DecodeRune(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// safeRun returns the length of the prefix of b made of printable ASCII
// other than '"' and '\\': bytes a JSON string holds as they are. It tests
// eight bytes at a time.
func safeRun(b []byte) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		// A byte below 0x20, at or above 0x80, '"' (0x22) or '\\' (0x5c).
		ctl := (w - 0x20*ones) &^ w
		q := w ^ 0x22*ones
		bs := w ^ 0x5c*ones
		if (ctl|(q-ones)&^q|(bs-ones)&^bs|w)&highs != 0 {
			break
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
			return i
		}
	}
	return i
}
