package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/wardenmcp/warden/internal/audit"
	"github.com/wardenmcp/warden/internal/pin"
	"github.com/wardenmcp/warden/internal/store/sqlite"
)

const toolsExitCodes = `Exit status: 0 on success; 1 when scan finds a high-severity finding or
approve is refused (unknown tool, nothing pending, digest mismatch); 2 on bad
arguments or a database that cannot be read.`

// newToolsCmd returns `warden tools`, the commands that review pinned tool
// definitions.
func newToolsCmd() *cobra.Command {
	var dbPath string
	cmd := &cobra.Command{
		Use:   "tools",
		Short: "Review pinned upstream tool definitions: list, diff, approve, scan",
		Long: `Warden pins every upstream tool's definition (name, title, description,
schemas, annotations) the first time it lists the tool. When an upstream later
lists a different definition, the tool is quarantined: clients see it only in
its approved form, or not at all, until an operator reviews the change with
'tools diff' and approves exactly that definition with 'tools approve'.

Definitions are also scanned for tool poisoning: instructions hidden in
descriptions, invisible or bidirectional Unicode, encoded blobs, look-alike
tool names.

` + toolsExitCodes,
	}
	cmd.PersistentFlags().StringVar(&dbPath, "db", "warden.db", "the Warden database `FILE`")
	cmd.AddCommand(
		newToolsListCmd(&dbPath),
		newToolsDiffCmd(&dbPath),
		newToolsApproveCmd(&dbPath),
		newToolsScanCmd(&dbPath),
	)
	return cmd
}

func newToolsListCmd(dbPath *string) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List pinned tools with their state and digests",
		Long: `List every pinned tool as UPSTREAM.NAME with its state (approved or
quarantined), the short form of its approved and pending digests, when it was
first seen and approved, and how many scan findings its newest definition has.

` + toolsExitCodes,
		Example: `  warden tools list --db /var/lib/warden/warden.db`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runToolsList(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), *dbPath, format)
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output `FORMAT`: text or json")
	return cmd
}

func newToolsDiffCmd(dbPath *string) *cobra.Command {
	return &cobra.Command{
		Use:   "diff UPSTREAM.NAME",
		Short: "Show a quarantined tool's pending change",
		Long: `Show what changed between a tool's approved definition and the one waiting
for approval, field by field: title and description one sentence per line,
schemas and annotations as indented JSON with sorted keys. Invisible and
control characters are spelled out as <U+XXXX>. The header shows the full
pending digest, which 'tools approve --digest' takes.

` + toolsExitCodes,
		Example: `  warden tools diff --db warden.db shop.get_order`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runToolsDiff(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), *dbPath, args[0])
		},
	}
}

func newToolsApproveCmd(dbPath *string) *cobra.Command {
	var digest string
	cmd := &cobra.Command{
		Use:   "approve UPSTREAM.NAME --digest DIGEST",
		Short: "Approve a quarantined tool's pending definition",
		Long: `Approve the definition waiting for approval. --digest must be the pending
digest exactly as 'tools diff' shows it: if the upstream changed the
definition again after the review, the digests differ and nothing is
approved. Approval takes effect the next time the gateway lists the tool.

` + toolsExitCodes,
		Example: `  warden tools diff --db warden.db shop.get_order
  warden tools approve --db warden.db shop.get_order --digest sha256:5f1c…`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if digest == "" {
				return &exitError{exitUsage, errors.New("--digest is required: copy it from 'warden tools diff'")}
			}
			_, err := runToolsApprove(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), *dbPath, args[0], digest)
			return err
		},
	}
	cmd.Flags().StringVar(&digest, "digest", "", "the pending definition's `DIGEST` (sha256:…), from tools diff")
	return cmd
}

