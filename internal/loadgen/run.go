// Package loadgen drives tools/call traffic through real MCP clients over
// Streamable HTTP and measures what a gateway adds to each call: latency
// percentiles, throughput, errors, and the gateway process's CPU and
// memory. It runs open-loop at a fixed rate (latency measured from each
// call's scheduled send time, so a stalled server cannot hide its own
// queueing) or closed-loop at maximum throughput, and it drives the
// upstream directly and through the gateway with the same client code.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Target is an MCP endpoint to load.
type Target struct {
	// Name labels the target in results ("direct", "warden").
	Name string
	// URL is the Streamable HTTP endpoint.
	URL string
	// Header is added to every request (for example X-API-Key).
	Header http.Header
	// Tool is the tool to call.
	Tool string
}

// Load is the traffic of one run.
type Load struct {
	// Revision is the protocol revision the clients ask for.
	Revision string
	// Rate is the offered load in calls per second. Zero means closed loop:
	// every worker calls again as soon as it is answered.
	Rate float64
	// Concurrency is the number of workers, each with its own client
	// session. Zero means 1.
	Concurrency int
	// Warmup is run before measuring and excluded from the results.
	Warmup time.Duration
	// Duration is the measured time. Required.
	Duration time.Duration
	// PayloadBytes is the size of the payload argument of each call.
	PayloadBytes int
	// MaxCalls bounds the calls of the run, warm-up included. Zero means
	// 1,000,000.
	MaxCalls int
	// CallTimeout bounds each call, and how long an overloaded open-loop
	// run may fall behind its schedule. Zero means 5s.
	CallTimeout time.Duration
}

// Hooks are called at the edges of the measured window, so that a caller
// can sample resource use over exactly that window.
type Hooks struct {
	// Measuring is called when the warm-up ends.
	Measuring func()
	// Finished is called when the last measured call has ended.
	Finished func()
}

// Sample is the outcome of one run.
type Sample struct {
	Target   string  `json:"target"`
	Revision string  `json:"revision"`
	Rate     float64 `json:"rate"` // offered calls/s; 0: closed loop
	Workers  int     `json:"workers"`
	// Calls are the measured calls that completed, successfully or not.
	Calls int `json:"calls"`
	// Errors are measured calls that failed, were answered with a tool
	// error, or were never sent because the run fell too far behind.
	Errors int `json:"errors"`
	// Unsent are the errors of calls never sent.
	Unsent     int    `json:"unsent"`
	FirstError string `json:"first_error,omitempty"`
	// Seconds is the measured window: from the end of the warm-up to the
	// end of the schedule, or to the last measured answer if later.
	Seconds    float64 `json:"seconds"`
	Throughput float64 `json:"throughput"` // successful calls/s over Seconds
	P50us      float64 `json:"p50_us"`
	P90us      float64 `json:"p90_us"`
	P99us      float64 `json:"p99_us"`
	P999us     float64 `json:"p999_us"`
	MaxUs      float64 `json:"max_us"`
}

// Validate reports a load that cannot run.
func (l *Load) Validate() error {
	switch {
	case l.Rate < 0:
		return fmt.Errorf("rate %v is negative", l.Rate)
	case l.Duration <= 0:
		return errors.New("duration must be positive")
	case l.Warmup < 0:
		return errors.New("warm-up must not be negative")
	case l.Concurrency < 0 || l.Concurrency > 10000:
		return fmt.Errorf("concurrency %d is outside 1..10000", l.Concurrency)
	case l.PayloadBytes < 0 || l.PayloadBytes > 1<<20:
		return fmt.Errorf("payload size %d is outside 0..1048576 bytes", l.PayloadBytes)
	case l.MaxCalls < 0:
		return errors.New("max calls must not be negative")
	}
	return nil
}

func (l Load) withDefaults() Load {
	if l.Concurrency == 0 {
		l.Concurrency = 1
	}
	if l.MaxCalls == 0 {
		l.MaxCalls = 1_000_000
	}
	if l.CallTimeout == 0 {
		l.CallTimeout = 5 * time.Second
	}
	return l
}

