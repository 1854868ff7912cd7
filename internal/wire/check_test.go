package wire

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	deep := strings.Repeat("[", 70) + strings.Repeat("]", 70)
	for _, tc := range []struct {
		name string
		msg  string
		want error // nil: accepted
	}{
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
	} {
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

func FuzzCheck(f *testing.F) {
	for _, s := range []string{`{"jsonrpc":"2.0","id":1,"method":"ping"}`, `[]`, `{"a":{"a":1}}`, `{"\u0041":1,"a":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = Check(b, 16) // must not panic
	})
}

// BenchmarkCheck measures the strict pass over a small tools/call message.
func BenchmarkCheck(b *testing.B) {
	msg := []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"shop.refund_order","arguments":{"order_id":"12345","amount":1500,"reason":"damaged in transit"},"_meta":{"progressToken":7}}}`)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Check(msg, 64); err != nil {
			b.Fatal(err)
		}
	}
}
