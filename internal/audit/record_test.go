package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func fullRecord() Record {
	return Record{
		V:             1,
		Seq:           42,
		Time:          time.Date(2026, 3, 1, 12, 30, 5, 120000000, time.FixedZone("CET", 3600)),
		Kind:          KindOutcome,
		RequestID:     "req-1",
		DecisionID:    "dec-1",
		Session:       "sess-1",
		Task:          "task-1",
		Principal:     "alice",
		Method:        "tools/call",
		Tool:          "shop.refund_order",
		Args:          json.RawMessage(`{"b":1,"a":"<x> & y"}`),
		Decision:      DecisionApprove,
		Rules:         []string{"large-refunds-need-a-lead"},
		Reason:        "needs a lead <b>",
		PolicyVersion: "v7",
		ApprovalID:    "appr-1",
		CredentialID:  "cred-1",
		Upstream:      "shop",
		LatencyUS:     1500,
		Status:        "ok",
		Masked:        []string{"$.email"},
		Labels:        []string{"confidential"},
		Shadow:        true,
		Extra:         map[string]json.RawMessage{"z": json.RawMessage(`1`), "a": json.RawMessage(`"\u2028"`)},
		Prev:          GenesisHash,
	}
}

// The canonical encoding, written out by hand: keys sorted, no whitespace,
// time in UTC, <, > and & escaped, raw JSON's key order kept.
const fullRecordCanonical = `{"approval_id":"appr-1","args":{"b":1,"a":"\u003cx\u003e \u0026 y"},"credential_id":"cred-1",` +
	`"decision":"approve","decision_id":"dec-1","extra":{"a":"\u2028","z":1},"kind":"outcome",` +
	`"labels":["confidential"],"latency_us":1500,"masked":["$.email"],"method":"tools/call",` +
	`"policy_version":"v7","prev":"` + GenesisHash + `","principal":"alice","reason":"needs a lead \u003cb\u003e",` +
	`"request_id":"req-1","rules":["large-refunds-need-a-lead"],"seq":42,"session":"sess-1","shadow":true,` +
	`"status":"ok","task":"task-1","time":"2026-03-01T11:30:05.12Z","tool":"shop.refund_order",` +
	`"upstream":"shop","v":1}`

func TestCanonicalEncoding(t *testing.T) {
	got, err := fullRecord().Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != fullRecordCanonical {
		t.Fatalf("canonical encoding\n got %s\nwant %s", got, fullRecordCanonical)
	}
	// Any ordinary Marshal of the record, alone or embedded, gives the same bytes.
	plain, err := json.Marshal(map[string]any{"r": fullRecord()})
	if err != nil || string(plain) != `{"r":`+fullRecordCanonical+`}` {
		t.Fatalf("Marshal of an embedding value changed the record: %s (%v)", plain, err)
	}
	sum := sha256.Sum256([]byte(fullRecordCanonical))
	if h, err := fullRecord().ComputeHash(); err != nil || h != hex.EncodeToString(sum[:]) {
		t.Fatalf("ComputeHash = %s (%v), want SHA-256 of the canonical encoding %x", h, err, sum)
	}
}

