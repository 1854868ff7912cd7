package mask

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/wardenmcp/warden/internal/mask/detect"
)

func newMasker(t *testing.T, opts Options) *Masker {
	t.Helper()
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// memSink is an in-memory TokenSink.
type memSink struct {
	m   map[string][2]string
	err error
}

func (s *memSink) Put(token, class, value string) error {
	if s.err != nil {
		return s.err
	}
	if s.m == nil {
		s.m = map[string][2]string{}
	}
	s.m[token] = [2]string{class, value}
	return nil
}

func TestActions(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	cases := []struct {
		action Action
		text   string
		want   string
	}{
		{Redact, "mail jane@example.com now", "mail [EMAIL_ADDRESS] now"},
		{Partial, "mail jane@example.com now", "mail j***@example.com now"},
		{Partial, "card 4111 1111 1111 1234 ok", "card 4111 1111 1111 1234 ok"}, // fails Luhn: not a card
		{Partial, "card 4111 1111 1111 1111 ok", "card ****1111 ok"},
		{Partial, "call +44 20 7946 0958", "call ****0958"},
		{Partial, "from 192.168.10.1", "from 192.*.*.*"},
		{Partial, "key AKIAIOSFODNN7EXAMPLE", "key [AWS_ACCESS_KEY]"},
		{Pass, "mail jane@example.com now", "mail jane@example.com now"},
		{Hash, "mail jane@example.com now", "mail hash_EMAIL_ADDRESS_"},
	}
	for _, tc := range cases {
		m := newMasker(t, Options{Plan: Plan{Default: tc.action}, HashKey: key})
		got, rep, err := m.Text(tc.text)
		if err != nil {
			t.Fatal(err)
		}
		if tc.action == Hash {
			if !strings.HasPrefix(got, tc.want) || len(got) != len(tc.want)+16+4 {
				t.Errorf("hash: got %q", got)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("%s %q: got %q, want %q", tc.action, tc.text, got, tc.want)
		}
		if tc.action == Pass && rep.Counts[detect.Email] != 1 {
			t.Errorf("pass still counts: %v", rep.Counts)
		}
	}
}

func TestHashIsDeterministicPerKey(t *testing.T) {
	m1 := newMasker(t, Options{Plan: Plan{Default: Hash}, HashKey: bytes.Repeat([]byte("a"), 32)})
	m2 := newMasker(t, Options{Plan: Plan{Default: Hash}, HashKey: bytes.Repeat([]byte("b"), 32)})
	a, _, _ := m1.Text("jane@example.com")
	b, _, _ := m1.Text("JANE@example.com")
	c, _, _ := m2.Text("jane@example.com")
	if a != b {
		t.Errorf("same email, different case: %q vs %q", a, b)
	}
	if a == c {
		t.Errorf("different keys gave the same hash %q", a)
	}
	d, _, _ := m1.Text("card 4111-1111-1111-1111")
	e, _, _ := m1.Text("card 4111111111111111")
	if d != e {
		t.Errorf("card formatting changed the hash: %q vs %q", d, e)
	}
}

func TestTokenize(t *testing.T) {
	sink := &memSink{}
	m := newMasker(t, Options{Plan: Plan{Default: Tokenize}, Tokens: sink})
	got, rep, err := m.Text("mail jane@example.com")
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimPrefix(got, "mail ")
	if !strings.HasPrefix(tok, "tok_EMAIL_ADDRESS_") || sink.m[tok] != [2]string{detect.Email, "jane@example.com"} {
		t.Errorf("got %q, sink %v", got, sink.m)
	}
	if rep.TokenFailures != 0 {
		t.Errorf("token failures %d", rep.TokenFailures)
	}

	// A sink that fails: the value is redacted, never passed.
	failing := newMasker(t, Options{Plan: Plan{Default: Tokenize}, Tokens: &memSink{err: errors.New("store down")}})
	got, rep, _ = failing.Text("mail jane@example.com")
	if got != "mail [EMAIL_ADDRESS]" || rep.TokenFailures != 1 {
		t.Errorf("failing sink: got %q, failures %d", got, rep.TokenFailures)
	}
}

func TestNewRejectsIncompletePlans(t *testing.T) {
	for name, opts := range map[string]Options{
		"hash without key":        {Plan: Plan{Actions: map[string]Action{detect.Email: Hash}}},
		"tokenize without sink":   {Plan: Plan{Default: Tokenize}},
		"unknown action":          {Plan: Plan{Actions: map[string]Action{detect.Email: "shred"}}},
		"bad path rule":           {Paths: []PathRule{{Path: "customers", Class: "X"}}},
		"path rule without class": {Paths: []PathRule{{Path: "$.a"}}},
		"negative limit":          {MaxPerClass: -1},
	} {
		if _, err := New(opts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestJSONPreservesEverythingElse(t *testing.T) {
	m := newMasker(t, Options{})
	in := `{ "z": 1.50e3, "a" : [true,null, "x\u00e9"],
	  "email":"jane@example.com", "n": 12345678901234567890123, "nested": {"k": "v"} }`
	want := `{ "z": 1.50e3, "a" : [true,null, "x\u00e9"],
	  "email":"[EMAIL_ADDRESS]", "n": 12345678901234567890123, "nested": {"k": "v"} }`
	got, rep, err := m.JSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if diff := cmp.Diff([]string{"$.email"}, rep.Paths); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"pii"}, rep.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}

	// Nothing to mask: the very same bytes come back.
	clean := []byte(`{"a": [1, 2, "three"]}`)
	got, _, _ = m.JSON(clean)
	if &got[0] != &clean[0] {
		t.Error("clean input was copied")
	}
}

func TestJSONCases(t *testing.T) {
	m := newMasker(t, Options{
		Paths: []PathRule{{Path: "$.customers[*].name", Class: "PERSON"}, {Path: "$..notes", Class: "NOTE"}},
	})
	cases := []struct {
		name, in, want string
		paths          []string
	}{
		{"key context makes bare digits an SSN", `{"ssn":"536228741"}`, `{"ssn":"[US_SSN]"}`, []string{"$.ssn"}},
		{"card stored as a number", `{"cc_number":4111111111111111,"qty":3}`, `{"cc_number":"[CREDIT_CARD]","qty":3}`, []string{"$.cc_number"}},
		{"password field", `{"user":"bob","password":"s3cret!"}`, `{"user":"bob","password":"[GENERIC_SECRET]"}`, []string{"$.password"}},
		{"email as key", `{"jane@example.com":{"age":3}}`, `{"[EMAIL_ADDRESS]":{"age":3}}`, []string{`$["[EMAIL_ADDRESS]"]`}},
		{"masked keys stay unique", `{"a@example.com":1,"b@example.com":2,"c@example.com":3}`, `{"[EMAIL_ADDRESS]":1,"[EMAIL_ADDRESS]#2":2,"[EMAIL_ADDRESS]#3":3}`, []string{`$["[EMAIL_ADDRESS]"]`, `$["[EMAIL_ADDRESS]#2"]`, `$["[EMAIL_ADDRESS]#3"]`}},
		{"escaped string", `["mail: jane\u0040example.com\n"]`, `["mail: [EMAIL_ADDRESS]\n"]`, []string{"$[0]"}},
		{"path rule", `{"customers":[{"name":"Ann Lee","id":7},{"name":"Bo","id":8}]}`, `{"customers":[{"name":"[PERSON]","id":7},{"name":"[PERSON]","id":8}]}`, []string{"$.customers[0].name", "$.customers[1].name"}},
		{"descendant rule over a subtree", `{"a":{"notes":{"x":"hi","y":[42]}}}`, `{"a":{"notes":{"x":"[NOTE]","y":["[NOTE]"]}}}`, []string{"$.a.notes.x", "$.a.notes.y[0]"}},
		{"embedded JSON", `{"text":"{\"email\": \"jane@example.com\", \"n\": 1}"}`, `{"text":"{\"email\": \"[EMAIL_ADDRESS]\", \"n\": 1}"}`, []string{"$.text|$.email"}},
		{"brace text that is not JSON", `{"t":"{ call +44 20 7946 0958"}`, `{"t":"{ call [PHONE_NUMBER]"}`, []string{"$.t"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, rep, err := m.JSON([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Errorf("output is not JSON: %s", got)
			}
			if diff := cmp.Diff(tc.paths, rep.Paths); diff != "" {
				t.Errorf("paths (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJSONInvalidFallsBackToText(t *testing.T) {
	m := newMasker(t, Options{})
	for _, in := range []string{
		`{"email": "jane@example.com"`,
		`{"email": "jane@example.com"} trailing`,
		"{\"a\": \"\xff jane@example.com\"}",
		`{"a": 01, "b": "jane@example.com"}`,
		strings.Repeat("[", 1200) + `"jane@example.com"` + strings.Repeat("]", 1200),
	} {
		got, rep, err := m.JSON([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if !rep.NotJSON || bytes.Contains(got, []byte("jane@example.com")) || rep.Counts[detect.Email] != 1 {
			t.Errorf("%.40q: got %.60q, report %+v", in, got, rep)
		}
	}
}

func TestLimit(t *testing.T) {
	m := newMasker(t, Options{MaxPerClass: 2})
	out, rep, err := m.JSON([]byte(`["a@example.com","b@example.com","c@example.com"]`))
	var le *LimitError
	if !errors.Is(err, ErrLimitExceeded) || !errors.As(err, &le) || le.Class != detect.Email || le.Count != 3 {
		t.Fatalf("err = %v", err)
	}
	if bytes.Contains(out, []byte("@example.com")) || rep.Counts[detect.Email] != 3 {
		t.Errorf("output not masked: %s", out)
	}
}

func TestMaskCallToolResult(t *testing.T) {
	m := newMasker(t, Options{Paths: []PathRule{{Path: "$.customers[*].tier", Class: "TIER"}}})
	in := `{"content":[{"type":"text","text":"{\"rows\":[{\"email\":\"jane@example.com\"}]}"},` +
		`{"type":"image","data":"aGVsbG8gamFuZUBleGFtcGxlLmNvbQ==","mimeType":"image/png"},` +
		`{"type":"resource","resource":{"uri":"file:///x","text":"ssn 536-22-8741"}}],` +
		`"structuredContent":{"customers":[{"tier":"gold","phone":"+44 20 7946 0958"}]},"isError":false}`
	want := `{"content":[{"type":"text","text":"{\"rows\":[{\"email\":\"[EMAIL_ADDRESS]\"}]}"},` +
		`{"type":"image","data":"aGVsbG8gamFuZUBleGFtcGxlLmNvbQ==","mimeType":"image/png"},` +
		`{"type":"resource","resource":{"uri":"file:///x","text":"ssn [US_SSN]"}}],` +
		`"structuredContent":{"customers":[{"tier":"[TIER]","phone":"[PHONE_NUMBER]"}]},"isError":false}`
	got, rep, err := MaskCallToolResult(json.RawMessage(in), m)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	wantPaths := []string{
		"$.content[0].text|$.rows[0].email",
		"$.content[2].resource.text",
		"$.structuredContent.customers[0].tier",
		"$.structuredContent.customers[0].phone",
	}
	if diff := cmp.Diff(wantPaths, rep.Paths); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}

	// A blob that is not base64 is text and gets scanned.
	in2 := `{"contents":[{"uri":"x","blob":"jane@example.com"}]}`
	got, _, _ = MaskCallToolResult(json.RawMessage(in2), m)
	if bytes.Contains(got, []byte("jane@")) {
		t.Errorf("non-base64 blob passed: %s", got)
	}

	// Prompt messages and resource contents.
	in3 := `{"messages":[{"role":"user","content":{"type":"text","text":"card 4111 1111 1111 1111"}}],"contents":[{"uri":"u","text":"a@b.io"}]}`
	got, _, _ = MaskCallToolResult(json.RawMessage(in3), m)
	if want := `{"messages":[{"role":"user","content":{"type":"text","text":"card [CREDIT_CARD]"}}],"contents":[{"uri":"u","text":"[EMAIL_ADDRESS]"}]}`; string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}

	// Not JSON: masked as text inside a valid error result.
	got, rep, _ = MaskCallToolResult(json.RawMessage(`{"content": jane@example.com`), m)
	var res struct {
		Content []struct{ Text string } `json:"content"`
		IsError bool                    `json:"isError"`
	}
	if err := json.Unmarshal(got, &res); err != nil || !res.IsError || !rep.NotJSON || strings.Contains(string(got), "jane@") {
		t.Errorf("fallback: %s (%v) %+v", got, err, rep)
	}
}

func TestPathRuleSyntax(t *testing.T) {
	for _, p := range []string{"$.a", "$['a b'].c", "$.a[0]", "$.a[*]", "$..a", "$..[0]", "$.*.b"} {
		if _, err := compileRule(PathRule{Path: p, Class: "X"}); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range []string{"", "$", "a.b", "$.", "$[", "$[x]", "$[-1]"} {
		if _, err := compileRule(PathRule{Path: p, Class: "X"}); err == nil {
			t.Errorf("%q accepted", p)
		}
	}
}

func TestValue(t *testing.T) {
	m := newMasker(t, Options{Plan: Plan{Actions: map[string]Action{"PERSON": Pass, detect.Phone: Partial}}})
	if got := m.Value("PERSON", "Ann Lee"); got != "Ann Lee" {
		t.Errorf("pass: %q", got)
	}
	if got := m.Value(detect.Phone, "+44 20 7946 0958"); got != "****0958" {
		t.Errorf("partial: %q", got)
	}
	if got := m.Value("EMPLOYEE_ID", "E-123"); got != "[EMPLOYEE_ID]" {
		t.Errorf("default: %q", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	m := newMasker(t, Options{})
	raw := genResult(4 << 10)
	want, _, err := MaskCallToolResult(raw, m)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []byte)
	for range 4 {
		go func() {
			out, _, _ := MaskCallToolResult(raw, m)
			done <- out
		}()
	}
	for range 4 {
		if got := <-done; !bytes.Equal(got, want) {
			t.Error("concurrent calls disagree")
		}
	}
}
