package loadgen

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/grant"
	"github.com/wardenmcp/warden/internal/store/sqlite"
)

// TaskLoad is the open-tasks phase of a suite: Tasks task grants issued to
// the benchmark's caller, then one call made under each, so that every
// task is live in the gateway at once.
type TaskLoad struct {
	Tasks        int
	Revision     string
	Concurrency  int
	PayloadBytes int
	CallTimeout  time.Duration
}

// TaskSample is what the open-tasks phase measured.
type TaskSample struct {
	Tasks  int `json:"tasks"`
	Calls  int `json:"calls"`
	Errors int `json:"errors"`
	// Charged counts the grants the gateway charged a call to, read back
	// from its store: proof that each call ran under its task.
	Charged int `json:"charged"`
	// FirstError is the first failed call's error, if any.
	FirstError string `json:"first_error,omitempty"`
	// Gateway resident set before the grants were issued, and after a
	// call under every one of them (VmRSS), in MiB.
	RSSBeforeMiB float64 `json:"gateway_rss_before_mib"`
	RSSAfterMiB  float64 `json:"gateway_rss_after_mib"`
	// Seconds the calls took.
	Seconds float64 `json:"seconds"`
}

// RunTasks issues l.Tasks grants in the gateway's store (as the admin API
// does: a grant is a row there, its token shown once) and calls the
// benchmark tool once under each, presenting its token, from l.Concurrency
// sessions. It samples the gateway's memory before and after.
func RunTasks(ctx context.Context, storePath string, target Target, gw *Process, l TaskLoad) (*TaskSample, error) {
	if l.Tasks <= 0 {
		return nil, fmt.Errorf("open tasks: %d tasks; want at least one", l.Tasks)
	}
	l.Concurrency = max(l.Concurrency, 1)
	if l.CallTimeout <= 0 {
		l.CallTimeout = 10 * time.Second
	}
	before, err := gw.Stats()
	if err != nil {
		return nil, fmt.Errorf("open tasks: gateway: %w", err)
	}
	db, err := sqlite.Open(storePath, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, fmt.Errorf("open tasks: opening the gateway's store: %w", err)
	}
	defer db.Close()
	ids, tokens, err := issueGrants(ctx, db.Grants(), target.Tool, l.Tasks)
	if err != nil {
		return nil, err
	}

	hc, closeIdle := newHTTPClient(target.Header, l.Concurrency)
	defer closeIdle()
	args := BenchArgs(l.PayloadBytes)
	s := &TaskSample{Tasks: l.Tasks}
	var next atomic.Int64
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		s.Errors++
		if s.FirstError == "" {
			s.FirstError = err.Error()
		}
	}
	sessions, closeAll, err := openSessions(ctx, target, hc, l.Revision, l.Concurrency, l.CallTimeout)
	if err != nil {
		return nil, fmt.Errorf("open tasks: %w", err)
	}
	defer closeAll()
	start := time.Now()
	var wg sync.WaitGroup
	for _, cs := range sessions {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(tokens) || ctx.Err() != nil {
					return
				}
				p := &mcp.CallToolParams{Meta: mcp.Meta{grant.MetaKey: tokens[i]}, Name: target.Tool, Arguments: args}
				if err := call(ctx, cs, p, l.CallTimeout); err != nil {
					fail(fmt.Errorf("task %d: %w", i, err))
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open tasks: interrupted: %w", err)
	}
	s.Seconds = time.Since(start).Seconds()
	s.Calls = l.Tasks
	after, err := gw.Stats()
	if err != nil {
		return nil, fmt.Errorf("open tasks: gateway: %w", err)
	}
	s.RSSBeforeMiB, s.RSSAfterMiB = mib(before.RSS), mib(after.RSS)
	for _, id := range ids {
		g, err := db.Grants().Get(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("open tasks: reading grant %s back: %w", id, err)
		}
		if g.Used > 0 {
			s.Charged++
		}
	}
	return s, nil
}

// issueGrants writes n grants for the benchmark caller on tool, each
// scoped to the benchmark's order and live for an hour, and returns their
// ids and tokens.
func issueGrants(ctx context.Context, store grant.Store, tool string, n int) (ids, tokens []string, err error) {
	now := time.Now()
	order := BenchArgs(0)["order_id"].(string)
	for i := range n {
		g, token, err := grant.Issue(grant.Spec{
			Principal: BenchPrincipal, Tools: []string{tool},
			Scope:     map[string]string{"order_id": order},
			ExpiresAt: now.Add(time.Hour), Labels: []string{"bench"},
		}, now)
		if err != nil {
			return nil, nil, fmt.Errorf("open tasks: issuing grant %d: %w", i, err)
		}
		if err := store.Create(ctx, g); err != nil {
			return nil, nil, fmt.Errorf("open tasks: storing grant %d: %w", i, err)
		}
		ids, tokens = append(ids, g.ID), append(tokens, token)
	}
	return ids, tokens, nil
}
