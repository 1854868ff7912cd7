package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenmcp/warden/internal/audit"
	"github.com/wardenmcp/warden/internal/store/sqlite"
)

// newAuditFixture writes a small audit log (and its key beside it) and
// returns the database path.
func newAuditFixture(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "warden.db")
	db, err := sqlite.Open(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key, err := audit.LoadOrCreateKey(audit.KeyPathFor(path))
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(db.Audit(), key, audit.Options{CheckpointEvery: 4})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range []string{"alice", "bob", "alice", "carol", "alice"} {
		d := audit.DecisionAllow
		if i%2 == 1 {
			d = audit.DecisionDeny
		}
		if _, err := l.Append(context.Background(), audit.Record{Kind: audit.KindDecision, Principal: p, Tool: "shop.get_order", Decision: d}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func runAudit(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := newAuditCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	code := exitOK
	if err != nil {
		code = exitUsage
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
	}
	return out.String(), code
}

func TestAuditVerifyExitCodes(t *testing.T) {
	path := newAuditFixture(t)
	out, code := runAudit(t, "verify", "--db", path)
	if code != exitOK || !strings.Contains(out, "OK: 7 records, 2 checkpoints") || !strings.Contains(out, "from "+audit.KeyPathFor(path)) {
		t.Fatalf("intact log: exit %d\n%s", code, out)
	}

	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"DROP TRIGGER audit_records_no_update", "UPDATE audit_records SET decision = 'allow' WHERE seq = 2"} {
		if _, err := raw.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	out, code = runAudit(t, "verify", "--db", path)
	if code != exitFailure || !strings.Contains(out, "FAILED: record 2: hash_mismatch") {
		t.Fatalf("tampered log: exit %d\n%s", code, out)
	}

	if _, code := runAudit(t, "verify", "--db", filepath.Join(t.TempDir(), "missing.db")); code != exitUsage {
		t.Fatalf("missing database: exit %d, want %d", code, exitUsage)
	}
	if _, code := runAudit(t, "verify", "--db", path, "--key", filepath.Join(t.TempDir(), "missing.pem")); code != exitUsage {
		t.Fatalf("missing key: exit %d, want %d", code, exitUsage)
	}
}

func TestAuditQueryAndExport(t *testing.T) {
	path := newAuditFixture(t)
	out, code := runAudit(t, "query", "--db", path, "--principal", "alice", "--format", "jsonl", "--limit", "2")
	if code != exitOK {
		t.Fatalf("query: exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("query printed %d lines, want the newest 2 of alice's 3:\n%s", len(lines), out)
	}
	var first, second audit.Record
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if first.Principal != "alice" || second.Principal != "alice" || first.Seq >= second.Seq || first.Seq == 1 {
		t.Fatalf("query gave seqs %d, %d for %q, %q", first.Seq, second.Seq, first.Principal, second.Principal)
	}

	out, code = runAudit(t, "export", "--db", path, "--decision", "deny")
	if code != exitOK || strings.Count(out, "\n") != 2 || strings.Contains(out, `"decision":"allow"`) {
		t.Fatalf("export --decision deny: exit %d\n%s", code, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		if h, err := r.ComputeHash(); err != nil || h != r.Hash {
			t.Fatalf("exported record %d does not hash to its hash", r.Seq)
		}
	}

	out, code = runAudit(t, "query", "--db", path, "--kind", "checkpoint")
	if code != exitOK || strings.Count(out, "checkpoint") != 2 {
		t.Fatalf("query --kind checkpoint: exit %d\n%s", code, out)
	}
}

func TestAuditRejectsBadArguments(t *testing.T) {
	path := newAuditFixture(t)
	for _, args := range [][]string{
		{"query", "--db", path, "--decision", "maybe"},
		{"query", "--db", path, "--format", "xml"},
		{"query", "--db", path, "--limit", "0"},
		{"query", "--db", path, "--since", "yesterday"},
		{"query", "--db", path, "--since", "1h", "--until", "2h"},
		{"export", "--db", path, "--format", "text"},
		{"tail", "--db", path, "--interval", "0s"},
		{"query", "--db", path, "extra-argument"},
	} {
		if out, code := runAudit(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", args, code, exitUsage, out)
		}
	}
}
