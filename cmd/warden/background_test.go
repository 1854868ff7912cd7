package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenmcp/warden/internal/config"
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

// TestStartServesTheAdminAPI covers what serve and stdio share: with
// admin_listen set, start serves the admin API until stop.
func TestStartServesTheAdminAPI(t *testing.T) {
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "warden.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tokens, err := sqlite.NewTokenStore(db, sqlite.TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	rt := &runtime{
		cfg:    &config.Config{AdminListen: "127.0.0.1:0"},
		admin:  http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "admin") }),
		tokens: tokens,
		logger: slog.New(slog.NewTextHandler(&logs, nil)),
	}
	stop, err := rt.start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_, url, ok := strings.Cut(logs.String(), "url=")
	url, _, _ = strings.Cut(url, "\n")
	if !ok {
		stop()
		t.Fatalf("no admin URL logged: %q", logs.String())
	}
	resp, err := http.Get(url)
	if err != nil {
		stop()
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "admin" {
		t.Errorf("admin API answered %q", body)
	}
	stop()
	if _, err := http.Get(url); err == nil {
		t.Error("the admin API still answers after stop")
	}
}
