package approval_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenmcp/warden/internal/approval"
	"github.com/wardenmcp/warden/internal/approval/approvaltest"
)

// clock is a settable clock for the broker.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newBroker(t *testing.T, rules ...approval.RuleConfig) (*approval.Broker, *clock) {
	t.Helper()
	compiled, err := approval.CompileRules(rules)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: approvaltest.Base}
	b, err := approval.NewBroker(approval.NewMemoryStore(), approval.BrokerOptions{
		Expiry: time.Hour,
		Rules:  compiled,
		Logger: slog.New(slog.DiscardHandler),
		Now:    clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b, clk
}

func refund(amount string) approval.Call {
	return approval.Call{
		Principal:     "alice",
		Task:          "g_task1",
		Tool:          "shop.refund_order",
		Upstream:      "shop",
		Args:          json.RawMessage(`{"order_id":"12345","amount":` + amount + `}`),
		ArgsDigest:    "sha256:" + amount,
		PolicyVersion: "v7",
		Rules:         []string{"large-refunds-need-a-lead"},
		Reason:        "refunds over 100 need a lead",
		Approvers:     []string{"role:support-lead"},
	}
}

func escalate(t *testing.T, b *approval.Broker, c approval.Call) approval.Request {
	t.Helper()
	r, err := b.Escalate(context.Background(), c)
	if err != nil {
		t.Fatalf("escalate: %v", err)
	}
	return r
}

func TestEscalateBindsTheExactCall(t *testing.T) {
	ctx := context.Background()
	b, _ := newBroker(t)
	call := refund("250")
	first := escalate(t, b, call)
	if first.State != approval.StatePending || !strings.HasPrefix(first.ID, "apr_") {
		t.Fatalf("first escalation = %+v, want a pending request", first)
	}
	if again := escalate(t, b, call); again.ID != first.ID || again.State != approval.StatePending {
		t.Fatalf("the same call made another request: %s, want %s reused", again.ID, first.ID)
	}
	if _, err := b.Decide(ctx, first.ID, true, "ops", "ok"); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*approval.Call){
		"other arguments": func(c *approval.Call) { c.ArgsDigest = "sha256:999" },
		"other principal": func(c *approval.Call) { c.Principal = "mallory" },
		"other task":      func(c *approval.Call) { c.Task = "g_task2" },
		"other policy":    func(c *approval.Call) { c.PolicyVersion = "v8" },
	} {
		c := call
		change(&c)
		r := escalate(t, b, c)
		if r.ID == first.ID || r.State != approval.StatePending {
			t.Errorf("%s: got %s in state %s, want a new pending request", name, r.ID, r.State)
		}
	}
	used := escalate(t, b, call)
	if used.ID != first.ID || used.State != approval.StateUsed {
		t.Fatalf("retry after approval = %s %s, want %s used", used.ID, used.State, first.ID)
	}
	// A second execution needs a new approval.
	second := escalate(t, b, call)
	if second.ID == first.ID || second.State != approval.StatePending {
		t.Fatalf("second execution = %s %s, want a new pending request", second.ID, second.State)
	}
}

