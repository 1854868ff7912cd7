// Package audittest holds the behaviour every audit.Store implementation
// must show, as one test suite the in-memory, SQLite and PostgreSQL stores
// all run.
package audittest

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wardenmcp/warden/internal/audit"
)

// Chain returns n records continuing the chain after (seq, prev), with their
// hashes set, varied enough to exercise every field and every filter.
func Chain(t testing.TB, seq uint64, prev string, n int) []audit.Record {
	t.Helper()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	principals := []string{"alice", "bob", "svc:billing"}
	tools := []string{"shop.get_order", "shop.refund_order", "db.query"}
	decisions := []audit.Decision{audit.DecisionAllow, audit.DecisionDeny, audit.DecisionConfirm, audit.DecisionApprove}
	out := make([]audit.Record, 0, n)
	for i := range n {
		s := seq + 1
		r := audit.Record{
			V:          audit.SchemaVersion,
			Seq:        s,
			Time:       base.Add(time.Duration(s)*time.Second + time.Duration(s%7)*time.Nanosecond),
			Kind:       audit.KindDecision,
			RequestID:  fmt.Sprintf("req-%d", s),
			DecisionID: fmt.Sprintf("dec-%d", s),
			Principal:  principals[int(s)%len(principals)],
			Method:     "tools/call",
			Tool:       tools[int(s)%len(tools)],
			Args:       json.RawMessage(fmt.Sprintf(`{"order_id":%d,"note":"<b>é & \u2028</b>"}`, s)),
			Decision:   decisions[int(s)%len(decisions)],
			Rules:      []string{"rule-a", "rule-b"},
			Reason:     "a reason with \"quotes\" and ünïcödé",
			Prev:       prev,
		}
		if i%2 == 1 {
			r.Kind = audit.KindOutcome
			r.Decision = ""
			r.Status = "ok"
			r.LatencyUS = int64(s * 17)
			r.Upstream = "shop"
			r.CredentialID = fmt.Sprintf("cred-%d", s)
			r.Masked = []string{"$.email", "card"}
			r.Labels = []string{"confidential"}
			r.Shadow = true
			r.Session, r.Task, r.PolicyVersion, r.ApprovalID = "sess-1", "task-9", "v42", "appr-3"
			r.Extra = map[string]json.RawMessage{"zeta": json.RawMessage(`[1,2]`), "alpha": json.RawMessage(`{"x":null}`)}
		}
		if i%5 == 4 {
			r.Kind = audit.KindCheckpoint
			r.Decision, r.Args, r.Rules, r.Extra = "", nil, nil, nil
			r.Checkpoint = &audit.Checkpoint{HeadSeq: seq, Head: prev, KeyID: "0011223344556677", Sig: "abcd"}
		}
		h, err := r.ComputeHash()
		if err != nil {
			t.Fatal(err)
		}
		r.Hash = h
		out = append(out, r)
		seq, prev = r.Seq, r.Hash
	}
	return out
}

// recordsEqual compares records treating nil and empty lists and maps alike,
// as the canonical encoding does.
var recordsEqual = cmpopts.EquateEmpty()

