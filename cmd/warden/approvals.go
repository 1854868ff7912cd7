package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenmcp/warden/internal/admin"
	"github.com/wardenmcp/warden/internal/approval"
	"github.com/wardenmcp/warden/internal/audit"
)

const approvalsExitCodes = `Exit status: 0 on success; 1 when the admin API refuses the request
(unknown request, one decided or expired already, a bad key); 2 on bad
arguments or when the admin API cannot be reached.`

// newApprovalsCmd returns `warden approvals`, the commands approvers use
// to list, inspect and decide approval requests through the admin API.
func newApprovalsCmd() *cobra.Command {
	f := &adminFlags{}
	cmd := &cobra.Command{
		Use:   "approvals",
		Short: "List, show, approve and deny approval requests through the admin API",
		Long: `A policy rule with effect "approve" turns a call into an approval request
bound to that exact call: the principal, the task, the tool, the digest of
its arguments and the policy version. Approving lets that call run once;
different arguments, another principal or a second run need a new approval.
Requests expire.

These commands talk to a running Warden's admin API (--admin). The admin key
is read from the environment variable named by --key-env, never from a flag.

` + approvalsExitCodes,
	}
	f.register(cmd)

	var state, principal string
	var limit int
	list := &cobra.Command{
		Use:     "list",
		Short:   "List approval requests, newest first (pending ones by default)",
		Example: `  warden approvals list --state all --format json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAdminClient(f, os.Getenv)
			if err != nil {
				return err
			}
			return runApprovalsList(cmd.Context(), cmd.OutOrStdout(), c, state, principal, limit, f.format)
		},
	}
	list.Flags().StringVar(&state, "state", "pending", "pending, approved, denied, expired, used or all")
	list.Flags().StringVar(&principal, "principal", "", "only this principal's requests")
	list.Flags().IntVar(&limit, "limit", approval.DefaultListLimit, "the most requests to list")

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one approval request with its arguments",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAdminClient(f, os.Getenv)
			if err != nil {
				return err
			}
			return runApprovalsShow(cmd.Context(), cmd.OutOrStdout(), c, args[0], f.format)
		},
	}
	cmd.AddCommand(list, show, newApprovalsDecideCmd(f, true), newApprovalsDecideCmd(f, false))
	return cmd
}

func newApprovalsDecideCmd(f *adminFlags, approve bool) *cobra.Command {
	var comment string
	verb, short := "deny", "Deny a pending approval request"
	if approve {
		verb, short = "approve", "Approve a pending approval request: its exact call may run once"
	}
	cmd := &cobra.Command{
		Use:     verb + " ID",
		Short:   short,
		Example: fmt.Sprintf(`  warden approvals %s apr_... --comment "checked with the customer"`, verb),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAdminClient(f, os.Getenv)
			if err != nil {
				return err
			}
			return runApprovalsDecide(cmd.Context(), cmd.OutOrStdout(), c, args[0], approve, comment, f.format)
		},
	}
	cmd.Flags().StringVar(&comment, "comment", "", "why; kept with the decision and in the audit log")
	return cmd
}

// runApprovalsList is `warden approvals list`.
func runApprovalsList(ctx context.Context, out io.Writer, c *adminClient, state, principal string, limit int, format string) error {
	q := url.Values{}
	if state != "" && state != "all" {
		if !approval.State(state).Valid() {
			return &exitError{exitUsage, fmt.Errorf("--state %q: use pending, approved, denied, expired, used or all", state)}
		}
		q.Set("state", state)
	}
	if principal != "" {
		q.Set("principal", principal)
	}
	q.Set("limit", strconv.Itoa(limit))
	var resp admin.ApprovalListResponse
	if err := c.do(ctx, http.MethodGet, "/v1/approvals", q, nil, &resp); err != nil {
		return err
	}
	if format == "json" {
		return writeJSONLine(out, resp)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tTOOL\tPRINCIPAL\tREASON\tEXPIRES")
	for _, r := range resp.Approvals {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.State, audit.OneLine(r.Tool), audit.OneLine(r.Principal), audit.OneLine(r.Reason), r.ExpiresAt.Format(time.RFC3339))
	}
	return tw.Flush()
}

// runApprovalsShow is `warden approvals show`.
func runApprovalsShow(ctx context.Context, out io.Writer, c *adminClient, id, format string) error {
	if err := checkID("approval", id); err != nil {
		return err
	}
	var resp admin.ApprovalResponse
	if err := c.do(ctx, http.MethodGet, "/v1/approvals/"+id, nil, nil, &resp); err != nil {
		return err
	}
	if format == "json" {
		return writeJSONLine(out, resp)
	}
	printApproval(out, resp.Approval)
	return nil
}

// runApprovalsDecide is `warden approvals approve` and `deny`.
func runApprovalsDecide(ctx context.Context, out io.Writer, c *adminClient, id string, approve bool, comment, format string) error {
	if err := checkID("approval", id); err != nil {
		return err
	}
	verb := "deny"
	if approve {
		verb = "approve"
	}
	var resp admin.ApprovalResponse
	if err := c.do(ctx, http.MethodPost, "/v1/approvals/"+id+"/"+verb, nil, admin.DecisionRequest{Comment: comment}, &resp); err != nil {
		return err
	}
	if format == "json" {
		return writeJSONLine(out, resp)
	}
	fmt.Fprintf(out, "approval request %s %s by %s\n", resp.Approval.ID, resp.Approval.State, resp.Approval.DecidedBy)
	return nil
}

func printApproval(out io.Writer, r approval.Request) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, audit.OneLine(v))
		}
	}
	row("id", r.ID)
	row("state", string(r.State))
	row("tool", r.Tool)
	row("upstream", r.Upstream)
	row("principal", r.Principal)
	row("task", r.Task)
	row("reason", r.Reason)
	row("rules", strings.Join(r.Rules, ", "))
	row("approvers", strings.Join(r.Approvers, ", "))
	row("policy", r.PolicyVersion)
	row("args digest", r.ArgsDigest)
	row("created", r.CreatedAt.Format(time.RFC3339))
	row("expires", r.ExpiresAt.Format(time.RFC3339))
	if !r.DecidedAt.IsZero() {
		row("decided", r.DecidedAt.Format(time.RFC3339)+" by "+r.DecidedBy)
		row("comment", r.Comment)
	}
	if !r.UsedAt.IsZero() {
		row("used", r.UsedAt.Format(time.RFC3339))
	}
	tw.Flush()
	fmt.Fprintln(out, "arguments:")
	var pretty []byte
	if len(r.Args) > 0 {
		var v any
		if json.Unmarshal(r.Args, &v) == nil {
			pretty, _ = json.MarshalIndent(v, "  ", "  ")
		}
	}
	if pretty == nil {
		pretty = []byte("(none)")
	}
	fmt.Fprintf(out, "  %s\n", pretty)
}
