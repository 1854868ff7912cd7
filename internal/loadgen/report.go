package loadgen

import (
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"
)

// Targets Warden is held to; the report states each gap.
const (
	TargetAddedP50us     = 100
	TargetAddedP99us     = 250
	TargetRate           = 2000
	TargetCPUPerCallUs   = 100
	TargetThroughputFrac = 0.70
	TargetMemoryMiB      = 100
	TargetOpenTasks      = 10000
)

// WriteTable writes the results as text tables, one per revision.
func WriteTable(w io.Writer, r *Report) error {
	var b strings.Builder
	for _, rev := range r.Setup.Revisions {
		fmt.Fprintf(&b, "revision %s (%d workers, payload %d bytes, %d-rule policy, audit on, masking: %s)\n",
			rev, r.Setup.Concurrency, r.Setup.PayloadBytes, r.Setup.PolicyRules, MaskingNote)
		fmt.Fprintf(&b, "%-8s %-7s %8s %7s %10s %9s %9s %9s %9s %9s %9s %9s %10s\n",
			"load", "target", "calls", "errors", "calls/s", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "+p50 µs", "+p99 µs", "+p99.9 µs", "gw CPU µs")
		for _, p := range r.Points {
			if p.Revision != rev {
				continue
			}
			for _, s := range []*Sample{p.Direct, p.Warden} {
				fmt.Fprintf(&b, "%-8s %-7s %8d %7d %10.0f %9.0f %9.0f %9.0f %9.0f", RateLabel(p.Rate), s.Target, s.Calls, s.Errors,
					s.Throughput, s.P50us, s.P90us, s.P99us, s.P999us)
				if s == p.Warden {
					fmt.Fprintf(&b, " %9.0f %9.0f %9.0f %10.1f", p.AddedP50us, p.AddedP99us, p.AddedP999us, p.GatewayCPUPerCallUs)
				}
				b.WriteString("\n")
			}
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "gateway peak RSS %.1f MiB; upstream peak RSS %.1f MiB; errors %d\n", r.GatewayPeakRSSMiB, r.UpstreamPeakRSSMiB, r.Errors)
	fmt.Fprintf(&b, "masking: %s\n", r.Masking)
	if t := r.OpenTasks; t != nil {
		fmt.Fprintf(&b, "open tasks: %d, each called once (%d errors, %d charged); gateway RSS %.1f MiB before, %.1f MiB after\n",
			t.Tasks, t.Errors, t.Charged, t.RSSBeforeMiB, t.RSSAfterMiB)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// TargetCheck is one target and how the suite measured against it.
type TargetCheck struct {
	Name     string
	Target   string
	Measured string
	Verdict  string // "met", "missed by …", or "not measured: …"
}

// Checks compares the report with Warden's targets.
func Checks(r *Report) []TargetCheck {
	var checks []TargetCheck
	at := fmt.Sprintf("at %s", RateLabel(r.Rate))
	verdict := func(ok bool, gap string) string {
		if ok {
			return "met"
		}
		return "missed by " + gap
	}
	if r.Rate == TargetRate {
		checks = append(checks,
			TargetCheck{"added p50", fmt.Sprintf("< %d µs at %d/s", TargetAddedP50us, TargetRate), fmt.Sprintf("%.0f µs %s", r.AddedP50us, at),
				verdict(r.AddedP50us < TargetAddedP50us, fmt.Sprintf("%.0f µs", r.AddedP50us-TargetAddedP50us))},
			TargetCheck{"added p99", fmt.Sprintf("< %d µs at %d/s", TargetAddedP99us, TargetRate), fmt.Sprintf("%.0f µs %s", r.AddedP99us, at),
				verdict(r.AddedP99us < TargetAddedP99us, fmt.Sprintf("%.0f µs", r.AddedP99us-TargetAddedP99us))},
		)
	} else {
		checks = append(checks, TargetCheck{"added p50, p99", fmt.Sprintf("< %d µs, < %d µs at %d/s", TargetAddedP50us, TargetAddedP99us, TargetRate),
			fmt.Sprintf("%.0f µs, %.0f µs %s", r.AddedP50us, r.AddedP99us, at), fmt.Sprintf("not measured: the suite did not run %d/s", TargetRate)})
	}
	checks = append(checks, TargetCheck{"gateway CPU per call", fmt.Sprintf("< %d µs", TargetCPUPerCallUs), fmt.Sprintf("%.0f µs %s", r.GatewayCPUPerCallUs, at),
		verdict(r.GatewayCPUPerCallUs < TargetCPUPerCallUs, fmt.Sprintf("%.0f µs", r.GatewayCPUPerCallUs-TargetCPUPerCallUs))})
	if r.ThroughputSource == "max" {
		checks = append(checks, TargetCheck{"throughput at saturation", fmt.Sprintf("≥ %.0f%% of direct", 100*TargetThroughputFrac),
			fmt.Sprintf("%.0f%% (%.0f/s vs %.0f/s)", 100*r.ThroughputRatio, r.WardenMaxPerSec, r.DirectMaxPerSec),
			verdict(r.ThroughputRatio >= TargetThroughputFrac, fmt.Sprintf("%.0f points", 100*(TargetThroughputFrac-r.ThroughputRatio)))})
	} else {
		checks = append(checks, TargetCheck{"throughput at saturation", fmt.Sprintf("≥ %.0f%% of direct", 100*TargetThroughputFrac),
			fmt.Sprintf("%.0f%% at %s", 100*r.ThroughputRatio, RateLabel(r.Rate)), "not measured: the suite did not run at maximum throughput"})
	}
	memory := TargetCheck{Name: "memory with 10,000 open tasks", Target: fmt.Sprintf("< %d MiB", TargetMemoryMiB)}
	switch t := r.OpenTasks; {
	case t == nil || t.Tasks < TargetOpenTasks:
		memory.Measured = fmt.Sprintf("%.1f MiB peak", r.GatewayPeakRSSMiB)
		memory.Verdict = fmt.Sprintf("not measured: the suite did not open %d tasks (warden bench --tasks)", TargetOpenTasks)
	default:
		memory.Measured = fmt.Sprintf("%.1f MiB peak over the suite; %.1f MiB after %d tasks each called once", r.GatewayPeakRSSMiB, t.RSSAfterMiB, t.Tasks)
		memory.Verdict = verdict(r.GatewayPeakRSSMiB < TargetMemoryMiB, fmt.Sprintf("%.1f MiB", r.GatewayPeakRSSMiB-TargetMemoryMiB))
	}
	checks = append(checks, memory)
	return checks
}

// WriteMarkdown writes the report as Markdown: the machine, the command,
// the method, the tables, the targets, and a link to the plot (plotPath,
// empty for none) relative to the report at reportPath.
func WriteMarkdown(w io.Writer, r *Report, reportPath, plotPath string) error {
	var b strings.Builder
	m := r.Machine
	b.WriteString("# Load: direct vs through Warden\n\n")
	fmt.Fprintf(&b, "Recorded %s on %d cores, %s, %d GiB (%s, %s).\n", r.Started.Format("2006-01-02 15:04 UTC"), m.Cores, m.Model, m.MemoryGiB, m.OS, m.GoVersion)
	fmt.Fprintf(&b, "Load average at start: %s; at end: %s. Client, gateway and upstream share these cores,\nso every figure includes their competition for CPU.\n\n", m.LoadAtStart, m.LoadAtEnd)
	if r.Command != "" {
		fmt.Fprintf(&b, "```\n$ %s\n```\n\n", r.Command)
	}
	s := r.Setup
	b.WriteString("## Method\n\n")
	fmt.Fprintf(&b, `- The upstream is Warden's minimal MCP server (bench/upstream, one echo tool), run as its own process.
- The gateway is `+"`warden serve`"+` run as its own process with a generated configuration: a %d-rule policy
  (90 rules on other servers' tools, 10 on the benchmark tool with conditions on its arguments),
  identity by %s, audit %s. Masking: %s.
- Every call is a `+"`tools/call`"+` with a %d-byte payload, from Go SDK clients over Streamable HTTP,
  %d workers each with its own session; the same client code calls the upstream directly and through Warden.
- Fixed rates run open-loop: calls are sent on a schedule and latency runs from each call's scheduled send
  time, so queueing is counted (no coordinated omission). "max" runs closed-loop, each worker calling again
  when answered. Each run has a %gs warm-up, excluded, then %gs measured; percentiles are exact, from every sample.
  Every run, direct or through Warden, starts once the gateway is idle (under a tenth of a core), so that
  work an overloaded run left behind is not charged to the next.
- Added latency is a percentile through Warden minus the same percentile direct, at the same load.
  Gateway CPU per call is the gateway process's utime+stime (/proc/<pid>/stat) over the measured window,
  divided by the calls; peak memory is its VmHWM (/proc/<pid>/status) over the whole suite.

`, s.PolicyRules, s.Identity, s.Audit, MaskingNote, s.PayloadBytes, s.Concurrency, s.WarmupSec, s.DurationSec)
	b.WriteString("## Results\n\n")
	for _, rev := range s.Revisions {
		fmt.Fprintf(&b, "### Revision %s\n\n", rev)
		b.WriteString("| load | target | calls | errors | calls/s | p50 µs | p90 µs | p99 µs | p99.9 µs | added p50 µs | added p99 µs | added p99.9 µs | gateway CPU µs/call |\n")
		b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, p := range r.Points {
			if p.Revision != rev {
				continue
			}
			d, g := p.Direct, p.Warden
			fmt.Fprintf(&b, "| %s | direct | %d | %d | %.0f | %.0f | %.0f | %.0f | %.0f | | | | |\n",
				RateLabel(p.Rate), d.Calls, d.Errors, d.Throughput, d.P50us, d.P90us, d.P99us, d.P999us)
			fmt.Fprintf(&b, "| %s | warden | %d | %d | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.1f |\n",
				RateLabel(p.Rate), g.Calls, g.Errors, g.Throughput, g.P50us, g.P90us, g.P99us, g.P999us,
				p.AddedP50us, p.AddedP99us, p.AddedP999us, p.GatewayCPUPerCallUs)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "Gateway peak RSS: %.1f MiB. Upstream peak RSS: %.1f MiB. Errors over all runs: %d.\n\n", r.GatewayPeakRSSMiB, r.UpstreamPeakRSSMiB, r.Errors)
	for _, p := range r.Points {
		for _, smp := range []*Sample{p.Direct, p.Warden} {
			if smp.FirstError != "" {
				fmt.Fprintf(&b, "- %s %s %s, first error: %s\n", p.Revision, RateLabel(p.Rate), smp.Target, smp.FirstError)
			}
		}
	}
	if t := r.OpenTasks; t != nil {
		fmt.Fprintf(&b, "### Open tasks\n\nAfter the loads, %d task grants were issued to the benchmark caller in the gateway's store, "+
			"each scoped to one order, and one call was made under each (revision %s, %d sessions): %d calls, %d errors, "+
			"%d grants charged with a call (read back from the store), in %.1fs. "+
			"Gateway RSS: %.1f MiB before the grants, %.1f MiB after the last call.\n\n",
			t.Tasks, r.Setup.Revisions[0], r.Setup.Concurrency, t.Calls, t.Errors, t.Charged, t.Seconds, t.RSSBeforeMiB, t.RSSAfterMiB)
		if t.FirstError != "" {
			fmt.Fprintf(&b, "- open tasks, first error: %s\n\n", t.FirstError)
		}
	}
	b.WriteString("## Targets\n\nThe headline is the worst revision at the highest fixed rate.\n\n| target | goal | measured | verdict |\n|---|---|---|---|\n")
	for _, c := range Checks(r) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", c.Name, c.Target, c.Measured, c.Verdict)
	}
	b.WriteString("\n")
	if plotPath != "" {
		rel, err := filepath.Rel(filepath.Dir(reportPath), plotPath)
		if err != nil {
			rel = plotPath
		}
		fmt.Fprintf(&b, "## Latency against offered load\n\n![p50 and p99 latency against offered load, direct and through Warden](%s)\n", filepath.ToSlash(rel))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteSVG plots p50 and p99 latency against offered load, direct and
// through Warden, one panel per revision, on a logarithmic latency axis.
func WriteSVG(w io.Writer, r *Report) error {
	const (
		panelW, panelH = 460, 320
		left, right    = 70, 20
		top, bottom    = 50, 60
	)
	revs := r.Setup.Revisions
	width := len(revs) * panelW
	height := panelH + 40
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)

	// One latency scale for every panel, in whole decades.
	lo, hi := math.Inf(1), 0.0
	for _, p := range r.Points {
		for _, v := range []float64{p.Direct.P50us, p.Direct.P99us, p.Warden.P50us, p.Warden.P99us} {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if hi == 0 {
		lo, hi = 10, 1000
	}
	dLo, dHi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dHi <= dLo {
		dHi = dLo + 1
	}
	plotW, plotH := float64(panelW-left-right), float64(panelH-top-bottom)
	series := []struct {
		label, color, dash string
		value              func(Point) float64
	}{
		{"direct p50", "#1f77b4", "6,4", func(p Point) float64 { return p.Direct.P50us }},
		{"direct p99", "#1f77b4", "", func(p Point) float64 { return p.Direct.P99us }},
		{"warden p50", "#d62728", "6,4", func(p Point) float64 { return p.Warden.P50us }},
		{"warden p99", "#d62728", "", func(p Point) float64 { return p.Warden.P99us }},
	}
	for i, rev := range revs {
		ox := float64(i*panelW + left)
		oy := float64(top)
		var pts []Point
		for _, p := range r.Points {
			if p.Revision == rev {
				pts = append(pts, p)
			}
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="24" font-size="14" font-weight="bold">Latency against offered load, revision %s</text>`+"\n", ox-40, rev)
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#444"/>`+"\n", ox, oy, plotW, plotH)
		y := func(v float64) float64 {
			v = math.Max(v, math.Pow(10, dLo))
			return oy + plotH - (math.Log10(v)-dLo)/(dHi-dLo)*plotH
		}
		for d := dLo; d <= dHi; d++ {
			yy := y(math.Pow(10, d))
			fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/>`+"\n", ox, yy, ox+plotW, yy)
			fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n", ox-6, yy+4, usLabel(math.Pow(10, d)))
		}
		fmt.Fprintf(&b, `<text transform="translate(%.0f,%.0f) rotate(-90)" text-anchor="middle">latency</text>`+"\n", ox-50, oy+plotH/2)
		x := func(j int) float64 {
			if len(pts) == 1 {
				return ox + plotW/2
			}
			return ox + 20 + float64(j)*(plotW-40)/float64(len(pts)-1)
		}
		for j, p := range pts {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", x(j), oy+plotH+18, RateLabel(p.Rate))
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">offered load (calls/s; max = closed loop, %d workers)</text>`+"\n", ox+plotW/2, oy+plotH+40, r.Setup.Concurrency)
		for _, s := range series {
			var path strings.Builder
			for j, p := range pts {
				cmd := "L"
				if j == 0 {
					cmd = "M"
				}
				fmt.Fprintf(&path, "%s%.1f,%.1f ", cmd, x(j), y(s.value(p)))
			}
			dash := ""
			if s.dash != "" {
				dash = fmt.Sprintf(` stroke-dasharray="%s"`, s.dash)
			}
			fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.TrimSpace(path.String()), s.color, dash)
			for j, p := range pts {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s %s: %.0f µs</title></circle>`+"\n", x(j), y(s.value(p)), s.color, s.label, RateLabel(p.Rate), s.value(p))
			}
		}
		for k, s := range series {
			lx, ly := ox+10+float64(k%2)*120, oy+14+float64(k/2)*16
			dash := ""
			if s.dash != "" {
				dash = fmt.Sprintf(` stroke-dasharray="%s"`, s.dash)
			}
			fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2"%s/>`+"\n", lx, ly-4, lx+24, ly-4, s.color, dash)
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", lx+30, ly, s.label)
		}
	}
	fmt.Fprintf(&b, `<text x="10" y="%d" fill="#555">%d cores, %s; load average at start %s. Audit on, %d-rule policy; masking: %s.</text>`+"\n",
		height-10, r.Machine.Cores, xmlEscape(r.Machine.Model), r.Machine.LoadAtStart, r.Setup.PolicyRules, MaskingNote)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func usLabel(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%gs", us/1e6)
	case us >= 1e3:
		return fmt.Sprintf("%gms", us/1e3)
	default:
		return fmt.Sprintf("%gµs", us)
	}
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
