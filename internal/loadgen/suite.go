package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/wardenmcp/warden/bench/upstream"
)

// DefaultRevisions are the protocol revisions a suite loads by default.
var DefaultRevisions = []string{"2025-11-25", "2026-07-28"}

// MaskingNote says how the gateway under load masks results.
const MaskingNote = "on: every result scanned by the default detector set"

// Spawn returns the command that runs this program with args: the suite
// starts the upstream as `bench upstream --listen 127.0.0.1:0` and the
// gateway as `serve --config FILE`, each as its own process.
type Spawn func(args ...string) *exec.Cmd

// Options configure a suite: the same loads against the upstream directly
// and through the gateway, for each revision.
type Options struct {
	// Spawn starts child processes of this program. Required.
	Spawn Spawn
	// Dir holds the generated gateway configuration and audit store.
	// Required; the caller removes it.
	Dir string
	// Revisions to load; empty means 2025-11-25 and 2026-07-28.
	Revisions []string
	// Rates are the fixed offered loads in calls/s, run open-loop.
	Rates []float64
	// Max adds a closed-loop run at maximum throughput.
	Max bool
	// Concurrency, Warmup, Duration and PayloadBytes are those of each
	// run (see Load).
	Concurrency  int
	Warmup       time.Duration
	Duration     time.Duration
	PayloadBytes int
	// Progress receives a line per run; nil discards.
	Progress io.Writer
	// ChildLog receives the child processes' output; nil discards.
	ChildLog io.Writer
	// Tasks, when positive, adds the open-tasks phase after the loads:
	// that many task grants, each called once (RunTasks).
	Tasks int
}

// OptionsError reports options a suite cannot run with.
type OptionsError struct{ Err error }

func (e *OptionsError) Error() string { return "bench: " + e.Err.Error() }
func (e *OptionsError) Unwrap() error { return e.Err }

// Point is one load, run directly and through the gateway.
type Point struct {
	Revision string  `json:"revision"`
	Rate     float64 `json:"rate"` // offered calls/s; 0: closed loop at maximum
	Direct   *Sample `json:"direct"`
	Warden   *Sample `json:"warden"`
	// Added latency: the percentile through the gateway minus the same
	// percentile direct.
	AddedP50us  float64 `json:"added_p50_us"`
	AddedP90us  float64 `json:"added_p90_us"`
	AddedP99us  float64 `json:"added_p99_us"`
	AddedP999us float64 `json:"added_p999_us"`
	// ThroughputRatio is the throughput through the gateway over direct.
	ThroughputRatio float64 `json:"throughput_ratio"`
	// GatewayCPUSeconds is the gateway process's CPU over the measured
	// window of the run through it; per call, divided by its calls.
	GatewayCPUSeconds   float64 `json:"gateway_cpu_seconds"`
	GatewayCPUPerCallUs float64 `json:"gateway_cpu_per_call_us"`
}

// Summary is the headline of a suite.
type Summary struct {
	// Rate is the fixed load the added latencies are taken at: the
	// highest of the suite's rates.
	Rate float64 `json:"rate"`
	// Added latencies at Rate: the worst over the revisions.
	AddedP50us  float64 `json:"added_p50_us"`
	AddedP90us  float64 `json:"added_p90_us"`
	AddedP99us  float64 `json:"added_p99_us"`
	AddedP999us float64 `json:"added_p999_us"`
	// ThroughputRatio is the throughput through the gateway over direct,
	// at maximum throughput when the suite ran it (else at Rate): the worst
	// over the revisions.
	ThroughputRatio  float64 `json:"throughput_ratio"`
	DirectMaxPerSec  float64 `json:"direct_max_throughput"`
	WardenMaxPerSec  float64 `json:"warden_max_throughput"`
	ThroughputSource string  `json:"throughput_source"` // "max" or "rate"
	// GatewayCPUPerCallUs at Rate: the worst over the revisions.
	GatewayCPUPerCallUs float64 `json:"gateway_cpu_per_call_us"`
	// GatewayPeakRSSMiB is the gateway process's peak resident set (VmHWM)
	// over the whole suite.
	GatewayPeakRSSMiB  float64 `json:"gateway_peak_rss_mib"`
	UpstreamPeakRSSMiB float64 `json:"upstream_peak_rss_mib"`
	// Errors over every run of the suite.
	Errors  int    `json:"errors"`
	Masking string `json:"masking"`
	// OpenTasks is the open-tasks phase, when the suite ran it.
	OpenTasks *TaskSample `json:"open_tasks,omitempty"`
}