// StoreSuite runs the Store behaviour tests against stores made by newStore,
// which must return an empty store for each call and clean it up after t.
func StoreSuite(t *testing.T, newStore func(t *testing.T) audit.Store) {
	ctx := context.Background()

	t.Run("EmptyStore", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Last(ctx); !errors.Is(err, audit.ErrNoRecords) {
			t.Fatalf("Last on an empty store: err = %v, want ErrNoRecords", err)
		}
		got, err := s.Query(ctx, audit.Filter{Limit: 10})
		if err != nil || len(got) != 0 {
			t.Fatalf("Query on an empty store = %v, %v; want nothing", got, err)
		}
	})

	t.Run("RoundTripsEveryField", func(t *testing.T) {
		s := newStore(t)
		want := Chain(t, 0, audit.GenesisHash, 10)
		if err := s.Append(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.Query(ctx, audit.Filter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, recordsEqual); diff != "" {
			t.Fatalf("records changed in the store (-appended +read):\n%s", diff)
		}
		for _, r := range got {
			if h, err := r.ComputeHash(); err != nil || h != r.Hash {
				t.Fatalf("record %d read back hashes to %s (%v), stored hash %s", r.Seq, h, err, r.Hash)
			}
		}
		last, err := s.Last(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want[9], last, recordsEqual); diff != "" {
			t.Fatalf("Last (-want +got):\n%s", diff)
		}
	})

	t.Run("AppendContinuesAcrossCalls", func(t *testing.T) {
		s := newStore(t)
		first := Chain(t, 0, audit.GenesisHash, 3)
		second := Chain(t, 3, first[2].Hash, 4)
		if err := s.Append(ctx, first); err != nil {
			t.Fatal(err)
		}
		if err := s.Append(ctx, second); err != nil {
			t.Fatal(err)
		}
		last, err := s.Last(ctx)
		if err != nil || last.Seq != 7 || last.Hash != second[3].Hash {
			t.Fatalf("Last = seq %d hash %s (%v), want seq 7 hash %s", last.Seq, last.Hash, err, second[3].Hash)
		}
	})

	t.Run("AppendRefusesWhatDoesNotContinueTheChain", func(t *testing.T) {
		s := newStore(t)
		first := Chain(t, 0, audit.GenesisHash, 3)
		if err := s.Append(ctx, first); err != nil {
			t.Fatal(err)
		}
		gap := Chain(t, 4, first[2].Hash, 2)
		wrongPrev := Chain(t, 3, audit.GenesisHash, 2)
		replay := Chain(t, 0, audit.GenesisHash, 1)
		brokenInside := Chain(t, 3, first[2].Hash, 3)
		brokenInside[2].Seq = 9
		for name, batch := range map[string][]audit.Record{
			"seq gap": gap, "wrong prev": wrongPrev, "seq already used": replay,
			"gap inside the batch": brokenInside, "empty batch": nil,
		} {
			if err := s.Append(ctx, batch); !errors.Is(err, audit.ErrConflict) {
				t.Errorf("%s: err = %v, want ErrConflict", name, err)
			}
		}
		// Atomic: the valid first records of brokenInside were not stored either.
		last, err := s.Last(ctx)
		if err != nil || last.Seq != 3 {
			t.Fatalf("after refused appends Last = %d (%v), want 3", last.Seq, err)
		}
	})

	t.Run("RacingAppendsOneWins", func(t *testing.T) {
		s := newStore(t)
		batch := Chain(t, 0, audit.GenesisHash, 3)
		const racers = 4
		errs := make(chan error, racers)
		var wg sync.WaitGroup
		for range racers {
			wg.Go(func() { errs <- s.Append(ctx, batch) })
		}
		wg.Wait()
		close(errs)
		won := 0
		for err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, audit.ErrConflict):
				t.Fatalf("a losing append failed with %v, want ErrConflict", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d of %d racing appends of the same seqs succeeded, want exactly 1", won, racers)
		}
		if got, err := s.Query(ctx, audit.Filter{Limit: 10}); err != nil || len(got) != 3 {
			t.Fatalf("after the race the store holds %d records (%v), want 3", len(got), err)
		}
	})

	t.Run("QueryFilters", func(t *testing.T) {
		s := newStore(t)
		all := Chain(t, 0, audit.GenesisHash, 150) // enough for multi-row inserts of every size
		if err := s.Append(ctx, all); err != nil {
			t.Fatal(err)
		}
		cases := map[string]audit.Filter{
			"principal":        {Principal: "bob", Limit: 1000},
			"tool":             {Tool: "db.query", Limit: 1000},
			"decision":         {Decision: audit.DecisionDeny, Limit: 1000},
			"kind":             {Kind: audit.KindCheckpoint, Limit: 1000},
			"since":            {Since: all[20].Time, Limit: 1000},
			"until":            {Until: all[10].Time, Limit: 1000},
			"time range":       {Since: all[5].Time, Until: all[25].Time, Limit: 1000},
			"after seq":        {AfterSeq: 120, Limit: 1000},
			"limit":            {Limit: 7},
			"newest":           {Newest: true, Limit: 5},
			"combined":         {Principal: "alice", Kind: audit.KindDecision, Since: all[3].Time, Limit: 4},
			"combined newest":  {Tool: "shop.refund_order", AfterSeq: 10, Newest: true, Limit: 3},
			"nothing matches":  {Principal: "mallory", Limit: 10},
			"after the end":    {AfterSeq: 150, Limit: 10},
			"sub-second since": {Since: all[6].Time.Add(time.Nanosecond), Until: all[8].Time.Add(time.Nanosecond), Limit: 10},
		}
		for name, f := range cases {
			t.Run(name, func(t *testing.T) {
				got, err := s.Query(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				want := expected(all, f)
				if diff := cmp.Diff(want, got, recordsEqual); diff != "" {
					t.Fatalf("Query(%+v) (-want +got):\n%s", f, diff)
				}
				if name != "nothing matches" && name != "after the end" && len(want) == 0 {
					t.Fatalf("case %q selects nothing: it tests nothing", name)
				}
			})
		}
	})

	t.Run("QueryRefusesBadFilters", func(t *testing.T) {
		s := newStore(t)
		now := time.Now()
		for name, f := range map[string]audit.Filter{
			"zero limit":      {},
			"negative limit":  {Limit: -1},
			"limit too large": {Limit: audit.MaxQueryLimit + 1},
			"empty range":     {Since: now, Until: now, Limit: 1},
		} {
			if _, err := s.Query(ctx, f); err == nil {
				t.Errorf("%s: Query accepted %+v", name, f)
			}
		}
	})

	t.Run("Keys", func(t *testing.T) {
		s := newStore(t)
		pub1 := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
		seed := make([]byte, 32)
		seed[0] = 1
		pub2 := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
		id1, id2 := audit.KeyID(pub1), audit.KeyID(pub2)
		if err := s.PutKey(ctx, id1, pub1); err != nil {
			t.Fatal(err)
		}
		if err := s.PutKey(ctx, id1, pub1); err != nil {
			t.Fatalf("putting the same key again: %v", err)
		}
		if err := s.PutKey(ctx, id2, pub2); err != nil {
			t.Fatal(err)
		}
		if err := s.PutKey(ctx, id1, pub2); err == nil {
			t.Fatal("a different key under a known id was accepted")
		}
		if err := s.PutKey(ctx, "short", pub1[:10]); err == nil {
			t.Fatal("a truncated public key was accepted")
		}
		got, err := s.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]ed25519.PublicKey{id1: pub1, id2: pub2}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("Keys (-want +got):\n%s", diff)
		}
	})

	t.Run("CanceledContext", func(t *testing.T) {
		s := newStore(t)
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Append(canceled, Chain(t, 0, audit.GenesisHash, 1)); err == nil {
			t.Fatal("Append with a canceled context succeeded")
		}
		if _, err := s.Last(ctx); !errors.Is(err, audit.ErrNoRecords) {
			t.Fatalf("after a canceled Append, Last err = %v, want ErrNoRecords", err)
		}
	})
}

// expected applies f to all the simple way.
func expected(all []audit.Record, f audit.Filter) []audit.Record {
	var out []audit.Record
	for i := range all {
		r := all[i]
		if f.Newest {
			r = all[len(all)-1-i]
		}
		if f.Match(r) {
			out = append(out, r)
		}
		if len(out) == f.Limit {
			break
		}
	}
	return out
}
