package grant_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wardenmcp/warden/internal/grant"
	"github.com/wardenmcp/warden/internal/grant/granttest"
	"github.com/wardenmcp/warden/internal/policy"
)

var base = granttest.Base

func TestMemoryStore(t *testing.T) {
	granttest.StoreSuite(t, func(*testing.T) grant.Store { return grant.NewMemoryStore() })
}

func TestCheck(t *testing.T) {
	g := grant.Grant{ID: "g", Tools: []string{"shop.*", "db.query", "fs.*.read", "*_report"}}
	for _, tc := range []struct {
		tool string
		ok   bool
	}{
		{"shop.get_order", true},
		{"shop.", true},
		{"shop", false},
		{"db.query", true},
		{"db.query2", false},
		{"fs.home.read", true},
		{"fs.read", false},
		{"weekly_report", true},
		{"", false},
	} {
		err := grant.Check(g, tc.tool)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, grant.ErrNotCovered)) {
			t.Errorf("Check(%q) = %v, want covered=%v", tc.tool, err, tc.ok)
		}
	}
	if err := grant.Check(grant.Grant{}, "anything"); !errors.Is(err, grant.ErrNotCovered) {
		t.Errorf("a grant with no tools covered a tool: %v", err)
	}
}

func TestIssueRefusesBadSpecs(t *testing.T) {
	ok := grant.Spec{Principal: "alice", Tools: []string{"t"}, ExpiresAt: base.Add(time.Hour)}
	for _, tc := range []struct {
		name string
		edit func(*grant.Spec)
	}{
		{"no principal", func(s *grant.Spec) { s.Principal = "" }},
		{"no expiry", func(s *grant.Spec) { s.ExpiresAt = time.Time{} }},
		{"expiry now", func(s *grant.Spec) { s.ExpiresAt = base }},
		{"expiry too far", func(s *grant.Spec) { s.ExpiresAt = base.Add(grant.MaxLifetime + time.Second) }},
		{"negative budget", func(s *grant.Spec) { s.Budget = -1 }},
		{"negative rate", func(s *grant.Spec) { s.Rate = -1 }},
		{"rate too high", func(s *grant.Spec) { s.Rate = grant.MaxRate + 1 }},
		{"empty tool", func(s *grant.Spec) { s.Tools = []string{""} }},
		{"control character in tool", func(s *grant.Spec) { s.Tools = []string{"a\nb"} }},
		{"invalid UTF-8 label", func(s *grant.Spec) { s.Labels = []string{"\xff"} }},
		{"empty scope key", func(s *grant.Spec) { s.Scope = map[string]string{"": "x"} }},
		{"long scope value", func(s *grant.Spec) { s.Scope = map[string]string{"k": strings.Repeat("x", grant.MaxScopeValue+1)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			tc.edit(&s)
			if _, _, err := grant.Issue(s, base); !errors.Is(err, grant.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
	if _, _, err := grant.Issue(ok, base); err != nil {
		t.Fatalf("the valid spec was refused: %v", err)
	}
}

func TestTokens(t *testing.T) {
	g, token, err := grant.Issue(grant.Spec{Principal: "alice", ExpiresAt: base.Add(time.Hour)}, base)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(g.SecretHash, strings.SplitN(token, ".", 2)[1]) {
		t.Fatal("the grant holds the secret itself")
	}
	id, secret, err := grant.ParseToken(token)
	if err != nil || id != g.ID {
		t.Fatalf("ParseToken = %q, %v; want id %q", id, err, g.ID)
	}
	if err := grant.VerifySecret(g, secret); err != nil {
		t.Fatalf("own secret refused: %v", err)
	}
	_, other, _ := grant.Issue(grant.Spec{Principal: "alice", ExpiresAt: base.Add(time.Hour)}, base)
	_, otherSecret, _ := grant.ParseToken(other)
	if err := grant.VerifySecret(g, otherSecret); !errors.Is(err, grant.ErrUnknown) {
		t.Fatalf("another grant's secret accepted: %v", err)
	}
	for _, bad := range []string{
		"", "wg_", token[3:], "wg_" + g.ID, "wg_" + g.ID + ".", "wg_" + strings.ToUpper(g.ID) + "." + secret,
		"wg_" + g.ID + "." + secret + "x", "wg_" + g.ID[:31] + "z." + secret, "Bearer " + token,
	} {
		if _, _, err := grant.ParseToken(bad); !errors.Is(err, grant.ErrUnknown) {
			t.Errorf("ParseToken(%q) = %v, want ErrUnknown", bad, err)
		}
	}
}

func TestDeriveCannotWiden(t *testing.T) {
	parent, _, err := grant.Issue(grant.Spec{
		Principal: "alice",
		Tools:     []string{"shop.*", "db.query"},
		Scope:     map[string]string{"order_id": "12345"},
		Budget:    10,
		Rate:      60,
		ExpiresAt: base.Add(time.Hour),
		Labels:    []string{"customer"},
	}, base)
	if err != nil {
		t.Fatal(err)
	}
	parent.Used = 4 // six calls left
	for _, tc := range []struct {
		name    string
		spec    grant.Spec
		wantErr error
	}{
		{"other principal", grant.Spec{Principal: "bob"}, grant.ErrWider},
		{"tool outside the parent", grant.Spec{Tools: []string{"fs.read"}}, grant.ErrWider},
		{"wider glob", grant.Spec{Tools: []string{"*"}}, grant.ErrWider},
		{"glob not literally the parent's", grant.Spec{Tools: []string{"shop.get_*"}}, grant.ErrWider},
		{"glob reaching past the parent's", grant.Spec{Tools: []string{"db.*"}}, grant.ErrWider},
		{"changed scope value", grant.Spec{Scope: map[string]string{"order_id": "99999"}}, grant.ErrWider},
		{"budget over the remaining", grant.Spec{Budget: 7}, grant.ErrWider},
		{"faster rate", grant.Spec{Rate: 61}, grant.ErrWider},
		{"later expiry", grant.Spec{ExpiresAt: base.Add(time.Hour + time.Nanosecond)}, grant.ErrWider},
		{"negative budget", grant.Spec{Budget: -1}, grant.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := grant.Derive(parent, tc.spec, base); !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}

	t.Run("narrower in every dimension", func(t *testing.T) {
		child, token, err := grant.Derive(parent, grant.Spec{
			Tools:     []string{"shop.get_order", "db.query"},
			Scope:     map[string]string{"order_id": "12345", "line": "2"},
			Budget:    6,
			Rate:      10,
			ExpiresAt: base.Add(time.Minute),
			Labels:    []string{"subtask"},
		}, base)
		if err != nil {
			t.Fatal(err)
		}
		if token == "" || child.ID == parent.ID || child.SecretHash == parent.SecretHash {
			t.Fatal("the derived grant has no identity of its own")
		}
		want := grant.Grant{
			ID: child.ID, Principal: "alice", Tools: []string{"db.query", "shop.get_order"},
			Scope:  map[string]string{"order_id": "12345", "line": "2"},
			Budget: 6, Rate: 10, ExpiresAt: grant.Timestamp(base.Add(time.Minute)), CreatedAt: grant.Timestamp(base),
			Parent: parent.ID, Depth: 1, Labels: []string{"customer", "subtask"}, SecretHash: child.SecretHash,
		}
		if diff := cmp.Diff(want, child); diff != "" {
			t.Errorf("derived grant (-want +got):\n%s", diff)
		}
	})

	t.Run("zero fields inherit", func(t *testing.T) {
		child, _, err := grant.Derive(parent, grant.Spec{}, base)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(parent.Tools, child.Tools); diff != "" {
			t.Errorf("tools (-parent +child):\n%s", diff)
		}
		if child.Budget != 6 || child.Rate != 60 || !child.ExpiresAt.Equal(parent.ExpiresAt) || child.Scope["order_id"] != "12345" {
			t.Errorf("child = budget %d rate %d expiry %v scope %v", child.Budget, child.Rate, child.ExpiresAt, child.Scope)
		}
		none, _, err := grant.Derive(parent, grant.Spec{Tools: []string{}}, base)
		if err != nil || len(none.Tools) != 0 {
			t.Errorf("an explicit empty tool list: tools %v, %v; want none", none.Tools, err)
		}
	})

	t.Run("inactive parents derive nothing", func(t *testing.T) {
		revoked := parent
		revoked.RevokedAt = base
		spent := parent
		spent.Used = 10
		for _, tc := range []struct {
			parent grant.Grant
			now    time.Time
			want   error
		}{
			{revoked, base, grant.ErrRevoked},
			{spent, base, grant.ErrBudget},
			{parent, base.Add(time.Hour), grant.ErrExpired},
		} {
			if _, _, err := grant.Derive(tc.parent, grant.Spec{}, tc.now); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		}
	})

	t.Run("depth is bounded", func(t *testing.T) {
		g := parent
		for i := range grant.MaxDepth {
			var err error
			if g, _, err = grant.Derive(g, grant.Spec{}, base); err != nil {
				t.Fatalf("derivation %d: %v", i+1, err)
			}
		}
		if _, _, err := grant.Derive(g, grant.Spec{}, base); !errors.Is(err, grant.ErrInvalid) {
			t.Fatalf("derivation past MaxDepth: err = %v", err)
		}
	})
}

func TestResolver(t *testing.T) {
	ctx := context.Background()
	store := grant.NewMemoryStore()
	g, token := granttest.Issue(t, grant.Spec{
		Principal: "alice", Tools: []string{"shop.*"}, Scope: map[string]string{"order_id": "12345"},
		Budget: 2, Labels: []string{"customer"},
	})
	if err := store.Create(ctx, g); err != nil {
		t.Fatal(err)
	}
	r := grant.NewResolver(store)

	task, err := r.Resolve(ctx, token, "alice", "shop.get_order", base)
	if err != nil {
		t.Fatal(err)
	}
	want := policy.Task{
		ID: g.ID, Scope: map[string]any{"order_id": "12345"}, Labels: []string{"customer"},
		Counters: map[string]int64{"calls": 1},
	}
	if diff := cmp.Diff(want, task); diff != "" {
		t.Errorf("task (-want +got):\n%s", diff)
	}

	_, otherToken := granttest.Issue(t, grant.Spec{Principal: "alice", Tools: []string{"*"}})
	id, _, _ := grant.ParseToken(token)
	_, otherSecret, _ := grant.ParseToken(otherToken)
	for _, tc := range []struct {
		name, token, principal, tool string
		want                         error
	}{
		{"not a token", "hello", "alice", "shop.get_order", grant.ErrUnknown},
		{"unknown grant", otherToken, "alice", "shop.get_order", grant.ErrUnknown},
		{"wrong secret", "wg_" + id + "." + otherSecret, "alice", "shop.get_order", grant.ErrUnknown},
		{"another principal", token, "bob", "shop.get_order", grant.ErrUnknown},
		{"tool not covered", token, "alice", "db.query", grant.ErrNotCovered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Resolve(ctx, tc.token, tc.principal, tc.tool, base)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if msg := grant.CallerMessage(err); msg != tc.want.Error() {
				t.Errorf("caller message %q, want %q", msg, tc.want.Error())
			}
		})
	}
	// None of the refusals spent budget: one more call is allowed, then none.
	if _, err := r.Resolve(ctx, token, "alice", "shop.refund_order", base); err != nil {
		t.Fatalf("second call: %v", err)
	}
	if _, err := r.Resolve(ctx, token, "alice", "shop.get_order", base); !errors.Is(err, grant.ErrBudget) {
		t.Fatalf("third call: err = %v, want ErrBudget", err)
	}
	if msg := grant.CallerMessage(errors.New("database is locked")); strings.Contains(msg, "locked") {
		t.Errorf("CallerMessage leaked an internal error: %q", msg)
	}
}
