package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenmcp/warden/internal/audit"
	"github.com/wardenmcp/warden/internal/store/sqlite"
)

const auditExitCodes = `Exit status: 0 on success; 1 when verify finds the chain broken;
2 on bad arguments or a database that cannot be read.`

// newAuditCmd returns `warden audit`, the commands that read and check the
// audit log.
func newAuditCmd() *cobra.Command {
	var dbPath string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read, export and verify the tamper-evident audit log",
		Long: `Warden writes one audit record per decision and one per outcome, each
holding the SHA-256 of the one before it, with a signed checkpoint every so
often. These commands read the log from the database file (opened read-only,
so they are safe to run beside a running gateway) and prove it intact.

` + auditExitCodes,
	}
	cmd.PersistentFlags().StringVar(&dbPath, "db", "warden.db", "the Warden database `FILE`")
	cmd.AddCommand(
		newAuditVerifyCmd(&dbPath),
		newAuditQueryCmd(&dbPath),
		newAuditTailCmd(&dbPath),
		newAuditExportCmd(&dbPath),
	)
	return cmd
}

func newAuditVerifyCmd(dbPath *string) *cobra.Command {
	var keyPath string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Walk the hash chain and check every checkpoint signature",
		Long: `Walk the whole chain and report the first record that is wrong: edited
(its content no longer matches its hash), missing (a gap in seq), moved or
removed before it (its prev does not match), or a checkpoint whose signature
does not verify.

Signatures are checked against --key (a PEM public or private key) when
given, else against the key file beside the database when it exists, else
against the keys recorded in the database. Only a key kept apart from the
database proves who wrote the log: someone able to rewrite the file can also
add a key to it. Records after the last checkpoint are protected by the
chain alone; the report says how many there are.

` + auditExitCodes,
		Example: `  warden audit verify --db /var/lib/warden/warden.db --key /etc/warden/audit.pub`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAuditVerify(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), *dbPath, keyPath, cmd.Flags().Changed("key"))
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "", "PEM `FILE` holding the checkpoint public (or private) key to trust")
	return cmd
}

// runAuditVerify is `warden audit verify`: it writes the report to out and
// returns an exit error with code 1 when the chain is broken.
func runAuditVerify(ctx context.Context, out, errOut io.Writer, dbPath, keyPath string, keyGiven bool) error {
	var pub ed25519.PublicKey
	switch {
	case keyGiven:
		k, err := audit.ReadPublicKey(keyPath)
		if err != nil {
			return &exitError{exitUsage, err}
		}
		pub = k
	default:
		beside := audit.KeyPathFor(dbPath)
		k, err := audit.ReadPublicKey(beside)
		switch {
		case err == nil:
			pub, keyPath = k, beside
		case !errors.Is(err, fs.ErrNotExist):
			return &exitError{exitUsage, err}
		}
	}
	db, err := openStore("audit", dbPath, errOut, false)
	if err != nil {
		return err
	}
	defer db.Close()
	rep, err := audit.Verify(ctx, db.Audit(), pub)
	if err != nil {
		return &exitError{exitUsage, err}
	}
	if err := audit.WriteReport(out, rep); err != nil {
		return &exitError{exitUsage, err}
	}
	if pub != nil {
		fmt.Fprintf(out, "signatures checked against key %s from %s\n", audit.KeyID(pub), keyPath)
	} else {
		fmt.Fprintln(out, "note: signatures checked against the keys recorded in the database; pass --key to trust only a key kept elsewhere")
	}
	if !rep.OK() {
		return &exitError{exitFailure, errors.New("audit chain verification failed")}
	}
	return nil
}

// auditFilterFlags are the record filters query, tail and export share.
type auditFilterFlags struct {
	principal, tool, decision, kind, since, until string
	afterSeq                                      uint64
}

func (f *auditFilterFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.principal, "principal", "", "only records of this principal `ID`")
	cmd.Flags().StringVar(&f.tool, "tool", "", "only records about this `TOOL` (namespaced: shop.get_order)")
	cmd.Flags().StringVar(&f.decision, "decision", "", "only records with this `DECISION`: allow, deny, confirm or approve")
	cmd.Flags().StringVar(&f.kind, "kind", "", "only records of this `KIND`: decision, outcome, admin, checkpoint")
	cmd.Flags().StringVar(&f.since, "since", "", "only records at or after this `TIME` (RFC 3339, or a duration ago: 1h)")
	cmd.Flags().StringVar(&f.until, "until", "", "only records before this `TIME` (RFC 3339, or a duration ago)")
	cmd.Flags().Uint64Var(&f.afterSeq, "after-seq", 0, "only records with a greater `SEQ`")
}

// filter checks the flags and builds the filter; now anchors "1h ago".
func (f *auditFilterFlags) filter(now time.Time) (audit.Filter, error) {
	out := audit.Filter{Principal: f.principal, Tool: f.tool, Kind: audit.Kind(f.kind), AfterSeq: f.afterSeq}
	switch d := audit.Decision(f.decision); d {
	case "", audit.DecisionAllow, audit.DecisionDeny, audit.DecisionConfirm, audit.DecisionApprove:
		out.Decision = d
	default:
		return out, fmt.Errorf("--decision %q: want allow, deny, confirm or approve", f.decision)
	}
	var err error
	if out.Since, err = parseAuditTime("--since", f.since, now); err != nil {
		return out, err
	}
	if out.Until, err = parseAuditTime("--until", f.until, now); err != nil {
		return out, err
	}
	if !out.Since.IsZero() && !out.Until.IsZero() && !out.Since.Before(out.Until) {
		return out, errors.New("--since must be before --until")
	}
	return out, nil
}

