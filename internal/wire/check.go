// Package wire checks JSON-RPC messages from clients before anything else
// reads them: one strict pass that refuses what two JSON parsers could read
// differently (duplicate keys, keys equal but for case, invalid UTF-8),
// batches, and nesting deeper than a bound.
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/wardenmcp/warden/internal/jsonstr"
)

// Kinds of malformed message. Check wraps one of these.
var (
	ErrSyntax       = errors.New("malformed JSON")
	ErrInvalidUTF8  = errors.New("invalid UTF-8")
	ErrDuplicateKey = errors.New("duplicate object key")
	ErrTooDeep      = errors.New("nesting too deep")
	ErrBatch        = errors.New("JSON-RPC batches are not supported")
	ErrNotObject    = errors.New("message is not a JSON object")
)

// Check validates one message. It returns nil or an error wrapping one of
// the Err values; the message text is safe to show the client.
//
// The message must be one JSON object (RFC 8259) and nothing else but
// whitespace. Object keys are compared after unescaping ("a" and "\u0061"
// are one key) and with Unicode simple case folding, the way Go decoders
// match struct fields, so "id" and "ID" are duplicates. An escaped lone
// surrogate ("\ud800") is accepted, as RFC 8259's grammar and encoding/json
// accept it; in keys it stands for U+FFFD, which is what encoding/json
// decodes it to. Invalid UTF-8 anywhere in the message outranks every other
// fault, so the kind of error does not depend on where the scan stopped.
//
// Check reads the bytes once, in one hand-written pass. It allocates only
// to refuse a message, for an object of more than 16 keys, or for an
// object whose keys with escapes come to more than 64 bytes unescaped.
func Check(data []byte, maxDepth int) error {
	_, err := CheckMethod(data, maxDepth)
	return err
}

// CheckMethod is Check that also returns the message's top-level "method"
// when it is a string (its key matched as encoding/json matches it, without
// regard to case), and nil for a response or a method that is not a
// string. Without escapes the method is a slice of data.
func CheckMethod(data []byte, maxDepth int) (method []byte, err error) {
	c := checker{data: data, maxDepth: maxDepth, methodStart: -1}
	err = c.check()
	if err != nil && err != ErrInvalidUTF8 && !utf8.Valid(data) {
		return nil, ErrInvalidUTF8
	}
	if err != nil || c.methodStart < 0 {
		return nil, err
	}
	method = data[c.methodStart:c.methodEnd]
	if bytes.IndexByte(method, '\\') >= 0 {
		method = jsonstr.AppendUnescaped(nil, method)
	}
	return method, nil
}

func (c *checker) check() error {
	data := c.data
	i := skipSpace(data, 0)
	if i == len(data) {
		return fmt.Errorf("%w: empty message", ErrSyntax)
	}
	switch data[i] {
	case '[':
		return ErrBatch
	case '{':
	default:
		// A JSON value that is not an object is an invalid request; text
		// that is not JSON at all is a parse error.
		if json.Valid(data) {
			return ErrNotObject
		}
		return fmt.Errorf("%w: not JSON", ErrSyntax)
	}
	end, err := c.object(i, 1)
	if err != nil {
		return err
	}
	if skipSpace(data, end) != len(data) {
		return fmt.Errorf("%w: data after the message", ErrSyntax)
	}
	return nil
}

// maxLinearKeys is how many keys an object may have before its duplicate
// check moves from pairwise comparison to a set of folded keys, so that a
// message with huge objects costs linear, not quadratic, time.
const maxLinearKeys = 16

// keySpan locates one key of an object being checked: in the message when
// the key has no escapes, else in the object's buffer of unescaped keys.
type keySpan struct {
	start, end int
	unescaped  bool
}

// checker holds the state of one Check.
type checker struct {
	data     []byte
	maxDepth int
	// methodStart and methodEnd locate the top-level "method" string's
	// contents; methodStart is -1 until one is seen.
	methodStart, methodEnd int
}

