package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Format is how records are written for people or programs.
type Format string

// The record formats.
const (
	FormatText  Format = "text"  // one aligned line per record, for people
	FormatJSONL Format = "jsonl" // one canonical JSON record per line
)

// ParseFormat checks a --format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatText, FormatJSONL:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q: want %q or %q", s, FormatText, FormatJSONL)
}

// WriteRecord writes r in format f, ending with a newline.
func WriteRecord(w io.Writer, f Format, r Record) error {
	switch f {
	case FormatJSONL:
		b, err := r.Canonical()
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	case FormatText:
		_, err := fmt.Fprintln(w, textLine(r))
		return err
	}
	return fmt.Errorf("unknown format %q", f)
}

func textLine(r Record) string {
	orDash := func(s string) string {
		if s == "" {
			return "-"
		}
		return OneLine(s)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s %-10s %-7s %s %s %s", r.Seq, r.Time.UTC().Format(time.RFC3339Nano), r.Kind,
		orDash(string(r.Decision)), orDash(r.Principal), orDash(r.Tool), orDash(r.Status))
	if r.Reason != "" {
		fmt.Fprintf(&b, " %q", r.Reason)
	}
	if len(r.Rules) > 0 {
		fmt.Fprintf(&b, " rules=%s", strings.Join(r.Rules, ","))
	}
	if r.Checkpoint != nil {
		fmt.Fprintf(&b, " head=%d key=%s", r.Checkpoint.HeadSeq, r.Checkpoint.KeyID)
	}
	return b.String()
}

// Query writes the records matching f in format f, oldest first. With
// f.Newest it selects the newest f.Limit records, still written oldest first.
func Query(ctx context.Context, store Store, w io.Writer, format Format, f Filter) error {
	records, err := store.Query(ctx, f)
	if err != nil {
		return fmt.Errorf("query audit log: %w", err)
	}
	if f.Newest {
		slices.Reverse(records)
	}
	bw := bufio.NewWriter(w)
	for _, r := range records {
		if err := WriteRecord(bw, format, r); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// exportPage is how many records Export reads per query.
const exportPage = 2000

// Export writes every record matching f (f.Limit and f.Newest are ignored)
// as JSON lines, oldest first, reading the store page by page.
func Export(ctx context.Context, store Store, w io.Writer, f Filter) error {
	bw := bufio.NewWriter(w)
	f.Limit, f.Newest = exportPage, false
	for {
		page, err := store.Query(ctx, f)
		if err != nil {
			return fmt.Errorf("export audit log after %d: %w", f.AfterSeq, err)
		}
		for _, r := range page {
			if err := WriteRecord(bw, FormatJSONL, r); err != nil {
				return err
			}
		}
		if len(page) < exportPage {
			return bw.Flush()
		}
		f.AfterSeq = page[len(page)-1].Seq
	}
}

// Tail writes the newest last records matching f, then follows the log,
// looking for new records every poll, until ctx ends (which is not an
// error: Tail then returns nil).
func Tail(ctx context.Context, store Store, w io.Writer, format Format, f Filter, last int, poll time.Duration) error {
	if poll <= 0 {
		return fmt.Errorf("tail: poll interval %s must be positive", poll)
	}
	head, err := store.Last(ctx)
	switch {
	case err == nil:
	case errors.Is(err, ErrNoRecords):
	case ctx.Err() != nil:
		return nil
	default:
		return fmt.Errorf("tail audit log: %w", err)
	}
	if last > 0 && head.Seq > 0 {
		recent := f
		recent.Limit, recent.Newest = min(last, MaxQueryLimit), true
		if err := Query(ctx, store, w, format, recent); err != nil {
			return err
		}
	}
	f.AfterSeq, f.Newest, f.Limit = head.Seq, false, exportPage
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	for {
		page, err := store.Query(ctx, f)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("tail audit log: %w", err)
		}
		for _, r := range page {
			if err := WriteRecord(w, format, r); err != nil {
				return err
			}
			f.AfterSeq = r.Seq
		}
		if len(page) == exportPage {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// OneLine replaces control characters and line separators with spaces, so
// that a value a client chose (a tool name, a principal) cannot start a
// forged line in text output.
func OneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
}
