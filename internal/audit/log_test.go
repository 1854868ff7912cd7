package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func testKey(b byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = b
	return ed25519.NewKeyFromSeed(seed)
}

// gatedStore is a MemoryStore whose Append can be held at a gate and made to
// fail, to observe batching, backpressure and error handling.
type gatedStore struct {
	*MemoryStore
	mu         sync.Mutex
	gate       chan struct{} // when set, Append waits until it is closed
	fail       error         // when set, Append returns it
	failStored bool          // fail after storing: the ambiguous commit
	batches    []int         // records per Append call, in order
}

func newGatedStore() *gatedStore { return &gatedStore{MemoryStore: NewMemoryStore()} }

func (g *gatedStore) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate = make(chan struct{})
}

func (g *gatedStore) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.gate)
	g.gate = nil
}

func (g *gatedStore) setFail(err error, afterStoring bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fail, g.failStored = err, afterStoring
}

func (g *gatedStore) Append(ctx context.Context, records []Record) error {
	g.mu.Lock()
	gate := g.gate
	g.batches = append(g.batches, len(records))
	g.mu.Unlock()
	if gate != nil {
		<-gate
	}
	g.mu.Lock()
	fail, afterStoring := g.fail, g.failStored
	g.mu.Unlock()
	if fail != nil && !afterStoring {
		return fail
	}
	if err := g.MemoryStore.Append(ctx, records); err != nil {
		return err
	}
	return fail
}

func (g *gatedStore) count() int {
	g.MemoryStore.mu.Lock()
	defer g.MemoryStore.mu.Unlock()
	return len(g.MemoryStore.records)
}

func (g *gatedStore) batchSizes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.batches)
}

type asyncResult struct {
	seq uint64
	err error
}

// appendAsync starts an Append and returns where its result will arrive.
func appendAsync(ctx context.Context, l *Log, principal string) <-chan asyncResult {
	out := make(chan asyncResult, 1)
	go func() {
		seq, err := l.Append(ctx, Record{Kind: KindDecision, Principal: principal, Decision: DecisionAllow})
		out <- asyncResult{seq, err}
	}()
	return out
}

func mustVerify(t *testing.T, s Store, pub ed25519.PublicKey) Report {
	t.Helper()
	rep, err := Verify(context.Background(), s, pub)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("chain does not verify: %s", rep.Problem)
	}
	return rep
}

func TestGroupCommitBatchesWaitingAppends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		store := newGatedStore()
		key := testKey(1)
		l, err := Open(store, key, Options{})
		if err != nil {
			t.Fatal(err)
		}
		store.hold()
		first := appendAsync(ctx, l, "p0")
		synctest.Wait() // the writer is inside the store with one record
		var rest []<-chan asyncResult
		for range 20 {
			rest = append(rest, appendAsync(ctx, l, "p"))
		}
		synctest.Wait() // the other twenty are queued behind it
		store.release()
		seqs := []uint64{(<-first).seq}
		for _, c := range rest {
			res := <-c
			if res.err != nil {
				t.Fatal(res.err)
			}
			seqs = append(seqs, res.seq)
		}
		slices.Sort(seqs)
		if seqs[0] != 1 || seqs[20] != 21 || len(slices.Compact(seqs)) != 21 {
			t.Fatalf("seqs = %v, want 1 to 21 once each", seqs)
		}
		if got := store.batchSizes(); !slices.Equal(got, []int{1, 20}) {
			t.Fatalf("store appends = %v, want [1 20]: the queued appends were not batched", got)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		rep := mustVerify(t, store, key.Public().(ed25519.PublicKey))
		if rep.Records != 22 || rep.Checkpoints != 1 || rep.Unsigned != 0 {
			t.Fatalf("after Close: %+v, want 21 records and a final checkpoint", rep)
		}
	})
}

func TestMaxBatchSplitsTransactions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newGatedStore()
		l, err := Open(store, testKey(1), Options{MaxBatch: 4})
		if err != nil {
			t.Fatal(err)
		}
		store.hold()
		results := []<-chan asyncResult{appendAsync(t.Context(), l, "first")}
		synctest.Wait()
		for range 10 {
			results = append(results, appendAsync(t.Context(), l, "p"))
		}
		synctest.Wait()
		store.release()
		for _, c := range results {
			if res := <-c; res.err != nil {
				t.Fatal(res.err)
			}
		}
		if got := store.batchSizes(); !slices.Equal(got, []int{1, 4, 4, 2}) {
			t.Fatalf("store appends = %v, want [1 4 4 2]", got)
		}
		l.Close()
	})
}

func TestBackpressureWhenQueueIsFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newGatedStore()
		l, err := Open(store, testKey(1), Options{QueueSize: 4, MaxBatch: 1})
		if err != nil {
			t.Fatal(err)
		}
		store.hold()
		results := []<-chan asyncResult{appendAsync(t.Context(), l, "in the store")}
		synctest.Wait()
		for range 4 {
			results = append(results, appendAsync(t.Context(), l, "queued"))
		}
		synctest.Wait()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err = l.Append(ctx, Record{Kind: KindDecision})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Append on a full queue: err = %v, want it to wait and time out", err)
		}
		store.release()
		for _, c := range results {
			if res := <-c; res.err != nil {
				t.Fatal(res.err)
			}
		}
		if last, _ := store.Last(t.Context()); last.Seq != 5 {
			t.Fatalf("last seq = %d, want 5: the timed-out append must not be stored", last.Seq)
		}
		l.Close()
	})
}

func TestStoreErrorReachesEveryWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newGatedStore()
		key := testKey(1)
		l, err := Open(store, key, Options{})
		if err != nil {
			t.Fatal(err)
		}
		errDiskFull := errors.New("disk full")
		store.setFail(errDiskFull, false)
		store.hold()
		results := []<-chan asyncResult{appendAsync(t.Context(), l, "first")}
		synctest.Wait()
		for range 10 {
			results = append(results, appendAsync(t.Context(), l, "p"))
		}
		synctest.Wait()
		store.release()
		for i, c := range results {
			if res := <-c; !errors.Is(res.err, errDiskFull) {
				t.Fatalf("waiter %d: err = %v, want the store's error", i, res.err)
			}
		}
		// The store recovers: the chain continues where the store is.
		store.setFail(nil, false)
		if seq, err := l.Append(t.Context(), Record{Kind: KindAdmin}); err != nil || seq != 1 {
			t.Fatalf("after recovery Append = %d, %v; want seq 1", seq, err)
		}
		l.Close()
		mustVerify(t, store, key.Public().(ed25519.PublicKey))
	})
}

