package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenmcp/warden/internal/store/sqlite"
)

func TestPurgeTokensDeletesOnlyExpiredTokens(t *testing.T) {
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "warden.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	tokens, err := sqlite.NewTokenStore(db, sqlite.TokenOptions{TTL: time.Hour, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := tokens.PutToken(ctx, "tok_EMAIL_1", "EMAIL_ADDRESS", "old@example.com", "alice", ""); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(2 * time.Hour) // the first token has expired
	mu.Unlock()
	if err := tokens.PutToken(ctx, "tok_EMAIL_2", "EMAIL_ADDRESS", "new@example.com", "alice", ""); err != nil {
		t.Fatal(err)
	}

	var logs lockedBuffer
	rt := &runtime{tokens: tokens, logger: slog.New(slog.NewTextHandler(&logs, nil))}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); rt.purgeTokens(pctx, time.Hour) }()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "count=1"); {
		if time.Now().After(deadline) {
			t.Fatalf("no purge logged: %q", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if n, err := tokens.DeleteExpired(ctx); err != nil || n != 0 {
		t.Errorf("DeleteExpired after the purge = %d, %v; want nothing left to delete", n, err)
	}
	if v, ok, err := tokens.Resolve(ctx, "tok_EMAIL_2", "alice", ""); err != nil || !ok || v != "new@example.com" {
		t.Errorf("the live token resolves to %q, %v, %v; want it kept", v, ok, err)
	}
}
