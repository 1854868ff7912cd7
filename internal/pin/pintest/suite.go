// Package pintest holds the behaviour every pin.Store implementation must
// show, as one test suite the in-memory and SQLite stores both run.
package pintest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wardenmcp/warden/internal/pin"
)

// Definition returns a realistic definition of upstream's tool name whose
// content varies with variant.
func Definition(upstream, name string, variant int) pin.Definition {
	return pin.Definition{
		Upstream:    upstream,
		Name:        name,
		Title:       fmt.Sprintf("Get order (v%d)", variant),
		Description: fmt.Sprintf("Returns one order by id.\nVariant %d: \"quoted\", ünïcödé, <b>tags</b> & more.", variant),
		InputSchema: json.RawMessage(fmt.Sprintf(
			`{"type":"object","properties":{"order_id":{"type":"integer","minimum":%d}},"required":["order_id"]}`, variant)),
		OutputSchema: json.RawMessage(`{"type": "object", "properties": {"status": {"enum": ["open", "shipped"]}}}`),
		Annotations:  json.RawMessage(`{"readOnlyHint":true}`),
	}
}

// Approved returns an approved pin of def.
func Approved(def pin.Definition, at time.Time) pin.Pin {
	return pin.Pin{
		Upstream: def.Upstream, Name: def.Name, Digest: pin.Digest(def), Definition: def,
		State: pin.StateApproved, FirstSeen: at, ApprovedAt: at,
		Findings: pin.Scan(def),
	}
}

var cmpOpts = []cmp.Option{cmpopts.EquateEmpty()}

