package sqlite

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardenmcp/warden/internal/grant"
	"github.com/wardenmcp/warden/internal/grant/granttest"
)

func TestGrantStore(t *testing.T) {
	granttest.StoreSuite(t, func(t *testing.T) grant.Store { return openTestDB(t).Grants() })
}

// Used counts, revocation and the rate limiter's state are in the file: a
// restarted Warden neither forgets spent calls nor grants a fresh burst.
func TestGrantsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	path := filepath.Join(t.TempDir(), "warden.db")
	base := granttest.Base

	db, err := Open(path, logger)
	if err != nil {
		t.Fatal(err)
	}
	rated, _ := granttest.Issue(t, grant.Spec{Principal: "alice", Tools: []string{"t"}, Rate: 2, Budget: 3})
	revoked, _ := granttest.Issue(t, grant.Spec{Principal: "alice", Tools: []string{"t"}})
	for _, g := range []grant.Grant{rated, revoked} {
		if err := db.Grants().Create(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if _, err := db.Grants().Consume(ctx, rated.ID, base); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Grants().Revoke(ctx, revoked.ID, base); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = Open(path, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := db.Grants()
	if _, err := s.Consume(ctx, rated.ID, base.Add(time.Second)); !errors.Is(err, grant.ErrRate) {
		t.Fatalf("after restart the burst was spent already: err = %v, want ErrRate", err)
	}
	if _, err := s.Consume(ctx, revoked.ID, base); !errors.Is(err, grant.ErrRevoked) {
		t.Fatalf("after restart: err = %v, want ErrRevoked", err)
	}
	g, err := s.Consume(ctx, rated.ID, base.Add(30*time.Second))
	if err != nil || g.Used != 3 {
		t.Fatalf("after restart: Used = %d (%v), want 3", g.Used, err)
	}
	if _, err := s.Consume(ctx, rated.ID, base.Add(time.Hour-time.Second)); !errors.Is(err, grant.ErrBudget) {
		t.Fatalf("after restart: err = %v, want ErrBudget", err)
	}
	got, err := s.Get(ctx, rated.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.SecretHash != rated.SecretHash || got.RateTAT.IsZero() {
		t.Errorf("stored grant lost its secret digest or rate state: %+v", got)
	}
}

// BenchmarkGrantResolve is one call's grant work on the SQLite store: a
// read, then a durable (fsynced) transaction charging the call.
func BenchmarkGrantResolve(b *testing.B) {
	ctx := context.Background()
	db, err := Open(filepath.Join(b.TempDir(), "warden.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	g, token := granttest.Issue(b, grant.Spec{Principal: "alice", Tools: []string{"shop.*"}})
	if err := db.Grants().Create(ctx, g); err != nil {
		b.Fatal(err)
	}
	r := grant.NewResolver(db.Grants())
	now := granttest.Base.Add(time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Resolve(ctx, token, "alice", "shop.get_order", now); err != nil {
			b.Fatal(err)
		}
	}
}