// headerTransport adds fixed headers to every request.
type headerTransport struct {
	base   http.RoundTripper
	header http.Header
}

func (t *headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if len(t.header) == 0 {
		return t.base.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	for k, v := range t.header {
		r.Header[k] = v
	}
	return t.base.RoundTrip(r)
}

// newHTTPClient keeps enough idle connections for every worker, so that
// the run measures calls rather than TCP handshakes.
func newHTTPClient(header http.Header, workers int) (*http.Client, func()) {
	base := &http.Transport{
		MaxIdleConns:        2*workers + 8,
		MaxIdleConnsPerHost: 2*workers + 8,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &http.Client{Transport: &headerTransport{base: base, header: header}}, base.CloseIdleConnections
}

// benchClient is the MCP client every benchmark session belongs to.
var benchClient = mcp.NewClient(&mcp.Implementation{Name: "warden-bench", Version: "1"}, nil)

// openSessions opens n sessions to target through hc, asking for revision;
// closeAll closes them. On an error none stays open.
func openSessions(ctx context.Context, target Target, hc *http.Client, revision string, n int, timeout time.Duration) (sessions []*mcp.ClientSession, closeAll func(), err error) {
	closeAll = func() {
		for _, cs := range sessions {
			_ = cs.Close()
		}
	}
	for range n {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		cs, err := benchClient.Connect(cctx, &mcp.StreamableClientTransport{Endpoint: target.URL, HTTPClient: hc, MaxRetries: -1},
			&mcp.ClientSessionOptions{ProtocolVersion: revision})
		cancel()
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("%s: connecting with revision %s: %w", target.Name, revision, err)
		}
		sessions = append(sessions, cs)
	}
	return sessions, closeAll, nil
}

// Run loads target and measures it. Sessions are opened before the clock
// starts; each worker owns one.
func Run(ctx context.Context, target Target, load Load, hooks Hooks) (*Sample, error) {
	if err := load.Validate(); err != nil {
		return nil, err
	}
	load = load.withDefaults()
	hc, closeIdle := newHTTPClient(target.Header, load.Concurrency)
	defer closeIdle()

	sessions, closeAll, err := openSessions(ctx, target, hc, load.Revision, load.Concurrency, load.CallTimeout)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	// One call before the clock starts proves the target answers at all.
	args := BenchArgs(load.PayloadBytes)
	if err := call(ctx, sessions[0], &mcp.CallToolParams{Name: target.Tool, Arguments: args}, load.CallTimeout); err != nil {
		return nil, fmt.Errorf("%s: first call: %w", target.Name, err)
	}

	r := &runner{load: load, target: target, args: args}
	r.start = time.Now()
	r.measureFrom = r.start.Add(load.Warmup)
	r.end = r.measureFrom.Add(load.Duration)
	expected := load.MaxCalls
	if load.Rate > 0 {
		expected = min(expected, int(load.Rate*load.Duration.Seconds())+1)
	}
	r.lat = NewLatencies(min(expected, 1<<20))

	warmed := make(chan struct{})
	go func() {
		defer close(warmed)
		t := time.NewTimer(time.Until(r.measureFrom))
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		if hooks.Measuring != nil {
			hooks.Measuring()
		}
	}()
	if load.Rate > 0 {
		r.openLoop(ctx, sessions)
	} else {
		r.closedLoop(ctx, sessions)
	}
	<-warmed
	if hooks.Finished != nil {
		hooks.Finished()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: run interrupted: %w", target.Name, err)
	}
	return r.sample(), nil
}

// runner is the state of one run.
type runner struct {
	load        Load
	target      Target
	args        map[string]any
	start       time.Time
	measureFrom time.Time
	end         time.Time

	mu         sync.Mutex
	lat        *Latencies
	calls      int
	errors     int
	unsent     int
	lastDone   time.Time
	firstError string
}

// call makes one tools/call; a tool error result is an error too. The
// library writes into p (its _meta), so every call needs its own.
func call(ctx context.Context, cs *mcp.ClientSession, p *mcp.CallToolParams, timeout time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := cs.CallTool(cctx, p)
	if err != nil {
		return err
	}
	if res.IsError {
		msg := "tool error result"
		if len(res.Content) > 0 {
			if tc, ok := res.Content[0].(*mcp.TextContent); ok {
				msg += ": " + tc.Text
			}
		}
		return errors.New(msg)
	}
	return nil
}

// record counts a call that was due at scheduled and ended at done.
func (r *runner) record(scheduled, done time.Time, err error) {
	if scheduled.Before(r.measureFrom) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if done.After(r.lastDone) {
		r.lastDone = done
	}
	if err != nil {
		r.errors++
		if r.firstError == "" {
			r.firstError = err.Error()
		}
		return
	}
	r.lat.Add(done.Sub(scheduled))
}

// openLoop sends calls at the fixed rate, by the clock: a call's latency
// runs from when it was due, whether or not a worker was free then.
func (r *runner) openLoop(ctx context.Context, sessions []*mcp.ClientSession) {
	due := make(chan time.Time, 4*len(sessions))
	var wg sync.WaitGroup
	for _, cs := range sessions {
		wg.Go(func() {
			for t := range due {
				err := call(ctx, cs, &mcp.CallToolParams{Name: r.target.Tool, Arguments: r.args}, r.load.CallTimeout)
				r.record(t, time.Now(), err)
			}
		})
	}
	interval := time.Duration(float64(time.Second) / r.load.Rate)
	giveUp := r.end.Add(r.load.CallTimeout)
	unsent := 0
	for i := 0; i < r.load.MaxCalls; i++ {
		t := r.start.Add(time.Duration(i) * interval)
		if !t.Before(r.end) {
			break
		}
		if d := time.Until(t); d > 0 {
			timer := time.NewTimer(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
			}
		}
		if ctx.Err() != nil || time.Now().After(giveUp) {
			// So far behind that the rest of the schedule is lost: each
			// call not sent counts as an error.
			if !t.Before(r.measureFrom) {
				unsent++
			}
			continue
		}
		select {
		case due <- t:
		case <-ctx.Done():
		}
	}
	close(due)
	wg.Wait()
	if unsent > 0 {
		r.mu.Lock()
		r.calls += unsent
		r.errors += unsent
		r.unsent = unsent
		if r.firstError == "" {
			r.firstError = fmt.Sprintf("%d calls not sent: the run fell more than %s behind its schedule", unsent, r.load.CallTimeout)
		}
		r.mu.Unlock()
	}
}

// closedLoop has every worker call again as soon as it is answered, until
// the end of the window or the call budget.
func (r *runner) closedLoop(ctx context.Context, sessions []*mcp.ClientSession) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		left = r.load.MaxCalls
	)
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if left == 0 {
			return false
		}
		left--
		return true
	}
	for _, cs := range sessions {
		wg.Go(func() {
			for ctx.Err() == nil {
				start := time.Now()
				if !start.Before(r.end) || !take() {
					return
				}
				err := call(ctx, cs, &mcp.CallToolParams{Name: r.target.Tool, Arguments: r.args}, r.load.CallTimeout)
				r.record(start, time.Now(), err)
			}
		})
	}
	wg.Wait()
}

func (r *runner) sample() *Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	seconds := max(r.load.Duration, r.lastDone.Sub(r.measureFrom)).Seconds()
	ok := r.calls - r.errors
	us := func(q float64) float64 { return float64(r.lat.Percentile(q).Nanoseconds()) / 1e3 }
	return &Sample{
		Target:     r.target.Name,
		Revision:   r.load.Revision,
		Rate:       r.load.Rate,
		Workers:    r.load.Concurrency,
		Calls:      r.calls,
		Errors:     r.errors,
		Unsent:     r.unsent,
		FirstError: r.firstError,
		Seconds:    seconds,
		Throughput: float64(ok) / seconds,
		P50us:      us(0.50),
		P90us:      us(0.90),
		P99us:      us(0.99),
		P999us:     us(0.999),
		MaxUs:      us(1),
	}
}
