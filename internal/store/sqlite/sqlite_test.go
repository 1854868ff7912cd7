package sqlite

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func TestOpenSetsDurableWAL(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	var mode string
	if err := db.sql.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q (%v), want wal", mode, err)
	}
	// Check several pooled connections, not just the first.
	conns := make([]interface{ Close() error }, 0, 3)
	for range 3 {
		c, err := db.sql.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var sync, busy int
		if err := c.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil || sync != 2 {
			t.Fatalf("synchronous = %d (%v), want 2 (FULL)", sync, err)
		}
		if err := c.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil || busy != int(BusyTimeout.Milliseconds()) {
			t.Fatalf("busy_timeout = %d (%v), want %d", busy, err, BusyTimeout.Milliseconds())
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

func TestMigrationsApplyOnceInOrder(t *testing.T) {
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	path := filepath.Join(t.TempDir(), "warden.db")
	v1 := fstest.MapFS{"migrations/0001_a.sql": {Data: []byte("CREATE TABLE a (x INTEGER);")}}
	db, err := open(ctx, path, logger, v1, false)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := db.SchemaVersion(ctx); err != nil || v != 1 {
		t.Fatalf("version = %d (%v), want 1", v, err)
	}
	db.Close()

	// A later Warden adds a step; only that step runs (re-running 0001 would
	// fail: table a exists).
	v2 := fstest.MapFS{
		"migrations/0001_a.sql": v1["migrations/0001_a.sql"],
		"migrations/0002_b.sql": {Data: []byte("CREATE TABLE b (y TEXT); INSERT INTO b VALUES ('two statements');")},
	}
	db, err = open(ctx, path, logger, v2, false)
	if err != nil {
		t.Fatal(err)
	}
	var y string
	if err := db.sql.QueryRowContext(ctx, "SELECT y FROM b").Scan(&y); err != nil || y != "two statements" {
		t.Fatalf("migration 2 did not run: %q %v", y, err)
	}
	if v, err := db.SchemaVersion(ctx); err != nil || v != 2 {
		t.Fatalf("version = %d (%v), want 2", v, err)
	}
	db.Close()

	// The older Warden refuses the newer file instead of misreading it.
	if _, err := open(ctx, path, logger, v1, false); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("older schema set opened a newer file: %v", err)
	}
}

func TestFailedMigrationLeavesNothing(t *testing.T) {
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	path := filepath.Join(t.TempDir(), "warden.db")
	bad := fstest.MapFS{"migrations/0001_a.sql": {Data: []byte("CREATE TABLE a (x INTEGER); CREATE TABLE oops (;")}}
	if _, err := open(ctx, path, logger, bad, false); err == nil || !strings.Contains(err.Error(), "0001_a") {
		t.Fatalf("a broken migration opened: %v", err)
	}
	db, err := open(ctx, path, logger, fstest.MapFS{"migrations/0001_a.sql": {Data: []byte("CREATE TABLE a (x INTEGER);")}}, false)
	if err != nil {
		t.Fatalf("the failed step left state behind: %v", err)
	}
	db.Close()
}

func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	if _, err := OpenReadOnly(filepath.Join(dir, "missing.db"), logger); err == nil {
		t.Fatal("OpenReadOnly opened a missing file")
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); !os.IsNotExist(err) {
		t.Fatalf("OpenReadOnly created the file: %v", err)
	}
	path := filepath.Join(dir, "warden.db")
	rw, err := Open(path, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	ro, err := OpenReadOnly(path, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.sql.ExecContext(ctx, "INSERT INTO audit_keys VALUES ('k', x'00', 0)"); err == nil {
		t.Fatal("a read-only database accepted a write")
	}
	if _, err := ro.Audit().Keys(ctx); err != nil {
		t.Fatalf("read-only database cannot read: %v", err)
	}
}

func TestRecordsAreAppendOnly(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	if _, err := db.sql.ExecContext(ctx, `INSERT INTO audit_records (seq, v, time_ns, kind, prev, hash) VALUES (1, 1, 0, 'admin', 'p', 'h')`); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{"UPDATE audit_records SET kind = 'x'", "DELETE FROM audit_records"} {
		if _, err := db.sql.ExecContext(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want the append-only trigger", stmt, err)
		}
	}
}

func TestPathWithURISpecialCharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a?b#c%d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "warden.db")
	db, err := Open(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not created at the given path: %v", err)
	}
}