// Machine describes where a suite ran.
type Machine struct {
	Cores       int    `json:"cores"`
	Model       string `json:"model"`
	MemoryGiB   int    `json:"memory_gib"`
	OS          string `json:"os"`
	GoVersion   string `json:"go_version"`
	LoadAtStart string `json:"load_average_at_start"`
	LoadAtEnd   string `json:"load_average_at_end"`
}

// Setup is what every run of a suite shared.
type Setup struct {
	Revisions    []string  `json:"revisions"`
	Rates        []float64 `json:"rates"`
	Max          bool      `json:"max"`
	Concurrency  int       `json:"concurrency"`
	WarmupSec    float64   `json:"warmup_seconds"`
	DurationSec  float64   `json:"duration_seconds"`
	PayloadBytes int       `json:"payload_bytes"`
	PolicyRules  int       `json:"policy_rules"`
	Identity     string    `json:"identity"`
	Audit        string    `json:"audit"`
}

// Report is the outcome of a suite.
type Report struct {
	Summary
	Started time.Time `json:"started"`
	Command string    `json:"command,omitempty"`
	Machine Machine   `json:"machine"`
	Setup   Setup     `json:"setup"`
	Points  []Point   `json:"points"`
}

func (o *Options) validate() error {
	var errs []error
	if o.Spawn == nil {
		errs = append(errs, errors.New("no way to start child processes"))
	}
	if o.Dir == "" {
		errs = append(errs, errors.New("no working directory"))
	}
	if len(o.Rates) == 0 && !o.Max {
		errs = append(errs, errors.New("no load: give at least one rate or ask for maximum throughput"))
	}
	for _, r := range o.Rates {
		if r <= 0 || r > 1e6 {
			errs = append(errs, fmt.Errorf("rate %v is outside (0, 1000000] calls/s", r))
		}
	}
	for _, rev := range o.Revisions {
		if rev != "2025-06-18" && rev != "2025-11-25" && rev != "2026-07-28" {
			errs = append(errs, fmt.Errorf("revision %q is not one of 2025-06-18, 2025-11-25, 2026-07-28", rev))
		}
	}
	l := o.load("", 0)
	if err := l.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (o *Options) load(revision string, rate float64) Load {
	return Load{
		Revision: revision, Rate: rate, Concurrency: o.Concurrency,
		Warmup: o.Warmup, Duration: o.Duration, PayloadBytes: o.PayloadBytes,
	}
}

// Bench runs the suite: it starts the upstream and the gateway as child
// processes, runs every load against each, and stops them.
func Bench(ctx context.Context, o Options) (*Report, error) {
	if len(o.Revisions) == 0 {
		o.Revisions = DefaultRevisions
	}
	if err := o.validate(); err != nil {
		return nil, &OptionsError{err}
	}
	rep := &Report{
		Started: time.Now().UTC(),
		Machine: describeMachine(),
		Setup: Setup{
			Revisions: o.Revisions, Rates: o.Rates, Max: o.Max, Concurrency: max(o.Concurrency, 1),
			WarmupSec: o.Warmup.Seconds(), DurationSec: o.Duration.Seconds(), PayloadBytes: o.PayloadBytes,
			PolicyRules: PolicyRules, Identity: "API key (X-API-Key)", Audit: "on: hash-chained, SQLite store",
		},
	}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}

	up, err := StartProcess(ctx, o.Spawn("bench", "upstream", "--listen", "127.0.0.1:0"), 30*time.Second, o.ChildLog)
	if err != nil {
		return nil, fmt.Errorf("bench: upstream: %w", err)
	}
	defer up.Stop(5 * time.Second)
	files, err := WriteGatewayConfig(o.Dir, up.URL, upstream.ToolName)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	gw, err := StartProcess(ctx, o.Spawn("serve", "--config", files.Config), 60*time.Second, o.ChildLog)
	if err != nil {
		return nil, fmt.Errorf("bench: gateway: %w", err)
	}
	defer gw.Stop(15 * time.Second)

	direct := Target{Name: "direct", URL: up.URL, Tool: upstream.ToolName}
	warden := Target{Name: "warden", URL: gw.URL, Tool: UpstreamName + "." + upstream.ToolName,
		Header: http.Header{"X-Api-Key": {files.APIKey}}}

	rates := slices.Clone(o.Rates)
	if o.Max {
		rates = append(rates, 0)
	}
	for _, rev := range o.Revisions {
		for _, rate := range rates {
			p, err := runPoint(ctx, o.load(rev, rate), direct, warden, gw)
			if err != nil {
				return nil, fmt.Errorf("bench: %s at %s: %w", rev, RateLabel(rate), err)
			}
			fmt.Fprintf(progress, "%s %-9s direct p50 %7.0fµs p99 %7.0fµs %8.0f/s | warden p50 %7.0fµs p99 %7.0fµs %8.0f/s | added p50 %6.0fµs p99 %6.0fµs | gateway CPU %5.0fµs/call | errors %d\n",
				rev, RateLabel(rate), p.Direct.P50us, p.Direct.P99us, p.Direct.Throughput,
				p.Warden.P50us, p.Warden.P99us, p.Warden.Throughput, p.AddedP50us, p.AddedP99us,
				p.GatewayCPUPerCallUs, p.Direct.Errors+p.Warden.Errors)
			rep.Points = append(rep.Points, p)
		}
	}
	var tasks *TaskSample
	if o.Tasks > 0 {
		tl := TaskLoad{Tasks: o.Tasks, Revision: o.Revisions[0], Concurrency: o.Concurrency, PayloadBytes: o.PayloadBytes}
		if tasks, err = RunTasks(ctx, files.Store, warden, gw, tl); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		fmt.Fprintf(progress, "%d open tasks: %d calls, %d errors in %.1fs; gateway RSS %.1f MiB before, %.1f MiB after\n",
			tasks.Tasks, tasks.Calls, tasks.Errors, tasks.Seconds, tasks.RSSBeforeMiB, tasks.RSSAfterMiB)
	}
	gs, err := gw.Stats()
	if err != nil {
		return nil, fmt.Errorf("bench: gateway: %w", err)
	}
	us, err := up.Stats()
	if err != nil {
		return nil, fmt.Errorf("bench: upstream: %w", err)
	}
	rep.Machine.LoadAtEnd = loadAverage()
	rep.Summary = summarize(rep.Points, o.Rates)
	rep.OpenTasks = tasks
	if tasks != nil {
		rep.Errors += tasks.Errors
	}
	rep.GatewayPeakRSSMiB = mib(gs.PeakRSS)
	rep.UpstreamPeakRSSMiB = mib(us.PeakRSS)
	return rep, nil
}

