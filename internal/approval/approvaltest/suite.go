// Package approvaltest holds the behaviour every approval.Store
// implementation must show, as one test suite the in-memory and SQLite
// stores both run.
package approvaltest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wardenmcp/warden/internal/approval"
)

// Base is the suite's clock origin.
var Base = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

// NewRequest returns a valid pending request with the given id, created at
// Base and expiring an hour later.
func NewRequest(id string) approval.Request {
	return approval.Request{
		ID:            id,
		Principal:     "alice",
		Owner:         "api_key/acme/alice",
		Task:          "g_task1",
		Tool:          "shop.refund_order",
		Upstream:      "shop",
		Args:          json.RawMessage(`{"amount":250,"order_id":"12345"}`),
		ArgsDigest:    "sha256:aaaa",
		PolicyVersion: "v7",
		Rules:         []string{"large-refunds-need-a-lead"},
		Reason:        "refunds over 100 need a lead",
		Approvers:     []string{"role:support-lead"},
		State:         approval.StatePending,
		CreatedAt:     Base,
		ExpiresAt:     Base.Add(time.Hour),
	}
}

// StoreSuite runs the shared behaviour against fresh stores from newStore.
func StoreSuite(t *testing.T, newStore func(t *testing.T) approval.Store) {
	ctx := context.Background()
	create := func(t *testing.T, s approval.Store, r approval.Request) {
		t.Helper()
		if err := s.Create(ctx, r); err != nil {
			t.Fatalf("create %s: %v", r.ID, err)
		}
	}

	t.Run("CreateGetRoundTrip", func(t *testing.T) {
		s := newStore(t)
		want := NewRequest("apr_1")
		create(t, s, want)
		got, err := s.Get(ctx, "apr_1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("stored request differs (-want +got):\n%s", diff)
		}
		if err := s.Create(ctx, want); !errors.Is(err, approval.ErrExists) {
			t.Errorf("second create: err = %v, want ErrExists", err)
		}
		if _, err := s.Get(ctx, "apr_missing"); !errors.Is(err, approval.ErrUnknown) {
			t.Errorf("get missing: err = %v, want ErrUnknown", err)
		}
	})

	t.Run("CreateRefusesMalformed", func(t *testing.T) {
		s := newStore(t)
		bad := NewRequest("apr_bad")
		bad.ArgsDigest = ""
		if err := s.Create(ctx, bad); !errors.Is(err, approval.ErrInvalid) {
			t.Errorf("no digest: err = %v, want ErrInvalid", err)
		}
		bad = NewRequest("apr_bad")
		bad.Args = json.RawMessage(`{"a":`)
		if err := s.Create(ctx, bad); !errors.Is(err, approval.ErrInvalid) {
			t.Errorf("broken args: err = %v, want ErrInvalid", err)
		}
	})

	t.Run("DecideOnlyPendingAndUnexpired", func(t *testing.T) {
		s := newStore(t)
		create(t, s, NewRequest("apr_a"))
		create(t, s, NewRequest("apr_b"))
		got, err := s.Decide(ctx, "apr_a", true, "ops", "looks right", Base.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if got.State != approval.StateApproved || got.DecidedBy != "ops" || got.Comment != "looks right" || !got.DecidedAt.Equal(Base.Add(time.Minute)) {
			t.Errorf("decided request = %+v", got)
		}
		if _, err := s.Decide(ctx, "apr_a", false, "ops", "", Base.Add(2*time.Minute)); !errors.Is(err, approval.ErrNotPending) {
			t.Errorf("deciding twice: err = %v, want ErrNotPending", err)
		}
		if _, err := s.Decide(ctx, "apr_b", true, "ops", "", Base.Add(time.Hour)); !errors.Is(err, approval.ErrNotPending) {
			t.Errorf("deciding after expiry: err = %v, want ErrNotPending", err)
		}
		if _, err := s.Decide(ctx, "apr_missing", true, "ops", "", Base); !errors.Is(err, approval.ErrUnknown) {
			t.Errorf("deciding unknown: err = %v, want ErrUnknown", err)
		}
		denied, err := s.Decide(ctx, "apr_b", false, "lead", "no", Base.Add(time.Second))
		if err != nil || denied.State != approval.StateDenied {
			t.Fatalf("deny: %+v, %v", denied, err)
		}
		stored, err := s.Get(ctx, "apr_b")
		if err != nil || stored.State != approval.StateDenied || stored.Comment != "no" {
			t.Errorf("stored after deny: %+v, %v", stored, err)
		}
	})

	t.Run("FindUsableIsExact", func(t *testing.T) {
		s := newStore(t)
		r := NewRequest("apr_x")
		create(t, s, r)
		now := Base.Add(time.Minute)
		if _, err := s.FindUsable(ctx, r.Binding(), now); !errors.Is(err, approval.ErrUnknown) {
			t.Fatalf("pending is not usable: err = %v", err)
		}
		if _, err := s.FindPending(ctx, r.Binding(), now); err != nil {
			t.Fatalf("find pending: %v", err)
		}
		if _, err := s.Decide(ctx, r.ID, true, "ops", "", now); err != nil {
			t.Fatal(err)
		}
		if _, err := s.FindPending(ctx, r.Binding(), now); !errors.Is(err, approval.ErrUnknown) {
			t.Errorf("approved is not pending: err = %v", err)
		}
		got, err := s.FindUsable(ctx, r.Binding(), now)
		if err != nil || got.ID != r.ID {
			t.Fatalf("find usable: %+v, %v", got, err)
		}
		for name, change := range map[string]func(*approval.Binding){
			"other principal": func(b *approval.Binding) { b.Principal = "mallory" },
			"other caller":    func(b *approval.Binding) { b.Owner = "jwt/acme/alice" },
			"other task":      func(b *approval.Binding) { b.Task = "g_other" },
			"no task":         func(b *approval.Binding) { b.Task = "" },
			"other tool":      func(b *approval.Binding) { b.Tool = "shop.cancel_order" },
			"other args":      func(b *approval.Binding) { b.ArgsDigest = "sha256:bbbb" },
			"other policy":    func(b *approval.Binding) { b.PolicyVersion = "v8" },
		} {
			b := r.Binding()
			change(&b)
			if _, err := s.FindUsable(ctx, b, now); !errors.Is(err, approval.ErrUnknown) {
				t.Errorf("%s: err = %v, want ErrUnknown", name, err)
			}
		}
		if _, err := s.FindUsable(ctx, r.Binding(), r.ExpiresAt); !errors.Is(err, approval.ErrUnknown) {
			t.Errorf("after expiry: err = %v, want ErrUnknown", err)
		}
	})

	t.Run("MarkUsedOnce", func(t *testing.T) {
		s := newStore(t)
		r := NewRequest("apr_u")
		create(t, s, r)
		now := Base.Add(time.Minute)
		if _, err := s.MarkUsed(ctx, r.ID, now); !errors.Is(err, approval.ErrNotUsable) {
			t.Fatalf("using a pending request: err = %v, want ErrNotUsable", err)
		}
		if _, err := s.Decide(ctx, r.ID, true, "ops", "", now); err != nil {
			t.Fatal(err)
		}
		// Many racing uses: exactly one wins.
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for range 8 {
			wg.Go(func() {
				if _, err := s.MarkUsed(ctx, r.ID, now); err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				} else if !errors.Is(err, approval.ErrNotUsable) {
					t.Errorf("racing use: %v", err)
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d uses succeeded, want exactly 1", wins)
		}
		got, err := s.Get(ctx, r.ID)
		if err != nil || got.State != approval.StateUsed || !got.UsedAt.Equal(now) {
			t.Errorf("after use: %+v, %v", got, err)
		}
		if _, err := s.FindUsable(ctx, r.Binding(), now); !errors.Is(err, approval.ErrUnknown) {
			t.Errorf("a used approval is found usable: err = %v", err)
		}
		if _, err := s.MarkUsed(ctx, "apr_missing", now); !errors.Is(err, approval.ErrUnknown) {
			t.Errorf("using unknown: err = %v, want ErrUnknown", err)
		}
		expiring := NewRequest("apr_late")
		create(t, s, expiring)
		if _, err := s.Decide(ctx, expiring.ID, true, "ops", "", now); err != nil {
			t.Fatal(err)
		}
		if _, err := s.MarkUsed(ctx, expiring.ID, expiring.ExpiresAt); !errors.Is(err, approval.ErrNotUsable) {
			t.Errorf("using after expiry: err = %v, want ErrNotUsable", err)
		}
	})

	t.Run("ListFiltersNewestFirst", func(t *testing.T) {
		s := newStore(t)
		for i := range 5 {
			r := NewRequest(fmt.Sprintf("apr_%d", i))
			r.CreatedAt = Base.Add(time.Duration(i) * time.Second)
			r.ExpiresAt = r.CreatedAt.Add(time.Hour)
			if i == 4 {
				r.Principal = "bob"
			}
			create(t, s, r)
		}
		now := Base.Add(time.Minute)
		if _, err := s.Decide(ctx, "apr_1", false, "ops", "", now); err != nil {
			t.Fatal(err)
		}
		ids := func(f approval.Filter) []string {
			t.Helper()
			rs, err := s.List(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			out := []string{}
			for _, r := range rs {
				out = append(out, r.ID)
			}
			return out
		}
		for _, tc := range []struct {
			name string
			f    approval.Filter
			want []string
		}{
			{"all", approval.Filter{}, []string{"apr_4", "apr_3", "apr_2", "apr_1", "apr_0"}},
			{"pending", approval.Filter{State: approval.StatePending, Now: now}, []string{"apr_4", "apr_3", "apr_2", "apr_0"}},
			{"denied", approval.Filter{State: approval.StateDenied, Now: now}, []string{"apr_1"}},
			{"bob", approval.Filter{Principal: "bob"}, []string{"apr_4"}},
			{"limit", approval.Filter{Limit: 2}, []string{"apr_4", "apr_3"}},
			// apr_0 expires at Base+1h, apr_2 at Base+1h2s: at Base+1h1s
			// only the first reads as expired.
			{"expired", approval.Filter{State: approval.StateExpired, Now: Base.Add(time.Hour + time.Second)}, []string{"apr_0"}},
			{"pending late", approval.Filter{State: approval.StatePending, Now: Base.Add(time.Hour + time.Second)}, []string{"apr_4", "apr_3", "apr_2"}},
		} {
			if diff := cmp.Diff(tc.want, ids(tc.f)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.name, diff)
			}
		}
		if _, err := s.List(ctx, approval.Filter{State: "maybe"}); !errors.Is(err, approval.ErrInvalid) {
			t.Errorf("bad state: err = %v, want ErrInvalid", err)
		}
		if _, err := s.List(ctx, approval.Filter{Limit: approval.MaxListLimit + 1}); !errors.Is(err, approval.ErrInvalid) {
			t.Errorf("bad limit: err = %v, want ErrInvalid", err)
		}
	})
}