// value checks the value that starts at i and returns the offset after it.
// level is the nesting level an object or array starting at i would have.
func (c *checker) value(i, level int) (int, error) {
	d := c.data
	if i >= len(d) {
		return i, errEnd
	}
	switch b := d[i]; {
	case b == '"':
		end, _, fault, at := jsonstr.Scan(d, i)
		if fault != jsonstr.None {
			return at, c.stringFault(fault, at)
		}
		return end, nil
	case b == '{':
		return c.object(i, level)
	case b == '[':
		return c.array(i, level)
	case b == '-' || '0' <= b && b <= '9':
		return c.number(i)
	case b == 't':
		return c.literal(i, "true")
	case b == 'f':
		return c.literal(i, "false")
	case b == 'n':
		return c.literal(i, "null")
	}
	return i, c.unexpected(i, "looking for a value")
}

// object checks the object that starts at i (at the '{').
func (c *checker) object(i, level int) (int, error) {
	if level > c.maxDepth {
		return i, c.tooDeep()
	}
	// The keys read so far live in this frame, so the usual object needs
	// no allocation: spans of the message, or of unescaped for keys that
	// contain escapes.
	var (
		spanBuf      [maxLinearKeys]keySpan
		spans        = spanBuf[:0]
		unescapedBuf [64]byte
		unescaped    = unescapedBuf[:0]
		set          map[string]struct{} // folded keys, once there are too many for spans
	)
	d := c.data
	i = skipSpace(d, i+1)
	if i < len(d) && d[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(d) {
			return i, errEnd
		}
		if d[i] != '"' {
			return i, c.unexpected(i, "looking for an object key")
		}
		end, escaped, fault, at := jsonstr.Scan(d, i)
		if fault != jsonstr.None {
			return at, c.stringFault(fault, at)
		}
		span := keySpan{start: i + 1, end: end - 1}
		if escaped {
			start := len(unescaped)
			unescaped = jsonstr.AppendUnescaped(unescaped, d[span.start:span.end])
			span = keySpan{start: start, end: len(unescaped), unescaped: true}
		}
		key := c.keyBytes(span, unescaped)
		if set == nil && len(spans) == maxLinearKeys {
			set = make(map[string]struct{}, 2*maxLinearKeys)
			for _, s := range spans {
				set[jsonstr.FoldKey(string(c.keyBytes(s, unescaped)))] = struct{}{}
			}
		}
		if set == nil {
			for _, s := range spans {
				if bytes.EqualFold(c.keyBytes(s, unescaped), key) {
					return i, duplicate(key)
				}
			}
			spans = append(spans, span)
		} else {
			folded := jsonstr.FoldKey(string(key))
			if _, dup := set[folded]; dup {
				return i, duplicate(key)
			}
			set[folded] = struct{}{}
			if span.unescaped {
				unescaped = unescaped[:span.start] // the set holds its own copy
			}
		}
		i = skipSpace(d, end)
		if i >= len(d) {
			return i, errEnd
		}
		if d[i] != ':' {
			return i, c.unexpected(i, "after an object key")
		}
		start := skipSpace(d, i+1)
		var err error
		if i, err = c.value(start, level+1); err != nil {
			return i, err
		}
		if level == 1 && d[start] == '"' && bytes.EqualFold(key, methodKey) {
			c.methodStart, c.methodEnd = start+1, i-1
		}
		i = skipSpace(d, i)
		if i >= len(d) {
			return i, errEnd
		}
		switch d[i] {
		case ',':
			i = skipSpace(d, i+1)
		case '}':
			return i + 1, nil
		default:
			return i, c.unexpected(i, "after an object value")
		}
	}
}

var methodKey = []byte("method")

// keyBytes returns the key span locates.
func (c *checker) keyBytes(span keySpan, unescaped []byte) []byte {
	if span.unescaped {
		return unescaped[span.start:span.end]
	}
	return c.data[span.start:span.end]
}

// array checks the array that starts at i (at the '[').
func (c *checker) array(i, level int) (int, error) {
	if level > c.maxDepth {
		return i, c.tooDeep()
	}
	d := c.data
	i = skipSpace(d, i+1)
	if i < len(d) && d[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if i, err = c.value(i, level+1); err != nil {
			return i, err
		}
		i = skipSpace(d, i)
		if i >= len(d) {
			return i, errEnd
		}
		switch d[i] {
		case ',':
			i = skipSpace(d, i+1)
		case ']':
			return i + 1, nil
		default:
			return i, c.unexpected(i, "after an array element")
		}
	}
}

