package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"
)

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestTokenStoreResolvesOnlyForItsOwner(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	store, err := NewTokenStore(openTestDB(t), TokenOptions{TTL: time.Hour, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.PutToken(ctx, "tok_EMAIL_ADDRESS_A", "EMAIL_ADDRESS", "jane@example.com", "alice", "task-1"); err != nil {
		t.Fatalf("PutToken: %v", err)
	}
	cases := []struct {
		name, token, principal, task string
		want                         bool
	}{
		{"owner", "tok_EMAIL_ADDRESS_A", "alice", "task-1", true},
		{"other principal", "tok_EMAIL_ADDRESS_A", "mallory", "task-1", false},
		{"other task", "tok_EMAIL_ADDRESS_A", "alice", "task-2", false},
		{"no task", "tok_EMAIL_ADDRESS_A", "alice", "", false},
		{"unknown token", "tok_EMAIL_ADDRESS_B", "alice", "task-1", false},
		{"no principal", "tok_EMAIL_ADDRESS_A", "", "task-1", false},
	}
	for _, tc := range cases {
		v, ok, err := store.Resolve(ctx, tc.token, tc.principal, tc.task)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if ok != tc.want || ok && v != "jane@example.com" || !ok && v != "" {
			t.Errorf("%s: Resolve = %q, %v; want ok %v", tc.name, v, ok, tc.want)
		}
	}

	clock.t = clock.t.Add(time.Hour)
	if v, ok, err := store.Resolve(ctx, "tok_EMAIL_ADDRESS_A", "alice", "task-1"); err != nil || ok {
		t.Errorf("expired token resolved: %q %v %v", v, ok, err)
	}
	if n, err := store.DeleteExpired(ctx); err != nil || n != 1 {
		t.Errorf("DeleteExpired = %d, %v; want 1", n, err)
	}
}

func TestTokenStoreRefusesUnboundAndReusedTokens(t *testing.T) {
	ctx := context.Background()
	store, err := NewTokenStore(openTestDB(t), TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put("tok_X_1", "X", "v"); err == nil || !strings.Contains(err.Error(), "principal") {
		t.Errorf("unbound Put: %v, want an error", err)
	}
	if err := store.PutToken(ctx, "tok_X_1", "X", "v", "", "task-1"); err == nil || !strings.Contains(err.Error(), "principal") {
		t.Errorf("PutToken without a principal: %v, want an error", err)
	}
	if err := store.PutToken(ctx, "tok_X_1", "X", "v", "alice", ""); err != nil {
		t.Fatal(err)
	}
	if err := store.PutToken(ctx, "tok_X_1", "X", "other", "alice", ""); err == nil {
		t.Error("a token was recorded twice")
	}
	if v, ok, err := store.Resolve(ctx, "tok_X_1", "alice", ""); err != nil || !ok || v != "v" {
		t.Errorf("Resolve = %q %v %v; the first value must stay", v, ok, err)
	}
	if _, err := NewTokenStore(nil, TokenOptions{}); err == nil {
		t.Error("nil database accepted")
	}
	if _, err := NewTokenStore(openTestDB(t), TokenOptions{TTL: -time.Second}); err == nil {
		t.Error("negative TTL accepted")
	}
}