// StoreSuite runs the shared store behaviour against stores from newStore,
// one fresh store per subtest.
func StoreSuite(t *testing.T, newStore func(t *testing.T) pin.Store) {
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

	t.Run("GetMissing", func(t *testing.T) {
		s := newStore(t)
		if _, ok, err := s.Get(ctx, "shop", "get_order"); err != nil || ok {
			t.Fatalf("Get on an empty store = %v, %v; want not found, no error", ok, err)
		}
		pins, err := s.List(ctx)
		if err != nil || len(pins) != 0 {
			t.Fatalf("List on an empty store = %v, %v", pins, err)
		}
	})

	t.Run("RoundTripApproved", func(t *testing.T) {
		s := newStore(t)
		want := Approved(Definition("shop", "get_order", 1), base)
		want.Findings = []pin.Finding{{Kind: pin.KindEncodedBlob, Severity: pin.SeverityMedium, Field: "description", Detail: "a \"detail\" ü"}}
		if err := s.Put(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.Get(ctx, "shop", "get_order")
		if err != nil || !ok {
			t.Fatalf("Get = %v, %v", ok, err)
		}
		if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
		if pin.Digest(got.Definition) != want.Digest {
			t.Fatal("stored definition no longer hashes to its digest")
		}
	})

	t.Run("RoundTripQuarantinedKeepsBytes", func(t *testing.T) {
		s := newStore(t)
		old := Definition("shop", "get_order", 1)
		// Byte-exact: whitespace, key order and even invalid JSON survive.
		pending := Definition("shop", "get_order", 2)
		pending.InputSchema = json.RawMessage("{ \"type\" : \"object\" ,\n \"a\":1, \"a\":2 }")
		pending.OutputSchema = json.RawMessage(`{not json`)
		pending.Annotations = nil
		pending.Description = "zero\u200bwidth and \u202Ebidi and tag \U000E0041"
		p := Approved(old, base)
		p.State, p.PendingDigest, p.Pending = pin.StateQuarantined, pin.Digest(pending), &pending
		p.Findings = pin.Scan(pending)
		if err := s.Put(ctx, p); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.Get(ctx, "shop", "get_order")
		if err != nil || !ok {
			t.Fatalf("Get = %v, %v", ok, err)
		}
		if diff := cmp.Diff(p, got, cmpOpts...); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
		if got.Pending == nil || pin.Digest(*got.Pending) != p.PendingDigest {
			t.Fatal("stored pending definition no longer hashes to its digest")
		}
	})

	t.Run("NeverApproved", func(t *testing.T) {
		s := newStore(t)
		def := Definition("evil", "add", 1)
		p := pin.Pin{Upstream: "evil", Name: "add", Definition: pin.Definition{Upstream: "evil", Name: "add"},
			State: pin.StateQuarantined, FirstSeen: base, PendingDigest: pin.Digest(def), Pending: &def}
		if err := s.Put(ctx, p); err != nil {
			t.Fatal(err)
		}
		got, _, err := s.Get(ctx, "evil", "add")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(p, got, cmpOpts...); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
		if got.Approved() || !got.ApprovedAt.IsZero() {
			t.Fatalf("never-approved pin reads as approved: %+v", got)
		}
	})

	t.Run("PutReplaces", func(t *testing.T) {
		s := newStore(t)
		first := Approved(Definition("shop", "get_order", 1), base)
		if err := s.Put(ctx, first); err != nil {
			t.Fatal(err)
		}
		second := Approved(Definition("shop", "get_order", 2), base.Add(time.Hour))
		second.FirstSeen = base
		if err := s.Put(ctx, second); err != nil {
			t.Fatal(err)
		}
		got, _, err := s.Get(ctx, "shop", "get_order")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(second, got, cmpOpts...); diff != "" {
			t.Fatalf("after replace (-want +got):\n%s", diff)
		}
		// Replacing a quarantined pin with an approved one clears Pending.
		q := second
		pending := Definition("shop", "get_order", 3)
		q.State, q.PendingDigest, q.Pending = pin.StateQuarantined, pin.Digest(pending), &pending
		if err := s.Put(ctx, q); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, second); err != nil {
			t.Fatal(err)
		}
		got, _, err = s.Get(ctx, "shop", "get_order")
		if err != nil || got.Pending != nil || got.PendingDigest != "" {
			t.Fatalf("pending survived a replace: %+v %v", got, err)
		}
	})

	t.Run("ListOrdered", func(t *testing.T) {
		s := newStore(t)
		refs := [][2]string{{"shop", "refund"}, {"db", "query"}, {"shop", "get_order"}, {"Shop", "z"}}
		for _, r := range refs {
			if err := s.Put(ctx, Approved(Definition(r[0], r[1], 1), base)); err != nil {
				t.Fatal(err)
			}
		}
		pins, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range pins {
			got = append(got, p.Ref())
		}
		want := []string{"Shop.z", "db.query", "shop.get_order", "shop.refund"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("List order (-want +got):\n%s", diff)
		}
		// Names are case-sensitive keys.
		if _, ok, _ := s.Get(ctx, "shop", "Get_Order"); ok {
			t.Fatal("Get matched a name case-insensitively")
		}
	})

	t.Run("RefusesInvalidPins", func(t *testing.T) {
		s := newStore(t)
		good := Approved(Definition("shop", "get_order", 1), base)
		pending := Definition("shop", "get_order", 2)
		other := Definition("evil", "get_order", 2)
		bad := map[string]func(p *pin.Pin){
			"empty upstream":       func(p *pin.Pin) { p.Upstream = "" },
			"empty name":           func(p *pin.Pin) { p.Name = "" },
			"unknown state":        func(p *pin.Pin) { p.State = "trusted" },
			"definition elsewhere": func(p *pin.Pin) { p.Definition.Upstream = "evil" },
			"pending elsewhere": func(p *pin.Pin) {
				p.State, p.PendingDigest, p.Pending = pin.StateQuarantined, pin.Digest(other), &other
			},
			"approved with pending":        func(p *pin.Pin) { p.PendingDigest, p.Pending = pin.Digest(pending), &pending },
			"quarantined, nothing pending": func(p *pin.Pin) { p.State = pin.StateQuarantined },
			"approved without digest":      func(p *pin.Pin) { p.Digest = "" },
			"pending without digest": func(p *pin.Pin) {
				p.State, p.Pending = pin.StateQuarantined, &pending
			},
		}
		for name, mutate := range bad {
			p := good
			mutate(&p)
			if err := s.Put(ctx, p); err == nil {
				t.Errorf("%s: Put accepted an invalid pin", name)
			}
		}
		if pins, err := s.List(ctx); err != nil || len(pins) != 0 {
			t.Fatalf("a refused Put left %d pins (%v)", len(pins), err)
		}
	})

	t.Run("ReturnsCopies", func(t *testing.T) {
		s := newStore(t)
		p := Approved(Definition("shop", "get_order", 1), base)
		p.Findings = []pin.Finding{{Kind: pin.KindMarkupTag, Severity: pin.SeverityHigh, Field: "description", Detail: "x"}}
		if err := s.Put(ctx, p); err != nil {
			t.Fatal(err)
		}
		p.Definition.InputSchema[0] = '['
		p.Findings[0].Detail = "changed by the caller"
		got, _, err := s.Get(ctx, "shop", "get_order")
		if err != nil {
			t.Fatal(err)
		}
		got.Definition.InputSchema[0] = '['
		got.Findings[0].Detail = "changed by the caller"
		again, _, err := s.Get(ctx, "shop", "get_order")
		if err != nil {
			t.Fatal(err)
		}
		if again.Definition.InputSchema[0] != '{' || again.Findings[0].Detail != "x" {
			t.Fatal("the store shares memory with its callers")
		}
	})

	t.Run("CanceledContext", func(t *testing.T) {
		s := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Put(cctx, Approved(Definition("shop", "get_order", 1), base)); err == nil {
			t.Error("Put with a canceled context succeeded")
		}
		if _, _, err := s.Get(cctx, "shop", "get_order"); err == nil {
			t.Error("Get with a canceled context succeeded")
		}
		if _, err := s.List(cctx); err == nil {
			t.Error("List with a canceled context succeeded")
		}
	})

	t.Run("ConcurrentPuts", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := range 16 {
			wg.Go(func() {
				errs <- s.Put(ctx, Approved(Definition("up", fmt.Sprintf("tool_%02d", i), i), base))
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		pins, err := s.List(ctx)
		if err != nil || len(pins) != 16 {
			t.Fatalf("List after concurrent puts = %d pins, %v", len(pins), err)
		}
	})
}