func newToolsScanCmd(dbPath *string) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "scan",
		Short: "Scan pinned definitions for tool poisoning and look-alike names",
		Long: `Scan every pinned definition, approved and pending, with the current rules,
and the pinned tool names for look-alikes (equal after case folding, removing
separators or folding homoglyphs; one edit apart across upstreams).

` + toolsExitCodes,
		Example: `  warden tools scan --db warden.db --format json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runToolsScan(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), *dbPath, format)
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output `FORMAT`: text or json")
	return cmd
}

// runToolsList is `warden tools list`.
func runToolsList(ctx context.Context, out, errOut io.Writer, dbPath, format string) error {
	f, err := pin.ParseFormat(format)
	if err != nil {
		return &exitError{exitUsage, err}
	}
	db, err := openStore("tools", dbPath, errOut, false)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := pin.WriteList(ctx, out, db.Pins(), f); err != nil {
		return &exitError{exitUsage, err}
	}
	return nil
}

// runToolsDiff is `warden tools diff`.
func runToolsDiff(ctx context.Context, out, errOut io.Writer, dbPath, ref string) error {
	if _, _, err := pin.ParseRef(ref); err != nil {
		return &exitError{exitUsage, err}
	}
	db, err := openStore("tools", dbPath, errOut, false)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := pin.WriteDiff(ctx, out, db.Pins(), ref); err != nil {
		if errors.Is(err, pin.ErrNotPinned) {
			return &exitError{exitFailure, err}
		}
		return &exitError{exitUsage, err}
	}
	return nil
}

// runToolsApprove is `warden tools approve`. The returned approval says who
// changed what (tool, previous and new digest, time, findings) for the audit
// log.
func runToolsApprove(ctx context.Context, out, errOut io.Writer, dbPath, ref, digest string) (pin.Approval, error) {
	if _, _, err := pin.ParseRef(ref); err != nil {
		return pin.Approval{}, &exitError{exitUsage, err}
	}
	db, err := openStore("tools", dbPath, errOut, true)
	if err != nil {
		return pin.Approval{}, err
	}
	defer db.Close()
	p, err := pin.NewPinner(db.Pins(), pin.Options{})
	if err != nil {
		return pin.Approval{}, &exitError{exitUsage, err}
	}
	a, err := pin.ApproveRef(ctx, out, p, ref, digest)
	switch {
	case errors.Is(err, pin.ErrNotPinned), errors.Is(err, pin.ErrNothingPending),
		errors.Is(err, pin.ErrDigestMismatch), errors.Is(err, pin.ErrMalformedDigest):
		return pin.Approval{}, &exitError{exitFailure, err}
	case err != nil:
		return pin.Approval{}, &exitError{exitUsage, err}
	}
	if err := auditApproval(ctx, db, dbPath, a); err != nil {
		return a, fmt.Errorf("the approval is stored but could not be audited: %w", err)
	}
	return a, nil
}

// auditApproval records an operator's approval of a tool definition in the
// audit log kept in the same database.
func auditApproval(ctx context.Context, db *sqlite.DB, dbPath string, a pin.Approval) error {
	key, err := audit.LoadOrCreateKey(audit.KeyPathFor(dbPath))
	if err != nil {
		return err
	}
	log, err := audit.Open(db.Audit(), key, audit.Options{})
	if err != nil {
		return err
	}
	detail, err := json.Marshal(a)
	if err != nil {
		return err
	}
	_, err = log.Append(ctx, audit.Record{
		Kind: audit.KindAdmin, Method: "tools/approve", Upstream: a.Upstream, Tool: a.Upstream + "." + a.Name,
		Status: "approved", Extra: map[string]json.RawMessage{"approval": detail},
	})
	return errors.Join(err, log.Close())
}

// runToolsScan is `warden tools scan`: exit status 1 when a high-severity
// finding is present.
func runToolsScan(ctx context.Context, out, errOut io.Writer, dbPath, format string) error {
	f, err := pin.ParseFormat(format)
	if err != nil {
		return &exitError{exitUsage, err}
	}
	db, err := openStore("tools", dbPath, errOut, false)
	if err != nil {
		return err
	}
	defer db.Close()
	r, err := pin.WriteScan(ctx, out, db.Pins(), f)
	if err != nil {
		return &exitError{exitUsage, err}
	}
	if r.High > 0 {
		return &exitError{exitFailure, fmt.Errorf("%d high-severity findings", r.High)}
	}
	return nil
}
