package loadgen

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

func fakeReport() *Report {
	point := func(rev string, rate, direct, warden, dThru, wThru float64) Point {
		d := &Sample{Target: "direct", Revision: rev, Rate: rate, Calls: 100, Throughput: dThru, P50us: direct, P90us: direct, P99us: 2 * direct, P999us: 3 * direct}
		w := &Sample{Target: "warden", Revision: rev, Rate: rate, Calls: 100, Errors: 1, Throughput: wThru, P50us: warden, P90us: warden, P99us: 2 * warden, P999us: 3 * warden}
		return Point{Revision: rev, Rate: rate, Direct: d, Warden: w,
			AddedP50us: warden - direct, AddedP99us: 2 * (warden - direct), ThroughputRatio: wThru / dThru, GatewayCPUPerCallUs: 80}
	}
	points := []Point{
		point("2025-11-25", 2000, 200, 260, 2000, 2000),
		point("2025-11-25", 0, 900, 1500, 8000, 6000),
		point("2026-07-28", 2000, 200, 330, 2000, 2000),
		point("2026-07-28", 0, 900, 1200, 8000, 6400),
	}
	r := &Report{
		Machine: Machine{Cores: 2, Model: "Test <CPU> & co"},
		Setup:   Setup{Revisions: []string{"2025-11-25", "2026-07-28"}, Rates: []float64{2000}, Max: true, Concurrency: 8, PolicyRules: PolicyRules},
		Points:  points,
	}
	r.Summary = summarize(points, r.Setup.Rates)
	r.GatewayPeakRSSMiB = 42
	return r
}

func TestSummarizeTakesTheWorstRevision(t *testing.T) {
	s := fakeReport().Summary
	if s.Rate != 2000 || s.AddedP50us != 130 || s.AddedP99us != 260 {
		t.Errorf("rate %v added p50 %v p99 %v; want 2000, 130, 260 (the 2026-07-28 run)", s.Rate, s.AddedP50us, s.AddedP99us)
	}
	if s.ThroughputSource != "max" || s.ThroughputRatio != 0.75 || s.WardenMaxPerSec != 6000 {
		t.Errorf("throughput %v ratio %v warden %v; want max, 0.75, 6000", s.ThroughputSource, s.ThroughputRatio, s.WardenMaxPerSec)
	}
	if s.Errors != 4 || s.Masking != MaskingNote {
		t.Errorf("errors %d masking %q", s.Errors, s.Masking)
	}
}

func TestChecksStateEachGap(t *testing.T) {
	got := map[string]string{}
	for _, c := range Checks(fakeReport()) {
		got[c.Name] = c.Verdict
	}
	want := map[string]string{
		"added p50":                     "missed by 30 µs",
		"added p99":                     "missed by 10 µs",
		"gateway CPU per call":          "met",
		"throughput at saturation":      "met",
		"memory with 10,000 open tasks": "not measured: the suite did not open 10000 tasks (warden bench --tasks)",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: verdict %q, want %q", k, got[k], v)
		}
	}
}

func TestMemoryCheckNeedsTenThousandTasks(t *testing.T) {
	verdict := func(tasks int, peak float64) string {
		r := fakeReport()
		r.OpenTasks = &TaskSample{Tasks: tasks, RSSAfterMiB: peak}
		r.GatewayPeakRSSMiB = peak
		for _, c := range Checks(r) {
			if c.Name == "memory with 10,000 open tasks" {
				return c.Verdict
			}
		}
		return ""
	}
	if got := verdict(10000, 99.5); got != "met" {
		t.Errorf("10,000 tasks at 99.5 MiB: %q, want met", got)
	}
	if got := verdict(10000, 120); got != "missed by 20.0 MiB" {
		t.Errorf("10,000 tasks at 120 MiB: %q, want missed by 20.0 MiB", got)
	}
	if got := verdict(500, 50); !strings.HasPrefix(got, "not measured") {
		t.Errorf("500 tasks: %q, want not measured", got)
	}
}

func TestWriteSVGIsWellFormed(t *testing.T) {
	var b bytes.Buffer
	if err := WriteSVG(&b, fakeReport()); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(&b)
	paths := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "path" {
			paths++
		}
	}
	if paths != 8 { // p50 and p99, direct and warden, two revisions
		t.Errorf("%d lines plotted, want 8", paths)
	}
}

func TestWriteMarkdownAndTable(t *testing.T) {
	r := fakeReport()
	r.Command = "warden bench --quick"
	r.OpenTasks = &TaskSample{Tasks: 10000, Calls: 10000, RSSBeforeMiB: 40, RSSAfterMiB: 41.5}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, r, "bench/RESULTS-load.md", "bench/latency.svg"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"$ warden bench --quick", "Masking: on", "](latency.svg)", "### Revision 2026-07-28", "missed by 30 µs", "### Open tasks", "41.5 MiB after 10000 tasks each called once | met"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	var table bytes.Buffer
	if err := WriteTable(&table, r); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(table.String(), "\nmax "); got != 4 {
		t.Errorf("table has %d max rows, want 4:\n%s", got, table.String())
	}
	if !strings.Contains(table.String(), "masking: "+MaskingNote) {
		t.Error("table does not say whether masking is on")
	}
}
