package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenmcp/warden/bench/upstream"
	"github.com/wardenmcp/warden/internal/loadgen"
)

// benchFlags are the inputs of `warden bench`.
type benchFlags struct {
	quick       bool
	rates       string
	max         bool
	revisions   []string
	concurrency int
	warmup      time.Duration
	duration    time.Duration
	payload     int
	tasks       int
	tasksSet    bool // --tasks given: --quick keeps it
	format      string
	report      string
	plot        string
	verbose     bool
	command     string // the command line, for the report
}

func newBenchCmd() *cobra.Command {
	f := benchFlags{}
	cmd := &cobra.Command{
		Use:   "bench [--quick] [--report FILE --plot FILE]",
		Short: "Measure what Warden adds to each call, and how many calls per second it holds",
		Long: `Load an MCP upstream directly and through Warden with the same Go SDK clients
over Streamable HTTP, and report the latency Warden adds (p50, p90, p99,
p99.9), throughput, errors, and the gateway process's CPU per call and peak
memory.

The upstream (a minimal echo server) and the gateway ('warden serve' with a
generated 100-rule policy, API-key identity, the audit log and masking on)
each run as their own process, started from this binary, on 127.0.0.1 only.
Fixed rates run open-loop, measured from each call's scheduled send time;
"max" runs closed-loop. After the loads, the full run issues --tasks task
grants and calls once under each, and reports the gateway's memory.

  warden bench --quick                 under a minute; one JSON object, no tasks phase
  warden bench                         the full sweep, as tables
  warden bench --report bench/RESULTS-load.md --plot bench/latency.svg

Run it on a quiet machine: client, gateway and upstream share its cores.

Exit codes: 0 done, 1 the benchmark failed, 2 bad arguments.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding this program to start the gateway: %w", err)
			}
			f.command = "warden " + strings.Join(os.Args[1:], " ")
			f.tasksSet = cmd.Flags().Changed("tasks")
			spawn := func(args ...string) *exec.Cmd { return exec.Command(exe, args...) }
			return runBench(cmd.Context(), f, spawn, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.quick, "quick", false, "a short run (under 60 s) at 2000 calls/s and at maximum; prints one JSON object")
	fl.StringVar(&f.rates, "rates", "250,500,1000,2000", "fixed offered loads, calls/s, comma-separated")
	fl.BoolVar(&f.max, "max", true, "also run closed-loop at maximum throughput")
	fl.StringSliceVar(&f.revisions, "revision", loadgen.DefaultRevisions, "protocol revisions to load")
	fl.IntVar(&f.concurrency, "concurrency", 32, "workers, each with its own client session")
	fl.DurationVar(&f.warmup, "warmup", time.Second, "warm-up before each measured run (excluded)")
	fl.DurationVar(&f.duration, "duration", 5*time.Second, "measured time of each run")
	fl.IntVar(&f.payload, "payload", 256, "payload bytes in each call's arguments")
	fl.IntVar(&f.tasks, "tasks", 10000, "open tasks (task grants, each called once) after the loads; 0 skips them")
	fl.StringVar(&f.format, "format", "", "output: table or json (default table; json with --quick)")
	fl.StringVar(&f.report, "report", "", "also write a Markdown report to FILE")
	fl.StringVar(&f.plot, "plot", "", "also write an SVG plot of latency against offered load to FILE")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "copy the gateway's and upstream's logs to stderr")
	cmd.AddCommand(newBenchUpstreamCmd())
	return cmd
}

// newBenchUpstreamCmd is the upstream process `warden bench` starts.
func newBenchUpstreamCmd() *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:    "upstream --listen 127.0.0.1:PORT",
		Short:  "Serve the benchmark's minimal MCP upstream (started by warden bench)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ln, err := upstream.Listen(listen)
			if err != nil {
				return &exitError{exitUsage, err}
			}
			return upstream.Serve(cmd.Context(), ln, slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil)))
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "loopback host:port")
	return cmd
}

// parseRates reads "250,500,1000".
func parseRates(s string) ([]float64, error) {
	var rates []float64
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		r, err := strconv.ParseFloat(part, 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("--rates: %q is not a positive number of calls per second", part)
		}
		rates = append(rates, r)
	}
	return rates, nil
}

// runBench checks the flags, runs the suite and writes its results: the
// table or JSON to out, progress to errOut, and the report and plot files.
func runBench(ctx context.Context, f benchFlags, spawn loadgen.Spawn, out, errOut io.Writer) error {
	rates, err := parseRates(f.rates)
	if err != nil {
		return &exitError{exitUsage, err}
	}
	if f.tasks < 0 {
		return &exitError{exitUsage, fmt.Errorf("--tasks %d: want 0 or more", f.tasks)}
	}
	if f.quick {
		rates, f.max = []float64{2000}, true
		if !f.tasksSet {
			f.tasks = 0
		}
		f.warmup, f.duration = time.Second, 3*time.Second
		if f.format == "" {
			f.format = "json"
		}
	}
	switch f.format {
	case "":
		f.format = "table"
	case "table", "json":
	default:
		return &exitError{exitUsage, fmt.Errorf("--format %q: use table or json", f.format)}
	}
	dir, err := os.MkdirTemp("", "warden-bench-")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(dir)
	o := loadgen.Options{
		Spawn: spawn, Dir: dir, Revisions: f.revisions, Rates: rates, Max: f.max,
		Concurrency: f.concurrency, Warmup: f.warmup, Duration: f.duration, PayloadBytes: f.payload,
		Tasks: f.tasks, Progress: errOut,
	}
	if f.verbose {
		o.ChildLog = errOut
	}
	rep, err := loadgen.Bench(ctx, o)
	if err != nil {
		var ve *loadgen.OptionsError
		if errors.As(err, &ve) {
			return &exitError{exitUsage, err}
		}
		return &exitError{exitFailure, err}
	}
	rep.Command = f.command
	if f.format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else if err := loadgen.WriteTable(out, rep); err != nil {
		return err
	}
	if f.report != "" {
		if err := writeFileWith(f.report, func(w io.Writer) error { return loadgen.WriteMarkdown(w, rep, f.report, f.plot) }); err != nil {
			return err
		}
	}
	if f.plot != "" {
		if err := writeFileWith(f.plot, func(w io.Writer) error { return loadgen.WriteSVG(w, rep) }); err != nil {
			return err
		}
	}
	return nil
}

// writeFileWith writes a file through write, creating its directory.
func writeFileWith(path string, write func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	fh, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := write(fh); err != nil {
		fh.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
