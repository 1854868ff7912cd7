package audit_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenmcp/warden/internal/audit"
	"github.com/wardenmcp/warden/internal/store/sqlite"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func openDB(t testing.TB, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(path, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func seedKey(b byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = b
	return ed25519.NewKeyFromSeed(seed)
}

// writeLog fills a new database at path with n decision records through a
// Log that checkpoints every 10, and closes the log (a final checkpoint).
func writeLog(t *testing.T, path string, key ed25519.PrivateKey, n int) *sqlite.DB {
	t.Helper()
	db := openDB(t, path)
	l, err := audit.Open(db.Audit(), key, audit.Options{CheckpointEvery: 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		_, err := l.Append(context.Background(), audit.Record{
			Kind: audit.KindDecision, Principal: "alice", Tool: "shop.refund_order",
			Decision: audit.DecisionDeny, Rules: []string{"refunds-over-limit"},
			Args: []byte(fmt.Sprintf(`{"amount":%d}`, 20000+i)),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return db
}

// rawSQL opens the file the way someone tampering with it would, and drops
// the append-only triggers first.
func rawSQL(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range append([]string{
		"DROP TRIGGER IF EXISTS audit_records_no_update", "DROP TRIGGER IF EXISTS audit_records_no_delete",
	}, stmts...) {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// rechain rewrites the chain from seq from onward after edit changed
// records: hashes recomputed, checkpoints re-signed with signer under keyID,
// as someone holding the file but not the real key would.
func rechain(t *testing.T, path string, from uint64, edit func(*audit.Record), signer ed25519.PrivateKey, keyID string) {
	t.Helper()
	ctx := context.Background()
	db := openDB(t, path)
	records, err := db.Audit().Query(ctx, audit.Filter{AfterSeq: from - 1, Limit: audit.MaxQueryLimit})
	if err != nil {
		t.Fatal(err)
	}
	prev, err := db.Audit().Query(ctx, audit.Filter{AfterSeq: from - 2, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	head := prev[0].Hash
	for i := range records {
		r := &records[i]
		if r.Seq == from {
			edit(r)
		}
		r.Prev = head
		if r.Checkpoint != nil {
			r.Checkpoint.Head, r.Checkpoint.HeadSeq, r.Checkpoint.KeyID = head, r.Seq-1, keyID
			r.Checkpoint.Sig = hex.EncodeToString(ed25519.Sign(signer, audit.CheckpointMessage(r.Seq-1, head, r.Time)))
		}
		if r.Hash, err = r.ComputeHash(); err != nil {
			t.Fatal(err)
		}
		head = r.Hash
	}
	db.Close()
	rawSQL(t, path, fmt.Sprintf("DELETE FROM audit_records WHERE seq >= %d", from))
	db = openDB(t, path)
	if err := db.Audit().Append(ctx, records); err != nil {
		t.Fatal(err)
	}
	db.Close()
}

func TestTamperingIsDetected(t *testing.T) {
	key := seedKey(1)
	pub := key.Public().(ed25519.PublicKey)
	forger := seedKey(9)
	// 30 records with a checkpoint after every 10: records 1-10, checkpoint
	// 11, 12-21, checkpoint 22, 23-32, checkpoint 33.
	cases := []struct {
		name   string
		tamper func(t *testing.T, path string)
		pinned bool // verify against the real public key rather than the stored keys
		seq    uint64
		kind   audit.ProblemKind
	}{
		{"edit a field", func(t *testing.T, path string) {
			rawSQL(t, path, "UPDATE audit_records SET decision = 'allow' WHERE seq = 7")
		}, false, 7, audit.ProblemHashMismatch},
		{"edit the arguments", func(t *testing.T, path string) {
			rawSQL(t, path, `UPDATE audit_records SET args = '{"amount":1}' WHERE seq = 14`)
		}, false, 14, audit.ProblemHashMismatch},
		{"delete a record", func(t *testing.T, path string) {
			rawSQL(t, path, "DELETE FROM audit_records WHERE seq = 7")
		}, false, 7, audit.ProblemSeqGap},
		{"delete the first record", func(t *testing.T, path string) {
			rawSQL(t, path, "DELETE FROM audit_records WHERE seq = 1")
		}, false, 1, audit.ProblemSeqGap},
		{"reorder two records", func(t *testing.T, path string) {
			rawSQL(t, path,
				"UPDATE audit_records SET seq = -1 WHERE seq = 7",
				"UPDATE audit_records SET seq = 7 WHERE seq = 8",
				"UPDATE audit_records SET seq = 8 WHERE seq = -1")
		}, false, 7, audit.ProblemHashMismatch},
		{"edit the last record", func(t *testing.T, path string) {
			rawSQL(t, path, "UPDATE audit_records SET time_ns = time_ns + 1 WHERE seq = (SELECT max(seq) FROM audit_records)")
		}, false, 33, audit.ProblemHashMismatch},
		{"edit the last checkpoint's signature", func(t *testing.T, path string) {
			rawSQL(t, path, "UPDATE audit_records SET checkpoint = json_set(checkpoint, '$.sig', 'ab') WHERE seq = 33")
		}, false, 33, audit.ProblemHashMismatch},
		{"delete a record and fix the next one's hash", func(t *testing.T, path string) {
			rawSQL(t, path, "DELETE FROM audit_records WHERE seq = 7")
			rechainOne(t, path, 8, 7)
		}, false, 7, audit.ProblemPrevMismatch},
		{"store a column that is not JSON", func(t *testing.T, path string) {
			rawSQL(t, path, "UPDATE audit_records SET rules = 'not json' WHERE seq = 9")
		}, false, 9, audit.ProblemBadRecord},
		{"rewrite the chain, forging checkpoint signatures", func(t *testing.T, path string) {
			rechain(t, path, 5, func(r *audit.Record) { r.Decision = audit.DecisionAllow }, forger, audit.KeyID(pub))
		}, false, 11, audit.ProblemBadSignature},
		{"rewrite the chain under the forger's own key, pinned key", func(t *testing.T, path string) {
			rawSQL(t, path, fmt.Sprintf("INSERT INTO audit_keys VALUES ('%s', x'%x', 0)",
				audit.KeyID(forger.Public().(ed25519.PublicKey)), []byte(forger.Public().(ed25519.PublicKey))))
			rechain(t, path, 5, func(r *audit.Record) { r.Decision = audit.DecisionAllow }, forger, audit.KeyID(forger.Public().(ed25519.PublicKey)))
		}, true, 11, audit.ProblemUnknownKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "warden.db")
			db := writeLog(t, path, key, 30)
			if rep, err := audit.Verify(context.Background(), db.Audit(), pub); err != nil || !rep.OK() || rep.HeadSeq != 33 {
				t.Fatalf("untampered log: %+v %v", rep, err)
			}
			db.Close()
			tc.tamper(t, path)
			var against ed25519.PublicKey
			if tc.pinned {
				against = pub
			}
			rep, err := audit.Verify(context.Background(), openDB(t, path).Audit(), against)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatalf("tampering not detected: %+v", rep)
			}
			if rep.Problem.Seq != tc.seq || rep.Problem.Kind != tc.kind {
				t.Fatalf("Verify found %s, want %s at record %d", rep.Problem, tc.kind, tc.seq)
			}
		})
	}
}

// rechainOne moves record from to seq to and recomputes its hash, leaving
// its prev as it was.
func rechainOne(t *testing.T, path string, from, to uint64) {
	t.Helper()
	db := openDB(t, path)
	rs, err := db.Audit().Query(context.Background(), audit.Filter{AfterSeq: from - 1, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	r := rs[0]
	r.Seq = to
	h, err := r.ComputeHash()
	if err != nil {
		t.Fatal(err)
	}
	rawSQL(t, path, fmt.Sprintf("UPDATE audit_records SET seq = %d, hash = '%s' WHERE seq = %d", to, h, from))
}

func TestRewriteUnderStoredForgerKeyPassesWithoutPinning(t *testing.T) {
	// The limit Verify's doc states: without a pinned key, whoever can write
	// the file can add a key and re-sign. Pinning (the case above) catches it.
	key, forger := seedKey(1), seedKey(9)
	path := filepath.Join(t.TempDir(), "warden.db")
	writeLog(t, path, key, 30).Close()
	fpub := forger.Public().(ed25519.PublicKey)
	rawSQL(t, path, fmt.Sprintf("INSERT INTO audit_keys VALUES ('%s', x'%x', 0)", audit.KeyID(fpub), []byte(fpub)))
	rechain(t, path, 5, func(r *audit.Record) { r.Decision = audit.DecisionAllow }, forger, audit.KeyID(fpub))
	rep, err := audit.Verify(context.Background(), openDB(t, path).Audit(), nil)
	if err != nil || !rep.OK() {
		t.Fatalf("expected the unpinned check to pass: %+v %v", rep, err)
	}
}

func TestTruncatedTailIsReportedAsUnsigned(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warden.db")
	key := seedKey(1)
	db := writeLog(t, path, key, 30)
	db.Close()
	// Remove the last checkpoint and the three records before it.
	rawSQL(t, path, "DELETE FROM audit_records WHERE seq > 29")
	rep, err := audit.Verify(context.Background(), openDB(t, path).Audit(), key.Public().(ed25519.PublicKey))
	if err != nil || !rep.OK() {
		t.Fatalf("%+v %v", rep, err)
	}
	if rep.HeadSeq != 29 || rep.LastCheckpointSeq != 22 || rep.Unsigned != 7 {
		t.Fatalf("report %+v, want head 29, last checkpoint 22, 7 unsigned", rep)
	}
}

func TestOpenRefusesADamagedHead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warden.db")
	key := seedKey(1)
	writeLog(t, path, key, 5).Close()
	rawSQL(t, path, "UPDATE audit_records SET principal = 'mallory' WHERE seq = (SELECT max(seq) FROM audit_records)")
	_, err := audit.Open(openDB(t, path).Audit(), key, audit.Options{})
	if err == nil || !strings.Contains(err.Error(), "verify") {
		t.Fatalf("Open on a damaged head: err = %v", err)
	}
}

func TestConcurrentAppendsOnSQLite(t *testing.T) {
	ctx := context.Background()
	key := seedKey(1)
	db := openDB(t, filepath.Join(t.TempDir(), "warden.db"))
	l, err := audit.Open(db.Audit(), key, audit.Options{CheckpointEvery: 64, MaxBatch: 32})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 16, 50
	var mu sync.Mutex
	seen := map[uint64]string{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				seq, err := l.Append(ctx, audit.Record{Kind: audit.KindOutcome, RequestID: id, Status: "ok"})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if other, dup := seen[seq]; dup {
					t.Errorf("seq %d given to %s and %s", seq, other, id)
				}
				seen[seq] = id
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, db.Audit(), key.Public().(ed25519.PublicKey))
	if err != nil || !rep.OK() {
		t.Fatalf("%+v %v", rep, err)
	}
	if got := rep.Records - rep.Checkpoints; got != workers*each || len(seen) != workers*each {
		t.Fatalf("%d records stored, %d acknowledged; want %d", got, len(seen), workers*each)
	}
	all, err := db.Audit().Query(ctx, audit.Filter{Kind: audit.KindOutcome, Limit: audit.MaxQueryLimit})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		if seen[r.Seq] != r.RequestID {
			t.Fatalf("record %d holds %s, acknowledged to %s", r.Seq, r.RequestID, seen[r.Seq])
		}
	}
}

func TestClosedDatabaseFailsEveryWaiter(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "warden.db"), discard())
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(db.Audit(), seedKey(1), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, audit.Record{Kind: audit.KindAdmin}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	errs := make(chan error, 20)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, err := l.Append(ctx, audit.Record{Kind: audit.KindDecision})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err == nil {
			t.Fatal("an append on a closed database succeeded")
		}
	}
	if err := l.Close(); err == nil {
		t.Fatal("Close could not write its checkpoint yet reported success")
	}
}

// crashChildEnv names the database a crash-test child appends to.
const crashChildEnv = "WARDEN_AUDIT_CRASH_CHILD_DB"

func TestCrashKeepsAcknowledgedRecords(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	path := filepath.Join(t.TempDir(), "warden.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKeepsAcknowledgedRecords$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[uint64]string{}
	lines := bufio.NewScanner(out)
	killed := false
	for lines.Scan() {
		seqText, id, ok := strings.Cut(lines.Text(), " ")
		seq, err := strconv.ParseUint(seqText, 10, 64)
		if !ok || err != nil {
			t.Fatalf("child wrote %q", lines.Text())
		}
		acked[seq] = id
		if len(acked) == 3000 && !killed {
			// Lines still in the pipe were acknowledged too: keep reading.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before the kill: %v", err)
	}
	key, err := audit.LoadOrCreateKey(audit.KeyPathFor(path))
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t, path)
	ctx := context.Background()
	rep, err := audit.Verify(ctx, db.Audit(), key.Public().(ed25519.PublicKey))
	if err != nil || !rep.OK() {
		t.Fatalf("after the crash: %+v %v", rep, err)
	}
	stored, err := db.Audit().Query(ctx, audit.Filter{Kind: audit.KindDecision, Limit: audit.MaxQueryLimit})
	if err != nil {
		t.Fatal(err)
	}
	bySeq := map[uint64]string{}
	for _, r := range stored {
		bySeq[r.Seq] = r.RequestID
	}
	for seq, id := range acked {
		if bySeq[seq] != id {
			t.Fatalf("acknowledged record %d (%s) is %q after the crash", seq, id, bySeq[seq])
		}
	}
	t.Logf("%d acknowledged, %d records stored, chain head %d", len(acked), len(stored), rep.HeadSeq)

	// The log reopens on the crashed file and continues the chain.
	l, err := audit.Open(db.Audit(), key, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := l.Append(ctx, audit.Record{Kind: audit.KindAdmin, Reason: "after the crash"})
	if err != nil || seq != rep.HeadSeq+1 {
		t.Fatalf("append after the crash = %d, %v; want %d", seq, err, rep.HeadSeq+1)
	}
	l.Close()
	if rep, err := audit.Verify(ctx, db.Audit(), key.Public().(ed25519.PublicKey)); err != nil || !rep.OK() {
		t.Fatalf("after reopening: %+v %v", rep, err)
	}
}

// crashChild appends from eight goroutines until killed, printing "seq id"
// for each record as soon as Append returns.
func crashChild(path string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}
	db, err := sqlite.Open(path, discard())
	if err != nil {
		fail(err)
	}
	key, err := audit.LoadOrCreateKey(audit.KeyPathFor(path))
	if err != nil {
		fail(err)
	}
	l, err := audit.Open(db.Audit(), key, audit.Options{CheckpointEvery: 100})
	if err != nil {
		fail(err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(time.Minute) // never outlive a parent that failed to kill
	for g := range 8 {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				id := fmt.Sprintf("g%d-%d", g, i)
				seq, err := l.Append(context.Background(), audit.Record{Kind: audit.KindDecision, RequestID: id})
				if err != nil {
					fail(err)
				}
				mu.Lock()
				_, err = fmt.Fprintf(os.Stdout, "%d %s\n", seq, id)
				mu.Unlock()
				if err != nil {
					fail(err)
				}
			}
		})
	}
	wg.Wait()
	os.Exit(4)
}

// BenchmarkAppendParallel measures durable appends per second on a SQLite
// file, with 128 and 512 appends in flight (GOMAXPROCS × parallelism), as
// behind a busy gateway: every append returns only after its transaction's
// fsync.
func BenchmarkAppendParallel(b *testing.B) {
	for _, parallelism := range []int{64, 256} {
		b.Run(fmt.Sprintf("inflight=%d", parallelism*runtime.GOMAXPROCS(0)), func(b *testing.B) {
			db := openDB(b, filepath.Join(b.TempDir(), "warden.db"))
			l, err := audit.Open(db.Audit(), seedKey(1), audit.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			rec := audit.Record{
				Kind: audit.KindDecision, Principal: "alice", Tool: "shop.refund_order", Method: "tools/call",
				Decision: audit.DecisionAllow, Rules: []string{"support-may-refund"}, RequestID: "req-123456",
				Args: []byte(`{"order_id":12345,"amount":50}`), PolicyVersion: "v7",
			}
			b.SetParallelism(parallelism)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := l.Append(context.Background(), rec); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func BenchmarkAppendSerial(b *testing.B) {
	db := openDB(b, filepath.Join(b.TempDir(), "warden.db"))
	l, err := audit.Open(db.Audit(), seedKey(1), audit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	for b.Loop() {
		if _, err := l.Append(context.Background(), audit.Record{Kind: audit.KindDecision, Principal: "alice"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkDiskFlush is the floor under every durable append: one small
// write and an fsync on the disk the test's temporary directory is on,
// appending to the file (as a growing WAL does) or overwriting blocks it
// already has (as a WAL does once it wraps). BenchmarkAppendSerial less
// this is what the store itself costs per commit.
func BenchmarkDiskFlush(b *testing.B) {
	for _, mode := range []string{"append", "overwrite"} {
		b.Run(mode, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "flush"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			block := make([]byte, 4096)
			if mode == "overwrite" {
				for range 4096 { // 16 MiB, more than the loop writes
					if _, err := f.Write(block); err != nil {
						b.Fatal(err)
					}
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				if _, err := f.Seek(0, 0); err != nil {
					b.Fatal(err)
				}
			}
			n := 0
			for b.Loop() {
				if n++; mode == "overwrite" && n%4096 == 0 {
					if _, err := f.Seek(0, 0); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := f.Write(block); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerify100k verifies a 100,000-record chain (a signed checkpoint
// every 1000) per iteration.
func BenchmarkVerify100k(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	key := seedKey(1)
	db := openDB(b, filepath.Join(b.TempDir(), "warden.db"))
	store := db.Audit()
	pub := key.Public().(ed25519.PublicKey)
	if err := store.PutKey(ctx, audit.KeyID(pub), pub); err != nil {
		b.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	head := audit.GenesisHash
	batch := make([]audit.Record, 0, 5000)
	for seq := uint64(1); seq <= n; seq++ {
		r := audit.Record{V: audit.SchemaVersion, Seq: seq, Time: base.Add(time.Duration(seq) * time.Millisecond),
			Kind: audit.KindDecision, Principal: "alice", Tool: "db.query", Decision: audit.DecisionAllow,
			Args: []byte(`{"sql":"SELECT 1"}`), Rules: []string{"r1"}, Prev: head}
		if seq%1000 == 0 {
			r = audit.Record{V: audit.SchemaVersion, Seq: seq, Time: r.Time, Kind: audit.KindCheckpoint, Prev: head,
				Checkpoint: &audit.Checkpoint{HeadSeq: seq - 1, Head: head, KeyID: audit.KeyID(pub),
					Sig: hex.EncodeToString(ed25519.Sign(key, audit.CheckpointMessage(seq-1, head, r.Time)))}}
		}
		var err error
		if r.Hash, err = r.ComputeHash(); err != nil {
			b.Fatal(err)
		}
		head = r.Hash
		if batch = append(batch, r); len(batch) == cap(batch) {
			if err := store.Append(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	for b.Loop() {
		rep, err := audit.Verify(ctx, store, pub)
		if err != nil || !rep.OK() || rep.Records != n {
			b.Fatalf("%+v %v", rep, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