func parseAuditTime(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%s %q: want an RFC 3339 time (2026-03-01T12:00:00Z) or a positive duration (90m)", flag, s)
}

func newAuditQueryCmd(dbPath *string) *cobra.Command {
	var (
		filters auditFilterFlags
		format  string
		limit   int
	)
	cmd := &cobra.Command{
		Use:   "query",
		Short: "Print the newest records that match the filters",
		Long: `Print the newest --limit records matching every filter given, oldest first.

` + auditExitCodes,
		Example: `  warden audit query --principal alice --decision deny --since 24h
  warden audit query --tool shop.refund_order --format jsonl --limit 1000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := filters.filter(time.Now())
			if err != nil {
				return &exitError{exitUsage, err}
			}
			fmtv, err := audit.ParseFormat(format)
			if err != nil {
				return &exitError{exitUsage, err}
			}
			if limit < 1 || limit > audit.MaxQueryLimit {
				return &exitError{exitUsage, fmt.Errorf("--limit %d: must be 1 to %d", limit, audit.MaxQueryLimit)}
			}
			f.Limit, f.Newest = limit, true
			db, err := openStore("audit", *dbPath, cmd.ErrOrStderr(), false)
			if err != nil {
				return err
			}
			defer db.Close()
			if err := audit.Query(cmd.Context(), db.Audit(), cmd.OutOrStdout(), fmtv, f); err != nil {
				return &exitError{exitUsage, err}
			}
			return nil
		},
	}
	filters.register(cmd)
	cmd.Flags().StringVar(&format, "format", string(audit.FormatText), "output `FORMAT`: text or jsonl")
	cmd.Flags().IntVar(&limit, "limit", 100, "print at most `N` records")
	return cmd
}

func newAuditTailCmd(dbPath *string) *cobra.Command {
	var (
		filters  auditFilterFlags
		format   string
		last     int
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Print the last records, then follow new ones",
		Long: `Print the last -n records matching the filters, then each new matching
record as it is written, until interrupted.

` + auditExitCodes,
		Example: `  warden audit tail --decision deny
  warden audit tail -n 0 --format jsonl | jq .tool`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := filters.filter(time.Now())
			if err != nil {
				return &exitError{exitUsage, err}
			}
			fmtv, err := audit.ParseFormat(format)
			if err != nil {
				return &exitError{exitUsage, err}
			}
			if last < 0 || interval <= 0 {
				return &exitError{exitUsage, errors.New("-n must not be negative and --interval must be positive")}
			}
			db, err := openStore("audit", *dbPath, cmd.ErrOrStderr(), false)
			if err != nil {
				return err
			}
			defer db.Close()
			if err := audit.Tail(cmd.Context(), db.Audit(), cmd.OutOrStdout(), fmtv, f, last, interval); err != nil {
				return &exitError{exitUsage, err}
			}
			return nil
		},
	}
	filters.register(cmd)
	cmd.Flags().StringVar(&format, "format", string(audit.FormatText), "output `FORMAT`: text or jsonl")
	cmd.Flags().IntVarP(&last, "lines", "n", 10, "print the last `N` matching records first")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "how often to look for new records")
	return cmd
}

func newAuditExportCmd(dbPath *string) *cobra.Command {
	var (
		filters auditFilterFlags
		format  string
	)
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write every matching record as JSON lines",
		Long: `Write every record matching the filters, oldest first, one canonical JSON
record per line: the exact bytes each record's hash covers, plus "hash".

` + auditExitCodes,
		Example: `  warden audit export > audit.jsonl
  warden audit export --since 2026-03-01T00:00:00Z --until 2026-04-01T00:00:00Z`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := filters.filter(time.Now())
			if err != nil {
				return &exitError{exitUsage, err}
			}
			if format != string(audit.FormatJSONL) {
				return &exitError{exitUsage, fmt.Errorf("--format %q: export writes jsonl only", format)}
			}
			db, err := openStore("audit", *dbPath, cmd.ErrOrStderr(), false)
			if err != nil {
				return err
			}
			defer db.Close()
			if err := audit.Export(cmd.Context(), db.Audit(), cmd.OutOrStdout(), f); err != nil {
				return &exitError{exitUsage, err}
			}
			return nil
		},
	}
	filters.register(cmd)
	cmd.Flags().StringVar(&format, "format", string(audit.FormatJSONL), "output `FORMAT`: jsonl")
	return cmd
}

// openStore opens an existing database file, read-only unless write; what
// names it in errors (audit, tools). A missing file is a usage error, not a
// new empty store.
func openStore(what, path string, errOut io.Writer, write bool) (*sqlite.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, &exitError{exitUsage, fmt.Errorf("%s database: %w", what, err)}
	}
	open := sqlite.OpenReadOnly
	if write {
		open = sqlite.Open
	}
	db, err := open(path, slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return nil, &exitError{exitUsage, err}
	}
	return db, nil
}
