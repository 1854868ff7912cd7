package sqlite

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenmcp/warden/internal/pin"
	"github.com/wardenmcp/warden/internal/pin/pintest"
)

func TestPinStoreSuite(t *testing.T) {
	pintest.StoreSuite(t, func(t *testing.T) pin.Store { return openTestDB(t).Pins() })
}

func TestPinStoreRefusesCorruptRow(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	// A row changed behind Warden's back: quarantined with nothing pending.
	if _, err := db.sql.ExecContext(ctx, `INSERT INTO tool_pins (upstream, name, state, digest) VALUES ('shop', 'get_order', 'quarantined', 'sha256:00')`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Pins().Get(ctx, "shop", "get_order"); err == nil {
		t.Fatal("Get returned an invalid stored pin")
	}
	if _, err := db.Pins().List(ctx); err == nil {
		t.Fatal("List returned an invalid stored pin")
	}
	// The table's own check refuses unknown states.
	if _, err := db.sql.ExecContext(ctx, `INSERT INTO tool_pins (upstream, name, state) VALUES ('a', 'b', 'trusted')`); err == nil {
		t.Fatal("tool_pins accepted an unknown state")
	}
}

// TestPinnerOverSQLite runs a pin's life through a database file closed and
// reopened between steps, as the gateway and the approve command share it.
func TestPinnerOverSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "warden.db")
	logger := slog.New(slog.DiscardHandler)
	step := func(f func(p *pin.Pinner, s pin.Store)) {
		t.Helper()
		db, err := Open(path, logger)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		p, err := pin.NewPinner(db.Pins(), pin.Options{})
		if err != nil {
			t.Fatal(err)
		}
		f(p, db.Pins())
	}
	v1, v2 := pintest.Definition("shop", "get_order", 1), pintest.Definition("shop", "get_order", 2)
	// Reformatting the schema keeps the digest after a round trip.
	v1b := v1
	v1b.InputSchema = json.RawMessage("{\n \"required\": [\"order_id\"], \"type\": \"object\",\n \"properties\": {\"order_id\": {\"minimum\": 1, \"type\": \"integer\"}}}")
	step(func(p *pin.Pinner, _ pin.Store) {
		if v, err := p.Check(ctx, []pin.Definition{v1}); err != nil || !v[0].Allowed {
			t.Fatalf("first sight: %+v %v", v, err)
		}
	})
	step(func(p *pin.Pinner, _ pin.Store) {
		if v, err := p.Check(ctx, []pin.Definition{v1b}); err != nil || !v[0].Allowed || v[0].Change != pin.ChangeUnchanged {
			t.Fatalf("reformatted listing: %+v %v", v, err)
		}
		if v, err := p.Check(ctx, []pin.Definition{v2}); err != nil || v[0].Allowed || v[0].State != pin.StateQuarantined {
			t.Fatalf("changed listing: %+v %v", v, err)
		}
	})
	step(func(p *pin.Pinner, s pin.Store) {
		got, _, err := s.Get(ctx, "shop", "get_order")
		if err != nil || got.Pending == nil || !strings.Contains(pin.Diff(got), "@@ inputSchema @@") {
			t.Fatalf("stored pin %+v (%v)", got, err)
		}
		if _, err := p.Approve(ctx, "shop", "get_order", pin.Digest(v2)); err != nil {
			t.Fatal(err)
		}
	})
	step(func(p *pin.Pinner, _ pin.Store) {
		if v, err := p.Check(ctx, []pin.Definition{v2}); err != nil || !v[0].Allowed {
			t.Fatalf("after approval: %+v %v", v, err)
		}
	})
}

// BenchmarkPinnerCheckUnchanged100 is a catalog rebuild of 100 unchanged
// tools against the database file.
func BenchmarkPinnerCheckUnchanged100(b *testing.B) {
	ctx := context.Background()
	db, err := Open(filepath.Join(b.TempDir(), "warden.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	p, err := pin.NewPinner(db.Pins(), pin.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defs := make([]pin.Definition, 100)
	for i := range defs {
		defs[i] = pintest.Definition("up", "tool_"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26)), i)
	}
	if _, err := p.Check(ctx, defs); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := p.Check(ctx, defs); err != nil {
			b.Fatal(err)
		}
	}
}
