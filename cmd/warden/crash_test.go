package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/audit"
	"github.com/wardenmcp/warden/internal/identity"
	"github.com/wardenmcp/warden/internal/store/sqlite"
)

// crashChildEnv, when set to a configuration file, makes TestCrashChildServe
// run `warden serve` on it until the process is killed.
const crashChildEnv = "WARDEN_TEST_CRASH_CHILD_CONFIG"

// Bounds of the crash test: how many calls it plans, after how many
// answers the server is killed, and how long the load may last before the
// server is killed regardless (on a slow machine).
const (
	crashCalls     = 200
	crashKillAfter = 80
	crashWorkers   = 8
	crashLoadLimit = 10 * time.Second
)

// TestCrashChildServe is the server process of TestCrashAuditSurvivesKill:
// build and serve exactly as `warden serve` does, until killed.
func TestCrashChildServe(t *testing.T) {
	configPath := os.Getenv(crashChildEnv)
	if configPath == "" {
		t.Skip("runs only as the child process of TestCrashAuditSurvivesKill")
	}
	rt, err := build(configPath, os.Stderr, slog.LevelInfo)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	ln, err := net.Listen("tcp", rt.cfg.Listen)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	err = serve(context.Background(), ln, rt.gateway, rt.cfg.ShutdownTimeout, rt.logger.Info)
	t.Fatalf("serve returned before the process was killed: %v", err)
}

// crashTally is what the clients saw; it kills the server once killAfter
// calls have been answered.
type crashTally struct {
	killAfter int
	kill      func()
	killOnce  sync.Once

	mu       sync.Mutex
	allowed  int               // allowed results received
	denied   map[string]string // decision id → rules, of denials received
	answered int               // results received, allowed or denied
	failed   int               // calls that got no answer
}

func (c *crashTally) answer(allowed bool, id, rule string) {
	c.mu.Lock()
	if allowed {
		c.allowed++
	} else {
		c.denied[id] = rule
	}
	c.answered++
	n := c.answered
	c.mu.Unlock()
	if n >= c.killAfter {
		c.killOnce.Do(c.kill)
	}
}

func (c *crashTally) fail() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed++
}

