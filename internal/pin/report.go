package pin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Format is how the report functions write: text for people, json for
// programs.
type Format string

const (
	FormatText Format = "text"
	FormatJSON Format = "json"
)

// ParseFormat checks a --format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatText, FormatJSON:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q: want text or json", s)
}

// ParseRef splits an "upstream.name" reference at its first dot (upstream
// names have none; tool names may).
func ParseRef(ref string) (upstream, name string, err error) {
	upstream, name, ok := strings.Cut(ref, ".")
	if !ok || upstream == "" || name == "" {
		return "", "", fmt.Errorf("tool reference %q: want UPSTREAM.NAME", ref)
	}
	return upstream, name, nil
}

// listEntry is one pin as WriteList's JSON shows it.
type listEntry struct {
	Tool          string    `json:"tool"`
	Upstream      string    `json:"upstream"`
	Name          string    `json:"name"`
	State         State     `json:"state"`
	Digest        string    `json:"digest,omitempty"`
	PendingDigest string    `json:"pendingDigest,omitempty"`
	FirstSeen     time.Time `json:"firstSeen"`
	ApprovedAt    time.Time `json:"approvedAt,omitzero"`
	Findings      []Finding `json:"findings,omitempty"`
}

// WriteList writes every pin with its state: the tools list command.
func WriteList(ctx context.Context, w io.Writer, s Store, format Format) error {
	pins, err := s.List(ctx)
	if err != nil {
		return err
	}
	if format == FormatJSON {
		entries := make([]listEntry, 0, len(pins))
		for _, p := range pins {
			entries = append(entries, listEntry{p.Ref(), p.Upstream, p.Name, p.State, p.Digest,
				p.PendingDigest, p.FirstSeen, p.ApprovedAt, p.Findings})
		}
		return writeJSON(w, entries)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOOL\tSTATE\tDIGEST\tPENDING\tFIRST SEEN\tAPPROVED\tFINDINGS")
	for _, p := range pins {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", Visible(p.Ref()), p.State, shortDigest(p.Digest),
			shortDigest(p.PendingDigest), stamp(p.FirstSeen), stamp(p.ApprovedAt), findingCounts(p.Findings))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(pins) == 0 {
		_, err = fmt.Fprintln(w, "no pinned tools")
	}
	return err
}

// WriteDiff writes the pending change of the tool ref ("upstream.name"):
// the tools diff command. The full pending digest it shows is what the
// operator passes to approve.
func WriteDiff(ctx context.Context, w io.Writer, s Store, ref string) error {
	upstream, name, err := ParseRef(ref)
	if err != nil {
		return err
	}
	p, ok, err := s.Get(ctx, upstream, name)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("diff %s: %w", ref, ErrNotPinned)
	}
	_, err = io.WriteString(w, Diff(p))
	return err
}

// ApproveRef approves the pending definition of the tool ref with digest
// (see Pinner.Approve) and writes a confirmation: the tools approve command.
// The returned Approval is what the caller records in the audit log.
func ApproveRef(ctx context.Context, w io.Writer, p *Pinner, ref, digest string) (Approval, error) {
	upstream, name, err := ParseRef(ref)
	if err != nil {
		return Approval{}, err
	}
	a, err := p.Approve(ctx, upstream, name, digest)
	if err != nil {
		return Approval{}, err
	}
	prev := a.PreviousDigest
	if prev == "" {
		prev = "(never approved)"
	}
	_, err = fmt.Fprintf(w, "approved %s %s (was %s) at %s\n", Visible(ref), a.Digest, prev, stamp(a.At))
	return a, err
}

// ScanReport is what WriteScan found.
type ScanReport struct {
	Tools []ToolScan `json:"tools"`
	// SimilarNames are look-alike pairs among the "upstream.name" names of
	// every pinned tool.
	SimilarNames [][2]string `json:"similarNames"`
	// High counts high-severity findings across all tools.
	High int `json:"high"`
}

// ToolScan is one tool's findings in a ScanReport.
type ToolScan struct {
	Tool  string `json:"tool"`
	State State  `json:"state"`
	// Approved and Pending are the findings of the approved and the pending
	// definitions, scanned again now (so new scan rules apply to old pins).
	Approved []Finding `json:"approved,omitempty"`
	Pending  []Finding `json:"pending,omitempty"`
}

// WriteScan scans every pinned definition, approved and pending, and the
// pinned names for look-alikes, and writes the findings: the tools scan
// command.
func WriteScan(ctx context.Context, w io.Writer, s Store, format Format) (ScanReport, error) {
	pins, err := s.List(ctx)
	if err != nil {
		return ScanReport{}, err
	}
	r := ScanReport{Tools: []ToolScan{}, SimilarNames: [][2]string{}}
	names := make([]string, 0, len(pins))
	for _, p := range pins {
		names = append(names, p.Ref())
		ts := ToolScan{Tool: p.Ref(), State: p.State}
		if p.Approved() {
			ts.Approved = Scan(p.Definition)
		}
		if p.Pending != nil {
			ts.Pending = Scan(*p.Pending)
		}
		for _, fs := range [][]Finding{ts.Approved, ts.Pending} {
			for _, f := range fs {
				if f.Severity == SeverityHigh {
					r.High++
				}
			}
		}
		if len(ts.Approved)+len(ts.Pending) > 0 {
			r.Tools = append(r.Tools, ts)
		}
	}
	if sim := SimilarNames(names); sim != nil {
		r.SimilarNames = sim
	}
	if format == FormatJSON {
		return r, writeJSON(w, r)
	}
	var b strings.Builder
	for _, ts := range r.Tools {
		fmt.Fprintf(&b, "%s (%s)\n", Visible(ts.Tool), ts.State)
		for _, part := range []struct {
			label    string
			findings []Finding
		}{{"approved", ts.Approved}, {"pending", ts.Pending}} {
			for _, f := range part.findings {
				fmt.Fprintf(&b, "  %-8s %-6s %s %s: %s\n", part.label, f.Severity, f.Kind, f.Field, f.Detail)
			}
		}
	}
	for _, pair := range r.SimilarNames {
		fmt.Fprintf(&b, "similar names: %s ~ %s\n", Visible(pair[0]), Visible(pair[1]))
	}
	fmt.Fprintf(&b, "%d tools scanned, %d with findings, %d high; %d similar-name pairs\n",
		len(pins), len(r.Tools), r.High, len(r.SimilarNames))
	_, err = io.WriteString(w, b.String())
	return r, err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// shortDigest is the first 12 hex digits of a digest, enough to tell pins
// apart in a list; "-" for none.
func shortDigest(d string) string {
	if d == "" {
		return "-"
	}
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func findingCounts(fs []Finding) string {
	if len(fs) == 0 {
		return "-"
	}
	high := 0
	for _, f := range fs {
		if f.Severity == SeverityHigh {
			high++
		}
	}
	return fmt.Sprintf("%d (%d high)", len(fs), high)
}