func TestAmbiguousCommitRereadsTheHead(t *testing.T) {
	ctx := context.Background()
	store := newGatedStore()
	key := testKey(1)
	l, err := Open(store, key, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	store.setFail(errors.New("connection lost after commit"), true)
	if _, err := l.Append(ctx, Record{Kind: KindAdmin}); err == nil {
		t.Fatal("Append reported success on a store error")
	}
	store.setFail(nil, false)
	seq, err := l.Append(ctx, Record{Kind: KindAdmin})
	if err != nil || seq != 2 {
		t.Fatalf("Append after an ambiguous commit = %d, %v; want seq 2 (record 1 did land)", seq, err)
	}
	mustVerify(t, store, key.Public().(ed25519.PublicKey))
}

func TestCheckpointEveryN(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	key := testKey(1)
	l, err := Open(store, key, Options{CheckpointEvery: 5})
	if err != nil {
		t.Fatal(err)
	}
	for range 12 {
		if _, err := l.Append(ctx, Record{Kind: KindDecision}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cps, err := store.Query(ctx, Filter{Kind: KindCheckpoint, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var at []uint64
	for _, c := range cps {
		at = append(at, c.Seq)
		if c.Checkpoint.HeadSeq != c.Seq-1 || c.Checkpoint.KeyID != KeyID(key.Public().(ed25519.PublicKey)) {
			t.Fatalf("checkpoint %d: %+v", c.Seq, c.Checkpoint)
		}
	}
	// 5 records, checkpoint 6; 5 more (7-11), checkpoint 12; 13-14; final checkpoint 15 on Close.
	if !slices.Equal(at, []uint64{6, 12, 15}) {
		t.Fatalf("checkpoints at %v, want [6 12 15]", at)
	}
	rep := mustVerify(t, store, key.Public().(ed25519.PublicKey))
	if rep.Checkpoints != 3 || rep.Unsigned != 0 || rep.HeadSeq != 15 {
		t.Fatalf("report %+v", rep)
	}

	// Reopened, the log continues the chain and counts from the last checkpoint.
	l, err = Open(store, key, Options{CheckpointEvery: 5})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := l.Append(ctx, Record{Kind: KindDecision}); err != nil {
			t.Fatal(err)
		}
	}
	last, _ := store.Last(ctx)
	if last.Seq != 21 || last.Kind != KindCheckpoint {
		t.Fatalf("after reopening and 5 appends the head is %d %s, want checkpoint 21", last.Seq, last.Kind)
	}
	l.Close()
	mustVerify(t, store, nil)
}

func TestCheckpointAfterInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := NewMemoryStore()
		l, err := Open(store, testKey(1), Options{CheckpointInterval: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := l.Append(t.Context(), Record{Kind: KindDecision}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(61 * time.Second) // the bubble's clock: no real wait
		synctest.Wait()
		last, _ := store.Last(t.Context())
		if last.Kind != KindCheckpoint || last.Checkpoint.HeadSeq != 3 {
			t.Fatalf("after the interval the head is %d %s, want a checkpoint over 3", last.Seq, last.Kind)
		}
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if again, _ := store.Last(t.Context()); again.Seq != last.Seq {
			t.Fatalf("checkpoint written with nothing new to cover: head %d", again.Seq)
		}
		l.Close()
		mustVerify(t, store, testKey(1).Public().(ed25519.PublicKey))
	})
}

func TestAppendAfterClose(t *testing.T) {
	l, err := Open(NewMemoryStore(), testKey(1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := l.Append(context.Background(), Record{Kind: KindAdmin}); !errors.Is(err, ErrLogClosed) {
		t.Fatalf("Append after Close: err = %v, want ErrLogClosed", err)
	}
}

func TestAppendRejectsBadRecordsAndBadOptions(t *testing.T) {
	l, err := Open(NewMemoryStore(), testKey(1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(context.Background(), Record{}); err == nil {
		t.Fatal("a record without a kind was appended")
	}
	if _, err := Open(NewMemoryStore(), ed25519.PrivateKey{1, 2}, Options{}); err == nil {
		t.Fatal("Open accepted a truncated key")
	}
	if _, err := Open(NewMemoryStore(), testKey(1), Options{QueueSize: -1}); err == nil {
		t.Fatal("Open accepted a negative queue size")
	}
	if _, err := Open(nil, testKey(1), Options{}); err == nil {
		t.Fatal("Open accepted a nil store")
	}
}

func TestVerifyNeedsTheRightKey(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	l, err := Open(store, testKey(1), Options{CheckpointEvery: 3})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if _, err := l.Append(ctx, Record{Kind: KindDecision}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	rep, err := Verify(ctx, store, testKey(2).Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Problem.Kind != ProblemUnknownKey || rep.Problem.Seq != 4 {
		t.Fatalf("Verify with another key: %+v, want unknown_key at 4", rep.Problem)
	}
}

func TestVerifyAcrossPages(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	key := testKey(1)
	l, err := Open(store, key, Options{CheckpointEvery: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1500 {
				if _, err := l.Append(ctx, Record{Kind: KindOutcome, Status: "ok"}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep := mustVerify(t, store, key.Public().(ed25519.PublicKey))
	if rep.Records != 12012 || rep.Checkpoints != 12 || rep.Unsigned != 0 {
		t.Fatalf("report %+v, want 12000 records and 12 checkpoints", rep)
	}
}

func TestAnotherWriterIsChainedAround(t *testing.T) {
	// Two logs on one store (as replicas sharing a database would be): each
	// append that loses the race is chained again onto the winner's head.
	ctx := context.Background()
	store := NewMemoryStore()
	key := testKey(1)
	a, err := Open(store, key, Options{CheckpointEvery: 7})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(store, key, Options{CheckpointEvery: 7})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		l := a
		if i%3 == 0 {
			l = b
		}
		if _, err := l.Append(ctx, Record{Kind: KindDecision}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	a.Close()
	b.Close()
	rep := mustVerify(t, store, key.Public().(ed25519.PublicKey))
	if rep.Records-rep.Checkpoints != 20 {
		t.Fatalf("%+v: want 20 records besides checkpoints", rep)
	}
}

func TestVerifyFindsACheckpointOverTheWrongHead(t *testing.T) {
	ctx := context.Background()
	key := testKey(1)
	src := NewMemoryStore()
	l, err := Open(src, key, Options{CheckpointEvery: 5})
	if err != nil {
		t.Fatal(err)
	}
	for range 8 {
		if _, err := l.Append(ctx, Record{Kind: KindDecision}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	records, err := src.Query(ctx, Filter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	// Checkpoint 6 validly signed, but over head 4 instead of 5.
	prev := GenesisHash
	for i := range records {
		r := &records[i]
		r.Prev = prev
		if r.Seq == 6 {
			r.Checkpoint.HeadSeq, r.Checkpoint.Head = 4, records[3].Hash
			r.Checkpoint.Sig = hex.EncodeToString(ed25519.Sign(key, CheckpointMessage(4, records[3].Hash, r.Time)))
		}
		if r.Hash, err = r.ComputeHash(); err != nil {
			t.Fatal(err)
		}
		prev = r.Hash
	}
	forged := NewMemoryStore()
	if err := forged.Append(ctx, records); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, forged, key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Problem.Kind != ProblemBadCheckpoint || rep.Problem.Seq != 6 {
		t.Fatalf("Verify: %v, want bad_checkpoint at 6", rep.Problem)
	}
}

func TestAppendRefusesABrokenClock(t *testing.T) {
	l, err := Open(NewMemoryStore(), testKey(1), Options{Now: func() time.Time { return time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(context.Background(), Record{Kind: KindAdmin}); err == nil {
		t.Fatal("a record dated by a broken clock was appended")
	}
}

func TestEnqueueReturnsBeforeTheWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newGatedStore()
		key := testKey(1)
		l, err := Open(store, key, Options{})
		if err != nil {
			t.Fatal(err)
		}
		store.hold()
		for range 3 {
			if err := l.Enqueue(t.Context(), Record{Kind: KindOutcome, Principal: "p"}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(20 * time.Millisecond) // the default EnqueueDelay: the writer takes them
		synctest.Wait()
		if n := store.count(); n != 0 {
			t.Fatalf("%d records stored while the store was held", n)
		}
		store.release()
		synctest.Wait() // the writer is idle again
		if n := store.count(); n != 3 {
			t.Fatalf("after the write the store holds %d records, want the 3 enqueued", n)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		mustVerify(t, store, key.Public().(ed25519.PublicKey))
	})
}

func TestEnqueuedWriteFailureIsLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newGatedStore()
		var logged bytes.Buffer
		l, err := Open(store, testKey(1), Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
		if err != nil {
			t.Fatal(err)
		}
		store.setFail(errors.New("disk full"), false)
		if err := l.Enqueue(t.Context(), Record{Kind: KindOutcome, Principal: "p"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // the default EnqueueDelay
		synctest.Wait()                   // the writer tried, failed and is idle again
		if n := store.count(); n != 0 {
			t.Fatalf("the store holds %d records after a failed write", n)
		}
		if !strings.Contains(logged.String(), "audit write failed") || !strings.Contains(logged.String(), "disk full") {
			t.Fatalf("log = %q, want the failed write reported", logged.String())
		}
		store.setFail(nil, false)
		l.Close()
	})
}

// TestEnqueuedRecordsWaitForTheNextAppend: records no caller waits for are
// held for EnqueueDelay, and written with the next Append's commit if one
// comes first: they cost no disk flush of their own.
func TestEnqueuedRecordsWaitForTheNextAppend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newGatedStore()
		const delay = 50 * time.Millisecond
		l, err := Open(store, testKey(1), Options{EnqueueDelay: delay})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"a", "b"} {
			if err := l.Enqueue(t.Context(), Record{Kind: KindOutcome, Principal: p}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(delay / 2)
		synctest.Wait()
		if n := store.count(); n != 0 {
			t.Fatalf("%d enqueued records written before EnqueueDelay passed with no Append", n)
		}
		seq, err := l.Append(t.Context(), Record{Kind: KindDecision, Principal: "c"})
		if err != nil {
			t.Fatal(err)
		}
		if got := store.batchSizes(); !slices.Equal(got, []int{3}) {
			t.Fatalf("store writes %v, want the two enqueued records and the append in one", got)
		}
		recs, err := store.Query(t.Context(), Filter{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		for _, r := range recs {
			order = append(order, r.Principal)
		}
		if !slices.Equal(order, []string{"a", "b", "c"}) || seq != recs[2].Seq {
			t.Fatalf("records %v (append got seq %d), want a, b, c in order", order, seq)
		}

		// Alone, an enqueued record is written once the delay passes.
		if err := l.Enqueue(t.Context(), Record{Kind: KindOutcome, Principal: "d"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		synctest.Wait()
		if got := store.batchSizes(); !slices.Equal(got, []int{3, 1}) {
			t.Fatalf("store writes %v, want the lone enqueued record written after the delay", got)
		}

		// Close writes what is still held.
		if err := l.Enqueue(t.Context(), Record{Kind: KindOutcome, Principal: "e"}); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if n := store.count(); n < 5 {
			t.Fatalf("after Close the store holds %d records, want the held one written too", n)
		}
	})
}

func TestEnqueueAfterClose(t *testing.T) {
	l, err := Open(NewMemoryStore(), testKey(1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := l.Enqueue(t.Context(), Record{Kind: KindOutcome}); !errors.Is(err, ErrLogClosed) {
		t.Fatalf("Enqueue after Close = %v, want ErrLogClosed", err)
	}
}

// failFirstStore refuses its first Append and stores the rest.
type failFirstStore struct {
	*MemoryStore
	failed atomic.Bool
}

func (s *failFirstStore) Append(ctx context.Context, records []Record) error {
	if s.failed.CompareAndSwap(false, true) {
		return errors.New("disk full")
	}
	return s.MemoryStore.Append(ctx, records)
}

// TestCloseReportsALostHeldRecord: a held record that cannot be written at
// Close is reported by Close, even though the final checkpoint is written.
func TestCloseReportsALostHeldRecord(t *testing.T) {
	store := &failFirstStore{MemoryStore: NewMemoryStore()}
	l, err := Open(store, testKey(1), Options{EnqueueDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Enqueue(t.Context(), Record{Kind: KindOutcome, Principal: "p"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Close = %v, want the failed write of the held record", err)
	}
}
