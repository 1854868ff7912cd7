package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/wardenmcp/warden/internal/audit"
	"github.com/wardenmcp/warden/internal/audit/audittest"
)

func TestExportPagesThroughEverything(t *testing.T) {
	ctx := context.Background()
	store := audit.NewMemoryStore()
	all := audittest.Chain(t, 0, audit.GenesisHash, 4500)
	if err := store.Append(ctx, all); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := audit.Export(ctx, store, &out, audit.Filter{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(all) {
		t.Fatalf("exported %d lines, want %d", len(lines), len(all))
	}
	for i, line := range lines {
		want, _ := all[i].Canonical()
		if line != string(want) {
			t.Fatalf("line %d = %s\nwant %s", i+1, line, want)
		}
	}
	out.Reset()
	if err := audit.Export(ctx, store, &out, audit.Filter{Principal: "bob", AfterSeq: 4000}); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Principal != "bob" || r.Seq <= 4000 {
			t.Fatalf("filtered export gave %s (%v)", line, err)
		}
	}
}

func TestTailFollowsNewRecords(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := audit.NewMemoryStore()
	l, err := audit.Open(store, seedKey(1), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	add := func(principal string) uint64 {
		seq, err := l.Append(ctx, audit.Record{Kind: audit.KindDecision, Principal: principal, Time: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	for _, p := range []string{"alice", "bob", "alice", "alice", "bob"} {
		add(p)
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- audit.Tail(ctx, store, pw, audit.FormatJSONL, audit.Filter{Principal: "alice"}, 2, 5*time.Millisecond)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	next := func() audit.Record {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("tail ended early: %v", lines.Err())
		}
		var r audit.Record
		if err := json.Unmarshal(lines.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if a, b := next(), next(); a.Seq != 3 || b.Seq != 4 {
		t.Fatalf("tail started with %d, %d; want alice's last two, 3 and 4", a.Seq, b.Seq)
	}
	add("bob")
	want := add("alice")
	if r := next(); r.Seq != want || r.Principal != "alice" {
		t.Fatalf("tail followed with %d %s, want alice's new record %d", r.Seq, r.Principal, want)
	}
	cancel()
	for lines.Scan() {
		t.Fatalf("tail printed after cancel: %s", lines.Text())
	}
	if err := <-done; err != nil {
		t.Fatalf("Tail returned %v after its context ended, want nil", err)
	}
}

func TestParseFormat(t *testing.T) {
	for _, ok := range []string{"text", "jsonl"} {
		if _, err := audit.ParseFormat(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	if _, err := audit.ParseFormat("csv"); err == nil {
		t.Error("csv accepted")
	}
}

func TestWriteTextRecord(t *testing.T) {
	var out bytes.Buffer
	r := audit.Record{Seq: 7, Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Kind: audit.KindDecision,
		Decision: audit.DecisionDeny, Principal: "alice", Tool: "db.query", Reason: "read-only", Rules: []string{"database-is-read-only"}}
	if err := audit.WriteRecord(&out, audit.FormatText, r); err != nil {
		t.Fatal(err)
	}
	want := `7 2026-03-01T12:00:00Z decision   deny    alice db.query - "read-only" rules=database-is-read-only` + "\n"
	if out.String() != want {
		t.Fatalf("got  %q\nwant %q", out.String(), want)
	}
}

func TestWriteTextRecordKeepsClientNamesOnOneLine(t *testing.T) {
	var out bytes.Buffer
	forged := "x\n8 2026-03-01T12:00:01Z decision   allow   alice shop.refund ok\u2028"
	r := audit.Record{Seq: 7, Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Kind: audit.KindDecision,
		Decision: audit.DecisionDeny, Principal: "alice\r", Tool: forged, Status: "denied"}
	if err := audit.WriteRecord(&out, audit.FormatText, r); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(out.String(), "\n"); got != 1 || strings.ContainsAny(out.String(), "\r\u2028") {
		t.Fatalf("text output %q: want exactly one line with no control characters", out.String())
	}
}
