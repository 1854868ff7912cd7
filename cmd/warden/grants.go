package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	"github.com/wardenmcp/warden/internal/grant"
)

const grantsExitCodes = `Exit status: 0 on success; 1 when the admin API refuses the request
(unknown grant, a grant wider than allowed, a bad key); 2 on bad arguments
or when the admin API cannot be reached.`

// adminFlags are the flags every command of the admin API shares
// (grants, approvals).
type adminFlags struct {
	adminURL string
	keyEnv   string
	format   string
}

// register adds the flags to cmd and its subcommands.
func (f *adminFlags) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.adminURL, "admin", "http://127.0.0.1:8081", "the admin API's base `URL`")
	pf.StringVar(&f.keyEnv, "key-env", "WARDEN_ADMIN_KEY", "the environment `VARIABLE` holding the admin key")
	pf.StringVar(&f.format, "format", "text", "output `FORMAT`: text or json")
}

// checkID refuses an id that could not have come from Warden, so that it
// cannot alter the request path; what names it in the error (grant,
// approval).
func checkID(what, id string) error {
	if id == "" || len(id) > 100 || strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) >= 0 {
		return &exitError{exitUsage, fmt.Errorf("%s id %q is not valid", what, id)}
	}
	return nil
}

// newGrantsCmd returns `warden grants`, the commands that issue, list and
// revoke task grants through the admin API.
func newGrantsCmd() *cobra.Command {
	f := &adminFlags{}
	cmd := &cobra.Command{
		Use:   "grants",
		Short: "Issue, list and revoke task grants through the admin API",
		Long: `A task grant bounds one agent task: the principal that may use it, the
tools it covers, the scope policy reads as task.scope, a call budget, a rate
and an expiry. The application that starts a task issues a grant and hands
its token (wg_...) to the client, which presents it with every call in the
Warden-Task header. Grants expire, can be revoked, and can only be narrowed.

These commands talk to a running Warden's admin API (--admin). The admin key
is read from the environment variable named by --key-env, never from a flag,
so it stays out of shell history and process listings.

` + grantsExitCodes,
	}
	f.register(cmd)
	cmd.AddCommand(newGrantsCreateCmd(f), newGrantsListCmd(f), newGrantsRevokeCmd(f))
	return cmd
}

func newGrantsCreateCmd(f *adminFlags) *cobra.Command {
	var (
		req    admin.GrantRequest
		scope  []string
		budget int64
		rate   int64
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Issue a task grant and print its token (shown only once)",
		Example: `  export WARDEN_ADMIN_KEY=...
  warden grants create --principal alice --tools shop.get_order,shop.refund_order \
      --scope order_id=12345 --budget 100 --rate 60 --ttl 1h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAdminClient(f, os.Getenv)
			if err != nil {
				return err
			}
			if req.Scope, err = parseScope(scope); err != nil {
				return &exitError{exitUsage, err}
			}
			req.Budget, req.Rate = budget, rate
			return runGrantsCreate(cmd.Context(), cmd.OutOrStdout(), c, req, f.format)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.Principal, "principal", "", "the principal `ID` that may present the grant (required)")
	fl.StringSliceVar(&req.Tools, "tools", nil, "tool `NAMES` or globs the grant covers, comma-separated (required)")
	fl.StringArrayVar(&scope, "scope", nil, "a scope entry `KEY=VALUE` policy reads as task.scope (repeatable)")
	fl.Int64Var(&budget, "budget", 0, "the most calls the grant allows; 0 is unlimited")
	fl.Int64Var(&rate, "rate", 0, "calls per minute the grant allows; 0 is unlimited")
	fl.StringVar(&req.TTL, "ttl", "1h", "how long the grant lives (`DURATION`, e.g. 30m, 8h)")
	fl.StringSliceVar(&req.Labels, "labels", nil, "`LABELS` the task starts with, comma-separated")
	cmd.MarkFlagRequired("principal")
	cmd.MarkFlagRequired("tools")
	return cmd
}

func newGrantsListCmd(f *adminFlags) *cobra.Command {
	var principal string
	var limit int
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List task grants, oldest first",
		Example: `  warden grants list --principal alice --format json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAdminClient(f, os.Getenv)
			if err != nil {
				return err
			}
			return runGrantsList(cmd.Context(), cmd.OutOrStdout(), c, principal, limit, f.format)
		},
	}
	cmd.Flags().StringVar(&principal, "principal", "", "only this principal's grants")
	cmd.Flags().IntVar(&limit, "limit", grant.DefaultListLimit, "the most grants to list")
	return cmd
}

func newGrantsRevokeCmd(f *adminFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a task grant and every grant derived from it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAdminClient(f, os.Getenv)
			if err != nil {
				return err
			}
			return runGrantsRevoke(cmd.Context(), cmd.OutOrStdout(), c, args[0], f.format)
		},
	}
}

// adminClient calls the admin API with an admin key.
type adminClient struct {
	base *url.URL
	key  string
	http *http.Client
}

