package jsonstr

import (
	"unicode/utf16"
	"unicode/utf8"
)

// A Fault is what makes a JSON string malformed.
type Fault uint8

const (
	// None: the string is well formed.
	None Fault = iota
	// End: the input ends before the closing quote.
	End
	// Control: a control character (below U+0020) is not escaped.
	Control
	// Escape: a backslash is not followed by an escape letter.
	Escape
	// Hex: a \u is not followed by four hex digits.
	Hex
	// UTF8: the string is not valid UTF-8.
	UTF8
	// LoneSurrogate: a \u escape holds half of a surrogate pair without the
	// other half. Only ScanStrict reports it.
	LoneSurrogate
)

// Scan checks the JSON string whose opening quote is b[i]. It returns the
// offset after the closing quote and whether the string holds escapes, or
// the first fault and where it is: the offending byte (the letter after a
// backslash, the first byte of a \u escape that is not a hex digit), or
// len(b) when the input ends first.
//
// Scan accepts an escaped lone surrogate ("\ud800"), as RFC 8259's grammar
// and encoding/json accept it; AppendUnescaped decodes it to U+FFFD.
func Scan(b []byte, i int) (end int, escaped bool, fault Fault, at int) {
	return scan(b, i, false)
}

// ScanStrict is Scan that also refuses a lone surrogate, since decoders
// read one differently. The fault is placed after the escape that shows the
// surrogate unpaired: the surrogate's own, or the next one when a high
// surrogate is followed by another \u escape.
func ScanStrict(b []byte, i int) (end int, escaped bool, fault Fault, at int) {
	return scan(b, i, true)
}

func scan(b []byte, i int, strict bool) (end int, escaped bool, fault Fault, at int) {
	for j := i + 1; ; {
		// Plain ASCII is the common case; stay in this loop for it.
		for j < len(b) && b[j] >= 0x20 && b[j] < utf8.RuneSelf && b[j] != '"' && b[j] != '\\' {
			j++
		}
		if j >= len(b) {
			return 0, escaped, End, len(b)
		}
		switch c := b[j]; {
		case c == '"':
			return j + 1, escaped, None, 0
		case c == '\\':
			escaped = true
			if j+1 >= len(b) {
				return 0, escaped, Escape, len(b)
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if k := notHex(b, j+2); k < j+6 {
					return 0, escaped, Hex, k
				}
				j += 6
				if !strict {
					continue
				}
				r := hex4(b[j-4 : j])
				if !utf16.IsSurrogate(r) {
					continue
				}
				// A high surrogate must be followed by a \u escape of a low one.
				if r >= 0xdc00 || j+1 >= len(b) || b[j] != '\\' || b[j+1] != 'u' {
					return 0, escaped, LoneSurrogate, j
				}
				if k := notHex(b, j+2); k < j+6 {
					return 0, escaped, Hex, k
				}
				if utf16.DecodeRune(r, hex4(b[j+2:j+6])) == utf8.RuneError {
					return 0, escaped, LoneSurrogate, j + 6
				}
				j += 6
			default:
				return 0, escaped, Escape, j + 1
			}
		case c < 0x20:
			return 0, escaped, Control, j
		default:
			r, size := utf8.DecodeRune(b[j:])
			if r == utf8.RuneError && size == 1 {
				return 0, escaped, UTF8, j
			}
			j += size
		}
	}
}

// notHex returns the offset of the first of the four bytes at b[k:] that
// is not a hex digit: k+4 when all are, len(b) when b ends first.
func notHex(b []byte, k int) int {
	for end := k + 4; k < end; k++ {
		if k >= len(b) || !isHex(b[k]) {
			return k
		}
	}
	return k
}

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}
