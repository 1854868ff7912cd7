package argschema

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// decodeCases are inputs with their canonical re-encoding ("" when the input
// must be rejected, with wantErr naming the reason). They also seed the fuzzer.
var decodeCases = []struct {
	name    string
	in      string
	want    string
	wantErr string
}{
	{name: "empty object", in: `{}`, want: `{}`},
	{name: "keys sorted and space removed", in: ` { "b" : 1 , "a" : [ true , null ] } `, want: `{"a":[true,null],"b":1}`},
	{name: "number literal kept", in: `{"n":10000.0000000001}`, want: `{"n":10000.0000000001}`},
	{name: "negative zero kept", in: `{"n":-0}`, want: `{"n":-0}`},
	{name: "exponent kept", in: `[1E+2,1e-2]`, want: `[1E+2,1e-2]`},
	{name: "escapes decoded", in: `"\u0041\n\u00e9\ud83d\ude00"`, want: "\"A\\n\u00e9\U0001F600\""},
	{name: "html not escaped", in: `"<a&b>"`, want: `"<a&b>"`},
	{name: "proto key is an ordinary key", in: `{"__proto__":{"admin":true}}`, want: `{"__proto__":{"admin":true}}`},
	{name: "NaN-like string stays a string", in: `{"n":"NaN"}`, want: `{"n":"NaN"}`},
	{name: "top-level scalar", in: `"x"`, want: `"x"`},

	{name: "duplicate key", in: `{"a":1,"a":2}`, wantErr: "duplicate key"},
	{name: "duplicate key by escape", in: `{"a":1,"\u0061":2}`, wantErr: "duplicate key"},
	{name: "duplicate key nested", in: `{"x":[{"k":1,"k":1}]}`, wantErr: "duplicate key"},
	{name: "keys differing by case", in: `{"amount":1,"Amount":2}`, wantErr: "only by case"},
	{name: "keys folding through the kelvin sign", in: `{"k":1,"\u212a":2}`, wantErr: "only by case"},
	{name: "invalid utf-8", in: "{\"a\":\"\xff\"}", wantErr: "invalid UTF-8"},
	{name: "lone high surrogate", in: `"\ud800"`, wantErr: "lone surrogate"},
	{name: "lone low surrogate", in: `"\udc00x"`, wantErr: "lone surrogate"},
	{name: "number overflow", in: `{"n":1e309}`, wantErr: "out of range"},
	{name: "negative overflow", in: `-1e400`, wantErr: "out of range"},
	{name: "number underflow", in: `1e-400`, wantErr: "too small"},
	{name: "number literal too long", in: "1" + strings.Repeat("0", 600), wantErr: "too long"},
	{name: "NaN literal", in: `NaN`, wantErr: "unexpected character"},
	{name: "Infinity literal", in: `{"n":Infinity}`, wantErr: "unexpected character"},
	{name: "leading zero", in: `012`, wantErr: "leading zero"},
	{name: "trailing comma", in: `[1,]`, wantErr: "unexpected character"},
	{name: "two values", in: `{} {}`, wantErr: "after the value"},
	{name: "raw control character", in: "\"a\tb\"", wantErr: "control character"},
	{name: "unterminated string", in: `"abc`, wantErr: "unterminated"},
	{name: "bad escape", in: `"\x"`, wantErr: "invalid escape"},
	{name: "empty input", in: ``, wantErr: "end of input"},
	{name: "too deep", in: strings.Repeat("[", 65) + strings.Repeat("]", 65), wantErr: "nesting deeper than 64"},
}

func TestDecodeStrict(t *testing.T) {
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := DecodeStrict([]byte(tc.in), 0)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("DecodeStrict accepted %q, want an error containing %q", tc.in, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tc.wantErr)
				}
				if !IsDecodeError(err) {
					t.Fatalf("error %v is not a *DecodeError", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeStrict(%q): %v", tc.in, err)
			}
			got, err := Encode(v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("Encode = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestDecodeStrictDepthBound(t *testing.T) {
	nested := strings.Repeat(`{"a":`, 10) + "1" + strings.Repeat("}", 10)
	if _, err := DecodeStrict([]byte(nested), 10); err != nil {
		t.Fatalf("depth 10 with bound 10: %v", err)
	}
	if _, err := DecodeStrict([]byte(nested), 9); err == nil {
		t.Fatal("depth 10 with bound 9 was accepted")
	}
	// A very deep input must fail fast, not exhaust the stack.
	deep := strings.Repeat("[", 1<<20)
	if _, err := DecodeStrict([]byte(deep), 0); err == nil {
		t.Fatal("million-deep input was accepted")
	}
}

func TestDecodeStrictTypes(t *testing.T) {
	v, err := DecodeStrict([]byte(`{"s":"10000","n":10000,"b":false,"z":null,"l":[]}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"s": "10000", "n": json.Number("10000"), "b": false, "z": nil, "l": []any{}}
	if diff := cmp.Diff(want, v); diff != "" {
		t.Fatalf("decoded value (-want +got):\n%s", diff)
	}
}

func TestDecodeErrorDoesNotEchoValue(t *testing.T) {
	secret := strings.Repeat("s3cr3t", 100)
	_, err := DecodeStrict([]byte(`{"`+secret+`":1,"`+secret+`":2}`), 0)
	if err == nil {
		t.Fatal("duplicate long key accepted")
	}
	if len(err.Error()) > 120 {
		t.Fatalf("error message is %d bytes long, it should be cut: %s", len(err.Error()), err)
	}
}

func TestHugeStringRoundTrip(t *testing.T) {
	s := strings.Repeat("x", 4<<20)
	v, err := DecodeStrict([]byte(`{"s":"`+s+`"}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(s)+8 {
		t.Fatalf("re-encoded length %d, want %d", len(out), len(s)+8)
	}
}

func FuzzDecodeEncode(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		v, err := DecodeStrict(raw, 0)
		if err != nil {
			return
		}
		enc1, err := Encode(v)
		if err != nil {
			t.Fatalf("Encode of a decoded value failed: %v", err)
		}
		v2, err := DecodeStrict(enc1, 0)
		if err != nil {
			t.Fatalf("re-encoding %q is not strictly decodable: %v", enc1, err)
		}
		// reflect.DeepEqual, not cmp.Diff: cmp is exponential on deeply
		// nested interface values.
		if !reflect.DeepEqual(v, v2) {
			t.Fatalf("round trip changed the value of %q", raw)
		}
		enc2, err := Encode(v2)
		if err != nil {
			t.Fatal(err)
		}
		if string(enc1) != string(enc2) {
			t.Fatalf("re-encoding not stable: %q then %q", enc1, enc2)
		}
	})
}

func BenchmarkDecodeValidateEncode(b *testing.B) {
	raw := []byte(`{"order_id":"12345","amount":250.5,"currency":"EUR","lines":[{"sku":"a-1","qty":2},{"sku":"b-2","qty":1}],"note":"customer called about a late parcel"}`)
	sch, err := CompileUpstream([]byte(refundSchema))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		v, err := DecodeStrict(raw, 0)
		if err != nil {
			b.Fatal(err)
		}
		_ = sch.Validate(v) // fails on the extra "note"; the work is the same
		if _, err := Encode(v); err != nil {
			b.Fatal(err)
		}
	}
}
