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

	"github.com/wardenmcp/warden/internal/admin"
	"github.com/wardenmcp/warden/internal/approval"
	"github.com/wardenmcp/warden/internal/grant"
	"github.com/wardenmcp/warden/internal/identity"
)

func TestApprovalsListShowDecide(t *testing.T) {
	ctx := context.Background()
	broker, err := approval.NewBroker(approval.NewMemoryStore(), approval.BrokerOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	h, err := admin.New(admin.Config{Keys: []admin.Key{{ID: "ops", Hash: identity.HashAPIKey("admin-key")}}}, admin.Options{
		Grants:    grant.NewMemoryStore(),
		Audit:     func(context.Context, admin.Event) error { return nil },
		Logger:    slog.New(slog.DiscardHandler),
		Approvals: broker,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := newAdminClient(&adminFlags{adminURL: srv.URL, keyEnv: "K", format: "text"}, func(string) string { return "admin-key" })
	if err != nil {
		t.Fatal(err)
	}
	call := approval.Call{Principal: "alice", Tool: "shop.refund_order", Args: json.RawMessage(`{"amount":250}`),
		ArgsDigest: "d1", PolicyVersion: "v7", Reason: "big\nrefund"}
	a, err := broker.Escalate(ctx, call)
	if err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := runApprovalsList(ctx, &out, c, "pending", "", 10, "text"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), a.ID) || !strings.Contains(out.String(), "big refund") {
		t.Fatalf("list:\n%s", out.String())
	}
	out.Reset()
	if err := runApprovalsShow(ctx, &out, c, a.ID, "text"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"amount": 250`) || !strings.Contains(out.String(), "pending") {
		t.Fatalf("show:\n%s", out.String())
	}
	out.Reset()
	if err := runApprovalsDecide(ctx, &out, c, a.ID, true, "ok", "json"); err != nil {
		t.Fatal(err)
	}
	var resp admin.ApprovalResponse
	if err := json.Unmarshal(out.Bytes(), &resp); err != nil || resp.Approval.State != approval.StateApproved || resp.Approval.Comment != "ok" {
		t.Fatalf("approve: %+v, %v", resp, err)
	}
	var exit *exitError
	if err := runApprovalsDecide(ctx, &out, c, a.ID, false, "", "text"); !errors.As(err, &exit) || exit.code != exitFailure {
		t.Fatalf("deciding twice: %v, want exit %d", err, exitFailure)
	}
	if err := runApprovalsShow(ctx, &out, c, "../grants", "text"); !errors.As(err, &exit) || exit.code != exitUsage {
		t.Fatalf("bad id: %v, want exit %d", err, exitUsage)
	}
	if err := runApprovalsList(ctx, &out, c, "maybe", "", 10, "text"); !errors.As(err, &exit) || exit.code != exitUsage {
		t.Fatalf("bad state: %v, want exit %d", err, exitUsage)
	}
	if used, err := broker.Escalate(ctx, call); err != nil || used.State != approval.StateUsed {
		t.Fatalf("the call after CLI approval: %s, %v", used.State, err)
	}
}
