package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/wardenmcp/warden/internal/loadgen"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchChildEnv, when set to a JSON list of arguments, makes TestBenchChild
// run warden with them: the processes `warden bench` starts.
const benchChildEnv = "WARDEN_TEST_BENCH_CHILD_ARGS"

// TestBenchChild is a child process of TestBenchEndToEnd: the upstream or
// the gateway, run as `warden <args>` until SIGTERM.
func TestBenchChild(t *testing.T) {
	raw := os.Getenv(benchChildEnv)
	if raw == "" {
		t.Skip("runs only as a child process of TestBenchEndToEnd")
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	if c, _, err := root.Find([]string{"bench"}); err != nil || c == root {
		root.AddCommand(newBenchCmd())
	}
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatalf("warden %s: %v", strings.Join(args, " "), err)
	}
}

// testSpawn starts this test binary as `warden <args>`.
func testSpawn(args ...string) *exec.Cmd {
	raw, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchChild$", "-test.timeout=120s")
	cmd.Env = append(os.Environ(), benchChildEnv+"="+string(raw))
	return cmd
}

// TestBenchEndToEnd runs a tiny suite through real processes: the
// upstream and `warden serve` with the generated policy, identity and audit.
func TestBenchEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes and runs load for several seconds")
	}
	dir := t.TempDir()
	report, plot := filepath.Join(dir, "RESULTS-load.md"), filepath.Join(dir, "latency.svg")
	f := benchFlags{
		rates: "50", max: true, revisions: []string{"2025-11-25", "2026-07-28"},
		concurrency: 2, warmup: 200 * time.Millisecond, duration: time.Second, payload: 128, tasks: 40,
		format: "json", report: report, plot: plot, command: "warden bench (test)",
	}
	var out, progress bytes.Buffer
	if err := runBench(t.Context(), f, testSpawn, &out, &progress); err != nil {
		t.Fatalf("bench: %v\nprogress:\n%s", err, progress.String())
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out.String())
	}
	num := func(key string) float64 {
		v, ok := got[key].(float64)
		if !ok {
			t.Fatalf("field %q missing or not a number in %s", key, out.String())
		}
		return v
	}
	if r := num("rate"); r != 50 {
		t.Errorf("rate %v, want 50", r)
	}
	if v := num("added_p50_us"); v < 0 {
		t.Errorf("added_p50_us %v: a gateway hop with a 100-rule policy and audit cannot be free", v)
	}
	num("added_p99_us")
	if v := num("throughput_ratio"); v <= 0 || v >= 2 {
		t.Errorf("throughput_ratio %v, want within (0, 2)", v)
	}
	if v := num("gateway_peak_rss_mib"); v <= 0 || v > 4096 {
		t.Errorf("gateway_peak_rss_mib %v, want a plausible size", v)
	}
	if v := num("gateway_cpu_per_call_us"); v < 0 {
		t.Errorf("gateway_cpu_per_call_us %v, want non-negative", v)
	}
	if v := num("errors"); v != 0 {
		t.Errorf("errors %v, want none\n%s", v, out.String())
	}
	if got["masking"] != loadgen.MaskingNote {
		t.Errorf("masking %v, want it reported as %q", got["masking"], loadgen.MaskingNote)
	}
	tasks, _ := got["open_tasks"].(map[string]any)
	if tasks["tasks"] != 40.0 || tasks["calls"] != 40.0 || tasks["errors"] != 0.0 || tasks["charged"] != 40.0 {
		t.Errorf("open_tasks %v, want 40 tasks each called once without errors, and charged", tasks)
	}
	if v, _ := tasks["gateway_rss_after_mib"].(float64); v <= 0 {
		t.Errorf("open_tasks gateway_rss_after_mib %v, want a size", tasks["gateway_rss_after_mib"])
	}
	if points, _ := got["points"].([]any); len(points) != 4 {
		t.Errorf("%d points, want 4 (two loads, two revisions)", len(points))
	}
	md, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "](latency.svg)") || !strings.Contains(string(md), "### Revision 2026-07-28") {
		t.Errorf("report lacks the plot link or a revision table:\n%s", md)
	}
	svg, err := os.ReadFile(plot)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(svg, []byte("<svg")) {
		t.Errorf("plot is not an SVG document")
	}
}

func TestBenchRefusesBadFlags(t *testing.T) {
	for _, f := range []benchFlags{
		{rates: "fast", duration: time.Second},
		{rates: "100", duration: time.Second, format: "xml"},
		{rates: "100", duration: time.Second, concurrency: -1},
		{rates: "100", duration: time.Second, tasks: -1},
	} {
		err := runBench(t.Context(), f, testSpawn, &bytes.Buffer{}, &bytes.Buffer{})
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != exitUsage {
			t.Errorf("flags %+v: %v, want a usage error (exit %d)", f, err, exitUsage)
		}
	}
}