// settleLimit bounds how long a run waits for the gateway to go idle.
const settleLimit = 15 * time.Second

// settle waits until the gateway uses less than a tenth of a core over a
// quarter of a second, or until limit passes.
func settle(ctx context.Context, gw *Process, limit time.Duration) error {
	const window = 250 * time.Millisecond
	prev, err := gw.Stats()
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(window):
		}
		cur, err := gw.Stats()
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		if cur.CPU-prev.CPU < window/10 {
			return nil
		}
		prev = cur
	}
	return nil
}

// runPoint runs one load directly, then through the gateway, sampling the
// gateway's CPU over the measured window of the second run.
func runPoint(ctx context.Context, load Load, direct, warden Target, gw *Process) (Point, error) {
	p := Point{Revision: load.Revision, Rate: load.Rate}
	var err error
	// A run that overloaded the gateway leaves it work (queued calls, audit
	// writes) that would otherwise be charged to the next run.
	if err := settle(ctx, gw, settleLimit); err != nil {
		return p, err
	}
	if p.Direct, err = Run(ctx, direct, load, Hooks{}); err != nil {
		return p, err
	}
	if err := settle(ctx, gw, settleLimit); err != nil {
		return p, err
	}
	var before, after ProcStats
	var statErr error
	hooks := Hooks{
		Measuring: func() { before, statErr = gw.Stats() },
		Finished: func() {
			if statErr == nil {
				after, statErr = gw.Stats()
			}
		},
	}
	if p.Warden, err = Run(ctx, warden, load, hooks); err != nil {
		return p, err
	}
	if statErr != nil {
		return p, fmt.Errorf("gateway: %w", statErr)
	}
	p.AddedP50us = p.Warden.P50us - p.Direct.P50us
	p.AddedP90us = p.Warden.P90us - p.Direct.P90us
	p.AddedP99us = p.Warden.P99us - p.Direct.P99us
	p.AddedP999us = p.Warden.P999us - p.Direct.P999us
	if p.Direct.Throughput > 0 {
		p.ThroughputRatio = p.Warden.Throughput / p.Direct.Throughput
	}
	cpu := after.CPU - before.CPU
	p.GatewayCPUSeconds = cpu.Seconds()
	// Per call that reached the gateway: calls never sent cost it nothing.
	if sent := p.Warden.Calls - p.Warden.Unsent; sent > 0 {
		p.GatewayCPUPerCallUs = float64(cpu.Nanoseconds()) / 1e3 / float64(sent)
	}
	return p, nil
}