// TestCrashAuditSurvivesKill runs `warden serve` in a child process, drives
// concurrent tool calls through it with SDK clients and kills it with
// SIGKILL mid-load. Every call whose answer reached a client must have its
// records in the audit log, and the chain that was written must verify:
// records are durable before the call is forwarded or answered, and
// appends are transactions, so no torn tail is left.
func TestCrashAuditSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	shop := startTestShop(t)
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close()
	fx := writeServeFixture(t, shop.url, addr, 50)

	ctx := serveContext(t)
	childLog := &lockedBuffer{}
	child := exec.Command(os.Args[0], "-test.run=^TestCrashChildServe$", "-test.timeout=60s")
	child.Env = append(os.Environ(), crashChildEnv+"="+fx.configPath)
	child.Stdout, child.Stderr = childLog, childLog
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill may be called again after the child is gone; it then does nothing.
	kill := func() { _ = child.Process.Kill() }
	exited := make(chan struct{})
	go func() {
		_ = child.Wait() // "signal: killed" is the expected end
		close(exited)
	}()
	t.Cleanup(func() {
		kill()
		<-exited
		if t.Failed() {
			t.Logf("server log:\n%s", childLog.String())
		}
	})

	base := "http://" + addr
	if err := waitListening(ctx, base+identity.MetadataPath, exited); err != nil {
		t.Fatalf("the server did not start: %v", err)
	}

	tally := &crashTally{denied: map[string]string{}, killAfter: crashKillAfter, kill: kill}
	loadCtx, stopLoad := context.WithTimeout(ctx, crashLoadLimit)
	defer stopLoad()
	context.AfterFunc(loadCtx, func() { tally.killOnce.Do(kill) })
	jobs := make(chan int, crashCalls)
	for i := range crashCalls {
		jobs <- i
	}
	close(jobs)
	var wg sync.WaitGroup
	for worker := range crashWorkers {
		rev := revSessions
		if worker%2 == 1 {
			rev = revStateless
		}
		cs, err := dialWarden(ctx, base+"/mcp", apiKeyCredential(testAPIKey), rev)
		if err != nil {
			t.Fatalf("worker %d: connect: %v", worker, err)
		}
		defer cs.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			crashWorker(loadCtx, cs, jobs, tally)
		}()
	}
	wg.Wait()
	kill()
	select {
	case <-exited:
	case <-ctx.Done():
		t.Fatal("the server did not exit after SIGKILL")
	}

	tally.mu.Lock()
	allowed, denied, failed, answered := tally.allowed, tally.denied, tally.failed, tally.answered
	tally.mu.Unlock()
	t.Logf("before the kill: %d allowed and %d denied answers; %d calls unanswered", allowed, len(denied), failed)
	if answered == 0 || failed == 0 || answered+failed > crashCalls {
		t.Fatalf("%d answers and %d failures of %d calls: the kill did not land mid-load", answered, failed, crashCalls)
	}
	if allowed == 0 || len(denied) == 0 {
		t.Fatalf("answers: %d allowed, %d denied; want both kinds", allowed, len(denied))
	}

	dbPath := filepath.Join(fx.dir, "warden.db")
	records := readAudit(t, dbPath)
	var allowedDecisions int
	decided := map[string]bool{}
	var outcomes []audit.Record
	deniedRecorded := map[string]bool{}
	for _, r := range records {
		if r.Method != "tools/call" {
			continue
		}
		switch {
		case r.Kind == audit.KindDecision && r.Status == "allowed":
			allowedDecisions++
			decided[r.DecisionID] = true
		case r.Kind == audit.KindOutcome:
			outcomes = append(outcomes, r)
		case r.Kind == audit.KindDecision && r.Status == "denied":
			if rule, ok := denied[r.DecisionID]; ok && fmt.Sprint(r.Rules) == "["+rule+"]" {
				deniedRecorded[r.DecisionID] = true
			}
		}
	}
	// Every forwarded call's decision is durable before the forward; its
	// outcome is queued after the answer, so the kill may lose the last few.
	if allowedDecisions < allowed {
		t.Errorf("the log holds %d allowed decisions, but %d allowed results reached clients", allowedDecisions, allowed)
	}
	for _, r := range outcomes {
		if !decided[r.DecisionID] {
			t.Errorf("outcome %d (%s) follows no allowed decision record", r.Seq, r.DecisionID)
		}
	}
	if len(outcomes) == 0 {
		t.Error("no outcome records survived the kill")
	}
	for id, rule := range denied {
		if !deniedRecorded[id] {
			t.Errorf("toolDenial %s (%s) reached a client but has no decision record", id, rule)
		}
	}
	if got := shop.total(); got < allowed || got > allowedDecisions {
		t.Errorf("the shop ran %d calls; want at least the %d answered and at most the %d recorded as allowed", got, allowed, allowedDecisions)
	}

	pub, err := audit.ReadPublicKey(audit.KeyPathFor(dbPath))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.OpenReadOnly(dbPath, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, db.Audit(), pub)
	db.Close()
	if err != nil || !rep.OK() || rep.Records != uint64(len(records)) {
		t.Fatalf("verify after the kill: %v, %+v (%d records read)", err, rep, len(records))
	}

	// A new server continues the chain the killed one left.
	w := startWarden(t, fx.configPath)
	cs := mustDialWarden(t, ctx, w.url, apiKeyCredential(testAPIKey), revStateless)
	if r := callTool(t, ctx, cs, "shop.get_order", map[string]any{"order_id": "after-crash"}); r.isError {
		t.Fatalf("a call after the restart: %+v", r)
	}
	w.stop(t)
	out, err := verifyAudit(ctx, dbPath, audit.KeyPathFor(dbPath))
	if err != nil {
		t.Fatalf("verify after the restart: %v\n%s", err, out)
	}
	if after := readAudit(t, dbPath); len(after) < len(records)+2 {
		t.Errorf("the log grew from %d to %d records after a call; want its decision and outcome appended", len(records), len(after))
	}
}

// crashWorker makes the calls it takes from jobs until they run out or the
// server stops answering: every third refund is over the limit.
func crashWorker(ctx context.Context, cs *mcp.ClientSession, jobs <-chan int, tally *crashTally) {
	for i := range jobs {
		amount := 10
		if i%3 == 0 {
			amount = 500
		}
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "shop.refund_order",
			Arguments: map[string]any{"order_id": fmt.Sprintf("C%d", i), "amount": amount}})
		if err != nil {
			tally.fail()
			return
		}
		text := toolText(res)
		if !res.IsError {
			tally.answer(true, "", "")
			continue
		}
		m := denialRE.FindStringSubmatch(text)
		if m == nil {
			// A tool error that is not a toolDenial: the upstream call failed.
			tally.fail()
			return
		}
		tally.answer(false, m[3], m[1])
	}
}

// waitListening polls url until the server answers, the child exits or ctx
// ends.
func waitListening(ctx context.Context, url string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("the server exited")
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
