package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkCase is one message and the kind of error Check must return for it
// (nil: accepted) at depth bound 64.
type checkCase struct {
	name string
	msg  string
	want error
}

// manyKeys returns an object with n distinct keys k0…k(n-1) followed by
// extra members.
func manyKeys(n int, extra string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		fmt.Fprintf(&b, `"k%d":%d,`, i, i)
	}
	b.WriteString(extra)
	b.WriteByte('}')
	return b.String()
}

func nested(open, close string, n int) string {
	return strings.Repeat(open, n) + strings.Repeat(close, n)
}

func checkCases() []checkCase {
	deep := nested("[", "]", 70)
	return []checkCase{
		{"request", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":[1,{"b":null}]}}}`, nil},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, ErrBatch},
		{"scalar", `"ping"`, ErrNotObject},
		{"empty", ``, ErrSyntax},
		{"truncated", `{"jsonrpc":"2.0","id":1`, ErrSyntax},
		{"trailing data", `{"id":1} {"id":2}`, ErrSyntax},
		{"duplicate key", `{"id":1,"id":2}`, ErrDuplicateKey},
		{"duplicate by escape", `{"params":{"a":1,"\u0061":2}}`, ErrDuplicateKey},
		{"duplicate by case", `{"method":"ping","Method":"tools/call"}`, ErrDuplicateKey},
		{"same key in sibling objects", `{"a":{"k":1},"b":{"k":2}}`, nil},
		{"invalid UTF-8", "{\"a\":\"\xff\"}", ErrInvalidUTF8},
		{"too deep", `{"a":` + deep + `}`, ErrTooDeep},

		// Top level and whitespace.
		{"empty object", `{}`, nil},
		{"whitespace around", " \t\r\n{ \"a\" : 1 , \"b\" : [ ] }\n\r\t ", nil},
		{"only whitespace", " \n\t ", ErrSyntax},
		{"empty batch", `[]`, ErrBatch},
		{"broken batch", `[{`, ErrBatch},
		{"number message", `42`, ErrNotObject},
		{"null message", `null`, ErrNotObject},
		{"garbage message", `hello`, ErrSyntax},
		{"form feed is not whitespace", "\f{}", ErrSyntax},
		{"form feed inside", "{\"a\":\f1}", ErrSyntax},
		{"vertical tab inside", "{\"a\":1\v}", ErrSyntax},
		{"no-break space inside", "{\"a\":1\u00a0}", ErrSyntax},
		{"byte order mark", "\ufeff{}", ErrSyntax},
		{"two objects", `{}{}`, ErrSyntax},
		{"trailing comma", `{"a":1,}`, ErrSyntax},
		{"trailing garbage", `{"a":1}x`, ErrSyntax},
		{"trailing NUL", "{\"a\":1}\x00", ErrSyntax},
		{"trailing invalid UTF-8", "{\"a\":1}\xc3", ErrInvalidUTF8},
		{"invalid UTF-8 after syntax error", "{\"a\":1,,\"b\":\"\xff\"}", ErrInvalidUTF8},
		{"invalid UTF-8 after duplicate", "{\"a\":1,\"a\":\"\xff\"}", ErrInvalidUTF8},
		{"invalid UTF-8 in a batch", "[\"\xff\"]", ErrInvalidUTF8},
		{"unclosed object", `{`, ErrSyntax},
		{"unclosed nested", `{"a":{"b":[1,2}`, ErrSyntax},
		{"mismatched close", `{"a":[1}`, ErrSyntax},
		{"mismatched close object", `{"a":{]}`, ErrSyntax},
		{"extra close", `{"a":1}}`, ErrSyntax},

		// Objects.
		{"missing colon", `{"a" 1}`, ErrSyntax},
		{"missing value", `{"a":}`, ErrSyntax},
		{"missing key", `{:1}`, ErrSyntax},
		{"key only", `{"a"}`, ErrSyntax},
		{"number key", `{1:1}`, ErrSyntax},
		{"bare key", `{a:1}`, ErrSyntax},
		{"single-quoted key", `{'a':1}`, ErrSyntax},
		{"missing comma", `{"a":1 "b":2}`, ErrSyntax},
		{"leading comma", `{,"a":1}`, ErrSyntax},
		{"double comma", `{"a":1,,"b":2}`, ErrSyntax},
		{"double colon", `{"a"::1}`, ErrSyntax},
		{"empty key", `{"":1}`, nil},
		{"two empty keys", `{"":1,"":2}`, ErrDuplicateKey},
		{"duplicate after truncation", `{"a":1,"a"`, ErrDuplicateKey},
		{"duplicate before syntax error", `{"a":1,"a" x}`, ErrDuplicateKey},
		{"syntax error before duplicate", `{"a":1 x,"a":2}`, ErrSyntax},
		{"duplicate nested", `{"p":{"x":1,"y":{"z":1,"z":2}}}`, ErrDuplicateKey},
		{"parent key reused in child", `{"a":{"a":{"a":1}}}`, nil},
		{"keys differing in length", `{"ab":1,"a":2,"abc":3}`, nil},

		// Keys equal after unescaping.
		{"escape upper hex", `{"a":1,"\u0041":2}`, ErrDuplicateKey},
		{"escape both sides", `{"\u0061":1,"\u0041":2}`, ErrDuplicateKey},
		{"escape solidus", `{"a/b":1,"a\/b":2}`, ErrDuplicateKey},
		{"escape newline forms", `{"a\n":1,"a\u000a":2}`, ErrDuplicateKey},
		{"escape newline vs tab", `{"a\n":1,"a\t":2}`, nil},
		{"escape quote forms", `{"\"":1,"\u0022":2}`, ErrDuplicateKey},
		{"escape backslash forms", `{"\\":1,"\u005c":2}`, ErrDuplicateKey},
		{"escape backslash vs escaped letter", `{"\\u0061":1,"a":2}`, nil},
		{"escape non-ASCII", `{"é":1,"\u00e9":2}`, ErrDuplicateKey},
		{"escape non-ASCII upper", `{"é":1,"\u00C9":2}`, ErrDuplicateKey},
		{"escape surrogate pair", `{"😀":1,"\ud83d\ude00":2}`, ErrDuplicateKey},
		{"escape surrogate pair upper hex", `{"\uD83D\uDE00":1,"\ud83d\ude00":2}`, ErrDuplicateKey},
		{"lone surrogates are U+FFFD", `{"\ud800":1,"\udfff":2}`, ErrDuplicateKey},
		{"lone surrogate equals U+FFFD", `{"\ud800":1,"` + "\ufffd" + `":2}`, ErrDuplicateKey},
		{"lone surrogate then letter", `{"\ud800a":1,"\ufffdA":2}`, ErrDuplicateKey},
		{"high surrogate then high", `{"\ud83d\ud83d\ude00":1,"\ufffd😀":2}`, ErrDuplicateKey},
		{"low then high surrogate", `{"\ude00\ud83d":1,"\ufffd\ufffd":2}`, ErrDuplicateKey},
		{"surrogate pair differs from lone", `{"\ud83d\ude00":1,"\ufffd\ufffd":2}`, nil},
		{"long escaped keys duplicate", `{"\u0061` + strings.Repeat("x", 100) + `":1,"\u0062` + strings.Repeat("x", 100) + `":2,"A` + strings.Repeat("X", 100) + `":3}`, ErrDuplicateKey},
		{"long escaped keys distinct", `{"\u0061` + strings.Repeat("x", 100) + `":1,"\u0062` + strings.Repeat("x", 100) + `":2,"A` + strings.Repeat("X", 99) + `":3}`, nil},
		{"escaped keys in nested and parent", `{"\u0061":{"\u0062":1,"c":2},"\u0062":{"\u0061":1},"B":3}`, ErrDuplicateKey},

		// Keys equal after case folding (Unicode simple folding, as Go
		// decoders match struct fields).
		{"fold title case digraph", `{"ǅ":1,"ǆ":2}`, ErrDuplicateKey},
		{"fold upper digraph", `{"Ǆ":1,"ǆ":2}`, ErrDuplicateKey},
		{"fold Kelvin sign", `{"k":1,"K":2}`, ErrDuplicateKey},
		{"fold long s", `{"s":1,"ſ":2}`, ErrDuplicateKey},
		{"fold long s escaped", `{"S":1,"\u017f":2}`, ErrDuplicateKey},
		{"fold sharp s", `{"ß":1,"ẞ":2}`, ErrDuplicateKey},
		{"fold Greek sigma", `{"Σ":1,"ς":2}`, ErrDuplicateKey},
		{"fold Cyrillic", `{"имя":1,"ИМЯ":2}`, ErrDuplicateKey},
		{"dotted capital I is not i", `{"i":1,"İ":2}`, nil},
		{"dotless i is not I", `{"I":1,"ı":2}`, nil},
		{"sharp s is not ss", `{"ss":1,"ß":2}`, nil},
		{"fold mixed case ASCII", `{"ProgressToken":1,"progresstoken":2}`, ErrDuplicateKey},
		{"punctuation does not fold", `{"[":1,"{":2,"@":3,"` + "`" + `":4}`, nil},

		// Many keys: past maxLinearKeys the check uses a set of folded keys.
		{"64 keys", manyKeys(64, `"last":1`), nil},
		{"64 keys duplicate at end", manyKeys(64, `"k0":1`), ErrDuplicateKey},
		{"64 keys duplicate of late key", manyKeys(64, `"K63":1`), ErrDuplicateKey},
		{"64 keys duplicate by escape", manyKeys(64, `"\u006b40":1`), ErrDuplicateKey},
		{"64 keys duplicate by fold", manyKeys(64, `"K20":1`), ErrDuplicateKey},
		{"17 keys duplicate at spill", manyKeys(16, `"k15":1`), ErrDuplicateKey},
		{"17 keys no duplicate", manyKeys(16, `"k16":1`), nil},
		{"many keys escaped duplicates late", manyKeys(40, `"\u00e9":1,"x":{"y":1},"\u00c9":2`), ErrDuplicateKey},
		{"many keys in nested objects", `{"a":` + manyKeys(30, `"b":`+manyKeys(30, `"k5":0`)) + `}`, ErrDuplicateKey},
		{"many keys siblings", `{"a":` + manyKeys(30, `"z":0`) + `,"b":` + manyKeys(30, `"z":0`) + `}`, nil},
		{"parent keys after many nested", `{"a":` + manyKeys(20, `"z":0`) + `,"b":1,"A":2}`, ErrDuplicateKey},

		// Numbers.
		{"zero", `{"a":0}`, nil},
		{"minus zero", `{"a":-0}`, nil},
		{"integer", `{"a":1234567890}`, nil},
		{"negative", `{"a":-12}`, nil},
		{"fraction", `{"a":0.5}`, nil},
		{"negative fraction", `{"a":-0.0}`, nil},
		{"exponent", `{"a":1e5}`, nil},
		{"exponent upper plus", `{"a":1E+5}`, nil},
		{"exponent minus", `{"a":1e-5}`, nil},
		{"fraction exponent", `{"a":-1.25e-10}`, nil},
		{"exponent leading zeros", `{"a":1e007}`, nil},
		{"huge exponent", `{"a":1e999999}`, nil},
		{"long number", `{"a":` + strings.Repeat("9", 400) + `}`, nil},
		{"numbers in array", `{"a":[0,-0,1,-1,0.1,1e1,1E-1,10]}`, nil},
		{"leading zero", `{"a":01}`, ErrSyntax},
		{"negative leading zero", `{"a":-01}`, ErrSyntax},
		{"trailing dot", `{"a":1.}`, ErrSyntax},
		{"leading dot", `{"a":.5}`, ErrSyntax},
		{"bare minus", `{"a":-}`, ErrSyntax},
		{"minus at end", `{"a":-`, ErrSyntax},
		{"plus sign", `{"a":+1}`, ErrSyntax},
		{"double minus", `{"a":--1}`, ErrSyntax},
		{"empty exponent", `{"a":1e}`, ErrSyntax},
		{"exponent sign only", `{"a":1e+}`, ErrSyntax},
		{"dot exponent", `{"a":1.e5}`, ErrSyntax},
		{"two dots", `{"a":1.2.3}`, ErrSyntax},
		{"hex number", `{"a":0x10}`, ErrSyntax},
		{"infinity", `{"a":Infinity}`, ErrSyntax},
		{"NaN", `{"a":NaN}`, ErrSyntax},
		{"number then letter", `{"a":1a}`, ErrSyntax},
		{"minus space", `{"a":- 1}`, ErrSyntax},

		// Literals.
		{"literals", `{"t":true,"f":false,"n":null}`, nil},
		{"upper literal", `{"a":True}`, ErrSyntax},
		{"short literal", `{"a":tru}`, ErrSyntax},
		{"truncated literal", `{"a":nul`, ErrSyntax},
		{"long literal", `{"a":nulll}`, ErrSyntax},
		{"literal then letter", `{"a":truex}`, ErrSyntax},
		{"undefined", `{"a":undefined}`, ErrSyntax},

		// Strings.
		{"every escape", `{"a":"\"\\\/\b\f\n\r\t\u0000\u001f\u00e9\uFFFF"}`, nil},
		{"surrogate pair", `{"a":"\ud83d\ude00"}`, nil},
		{"lone high surrogate", `{"a":"\ud83d"}`, nil},
		{"lone low surrogate", `{"a":"\ude00x"}`, nil},
		{"raw non-ASCII", `{"a":"é日本😀"}`, nil},
		{"raw DEL", "{\"a\":\"\x7f\"}", nil},
		{"unknown escape", `{"a":"\x41"}`, ErrSyntax},
		{"escaped apostrophe", `{"a":"\'"}`, ErrSyntax},
		{"short unicode escape", `{"a":"\u12"}`, ErrSyntax},
		{"non-hex unicode escape", `{"a":"\u12G4"}`, ErrSyntax},
		{"upper U escape", `{"a":"\U0041"}`, ErrSyntax},
		{"escape at end", `{"a":"\`, ErrSyntax},
		{"unicode escape at end", `{"a":"\u00`, ErrSyntax},
		{"unterminated string", `{"a":"abc`, ErrSyntax},
		{"unterminated key", `{"abc`, ErrSyntax},
		{"raw newline", "{\"a\":\"x\ny\"}", ErrSyntax},
		{"raw tab", "{\"a\":\"x\ty\"}", ErrSyntax},
		{"raw NUL", "{\"a\":\"\x00\"}", ErrSyntax},
		{"raw control in key", "{\"a\x1f\":1}", ErrSyntax},
		{"single quotes", `{"a":'x'}`, ErrSyntax},
		{"invalid UTF-8 in key", "{\"\xc3\x28\":1}", ErrInvalidUTF8},
		{"truncated UTF-8", "{\"a\":\"\xe6\x97\"}", ErrInvalidUTF8},
		{"overlong UTF-8", "{\"a\":\"\xc0\xaf\"}", ErrInvalidUTF8},
		{"UTF-8 surrogate", "{\"a\":\"\xed\xa0\x80\"}", ErrInvalidUTF8},
		{"UTF-8 beyond U+10FFFF", "{\"a\":\"\xf4\x90\x80\x80\"}", ErrInvalidUTF8},
		{"raw U+FFFD", "{\"a\":\"\xef\xbf\xbd\"}", nil},
		{"non-ASCII outside string", "{\"a\":1é}", ErrSyntax},

		// Nesting: the message object is level 1; 64 levels are allowed.
		{"depth 64 arrays", `{"a":` + nested("[", "]", 63) + `}`, nil},
		{"depth 65 arrays", `{"a":` + nested("[", "]", 64) + `}`, ErrTooDeep},
		{"depth 64 objects", strings.Repeat(`{"a":`, 63) + `{}` + strings.Repeat(`}`, 63), nil},
		{"depth 65 objects", strings.Repeat(`{"a":`, 64) + `{}` + strings.Repeat(`}`, 64), ErrTooDeep},
		{"too deep before syntax error", `{"a":` + strings.Repeat("[", 70), ErrTooDeep},
		{"syntax error before too deep", `{"a":1,,"b":` + deep + `}`, ErrSyntax},
		{"duplicate before too deep", `{"a":1,"a":` + deep + `}`, ErrDuplicateKey},
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range checkCases() {
		t.Run(tc.name, func(t *testing.T) {
			err := Check([]byte(tc.msg), 64)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Check = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCheckDepthBound(t *testing.T) {
	for _, maxDepth := range []int{-1, 0, 1, 2, 5, 16} {
		for _, tc := range []struct {
			level int
			msg   string
		}{
			{1, `{}`},
			{2, `{"a":[]}`},
			{2, `{"a":{}}`},
			{3, `{"a":[{}]}`},
			{5, `{"a":` + nested("[", "]", 4) + `}`},
			{6, `{"a":` + nested("[", "]", 5) + `}`},
			{16, `{"a":` + nested("[", "]", 15) + `}`},
			{17, `{"a":` + nested("[", "]", 16) + `}`},
		} {
			err := Check([]byte(tc.msg), maxDepth)
			if tc.level <= maxDepth && err != nil {
				t.Errorf("Check(%s, %d) = %v, want nil", tc.msg, maxDepth, err)
			}
			if tc.level > maxDepth && !errors.Is(err, ErrTooDeep) {
				t.Errorf("Check(%s, %d) = %v, want %v", tc.msg, maxDepth, err, ErrTooDeep)
			}
		}
	}
}

func TestCheckMessages(t *testing.T) {
	long := strings.Repeat("x", 50)
	for _, tc := range []struct {
		msg, want string
	}{
		{`{"id":1,"ID":2}`, `duplicate object key "ID"`},
		{`{"a":1,"\u0041":2}`, `duplicate object key "A"`},
		{`{"` + long + `":1,"` + long + `":2}`, `duplicate object key "` + long[:40] + `…"`},
		{`{"a":` + nested("[", "]", 70) + `}`, `nesting too deep: more than 64 levels`},
		{`{"a":1} {}`, `malformed JSON: data after the message`},
		{`{"a":1`, `malformed JSON: unexpected end`},
		{`{"a":1 x}`, `malformed JSON: unexpected 'x' after an object value at offset 7`},
		{"{\"a\":\"\x01\"}", `malformed JSON: unexpected byte 0x01 in a string (control characters must be escaped) at offset 6`},
		{"{\"a\":\xff}", `invalid UTF-8`},
	} {
		if err := Check([]byte(tc.msg), 64); err == nil || err.Error() != tc.want {
			t.Errorf("Check(%q) = %v, want %s", tc.msg, err, tc.want)
		}
	}
}

func TestCheckDoesNotAllocate(t *testing.T) {
	for name, msg := range map[string][]byte{
		"tools/call":    toolsCallMessage,
		"escaped keys":  []byte(`{"jsonrpc":"2.0","id":"a\"b","method":"x","params":{"\u0061":1,"b\n":[{"\u00e9t\u00e9":true,"\ud83d\ude00":null}]}}`),
		"large":         largeMessage(64 << 10),
		"16 keys":       []byte(manyKeys(15, `"z":{"y":1}`)),
		"deep but fine": []byte(`{"a":` + nested("[", "]", 63) + `}`),
	} {
		if err := Check(msg, 64); err != nil {
			t.Fatalf("%s: Check = %v", name, err)
		}
		if n := testing.AllocsPerRun(20, func() { _ = Check(msg, 64) }); n != 0 {
			t.Errorf("%s: Check allocates %v times per call, want 0", name, n)
		}
	}
}

// referenceCheck is the earlier implementation of Check, built on
// encoding/json's Decoder.Token, kept as the oracle for FuzzCheck. It
// differs from that implementation in one place: it compared keys by
// strings.ToLower, which disagrees with how encoding/json matches struct
// fields (Unicode simple folding, as strings.EqualFold): "ſ" matches a
// field S but does not lower to "s", and "İ" lowers to "i" but matches no
// field I. Here keys are compared with strings.EqualFold, pairwise, so the
// oracle shares no folding code with Check.
func referenceCheck(data []byte, maxDepth int) error {
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
		if json.Valid(data) {
			return ErrNotObject
		}
		return fmt.Errorf("%w: not JSON", ErrSyntax)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := referenceValue(dec, maxDepth, 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the message", ErrSyntax)
	}
	return nil
}

func referenceValue(dec *json.Decoder, maxDepth, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return referenceSyntaxErr(err)
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
		var seen []string
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return referenceSyntaxErr(err)
			}
			key, _ := kt.(string)
			for _, s := range seen {
				if strings.EqualFold(s, key) {
					return fmt.Errorf("%w %q", ErrDuplicateKey, truncate(key))
				}
			}
			seen = append(seen, key)
			if err := referenceValue(dec, maxDepth, depth+1); err != nil {
				return err
			}
		}
	case '[':
		for dec.More() {
			if err := referenceValue(dec, maxDepth, depth+1); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return referenceSyntaxErr(err)
	}
	return nil
}

func referenceSyntaxErr(err error) error {
	if err == io.EOF {
		return fmt.Errorf("%w: unexpected end", ErrSyntax)
	}
	return fmt.Errorf("%w: %v", ErrSyntax, err)
}

// errorKind names the Err value err wraps, or "accepted".
func errorKind(err error) string {
	if err == nil {
		return "accepted"
	}
	for _, kind := range []error{ErrSyntax, ErrInvalidUTF8, ErrDuplicateKey, ErrTooDeep, ErrBatch, ErrNotObject} {
		if errors.Is(err, kind) {
			return kind.Error()
		}
	}
	return "unknown error " + err.Error()
}

func TestReferenceAgreesOnCases(t *testing.T) {
	for _, tc := range checkCases() {
		if got, want := errorKind(referenceCheck([]byte(tc.msg), 64)), errorKind(tc.want); got != want {
			t.Errorf("%s: referenceCheck gives %s, the case wants %s", tc.name, got, want)
		}
	}
}

// TestCheckMatchesReferenceOnEdits compares Check with referenceCheck on
// every short case truncated, with one byte deleted, and with one byte
// replaced by each byte that matters to the grammar.
func TestCheckMatchesReferenceOnEdits(t *testing.T) {
	const grammarBytes = "{}[]\":,\\/u0019-+.eEtfn \x00\x80"
	for _, tc := range checkCases() {
		msg := tc.msg
		if len(msg) > 120 {
			continue
		}
		var edits []string
		for i := range len(msg) {
			edits = append(edits, msg[:i], msg[:i]+msg[i+1:])
			for k := range len(grammarBytes) {
				edits = append(edits, msg[:i]+grammarBytes[k:k+1]+msg[i+1:])
			}
		}
		for _, e := range edits {
			for _, depth := range []int{2, 64} {
				got, want := Check([]byte(e), depth), referenceCheck([]byte(e), depth)
				if errorKind(got) != errorKind(want) {
					t.Fatalf("Check(%q, %d) = %v; referenceCheck = %v", e, depth, got, want)
				}
			}
		}
	}
}

// FuzzCheck compares Check with referenceCheck: both must accept or refuse
// every input, and refuse it for the same kind of fault.
func FuzzCheck(f *testing.F) {
	for _, tc := range checkCases() {
		f.Add([]byte(tc.msg), uint8(64))
	}
	for _, s := range []string{`{"jsonrpc":"2.0","id":1,"method":"ping"}`, `[]`, `{"a":{"a":1}}`, `{"\u0041":1,"a":2}`} {
		f.Add([]byte(s), uint8(16))
	}
	f.Add(toolsCallMessage, uint8(3))
	f.Fuzz(func(t *testing.T, b []byte, maxDepth uint8) {
		depth := int(maxDepth % 70)
		got, want := Check(b, depth), referenceCheck(b, depth)
		if errorKind(got) != errorKind(want) {
			t.Fatalf("Check(%q, %d) = %v; referenceCheck = %v", b, depth, got, want)
		}
	})
}

var toolsCallMessage = []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"shop.refund_order","arguments":{"order_id":"12345","amount":1500,"reason":"damaged in transit"},"_meta":{"progressToken":7}}}`)

// largeMessage builds a message of about size bytes shaped like a tool
// result: text content and structured rows with nested objects, arrays,
// numbers, escapes and non-ASCII text.
func largeMessage(size int) []byte {
	var b strings.Builder
	b.WriteString(`{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"Found customers matching \"Müller\":\n- see rows"}],"structuredContent":{"rows":[`)
	for i := 0; b.Len() < size-200; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"Customer %d Müller-Lüdenscheidt","email":"c%d@example.com","tags":["retail","priority-%d"],"address":{"street":"%d Hauptstraße","city":"Zürich","zip":"80%02d","geo":{"lat":47.3769,"lon":8.5417e0}},"balance":%d.%02d,"active":%t,"notes":"line one\nline two \u00e9\t\"quoted\"","manager":null}`,
			i, i, i, i%5, i+1, i%100, i*37, i%100, i%2 == 0)
	}
	b.WriteString(`],"total":1000},"isError":false}}`)
	return []byte(b.String())
}

// BenchmarkCheck measures the strict pass over a small tools/call message.
func BenchmarkCheck(b *testing.B) {
	benchmarkCheck(b, Check, toolsCallMessage)
}

// BenchmarkCheckLarge measures the strict pass over a 64 KiB tool result.
func BenchmarkCheckLarge(b *testing.B) {
	benchmarkCheck(b, Check, largeMessage(64<<10))
}

// BenchmarkReferenceCheck and BenchmarkReferenceCheckLarge measure the
// earlier implementation, for comparison.
func BenchmarkReferenceCheck(b *testing.B) {
	benchmarkCheck(b, referenceCheck, toolsCallMessage)
}

func BenchmarkReferenceCheckLarge(b *testing.B) {
	benchmarkCheck(b, referenceCheck, largeMessage(64<<10))
}

func benchmarkCheck(b *testing.B, check func([]byte, int) error, msg []byte) {
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if err := check(msg, 64); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCodeAndID(t *testing.T) {
	if got := Code(ErrSyntax); got != -32700 {
		t.Errorf("Code(syntax) = %d, want -32700", got)
	}
	if got := Code(ErrDuplicateKey); got != -32600 {
		t.Errorf("Code(duplicate) = %d, want -32600", got)
	}
	if got := string(ID([]byte(`{"id":7,"id":8}`))); got != "8" && got != "7" {
		t.Errorf("ID of a duplicate-id message = %s, want one of the ids", got)
	}
	if got := string(ID([]byte(`{"id":{"x":1}}`))); got != "null" {
		t.Errorf("ID of an object id = %s, want null", got)
	}
	if got := string(ErrorResponse(nil, -32600, "bad")); got != `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"bad"}}` {
		t.Errorf("ErrorResponse = %s", got)
	}
}

func TestCheckMethod(t *testing.T) {
	for _, tc := range []struct {
		msg, want string
		none      bool
	}{
		{msg: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}`, want: "tools/call"},
		{msg: `{"jsonrpc":"2.0","method":"tools\/list"}`, want: "tools/list"},
		{msg: `{"jsonrpc":"2.0","id":1,"METHOD":"ping"}`, want: "ping"}, // as encoding/json matches it
		{msg: `{"jsonrpc":"2.0","id":1,"params":{"method":"inner"},"method":"outer"}`, want: "outer"},
		{msg: `{"jsonrpc":"2.0","id":1,"result":{"method":"not a request"}}`, none: true},
		{msg: `{"jsonrpc":"2.0","id":1,"method":7}`, none: true},
	} {
		got, err := CheckMethod([]byte(tc.msg), 64)
		if err != nil {
			t.Errorf("%s: %v", tc.msg, err)
			continue
		}
		if tc.none && got != nil || !tc.none && string(got) != tc.want {
			t.Errorf("%s: method %q, want %q (none: %v)", tc.msg, got, tc.want, tc.none)
		}
	}
	if m, err := CheckMethod([]byte(`{"method":"a","method":"b"}`), 64); err == nil || m != nil {
		t.Errorf("duplicate method keys: %q, %v; want the duplicate refused", m, err)
	}
}

func TestDuplicateKeyMessageKeepsCharactersWhole(t *testing.T) {
	key := strings.Repeat("a", 39) + "é" + strings.Repeat("b", 10) // é spans bytes 39 and 40
	err := Check([]byte(`{"`+key+`":1,"`+key+`":2}`), 64)
	if !errors.Is(err, ErrDuplicateKey) {
		t.Fatalf("err = %v, want a duplicate key", err)
	}
	if msg := err.Error(); !utf8.ValidString(msg) || strings.Contains(msg, `\x`) {
		t.Errorf("message %q splits a character", msg)
	}
}