func TestEscalateRefusesIncompleteCall(t *testing.T) {
	b, _ := newBroker(t)
	c := refund("1")
	c.ArgsDigest = ""
	if _, err := b.Escalate(context.Background(), c); !errors.Is(err, approval.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}

func TestExpiry(t *testing.T) {
	ctx := context.Background()
	b, clk := newBroker(t)
	call := refund("250")
	r := escalate(t, b, call)
	clk.Advance(time.Hour)
	got, err := b.Get(ctx, r.ID)
	if err != nil || got.State != approval.StateExpired {
		t.Fatalf("after expiry: %s, %v; want expired", got.State, err)
	}
	if _, err := b.Decide(ctx, r.ID, true, "ops", ""); !errors.Is(err, approval.ErrNotPending) {
		t.Fatalf("deciding an expired request: err = %v, want ErrNotPending", err)
	}
	if again := escalate(t, b, call); again.ID == r.ID || again.State != approval.StatePending {
		t.Fatalf("after expiry the call got %s %s, want a new pending request", again.ID, again.State)
	}

	// An approval not used before its expiry does not let the call through.
	approved := escalate(t, b, refund("300"))
	if _, err := b.Decide(ctx, approved.ID, true, "ops", ""); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	if late := escalate(t, b, refund("300")); late.State != approval.StatePending || late.ID == approved.ID {
		t.Fatalf("expired approval was used: %s %s", late.ID, late.State)
	}
}

func TestAutomatedRules(t *testing.T) {
	b, _ := newBroker(t,
		approval.RuleConfig{ID: "small-refunds", When: `request.tool == "shop.refund_order" && double(request.args.amount) <= 5000.0`, Effect: "approve"},
		approval.RuleConfig{ID: "huge-refunds", When: `request.args.amount > 9000`, Effect: "deny"},
		approval.RuleConfig{ID: "broken", When: `request.args.missing.deeper == 1`, Effect: "approve"},
	)
	small := escalate(t, b, refund("250"))
	if small.State != approval.StateUsed || small.DecidedBy != "rule:small-refunds" {
		t.Fatalf("small refund = %s by %q, want used by rule:small-refunds", small.State, small.DecidedBy)
	}
	huge := escalate(t, b, refund("9500"))
	if huge.State != approval.StateDenied || huge.DecidedBy != "rule:huge-refunds" {
		t.Fatalf("huge refund = %s by %q, want denied by rule:huge-refunds", huge.State, huge.DecidedBy)
	}
	// 6000 matches neither; the broken rule errors and must not approve.
	middle := escalate(t, b, refund("6000"))
	if middle.State != approval.StatePending || middle.DecidedBy != "" {
		t.Fatalf("middle refund = %s by %q, want pending for a human", middle.State, middle.DecidedBy)
	}
	// The automatic approval covered one execution.
	if again := escalate(t, b, refund("250")); again.ID == small.ID {
		t.Fatalf("automatic approval %s used twice", small.ID)
	}
}

func TestCompileRulesRefusesBadRules(t *testing.T) {
	for name, rc := range map[string]approval.RuleConfig{
		"syntax":   {ID: "r", When: `request.tool ==`, Effect: "approve"},
		"not bool": {ID: "r", When: `"yes"`, Effect: "approve"},
		"effect":   {ID: "r", When: `true`, Effect: "allow"},
		"unknown":  {ID: "r", When: `principal.id == "x"`, Effect: "deny"},
	} {
		if _, err := approval.CompileRules([]approval.RuleConfig{rc}); err == nil {
			t.Errorf("%s: compiled", name)
		}
	}
}

func TestWaitWakesOnDecide(t *testing.T) {
	ctx := context.Background()
	b, _ := newBroker(t)
	r := escalate(t, b, refund("250"))
	type result struct {
		r   approval.Request
		err error
	}
	done := make(chan result, 2)
	for range 2 {
		go func() {
			got, err := b.Wait(ctx, r.ID)
			done <- result{got, err}
		}()
	}
	if _, err := b.Decide(ctx, r.ID, true, "ops", "go ahead"); err != nil {
		t.Fatal(err)
	}
	// Two calls wait on one request; one approval lets exactly one
	// proceed.
	var used, refused int
	for range 2 {
		res := <-done
		switch {
		case res.err == nil && res.r.State == approval.StateUsed:
			used++
		case errors.Is(res.err, approval.ErrNotUsable):
			refused++
		default:
			t.Errorf("wait = %+v, %v", res.r, res.err)
		}
	}
	if used != 1 || refused != 1 {
		t.Fatalf("%d waits proceeded and %d were refused; want 1 and 1", used, refused)
	}
	if again := escalate(t, b, refund("250")); again.ID == r.ID {
		t.Fatal("a retry reused the approval the held call consumed")
	}
}

func TestWaitReportsDenialAndHoldEnd(t *testing.T) {
	ctx := context.Background()
	b, _ := newBroker(t)
	denied := escalate(t, b, refund("250"))
	done := make(chan approval.Request, 1)
	go func() {
		got, err := b.Wait(ctx, denied.ID)
		if err != nil {
			t.Errorf("wait: %v", err)
		}
		done <- got
	}()
	if _, err := b.Decide(ctx, denied.ID, false, "lead", "no"); err != nil {
		t.Fatal(err)
	}
	if got := <-done; got.State != approval.StateDenied || got.Comment != "no" {
		t.Fatalf("wait = %s %q, want denied", got.State, got.Comment)
	}

	pending := escalate(t, b, refund("300"))
	held, cancel := context.WithCancel(ctx)
	cancel() // the hold is over before anyone decides
	got, err := b.Wait(held, pending.ID)
	if err != nil || got.State != approval.StatePending {
		t.Fatalf("wait after hold = %s, %v; want pending, nil", got.State, err)
	}
	if _, err := b.Wait(ctx, "apr_missing"); !errors.Is(err, approval.ErrUnknown) {
		t.Fatalf("wait unknown: err = %v, want ErrUnknown", err)
	}
}

func TestListReadsStatesNow(t *testing.T) {
	ctx := context.Background()
	b, clk := newBroker(t)
	r := escalate(t, b, refund("250"))
	clk.Advance(2 * time.Hour)
	pending, err := b.List(ctx, approval.Filter{State: approval.StatePending})
	if err != nil || len(pending) != 0 {
		t.Fatalf("pending after expiry = %v, %v", pending, err)
	}
	expired, err := b.List(ctx, approval.Filter{State: approval.StateExpired})
	if err != nil || len(expired) != 1 || expired[0].ID != r.ID || expired[0].State != approval.StateExpired {
		t.Fatalf("expired = %+v, %v", expired, err)
	}
}
