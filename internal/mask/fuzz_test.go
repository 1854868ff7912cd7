package mask

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/wardenmcp/warden/internal/mask/detect"
)

var fuzzSeeds = []string{
	`{"email":"jane@example.com","n":4111111111111111,"ssn":"536228741"}`,
	`{"content":[{"type":"text","text":"{\"a\":\"call +44 20 7946 0958\"}"},{"type":"image","data":"AAAA"}]}`,
	`["mail: jane\u0040example.com\n", 1.5e3, true, null, {"k\u00e9y": []}]`,
	`{"password":"hunter22","AWS_SECRET_ACCESS_KEY":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}`,
	`{"jane@example.com": {"ip": "10.0.0.1", "v6": "fe80::1ff:fe23:4567:890a"}}`,
	"card 4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32, SSN 536-22-8741",
	"-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
	"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_sig_sig",
	`{"t":"{ not json a@b.io"}`,
	"\xff\xfe{\"a\":1}",
	`"\ud800 lone surrogate a@example.com"`,
}

// FuzzMaskJSON: never panics; valid JSON in gives valid JSON out (unless
// the report says it was treated as text); a plain string value the
// scanner flags never survives verbatim under redaction.
func FuzzMaskJSON(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	m, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, rep, _ := m.JSON(data)
		if !rep.NotJSON && !json.Valid(out) {
			t.Fatalf("output is not JSON:\nin  %q\nout %q", data, out)
		}
		if json.Valid(data) && utf8.Valid(data) && rep.NotJSON && depth(data) <= 1000 {
			t.Fatalf("valid JSON treated as text: %q", data)
		}
		res, rrep, _ := MaskCallToolResult(data, m)
		if !json.Valid(res) {
			t.Fatalf("MCP output is not JSON (NotJSON=%v):\nin  %q\nout %q", rrep.NotJSON, data, res)
		}
	})
}

// FuzzMaskText: never panics, and no detected value survives redaction
// unless it also occurs outside every finding.
func FuzzMaskText(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	m, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	s := detect.Default()
	f.Fuzz(func(t *testing.T, text string) {
		out, _, _ := m.Text(text)
		fs := s.Scan([]byte(text), nil, nil)
		for _, fd := range fs {
			v := text[fd.Start:fd.End]
			if !bytes.Contains([]byte(out), []byte(v)) {
				continue
			}
			if occursOutside(text, v, fs) || containsMarker(v) {
				continue
			}
			t.Fatalf("%s %q survived redaction:\nin  %q\nout %q", fd.Class, v, text, out)
		}
	})
}

// occursOutside reports whether v occurs in text other than inside a finding.
func occursOutside(text, v string, fs []detect.Finding) bool {
	for i := 0; i+len(v) <= len(text); i++ {
		if text[i:i+len(v)] != v {
			continue
		}
		inside := false
		for _, f := range fs {
			if i >= f.Start && i+len(v) <= f.End {
				inside = true
			}
		}
		if !inside {
			return true
		}
	}
	return false
}

// containsMarker: values made of our own markers can reappear by accident.
func containsMarker(v string) bool {
	return bytes.ContainsAny([]byte(v), "[]")
}

func depth(b []byte) int {
	d, maxd := 0, 0
	for _, c := range b {
		switch c {
		case '[', '{':
			d++
			maxd = max(maxd, d)
		case ']', '}':
			d--
		}
	}
	return maxd
}
