package jsonstr

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// scanCases are strings with what Scan and ScanStrict return for them; at
// is checked only for a fault. They also seed FuzzScan.
var scanCases = []struct {
	name     string
	in       string
	end      int
	escaped  bool
	fault    Fault
	at       int
	strict   Fault // ScanStrict's fault, when it differs from Scan's
	strictAt int
}{
	{name: "empty", in: `""`, end: 2},
	{name: "plain", in: `"abc",1`, end: 5},
	{name: "every escape", in: `"\"\\\/\b\f\n\r\t\u0041"`, end: 24, escaped: true},
	{name: "raw non-ASCII", in: `"é日😀"`, end: 11},
	{name: "raw DEL", in: "\"\x7f\"", end: 3},
	{name: "surrogate pair", in: `"\ud83d\ude00"`, end: 14, escaped: true},
	{name: "lone high surrogate", in: `"\ud800x"`, end: 9, escaped: true, strict: LoneSurrogate, strictAt: 7},
	{name: "lone low surrogate", in: `"\udc00"`, end: 8, escaped: true, strict: LoneSurrogate, strictAt: 7},
	{name: "high then high", in: `"\ud800\ud800"`, end: 14, escaped: true, strict: LoneSurrogate, strictAt: 13},
	{name: "high then bad hex", in: `"\ud800\u12G4"`, fault: Hex, at: 11},
	{name: "high then escape", in: `"\ud800\n"`, end: 10, escaped: true, strict: LoneSurrogate, strictAt: 7},
	{name: "high at end of input", in: `"\ud800`, fault: End, at: 7, strict: LoneSurrogate, strictAt: 7},
	{name: "unclosed", in: `"abc`, fault: End, at: 4},
	{name: "control character", in: "\"a\tb\"", fault: Control, at: 2},
	{name: "unknown escape", in: `"a\x"`, fault: Escape, at: 3},
	{name: "backslash at end", in: `"a\`, fault: Escape, at: 3},
	{name: "short hex", in: `"\u12"`, fault: Hex, at: 5},
	{name: "hex at end", in: `"\u12`, fault: Hex, at: 5},
	{name: "upper U", in: `"\U0041"`, fault: Escape, at: 2},
	{name: "invalid UTF-8", in: "\"a\xffb\"", fault: UTF8, at: 2},
	{name: "UTF-8 surrogate", in: "\"\xed\xa0\x80\"", fault: UTF8, at: 1},
}

func TestScan(t *testing.T) {
	for _, tc := range scanCases {
		strict, strictAt := tc.strict, tc.strictAt
		if strict == None {
			strict, strictAt = tc.fault, tc.at
		}
		for _, s := range []struct {
			name  string
			scan  func([]byte, int) (int, bool, Fault, int)
			fault Fault
			at    int
		}{{"Scan", Scan, tc.fault, tc.at}, {"ScanStrict", ScanStrict, strict, strictAt}} {
			// The string starts after a prefix, as in a document.
			in := []byte(`{"k":` + tc.in)
			end, escaped, fault, at := s.scan(in, 5)
			if fault != s.fault || fault != None && at != s.at+5 || fault == None && (end != tc.end+5 || escaped != tc.escaped) {
				t.Errorf("%s: %s(%q) = %d, %v, fault %d at %d; want %d, %v, fault %d at %d",
					tc.name, s.name, tc.in, end-5, escaped, fault, at-5, tc.end, tc.escaped, s.fault, s.at)
			}
		}
	}
}

// FuzzScan holds Scan and AppendUnescaped to encoding/json: Scan ends a
// string at the first quote that closes a valid JSON string in UTF-8, and
// refuses it when no quote does; AppendUnescaped decodes it as Unmarshal
// does.
func FuzzScan(f *testing.F) {
	for _, tc := range scanCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 || in[0] != '"' {
			in = append([]byte{'"'}, in...)
		}
		end, escaped, fault, _ := Scan(in, 0)
		for k := 1; k < len(in); k++ {
			if in[k] != '"' {
				continue
			}
			valid := utf8.Valid(in[:k+1]) && json.Valid(in[:k+1])
			if valid != (fault == None && end == k+1) {
				t.Fatalf("Scan(%q) = %d, fault %d; the string to offset %d is valid: %v", in, end, fault, k+1, valid)
			}
			if valid {
				break
			}
		}
		if fault != None {
			return
		}
		var want string
		if err := json.Unmarshal(in[:end], &want); err != nil {
			t.Fatal(err)
		}
		if got := AppendUnescaped(nil, in[1:end-1]); string(got) != want {
			t.Fatalf("AppendUnescaped(%q) = %q, Unmarshal gives %q", in[1:end-1], got, want)
		}
		if e, esc, sf, _ := ScanStrict(in, 0); escaped != esc || sf == None && e != end || sf != None && sf != LoneSurrogate {
			t.Fatalf("ScanStrict(%q) = %d, %v, fault %d; Scan gives %d, %v", in, e, esc, sf, end, escaped)
		}
	})
}
