package loadgen

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardenmcp/warden/bench/upstream"
)

func startUpstream(t *testing.T) Target {
	t.Helper()
	srv := httptest.NewServer(upstream.Handler(upstream.NewServer(), nil))
	t.Cleanup(srv.Close)
	return Target{Name: "direct", URL: srv.URL + "/mcp", Tool: upstream.ToolName}
}

func TestRunOpenLoopSendsTheSchedule(t *testing.T) {
	target := startUpstream(t)
	for _, rev := range []string{"2025-11-25", "2026-07-28"} {
		t.Run(rev, func(t *testing.T) {
			var measuring, finished int
			s, err := Run(t.Context(), target, Load{
				Revision: rev, Rate: 200, Concurrency: 4, Warmup: 100 * time.Millisecond,
				Duration: 500 * time.Millisecond, PayloadBytes: 64,
			}, Hooks{Measuring: func() { measuring++ }, Finished: func() { finished++ }})
			if err != nil {
				t.Fatal(err)
			}
			// The schedule holds exactly 100 calls in the measured half
			// second (floating-point rounding may move one across an edge).
			if s.Calls < 99 || s.Calls > 101 || s.Errors != 0 {
				t.Fatalf("calls %d errors %d (%s), want 100 calls and no errors", s.Calls, s.Errors, s.FirstError)
			}
			if s.P50us <= 0 || s.P50us > s.P90us || s.P90us > s.P99us || s.P99us > s.P999us || s.P999us > s.MaxUs {
				t.Errorf("percentiles not ordered: %+v", s)
			}
			if measuring != 1 || finished != 1 {
				t.Errorf("hooks called %d and %d times, want once each", measuring, finished)
			}
			if s.Revision != rev || s.Rate != 200 || s.Target != "direct" {
				t.Errorf("sample labelled %q %v %q", s.Revision, s.Rate, s.Target)
			}
		})
	}
}

func TestRunClosedLoopStopsAtMaxCalls(t *testing.T) {
	target := startUpstream(t)
	s, err := Run(t.Context(), target, Load{
		Revision: "2025-11-25", Concurrency: 3, Duration: time.Minute, MaxCalls: 50,
	}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Calls != 50 || s.Errors != 0 {
		t.Fatalf("calls %d errors %d (%s), want 50 and none", s.Calls, s.Errors, s.FirstError)
	}
	if s.P50us <= 0 {
		t.Errorf("p50 %vµs, want positive", s.P50us)
	}
}

func TestRunRefusesATargetThatFails(t *testing.T) {
	target := startUpstream(t)
	target.Tool = "no_such_tool"
	_, err := Run(t.Context(), target, Load{Revision: "2025-11-25", Rate: 10, Duration: time.Second}, Hooks{})
	if err == nil || !strings.Contains(err.Error(), "first call") {
		t.Fatalf("err = %v, want the first call's failure", err)
	}
}

func TestLoadValidate(t *testing.T) {
	bad := []Load{
		{Rate: -1, Duration: time.Second},
		{Duration: 0},
		{Duration: time.Second, Warmup: -time.Second},
		{Duration: time.Second, Concurrency: 10001},
		{Duration: time.Second, PayloadBytes: 2 << 20},
		{Duration: time.Second, MaxCalls: -1},
	}
	for _, l := range bad {
		if err := l.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", l)
		}
	}
	if err := (&Load{Rate: 100, Duration: time.Second}).Validate(); err != nil {
		t.Errorf("valid load refused: %v", err)
	}
}

// childUpstreamEnv makes TestChildUpstream serve the benchmark upstream.
const childUpstreamEnv = "WARDEN_LOADGEN_TEST_CHILD_UPSTREAM"

// TestChildUpstream is the child process of TestStartProcess.
func TestChildUpstream(t *testing.T) {
	if os.Getenv(childUpstreamEnv) == "" {
		t.Skip("runs only as the child of TestStartProcess")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	ln, err := upstream.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := upstream.Serve(ctx, ln, newJSONLogger(os.Stderr)); err != nil {
		t.Fatal(err)
	}
}

func TestStartProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildUpstream$", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), childUpstreamEnv+"=1")
	p, err := StartProcess(t.Context(), cmd, 30*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(5 * time.Second) })
	if !strings.HasPrefix(p.URL, "http://127.0.0.1:") {
		t.Fatalf("URL %q, want a loopback URL", p.URL)
	}
	s, err := Run(t.Context(), Target{Name: "child", URL: p.URL, Tool: upstream.ToolName},
		Load{Revision: "2025-11-25", Concurrency: 2, Duration: time.Minute, MaxCalls: 20}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Calls != 20 || s.Errors != 0 {
		t.Fatalf("calls %d errors %d, want 20 and none", s.Calls, s.Errors)
	}
	st, err := p.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.RSS <= 0 || st.PeakRSS < st.RSS {
		t.Errorf("child RSS %d peak %d: want 0 < RSS <= peak", st.RSS, st.PeakRSS)
	}
	if err := p.Stop(10 * time.Second); err != nil {
		t.Errorf("stop: %v", err)
	}
	if _, err := p.Stats(); err == nil {
		t.Error("Stats of a stopped process succeeded")
	}
}

func TestStartProcessReportsAnEarlyExit(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$") // runs no test and exits
	_, err := StartProcess(t.Context(), cmd, 30*time.Second, nil)
	if err == nil || !strings.Contains(err.Error(), "exited before serving") {
		t.Fatalf("err = %v, want an early exit", err)
	}
}

func TestSuiteRefusesBadOptions(t *testing.T) {
	_, err := Bench(t.Context(), Options{Rates: []float64{-5}, Revisions: []string{"1999-01-01"}})
	var oe *OptionsError
	if !errors.As(err, &oe) {
		t.Fatalf("err = %v, want an OptionsError", err)
	}
	for _, want := range []string{"child processes", "working directory", "rate -5", "1999-01-01", "duration"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if !slices.Equal(DefaultRevisions, []string{"2025-11-25", "2026-07-28"}) {
		t.Errorf("default revisions changed: %v", DefaultRevisions)
	}
}