// summarize takes the headline: the worst revision at the highest rate,
// and the worst throughput ratio at maximum throughput.
func summarize(points []Point, rates []float64) Summary {
	s := Summary{Masking: MaskingNote, ThroughputRatio: -1}
	if len(rates) > 0 {
		s.Rate = slices.Max(rates)
	}
	hasMax := slices.ContainsFunc(points, func(p Point) bool { return p.Rate == 0 })
	s.ThroughputSource = "rate"
	if hasMax {
		s.ThroughputSource = "max"
	}
	for _, p := range points {
		s.Errors += p.Direct.Errors + p.Warden.Errors
		if (hasMax && p.Rate == 0) || (!hasMax && p.Rate == s.Rate) {
			if s.ThroughputRatio < 0 || p.ThroughputRatio < s.ThroughputRatio {
				s.ThroughputRatio = p.ThroughputRatio
				s.DirectMaxPerSec = p.Direct.Throughput
				s.WardenMaxPerSec = p.Warden.Throughput
			}
		}
		if p.Rate != s.Rate {
			continue
		}
		s.AddedP50us = max(s.AddedP50us, p.AddedP50us)
		s.AddedP90us = max(s.AddedP90us, p.AddedP90us)
		s.AddedP99us = max(s.AddedP99us, p.AddedP99us)
		s.AddedP999us = max(s.AddedP999us, p.AddedP999us)
		s.GatewayCPUPerCallUs = max(s.GatewayCPUPerCallUs, p.GatewayCPUPerCallUs)
	}
	if s.ThroughputRatio < 0 {
		s.ThroughputRatio = 0
	}
	if !hasMax {
		s.DirectMaxPerSec, s.WardenMaxPerSec = 0, 0
	}
	return s
}

// RateLabel names an offered load: "2000/s", or "max" for closed loop.
func RateLabel(rate float64) string {
	if rate == 0 {
		return "max"
	}
	return fmt.Sprintf("%g/s", rate)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func describeMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, GoVersion: runtime.Version(), LoadAtStart: loadAverage()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if total, err := statusKiB(string(b), "MemTotal:"); err == nil {
			m.MemoryGiB = int((total + 1<<29) >> 30)
		}
	}
	return m
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