// newAdminClient checks the shared flags and reads the admin key from the
// environment through getenv.
func newAdminClient(f *adminFlags, getenv func(string) string) (*adminClient, error) {
	if f.format != "text" && f.format != "json" {
		return nil, &exitError{exitUsage, fmt.Errorf("--format %q: use text or json", f.format)}
	}
	u, err := url.Parse(f.adminURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &exitError{exitUsage, fmt.Errorf("--admin %q: need an http or https URL", f.adminURL)}
	}
	if f.keyEnv == "" {
		return nil, &exitError{exitUsage, errors.New("--key-env: name the environment variable holding the admin key")}
	}
	key := strings.TrimSpace(getenv(f.keyEnv))
	if key == "" {
		return nil, &exitError{exitUsage, fmt.Errorf("the environment variable %s holding the admin key is empty or unset", f.keyEnv)}
	}
	return &adminClient{base: u, key: key, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// do sends a request to the admin API and decodes a successful answer into
// out. A refusal is an exit error with code 1 carrying the API's message.
func (c *adminClient) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := c.base.JoinPath(path)
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return &exitError{exitUsage, fmt.Errorf("encode request: %w", err)}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return &exitError{exitUsage, fmt.Errorf("admin API request: %w", err)}
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &exitError{exitUsage, fmt.Errorf("admin API: %w", err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return &exitError{exitUsage, fmt.Errorf("admin API: read answer: %w", err)}
	}
	if resp.StatusCode >= 300 {
		var e admin.ErrorResponse
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return &exitError{exitFailure, fmt.Errorf("admin API: %s: %s", resp.Status, e.Error)}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &exitError{exitUsage, fmt.Errorf("admin API: decode answer: %w", err)}
	}
	return nil
}

// runGrantsCreate is `warden grants create`.
func runGrantsCreate(ctx context.Context, out io.Writer, c *adminClient, req admin.GrantRequest, format string) error {
	if req.Principal == "" || len(req.Tools) == 0 {
		return &exitError{exitUsage, errors.New("--principal and --tools are required")}
	}
	var resp admin.GrantResponse
	if err := c.do(ctx, http.MethodPost, "/v1/grants", nil, req, &resp); err != nil {
		return err
	}
	if format == "json" {
		return writeJSONLine(out, resp)
	}
	fmt.Fprintf(out, "grant %s for %s, expires %s\n", resp.Grant.ID, resp.Grant.Principal, resp.Grant.ExpiresAt.Format(time.RFC3339))
	fmt.Fprintf(out, "token: %s\n", resp.Token)
	fmt.Fprintln(out, "(the token is shown only now; the client sends it in the Warden-Task header)")
	return nil
}

// runGrantsList is `warden grants list`.
func runGrantsList(ctx context.Context, out io.Writer, c *adminClient, principal string, limit int, format string) error {
	q := url.Values{}
	if principal != "" {
		q.Set("principal", principal)
	}
	q.Set("limit", strconv.Itoa(limit))
	var resp admin.ListResponse
	if err := c.do(ctx, http.MethodGet, "/v1/grants", q, nil, &resp); err != nil {
		return err
	}
	if format == "json" {
		return writeJSONLine(out, resp)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPRINCIPAL\tTOOLS\tUSED\tBUDGET\tEXPIRES\tSTATE")
	for _, g := range resp.Grants {
		budget := "-"
		if g.Budget > 0 {
			budget = strconv.FormatInt(g.Budget, 10)
		}
		state := "active"
		switch {
		case !g.RevokedAt.IsZero():
			state = "revoked"
		case !g.ExpiresAt.After(time.Now()):
			state = "expired"
		case g.Budget > 0 && g.Used >= g.Budget:
			state = "exhausted"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", g.ID, g.Principal, strings.Join(g.Tools, ","),
			g.Used, budget, g.ExpiresAt.Format(time.RFC3339), state)
	}
	return tw.Flush()
}

// runGrantsRevoke is `warden grants revoke`.
func runGrantsRevoke(ctx context.Context, out io.Writer, c *adminClient, id, format string) error {
	if err := checkID("grant", id); err != nil {
		return err
	}
	var resp admin.GrantResponse
	if err := c.do(ctx, http.MethodPost, "/v1/grants/"+id+"/revoke", nil, nil, &resp); err != nil {
		return err
	}
	if format == "json" {
		return writeJSONLine(out, resp)
	}
	fmt.Fprintf(out, "grant %s revoked at %s\n", resp.Grant.ID, resp.Grant.RevokedAt.Format(time.RFC3339))
	return nil
}

// parseScope turns KEY=VALUE entries into a scope.
func parseScope(entries []string) (map[string]string, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	scope := make(map[string]string, len(entries))
	for _, e := range entries {
		k, v, ok := strings.Cut(e, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--scope %q: want KEY=VALUE", e)
		}
		if _, dup := scope[k]; dup {
			return nil, fmt.Errorf("--scope: key %q given twice", k)
		}
		scope[k] = v
	}
	return scope, nil
}

func writeJSONLine(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