// stringFault returns the error for a fault jsonstr.Scan found at offset at.
func (c *checker) stringFault(fault jsonstr.Fault, at int) error {
	switch {
	case at == len(c.data): // the message ends inside the string
		return errEnd
	case fault == jsonstr.UTF8:
		return ErrInvalidUTF8
	case fault == jsonstr.Control:
		return c.unexpected(at, "in a string (control characters must be escaped)")
	case fault == jsonstr.Escape:
		return c.unexpected(at, "in a string escape")
	}
	return c.unexpected(at, "in a \\u escape")
}

// number checks the number that starts at i, by the grammar of RFC 8259:
// an optional minus, an integer part without leading zeros, an optional
// fraction and an optional exponent.
func (c *checker) number(i int) (int, error) {
	d := c.data
	if d[i] == '-' {
		i++
	}
	switch {
	case i >= len(d):
		return i, errEnd
	case d[i] == '0':
		i++
	case '1' <= d[i] && d[i] <= '9':
		i = skipDigits(d, i+1)
	default:
		return i, c.unexpected(i, "in a number")
	}
	if i < len(d) && d[i] == '.' {
		if i++; i >= len(d) {
			return i, errEnd
		}
		if !isDigit(d[i]) {
			return i, c.unexpected(i, "after the decimal point")
		}
		i = skipDigits(d, i+1)
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		if i++; i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) {
			return i, errEnd
		}
		if !isDigit(d[i]) {
			return i, c.unexpected(i, "in an exponent")
		}
		i = skipDigits(d, i+1)
	}
	return i, nil
}

// literal checks that word (true, false or null) starts at i.
func (c *checker) literal(i int, word string) (int, error) {
	d := c.data
	for k := 0; k < len(word); k++ {
		if i+k >= len(d) {
			return i + k, errEnd
		}
		if d[i+k] != word[k] {
			return i + k, c.unexpected(i+k, "in literal "+word)
		}
	}
	return i + len(word), nil
}

var errEnd = fmt.Errorf("%w: unexpected end", ErrSyntax)

func (c *checker) unexpected(i int, where string) error {
	b := c.data[i]
	if b < 0x20 || b >= utf8.RuneSelf {
		return fmt.Errorf("%w: unexpected byte 0x%02x %s at offset %d", ErrSyntax, b, where, i)
	}
	return fmt.Errorf("%w: unexpected %q %s at offset %d", ErrSyntax, b, where, i)
}

func (c *checker) tooDeep() error {
	return fmt.Errorf("%w: more than %d levels", ErrTooDeep, c.maxDepth)
}

func duplicate(key []byte) error {
	return fmt.Errorf("%w %q", ErrDuplicateKey, truncate(string(key)))
}

func skipSpace(d []byte, i int) int {
	for i < len(d) && (d[i] == ' ' || d[i] == '\n' || d[i] == '\r' || d[i] == '\t') {
		i++
	}
	return i
}

func skipDigits(d []byte, i int) int {
	for i < len(d) && isDigit(d[i]) {
		i++
	}
	return i
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

func truncate(s string) string {
	const limit = 40
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut-- // never split a character
	}
	return s[:cut] + "…"
}

// Code returns the JSON-RPC error code for a Check error.
func Code(err error) int64 {
	if errors.Is(err, ErrSyntax) || errors.Is(err, ErrInvalidUTF8) {
		return -32700 // parse error
	}
	return -32600 // invalid request
}

// ID extracts the request id from a message that failed Check, when one can
// be read, so the error response can name it. It returns JSON null otherwise.
func ID(data []byte) json.RawMessage {
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	if utf8.Valid(data) && json.Unmarshal(data, &m) == nil && len(m.ID) > 0 {
		switch m.ID[0] {
		case '"', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			return m.ID
		}
	}
	return json.RawMessage("null")
}

// ErrorResponse encodes a JSON-RPC error response.
func ErrorResponse(id json.RawMessage, code int64, message string) []byte {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	b, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct {
			Code    int64  `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}{JSONRPC: "2.0", ID: id, Error: struct {
		Code    int64  `json:"code"`
		Message string `json:"message"`
	}{code, message}})
	return b
}
