package policy

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const allowPolicy = "version: 1\nroles: {r: {tools: [t]}}\nrules:\n  - {id: allow-t, tool: t, effect: allow}\n"
const denyPolicy = "version: 1\nroles: {r: {tools: [t]}}\nrules:\n  - {id: deny-t, tool: t, effect: deny, reason: closed}\n"
const brokenPolicy = "version: 1\nrules:\n  - {id: broken, tool: t, effect: allow, when: 'args.n >'}\n"

func decideT(h *Holder) Decision {
	return h.Policy().Decide(&Input{Tool: "t", Principal: Principal{Roles: []string{"r"}}})
}

func TestHolderReload(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, dir, "policy.yaml", allowPolicy)
	h, err := NewHolder(testCompiler(t), f)
	if err != nil {
		t.Fatal(err)
	}
	v1 := h.Policy().Version()
	if d := decideT(h); d.Effect != Allow {
		t.Fatalf("initial policy: %v", d.Effect)
	}

	writeFile(t, dir, "policy.yaml", denyPolicy)
	if err := h.Reload(); err != nil {
		t.Fatalf("valid reload: %v", err)
	}
	if d := decideT(h); d.Effect != Deny || d.Rules[0] != "deny-t" {
		t.Fatalf("after valid reload: %v %v", d.Effect, d.Rules)
	}
	v2 := h.Policy().Version()
	if v2 == v1 {
		t.Fatal("version unchanged by a new policy")
	}

	writeFile(t, dir, "policy.yaml", brokenPolicy)
	err = h.Reload()
	if err == nil || !strings.Contains(err.Error(), "policy.yaml:3: rule broken") {
		t.Fatalf("invalid reload error = %v, want the located compile error", err)
	}
	if h.Policy().Version() != v2 {
		t.Fatal("a policy that failed to compile replaced the running one")
	}
	if d := decideT(h); d.Effect != Deny || d.Rules[0] != "deny-t" {
		t.Fatalf("after invalid reload: %v %v", d.Effect, d.Rules)
	}

	if err := os.Remove(f); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(); err == nil {
		t.Fatal("reload of a missing file succeeded")
	}
	if h.Policy().Version() != v2 {
		t.Fatal("missing file replaced the running policy")
	}
}

func TestNewHolderRejectsBrokenPolicy(t *testing.T) {
	f := writeFile(t, t.TempDir(), "policy.yaml", brokenPolicy)
	if _, err := NewHolder(testCompiler(t), f); err == nil {
		t.Fatal("NewHolder accepted a broken policy")
	}
	if _, err := NewHolder(nil, f); err == nil {
		t.Fatal("NewHolder accepted a nil compiler")
	}
}

type reloadResult struct {
	version string
	err     error
}

// startWatch runs Watch until the test ends and returns the reload results.
func startWatch(t *testing.T, h *Holder, interval time.Duration, trigger chan os.Signal) <-chan reloadResult {
	t.Helper()
	results := make(chan reloadResult, 16)
	h.OnReload = func(p *Policy, err error) { results <- reloadResult{p.Version(), err} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Watch(ctx, interval, trigger, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return results
}

func waitReload(t *testing.T, results <-chan reloadResult) reloadResult {
	t.Helper()
	select {
	case r := <-results:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("no reload reported")
		return reloadResult{}
	}
}

func TestWatchReloadsOnSignal(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, dir, "policy.yaml", allowPolicy)
	h, err := NewHolder(testCompiler(t), f)
	if err != nil {
		t.Fatal(err)
	}
	trigger := make(chan os.Signal, 1)
	// An interval far longer than the test: only the signal can reload.
	results := startWatch(t, h, time.Hour, trigger)

	writeFile(t, dir, "policy.yaml", denyPolicy)
	trigger <- os.Interrupt
	if r := waitReload(t, results); r.err != nil {
		t.Fatalf("reload on signal: %v", r.err)
	}
	if d := decideT(h); d.Effect != Deny {
		t.Fatalf("after signal reload: %v", d.Effect)
	}

	writeFile(t, dir, "policy.yaml", brokenPolicy)
	trigger <- os.Interrupt
	if r := waitReload(t, results); r.err == nil {
		t.Fatal("broken policy reload reported no error")
	}
	if d := decideT(h); d.Effect != Deny || d.Rules[0] != "deny-t" {
		t.Fatalf("broken reload changed decisions: %v %v", d.Effect, d.Rules)
	}
}

func TestWatchReloadsOnFileChange(t *testing.T) {
	dir := t.TempDir()
	writeAtomic(t, dir, "a.yaml", allowPolicy)
	h, err := NewHolder(testCompiler(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	results := startWatch(t, h, time.Millisecond, nil)

	writeAtomic(t, dir, "a.yaml", denyPolicy)
	r := waitReload(t, results)
	if r.err != nil {
		t.Fatalf("reload on change: %v", r.err)
	}
	if d := decideT(h); d.Effect != Deny {
		t.Fatalf("after change: %v", d.Effect)
	}

	// A broken file is reported once; the next good edit is picked up.
	writeAtomic(t, dir, "a.yaml", brokenPolicy)
	if r := waitReload(t, results); r.err == nil {
		t.Fatal("broken file: no error reported")
	}
	writeAtomic(t, dir, "a.yaml", allowPolicy)
	if r := waitReload(t, results); r.err != nil {
		t.Fatalf("fixed file: %v", r.err)
	}
	if d := decideT(h); d.Effect != Allow {
		t.Fatalf("after fix: %v", d.Effect)
	}

	// A new file in the directory is part of the policy.
	writeAtomic(t, dir, "b.yaml", "version: 1\nrules:\n  - {id: deny-t-too, tool: t, effect: deny}\n")
	if r := waitReload(t, results); r.err != nil {
		t.Fatalf("added file: %v", r.err)
	}
	if d := decideT(h); d.Effect != Deny || d.Rules[0] != "deny-t-too" {
		t.Fatalf("after adding a file: %v %v", d.Effect, d.Rules)
	}
	// Table tests are not policy: adding one does not reload.
	writeFile(t, dir, "a_test.yaml", "cases: []\n")
	if h.changed() {
		t.Fatal("a *_test.yaml file counts as a policy change")
	}
}

// writeAtomic replaces a file in one step, so a poll never reads it half
// written (a half-written file would be a correct, but unwanted, reload error).
func writeAtomic(t *testing.T, dir, name, body string) {
	t.Helper()
	tmp := writeFile(t, dir, name+".tmp", body)
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}
