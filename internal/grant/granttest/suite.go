// Package granttest holds the behaviour every grant.Store implementation
// must show, as one test suite the in-memory and SQLite stores both run.
package granttest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wardenmcp/warden/internal/grant"
)

// Base is the suite's clock origin.
var Base = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

// Issue issues a grant from spec at Base, failing the test on error. A
// zero ExpiresAt becomes Base plus an hour.
func Issue(t testing.TB, spec grant.Spec) (grant.Grant, string) {
	t.Helper()
	if spec.ExpiresAt.IsZero() {
		spec.ExpiresAt = Base.Add(time.Hour)
	}
	g, token, err := grant.Issue(spec, Base)
	if err != nil {
		t.Fatalf("issue grant: %v", err)
	}
	return g, token
}

// StoreSuite runs the shared behaviour against fresh stores from newStore.
func StoreSuite(t *testing.T, newStore func(t *testing.T) grant.Store) {
	ctx := context.Background()
	spec := grant.Spec{
		Principal: "alice",
		Tools:     []string{"shop.*", "db.query"},
		Scope:     map[string]string{"order_id": "12345"},
		Budget:    5,
		Rate:      60,
		Labels:    []string{"customer"},
	}

	t.Run("CreateGetRoundTrip", func(t *testing.T) {
		s := newStore(t)
		g, _ := Issue(t, spec)
		mustCreate(t, s, g)
		got, err := s.Get(ctx, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(grant.Normalize(g), got); diff != "" {
			t.Errorf("Get differs from what was created (-want +got):\n%s", diff)
		}
		if got.SecretHash != g.SecretHash {
			t.Errorf("secret digest not kept")
		}
		empty, _ := Issue(t, grant.Spec{Principal: "bob"})
		mustCreate(t, s, empty)
		got, err = s.Get(ctx, empty.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Tools == nil || len(got.Tools) != 0 || got.Scope != nil || got.Labels != nil {
			t.Errorf("empty grant read back as tools=%#v scope=%#v labels=%#v", got.Tools, got.Scope, got.Labels)
		}
	})

	t.Run("CreateRefusals", func(t *testing.T) {
		s := newStore(t)
		g, _ := Issue(t, spec)
		mustCreate(t, s, g)
		if err := s.Create(ctx, g); !errors.Is(err, grant.ErrExists) {
			t.Errorf("duplicate id: err = %v, want ErrExists", err)
		}
		orphan, _ := Issue(t, spec)
		orphan.Parent, orphan.Depth = "00000000000000000000000000000000", 1
		if err := s.Create(ctx, orphan); !errors.Is(err, grant.ErrUnknown) {
			t.Errorf("unknown parent: err = %v, want ErrUnknown", err)
		}
		noSecret, _ := Issue(t, spec)
		noSecret.SecretHash = ""
		if err := s.Create(ctx, noSecret); !errors.Is(err, grant.ErrInvalid) {
			t.Errorf("no secret digest: err = %v, want ErrInvalid", err)
		}
		if _, err := s.Get(ctx, "nope"); !errors.Is(err, grant.ErrUnknown) {
			t.Errorf("Get unknown: err = %v, want ErrUnknown", err)
		}
		for name, f := range map[string]func() error{
			"Revoke":    func() error { _, err := s.Revoke(ctx, "nope", Base); return err },
			"Consume":   func() error { _, err := s.Consume(ctx, "nope", Base); return err },
			"AddLabels": func() error { _, err := s.AddLabels(ctx, "nope", "x"); return err },
		} {
			if err := f(); !errors.Is(err, grant.ErrUnknown) {
				t.Errorf("%s unknown: err = %v, want ErrUnknown", name, err)
			}
		}
	})

	t.Run("List", func(t *testing.T) {
		s := newStore(t)
		var ids []string
		for _, p := range []string{"alice", "bob", "alice", "carol"} {
			sp := spec
			sp.Principal = p
			g, _ := Issue(t, sp)
			mustCreate(t, s, g)
			ids = append(ids, g.ID)
		}
		all, err := s.List(ctx, grant.ListFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ids, idsOf(all)); diff != "" {
			t.Errorf("List order (-want +got):\n%s", diff)
		}
		alice, err := s.List(ctx, grant.ListFilter{Principal: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{ids[0], ids[2]}, idsOf(alice)); diff != "" {
			t.Errorf("List alice (-want +got):\n%s", diff)
		}
		two, err := s.List(ctx, grant.ListFilter{Limit: 2})
		if err != nil || len(two) != 2 {
			t.Errorf("List limit 2: %d grants, %v", len(two), err)
		}
		none, err := s.List(ctx, grant.ListFilter{Principal: "nobody"})
		if err != nil || none == nil || len(none) != 0 {
			t.Errorf("List nobody: %#v, %v; want an empty non-nil slice", none, err)
		}
		if _, err := s.List(ctx, grant.ListFilter{Limit: grant.MaxListLimit + 1}); !errors.Is(err, grant.ErrInvalid) {
			t.Errorf("List over the limit: err = %v, want ErrInvalid", err)
		}
	})

	t.Run("ConsumeChargesAndRefuses", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			spec    grant.Spec
			revoke  bool
			calls   []time.Duration // offsets from Base; the last one is refused
			wantErr error
		}{
			{"budget exhausted", grant.Spec{Budget: 3}, false, []time.Duration{0, 1, 2, 3}, grant.ErrBudget},
			{"expired at the instant of expiry", grant.Spec{}, false, []time.Duration{0, time.Hour}, grant.ErrExpired},
			{"revoked", grant.Spec{}, true, []time.Duration{0}, grant.ErrRevoked},
			{"rate 2 per minute: a burst of 2", grant.Spec{Rate: 2}, false, []time.Duration{0, 0, 0}, grant.ErrRate},
			{"rate 2 per minute: refilled after 30s", grant.Spec{Rate: 2}, false, []time.Duration{0, 0, 30 * time.Second, 30 * time.Second}, grant.ErrRate},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := newStore(t)
				sp := tc.spec
				sp.Principal, sp.Tools = "alice", []string{"t"}
				g, _ := Issue(t, sp)
				mustCreate(t, s, g)
				if tc.revoke {
					if _, err := s.Revoke(ctx, g.ID, Base); err != nil {
						t.Fatal(err)
					}
				}
				last := len(tc.calls) - 1
				for i, at := range tc.calls[:last] {
					got, err := s.Consume(ctx, g.ID, Base.Add(at))
					if err != nil {
						t.Fatalf("call %d at +%v: %v", i+1, at, err)
					}
					if got.Used != int64(i+1) {
						t.Fatalf("call %d: Used = %d", i+1, got.Used)
					}
				}
				if _, err := s.Consume(ctx, g.ID, Base.Add(tc.calls[last])); !errors.Is(err, tc.wantErr) {
					t.Fatalf("refused call: err = %v, want %v", err, tc.wantErr)
				}
				after, err := s.Get(ctx, g.ID)
				if err != nil {
					t.Fatal(err)
				}
				if after.Used != int64(last) {
					t.Errorf("a refused call was charged: Used = %d, want %d", after.Used, last)
				}
			})
		}
	})

	t.Run("RevokeKeepsFirstTime", func(t *testing.T) {
		s := newStore(t)
		g, _ := Issue(t, spec)
		mustCreate(t, s, g)
		first, err := s.Revoke(ctx, g.ID, Base.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		again, err := s.Revoke(ctx, g.ID, Base.Add(2*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		want := grant.Timestamp(Base.Add(time.Minute))
		if !first.RevokedAt.Equal(want) || !again.RevokedAt.Equal(want) {
			t.Errorf("RevokedAt = %v then %v, want %v both times", first.RevokedAt, again.RevokedAt, want)
		}
	})

	t.Run("DerivedGrantChargesItsChain", func(t *testing.T) {
		s := newStore(t)
		parent, _ := Issue(t, grant.Spec{Principal: "alice", Tools: []string{"shop.*"}, Budget: 3})
		mustCreate(t, s, parent)
		child, _, err := grant.Derive(parent, grant.Spec{Tools: []string{"shop.get_order"}, Budget: 3}, Base)
		if err != nil {
			t.Fatal(err)
		}
		mustCreate(t, s, child)
		sibling, _, err := grant.Derive(parent, grant.Spec{Budget: 3}, Base)
		if err != nil {
			t.Fatal(err)
		}
		mustCreate(t, s, sibling)
		// Three calls between the two children exhaust the parent's budget.
		for _, id := range []string{child.ID, sibling.ID, child.ID} {
			if _, err := s.Consume(ctx, id, Base); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Consume(ctx, sibling.ID, Base); !errors.Is(err, grant.ErrBudget) {
			t.Fatalf("the children together outspent the parent: err = %v", err)
		}
		got, err := s.Get(ctx, parent.ID)
		if err != nil || got.Used != 3 {
			t.Fatalf("parent Used = %d (%v), want 3", got.Used, err)
		}
		got, err = s.Get(ctx, sibling.ID)
		if err != nil || got.Used != 1 {
			t.Fatalf("sibling Used = %d (%v), want 1 (the refused call charged nothing)", got.Used, err)
		}

		// Revoking the parent stops its children.
		s2 := newStore(t)
		parent2, _ := Issue(t, grant.Spec{Principal: "alice", Tools: []string{"t"}})
		mustCreate(t, s2, parent2)
		child2, _, err := grant.Derive(parent2, grant.Spec{}, Base)
		if err != nil {
			t.Fatal(err)
		}
		mustCreate(t, s2, child2)
		if _, err := s2.Revoke(ctx, parent2.ID, Base); err != nil {
			t.Fatal(err)
		}
		if _, err := s2.Consume(ctx, child2.ID, Base); !errors.Is(err, grant.ErrRevoked) {
			t.Fatalf("child of a revoked grant: err = %v, want ErrRevoked", err)
		}
	})

	t.Run("LabelsMarkTheWholeTask", func(t *testing.T) {
		s := newStore(t)
		parent, _ := Issue(t, grant.Spec{Principal: "alice", Tools: []string{"t"}, Labels: []string{"a"}})
		mustCreate(t, s, parent)
		child, _, err := grant.Derive(parent, grant.Spec{Labels: []string{"b"}}, Base)
		if err != nil {
			t.Fatal(err)
		}
		mustCreate(t, s, child)
		got, err := s.AddLabels(ctx, child.ID, "confidential", "b")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"a", "b", "confidential"}, got.Labels); diff != "" {
			t.Errorf("child labels (-want +got):\n%s", diff)
		}
		p, err := s.Get(ctx, parent.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"a", "b", "confidential"}, p.Labels); diff != "" {
			t.Errorf("parent labels (-want +got):\n%s", diff)
		}
		// A label on the parent reaches the child's calls.
		if _, err := s.AddLabels(ctx, parent.ID, "untrusted"); err != nil {
			t.Fatal(err)
		}
		consumed, err := s.Consume(ctx, child.ID, Base)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"a", "b", "confidential", "untrusted"}, consumed.Labels); diff != "" {
			t.Errorf("Consume labels (-want +got):\n%s", diff)
		}
		if _, err := s.AddLabels(ctx, child.ID, ""); !errors.Is(err, grant.ErrInvalid) {
			t.Errorf("empty label: err = %v, want ErrInvalid", err)
		}
	})

	t.Run("ConcurrentConsumeNeverOverspends", func(t *testing.T) {
		s := newStore(t)
		g, _ := Issue(t, grant.Spec{Principal: "alice", Tools: []string{"t"}, Budget: 10})
		mustCreate(t, s, g)
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, other := 0, []error(nil)
		for range 25 {
			wg.Go(func() {
				_, err := s.Consume(ctx, g.ID, Base)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case !errors.Is(err, grant.ErrBudget):
					other = append(other, err)
				}
			})
		}
		wg.Wait()
		if ok != 10 || len(other) > 0 {
			t.Fatalf("%d calls charged (want 10), unexpected errors %v", ok, other)
		}
	})
}

func mustCreate(t *testing.T, s grant.Store, g grant.Grant) {
	t.Helper()
	if err := s.Create(context.Background(), g); err != nil {
		t.Fatalf("create grant: %v", err)
	}
}

func idsOf(gs []grant.Grant) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.ID
	}
	return out
}