func TestCanonicalEncodingMinimalRecord(t *testing.T) {
	r := Record{V: 1, Seq: 1, Time: time.Unix(0, 0), Kind: KindAdmin, Prev: GenesisHash, Rules: []string{}, Extra: map[string]json.RawMessage{}}
	got, err := r.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"admin","prev":"` + GenesisHash + `","seq":1,"time":"1970-01-01T00:00:00Z","v":1}`
	if string(got) != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
}

func TestCanonicalKeysAreSorted(t *testing.T) {
	r := fullRecord()
	r.Hash = "h"
	r.Checkpoint = &Checkpoint{HeadSeq: 41, Head: "x", KeyID: "k", Sig: "s"}
	b, err := r.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.Token() // {
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.IsSorted(keys) || len(keys) != 28 {
		t.Fatalf("keys not sorted or some missing (%d): %v", len(keys), keys)
	}
	if !strings.Contains(string(b), `"checkpoint":{"head":"x","head_seq":41,"key_id":"k","sig":"s"}`) {
		t.Fatalf("checkpoint not encoded with sorted keys: %s", b)
	}
}

func TestHashCoversEveryField(t *testing.T) {
	base, err := fullRecord().ComputeHash()
	if err != nil {
		t.Fatal(err)
	}
	edits := map[string]func(*Record){
		"seq":      func(r *Record) { r.Seq++ },
		"time":     func(r *Record) { r.Time = r.Time.Add(time.Nanosecond) },
		"args":     func(r *Record) { r.Args = json.RawMessage(`{"a":"<x> & y","b":1}`) },
		"decision": func(r *Record) { r.Decision = DecisionAllow },
		"rules":    func(r *Record) { r.Rules = nil },
		"prev":     func(r *Record) { r.Prev = strings.Repeat("1", 64) },
		"shadow":   func(r *Record) { r.Shadow = false },
		"extra":    func(r *Record) { r.Extra["z"] = json.RawMessage(`2`) },
		"latency":  func(r *Record) { r.LatencyUS++ },
		"masked":   func(r *Record) { r.Masked = append(r.Masked, "card") },
	}
	for name, edit := range edits {
		r := fullRecord().Clone()
		edit(&r)
		if h, err := r.ComputeHash(); err != nil || h == base {
			t.Errorf("editing %s left the hash unchanged (%v)", name, err)
		}
	}
	r := fullRecord()
	r.Hash = "anything"
	if h, _ := r.ComputeHash(); h != base {
		t.Error("the hash field is not excluded from its own hash")
	}
}

func TestJSONRoundTrip(t *testing.T) {
	want := fullRecord()
	want.Time = want.Time.UTC()
	want.Args = json.RawMessage(`{"b":1,"a":"\u003cx\u003e \u0026 y"}`) // as Append stores it
	want.Hash, _ = want.ComputeHash()
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var got Record
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
	if err := json.Unmarshal([]byte(`{"seq":1,"time":"2026-01-01T00:00:00Z","kind":"admin","prev":"","v":1,"surprise":1}`), &got); err == nil {
		t.Fatal("unknown key accepted")
	}
}

func TestNormalize(t *testing.T) {
	r, err := normalize(Record{Kind: KindDecision, Args: json.RawMessage(" { \"a\" : [ 1 , 2 ] } "), Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("X", 7200))})
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Args) != `{"a":[1,2]}` || r.V != SchemaVersion || r.Time.Location() != time.UTC {
		t.Fatalf("normalize = args %s v %d time %s", r.Args, r.V, r.Time)
	}
	if r, err := normalize(Record{Kind: KindDecision, Args: json.RawMessage("null")}); err != nil || r.Args != nil {
		t.Fatalf("null args: %s %v", r.Args, err)
	}
	bad := map[string]Record{
		"no kind":            {},
		"seq set":            {Kind: KindDecision, Seq: 3},
		"hash set":           {Kind: KindDecision, Hash: "x"},
		"checkpoint kind":    {Kind: KindCheckpoint},
		"checkpoint field":   {Kind: KindAdmin, Checkpoint: &Checkpoint{}},
		"future version":     {Kind: KindDecision, V: 2},
		"invalid args":       {Kind: KindDecision, Args: json.RawMessage(`{"a":`)},
		"args not utf-8":     {Kind: KindDecision, Args: json.RawMessage("\"\xff\"")},
		"principal not utf8": {Kind: KindDecision, Principal: "\xff"},
		"rule not utf8":      {Kind: KindDecision, Rules: []string{"ok", "\xfe"}},
		"bad extra":          {Kind: KindDecision, Extra: map[string]json.RawMessage{"k": json.RawMessage("{")}},
		"negative latency":   {Kind: KindOutcome, LatencyUS: -1},
		"time before 1970":   {Kind: KindDecision, Time: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for name, rec := range bad {
		if _, err := normalize(rec); !errors.Is(err, errInvalidRecord) {
			t.Errorf("%s: err = %v, want an invalid record error", name, err)
		}
	}
}

func TestNormalizeMakesArgsCanonical(t *testing.T) {
	r, err := normalize(Record{Kind: KindDecision, Args: json.RawMessage("{ \"q\": \"a<b & c>d \u2028\" }")})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"q":"a\u003cb \u0026 c\u003ed \u2028"}`
	if string(r.Args) != want {
		t.Fatalf("args = %s, want %s", r.Args, want)
	}
}

func TestNormalizeCopiesCallerSlices(t *testing.T) {
	rules := []string{"a"}
	r, err := normalize(Record{Kind: KindDecision, Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	rules[0] = "changed"
	if r.Rules[0] != "a" {
		t.Fatal("normalize kept the caller's slice")
	}
}

// The spliced encoding the Log hashes must be exactly encoding/json's
// encoding of the whole record, for every shape of record.
func TestSplicedEncodingMatchesMarshal(t *testing.T) {
	records := []Record{
		fullRecord(),
		{V: 1, Seq: 1, Time: time.Unix(0, 0), Kind: KindAdmin, Prev: GenesisHash},
		{V: 1, Seq: 18446744073709551615, Time: time.Unix(1, 5), Kind: "k\"<\u2028", Prev: "not hex \" \\ <>", Rules: []string{"r"}},
		{V: 1, Seq: 2, Time: time.Unix(2, 0), Kind: KindCheckpoint, Prev: "", Checkpoint: &Checkpoint{HeadSeq: 1, Head: "ab", KeyID: "k", Sig: "s"}, Hash: "h"},
		{V: 1, Seq: 3, Time: time.Unix(3, 0), Kind: KindOutcome, Prev: "ABCDEF", Principal: "p", Status: "ok"},
	}
	for _, r := range records {
		want, err := json.Marshal(r.wire())
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("spliced encoding differs\n got %s\nwant %s", got, want)
		}
	}
}

func FuzzSplicedEncoding(f *testing.F) {
	f.Add("alice", "a reason <b>", GenesisHash, `{"a":1}`, uint64(7))
	f.Add("", "", "", ``, uint64(0))
	f.Add("\u2028\"\\", "\x01", "ABC", `[1,"<&>"]`, uint64(1<<63))
	f.Fuzz(func(t *testing.T, principal, reason, prev, args string, seq uint64) {
		r := Record{V: 1, Seq: seq, Time: time.Unix(1700000000, 0), Kind: KindDecision, Principal: principal, Reason: reason, Prev: prev}
		if json.Valid([]byte(args)) {
			r.Args = json.RawMessage(args)
		}
		want, err := json.Marshal(r.wire())
		if err != nil {
			t.Skip()
		}
		got, err := r.Canonical()
		if err != nil || string(got) != string(want) {
			t.Fatalf("spliced %s (%v)\nmarshal %s", got, err, want)
		}
	})
}
