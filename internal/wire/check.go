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
	"io"
	"strings"
	"unicode/utf8"
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
func Check(data []byte, maxDepth int) error {
	if !utf8.Valid(data) {
		return ErrInvalidUTF8
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return fmt.Errorf("%w: empty message", ErrSyntax)
	}
	switch trimmed[0] {
	case '[':
		return ErrBatch
	case '{':
	default:
		return ErrNotObject
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := checkValue(dec, maxDepth, 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the message", ErrSyntax)
	}
	return nil
}

// checkValue consumes one value from dec.
func checkValue(dec *json.Decoder, maxDepth, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return syntaxErr(err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if depth+1 > maxDepth {
		return fmt.Errorf("%w: more than %d levels", ErrTooDeep, maxDepth)
	}
	switch d {
	case '{':
		// Keys are compared after unescaping ("a" and "\u0061" are one
		// key) and case-folded, because Go decoders match struct fields
		// without regard to case.
		var seen map[string]struct{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return syntaxErr(err)
			}
			key, _ := kt.(string)
			folded := strings.ToLower(key)
			if seen == nil {
				seen = make(map[string]struct{}, 8)
			}
			if _, dup := seen[folded]; dup {
				return fmt.Errorf("%w %q", ErrDuplicateKey, truncate(key))
			}
			seen[folded] = struct{}{}
			if err := checkValue(dec, maxDepth, depth+1); err != nil {
				return err
			}
		}
	case '[':
		for dec.More() {
			if err := checkValue(dec, maxDepth, depth+1); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return syntaxErr(err)
	}
	return nil
}

func syntaxErr(err error) error {
	if err == io.EOF {
		return fmt.Errorf("%w: unexpected end", ErrSyntax)
	}
	return fmt.Errorf("%w: %v", ErrSyntax, err)
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
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
