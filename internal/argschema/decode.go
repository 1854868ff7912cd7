// Package argschema decodes tool-call arguments strictly and validates them
// against JSON Schemas: the upstream's pinned inputSchema and the policy's
// stricter per-tool overlay.
//
// The decoder rejects every input an upstream could read differently from
// Warden (duplicate or case-folded keys, invalid UTF-8, lone surrogates,
// numbers that do not fit a float64) and keeps numbers exactly as written, so
// schema limits compare exactly. The gateway forwards Encode of the validated
// value, never the bytes it received.
package argschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/wardenmcp/warden/internal/jsonstr"
)

// DefaultMaxDepth bounds the nesting of arrays and objects when DecodeStrict
// is given a depth of zero or less.
const DefaultMaxDepth = 64

// maxNumberLen bounds a number literal; longer literals are either out of
// float64 range or make exact (big.Rat) comparisons needlessly expensive.
const maxNumberLen = 512

// DecodeError reports why an input was rejected and where (byte offset).
// Its message names the problem without echoing the input.
type DecodeError struct {
	Offset int
	Msg    string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("invalid JSON at offset %d: %s", e.Offset, e.Msg)
}

// DecodeStrict parses one JSON value. Objects decode to map[string]any,
// arrays to []any, numbers to json.Number (the literal as written), and
// strings, booleans and null to string, bool and nil. Nesting deeper than
// maxDepth (DefaultMaxDepth when maxDepth <= 0) is an error.
func DecodeStrict(raw []byte, maxDepth int) (any, error) {
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	if !utf8.Valid(raw) {
		return nil, &DecodeError{Offset: invalidUTF8Offset(raw), Msg: "invalid UTF-8"}
	}
	d := decoder{data: raw, maxDepth: maxDepth}
	d.skipSpace()
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	d.skipSpace()
	if d.pos != len(d.data) {
		return nil, d.errorf("unexpected data after the value")
	}
	return v, nil
}

// Encode returns the canonical encoding of a decoded value: object keys
// sorted, no insignificant space, numbers as their literal, no HTML escaping.
// Encoding a value DecodeStrict returned and decoding it again yields an
// equal value, and encoding that yields the same bytes.
func Encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode arguments: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func invalidUTF8Offset(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}

type decoder struct {
	data     []byte
	pos      int
	maxDepth int
}

func (d *decoder) errorf(format string, args ...any) error {
	return &DecodeError{Offset: d.pos, Msg: fmt.Sprintf(format, args...)}
}

func (d *decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *decoder) value(depth int) (any, error) {
	if d.pos >= len(d.data) {
		return nil, d.errorf("unexpected end of input")
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		if depth+1 > d.maxDepth {
			return nil, d.errorf("nesting deeper than %d", d.maxDepth)
		}
		return d.object(depth + 1)
	case c == '[':
		if depth+1 > d.maxDepth {
			return nil, d.errorf("nesting deeper than %d", d.maxDepth)
		}
		return d.array(depth + 1)
	case c == '"':
		return d.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	default:
		return nil, d.errorf("unexpected character %q", rune(c))
	}
}

func (d *decoder) literal(word string) error {
	if !bytes.HasPrefix(d.data[d.pos:], []byte(word)) {
		return d.errorf("invalid literal")
	}
	d.pos += len(word)
	return nil
}

func (d *decoder) object(depth int) (any, error) {
	d.pos++ // '{'
	obj := make(map[string]any)
	var folded map[string]struct{}
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return obj, nil
	}
	for {
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, d.errorf("expected an object key")
		}
		keyAt := d.pos
		key, err := d.str()
		if err != nil {
			return nil, err
		}
		if _, dup := obj[key]; dup {
			return nil, &DecodeError{Offset: keyAt, Msg: fmt.Sprintf("duplicate key %s", quoteShort(key))}
		}
		// Many decoders (Go's encoding/json among them) match keys without
		// regard to case; two keys that fold together are ambiguous.
		if folded == nil {
			folded = make(map[string]struct{})
		}
		fk := jsonstr.FoldKey(key)
		if _, dup := folded[fk]; dup {
			return nil, &DecodeError{Offset: keyAt, Msg: fmt.Sprintf("key %s differs from another key only by case", quoteShort(key))}
		}
		folded[fk] = struct{}{}
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return nil, d.errorf("expected ':' after an object key")
		}
		d.pos++
		d.skipSpace()
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		obj[key] = v
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.errorf("unexpected end of input in an object")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return obj, nil
		default:
			return nil, d.errorf("expected ',' or '}' in an object")
		}
	}
}

