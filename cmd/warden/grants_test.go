package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wardenmcp/warden/internal/admin"
	"github.com/wardenmcp/warden/internal/grant"
	"github.com/wardenmcp/warden/internal/identity"
)

// newGrantsAdmin starts an admin API on loopback and returns a client for
// it with the given key.
func newGrantsAdmin(t *testing.T, key string) (*adminClient, *grant.MemoryStore) {
	t.Helper()
	store := grant.NewMemoryStore()
	h, err := admin.New(admin.Config{Keys: []admin.Key{{ID: "ops", Hash: identity.HashAPIKey("admin-key")}}}, admin.Options{
		Grants: store,
		Audit:  func(context.Context, admin.Event) error { return nil },
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	env := map[string]string{"WARDEN_ADMIN_KEY": key}
	c, err := newAdminClient(&adminFlags{adminURL: srv.URL, keyEnv: "WARDEN_ADMIN_KEY", format: "text"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return c, store
}

func TestGrantsCreateListRevoke(t *testing.T) {
	ctx := context.Background()
	c, store := newGrantsAdmin(t, "admin-key")
	scope, err := parseScope([]string{"order_id=12345"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	req := admin.GrantRequest{Principal: "alice", Tools: []string{"shop.get_order", "shop.refund_order"}, Scope: scope, Budget: 100, Rate: 60, TTL: "1h"}
	if err := runGrantsCreate(ctx, &out, c, req, "json"); err != nil {
		t.Fatal(err)
	}
	var created admin.GrantResponse
	if err := json.Unmarshal(out.Bytes(), &created); err != nil {
		t.Fatalf("%v in %s", err, out.Bytes())
	}
	stored, err := store.Get(ctx, created.Grant.ID)
	if err != nil || stored.Scope["order_id"] != "12345" || stored.Budget != 100 || stored.Rate != 60 || len(stored.Tools) != 2 {
		t.Fatalf("stored %+v (%v)", stored, err)
	}
	if _, err := grant.NewResolver(store).Resolve(ctx, created.Token, "alice", "shop.get_order", time.Now()); err != nil {
		t.Fatalf("the printed token does not resolve: %v", err)
	}

	out.Reset()
	if err := runGrantsCreate(ctx, &out, c, admin.GrantRequest{Principal: "bob", Tools: []string{"db.query"}, TTL: "30m"}, "text"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "token: wg_") {
		t.Errorf("text output lacks the token:\n%s", out.String())
	}

	out.Reset()
	if err := runGrantsList(ctx, &out, c, "alice", 10, "text"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], created.Grant.ID) || !strings.Contains(lines[1], "active") || strings.Contains(out.String(), "bob") {
		t.Fatalf("list alice:\n%s", out.String())
	}

	out.Reset()
	if err := runGrantsRevoke(ctx, &out, c, created.Grant.ID, "text"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "revoked") {
		t.Errorf("revoke output: %s", out.String())
	}
	out.Reset()
	if err := runGrantsList(ctx, &out, c, "", 10, "json"); err != nil {
		t.Fatal(err)
	}
	var list admin.ListResponse
	if err := json.Unmarshal(out.Bytes(), &list); err != nil || len(list.Grants) != 2 || list.Grants[0].RevokedAt.IsZero() {
		t.Fatalf("list after revoke: %+v (%v)", list, err)
	}
}

func TestGrantsRefusals(t *testing.T) {
	ctx := context.Background()
	var out bytes.Buffer
	code := func(err error) int {
		var ee *exitError
		if !errors.As(err, &ee) {
			t.Fatalf("err %v is not an exit error", err)
		}
		return ee.code
	}

	bad, _ := newGrantsAdmin(t, "not-the-admin-key")
	err := runGrantsList(ctx, &out, bad, "", 10, "text")
	if err == nil || code(err) != exitFailure || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong key: %v", err)
	}

	c, _ := newGrantsAdmin(t, "admin-key")
	if err := runGrantsRevoke(ctx, &out, c, "0123456789abcdef0123456789abcdef", "text"); err == nil || code(err) != exitFailure {
		t.Fatalf("revoke unknown: %v", err)
	}
	if err := runGrantsRevoke(ctx, &out, c, "../status", "text"); err == nil || code(err) != exitUsage {
		t.Fatalf("revoke a path: %v", err)
	}
	if err := runGrantsCreate(ctx, &out, c, admin.GrantRequest{Principal: "alice", Tools: []string{"t"}, TTL: "forever"}, "text"); err == nil || code(err) != exitFailure || !strings.Contains(err.Error(), "ttl") {
		t.Fatalf("bad ttl: %v", err)
	}
	if _, err := parseScope([]string{"order_id"}); err == nil {
		t.Error("a scope entry without = was accepted")
	}
	if _, err := parseScope([]string{"a=1", "a=2"}); err == nil {
		t.Error("a scope key given twice was accepted")
	}
	for _, f := range []adminFlags{
		{adminURL: "127.0.0.1:8081", keyEnv: "K", format: "text"},
		{adminURL: "http://127.0.0.1:8081", keyEnv: "UNSET", format: "text"},
		{adminURL: "http://127.0.0.1:8081", keyEnv: "K", format: "yaml"},
	} {
		if _, err := newAdminClient(&f, func(k string) string { return map[string]string{"K": "key"}[k] }); err == nil || code(err) != exitUsage {
			t.Errorf("flags %+v: err = %v", f, err)
		}
	}
}

func TestGrantsCommandReadsTheKeyFromTheEnvironment(t *testing.T) {
	c, store := newGrantsAdmin(t, "admin-key")
	t.Setenv("MY_ADMIN_KEY", "admin-key")
	cmd := newGrantsCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--admin", c.base.String(), "--key-env", "MY_ADMIN_KEY", "create",
		"--principal", "alice", "--tools", "shop.get_order,db.query", "--scope", "order_id=12345", "--budget", "5", "--ttl", "10m"})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	gs, err := store.List(context.Background(), grant.ListFilter{})
	if err != nil || len(gs) != 1 || gs[0].Budget != 5 || gs[0].Scope["order_id"] != "12345" || len(gs[0].Tools) != 2 {
		t.Fatalf("grants %+v (%v)", gs, err)
	}
	if !strings.Contains(out.String(), gs[0].ID) {
		t.Errorf("output does not name the grant:\n%s", out.String())
	}
}