func (d *decoder) array(depth int) (any, error) {
	d.pos++ // '['
	arr := []any{}
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return arr, nil
	}
	for {
		d.skipSpace()
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.errorf("unexpected end of input in an array")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case ']':
			d.pos++
			return arr, nil
		default:
			return nil, d.errorf("expected ',' or ']' in an array")
		}
	}
}

func (d *decoder) str() (string, error) {
	start := d.pos + 1
	// Lone surrogates are refused: decoders disagree on them.
	end, escaped, fault, at := jsonstr.ScanStrict(d.data, d.pos)
	if fault != jsonstr.None {
		return "", d.stringFault(fault, at)
	}
	d.pos = end
	body := d.data[start : end-1]
	if !escaped {
		return string(body), nil
	}
	// Unescaping never lengthens a string.
	return string(jsonstr.AppendUnescaped(make([]byte, 0, len(body)), body)), nil
}

// stringFault words a fault ScanStrict found, at the offset where reading
// the string from left to right meets it.
func (d *decoder) stringFault(fault jsonstr.Fault, at int) error {
	var msg string
	switch fault {
	case jsonstr.Control:
		msg = "control character in a string"
	case jsonstr.Escape:
		at-- // the backslash
		msg = "invalid escape"
		if at+1 == len(d.data) {
			msg = "unterminated string"
		}
	case jsonstr.Hex:
		for d.data[at-1] != 'u' {
			at-- // back to the first of the four digits
		}
		msg = "invalid \\u escape"
	case jsonstr.LoneSurrogate:
		msg = "lone surrogate in \\u escape"
	case jsonstr.UTF8:
		msg = "invalid UTF-8"
	default: // End
		msg = "unterminated string"
	}
	return &DecodeError{Offset: at, Msg: msg}
}

func (d *decoder) number() (any, error) {
	start := d.pos
	nonZero := false
	digits := func() int {
		n := 0
		for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
			d.pos++
			n++
		}
		return n
	}
	mantissaDigits := func() int {
		n := 0
		for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
			if d.data[d.pos] != '0' {
				nonZero = true
			}
			d.pos++
			n++
		}
		return n
	}
	if d.data[d.pos] == '-' {
		d.pos++
	}
	if d.pos < len(d.data) && d.data[d.pos] == '0' {
		d.pos++
		if d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
			return nil, d.errorf("number with a leading zero")
		}
	} else if mantissaDigits() == 0 {
		return nil, d.errorf("invalid number")
	}
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		d.pos++
		if mantissaDigits() == 0 {
			return nil, d.errorf("invalid number")
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if digits() == 0 {
			return nil, d.errorf("invalid number")
		}
	}
	lit := string(d.data[start:d.pos])
	if len(lit) > maxNumberLen {
		return nil, &DecodeError{Offset: start, Msg: "number literal too long"}
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return nil, &DecodeError{Offset: start, Msg: "number out of range"}
	}
	if f == 0 && nonZero {
		return nil, &DecodeError{Offset: start, Msg: "number too small to represent"}
	}
	return json.Number(lit), nil
}

// quoteShort quotes s for an error message, cut to a length that names a key
// without echoing a long or secret value.
func quoteShort(s string) string {
	const limit = 40
	if len(s) <= limit {
		return strconv.Quote(s)
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…"
}

// IsDecodeError reports whether err came from DecodeStrict rejecting input.
func IsDecodeError(err error) bool {
	var de *DecodeError
	return errors.As(err, &de)
}
