package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"
	"github.com/wardenmcp/warden/connector/postgres"
	"github.com/wardenmcp/warden/pkg/verify"
)

// newConnectorCmd returns `warden connector`, which runs a built-in
// connector as an MCP server over stdio for Warden (or any MCP client) to
// spawn.
func newConnectorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "connector",
		Short: "Run a built-in connector as an MCP server over stdio",
	}
	cmd.AddCommand(newConnectorPostgresCmd())
	return cmd
}

func newConnectorPostgresCmd() *cobra.Command {
	var (
		cfg                       postgres.Config
		dsnEnv                    string
		jwksURL, issuer, audience string
	)
	cmd := &cobra.Command{
		Use:   "postgres",
		Short: "Serve the least-privilege PostgreSQL connector over stdio",
		Long: `Serve the PostgreSQL connector's tools (query, list_tables, describe_table,
and execute when listed in --tools) as an MCP server on stdin/stdout.

The connection string is read from the environment variable named by
--dsn-env, never from a flag or a file. It must log in as the connector's
login role (see warden db bootstrap): the connector checks at start that the
role is not a superuser, is NOINHERIT, holds no privileges of its own and is a
member of the read and write roles, and refuses to start otherwise.

Logs go to stderr. Exit status: 0 when the client disconnects, 1 on an error.`,
		Example: `  WARDEN_PG_DSN=postgres://warden_connector@db/app warden connector postgres --tools query,list_tables,describe_table,execute`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Validate(); err != nil {
				return err
			}
			dsn := os.Getenv(dsnEnv)
			if dsn == "" {
				return fmt.Errorf("environment variable %s is empty or unset", dsnEnv)
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			if jwksURL != "" {
				// Every call must then carry Warden's credential for it; the
				// task scope comes from the credential, not from the request.
				v, err := verify.New(verify.Options{Issuer: issuer, Audience: audience, JWKSURL: jwksURL}, verify.NewMemoryReplayCache(nil))
				if err != nil {
					return &exitError{exitUsage, err}
				}
				cfg.Verifier = v
			} else {
				logger.Warn("no --jwks-url: the task scope in each request's _meta is trusted; run this connector only where nothing but Warden can reach it")
			}
			return postgres.Serve(cmd.Context(), cfg, dsn, &mcp.StdioTransport{}, logger)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dsnEnv, "dsn-env", "WARDEN_PG_DSN", "environment variable holding the DSN")
	f.StringVar(&cfg.ReadRole, "read-role", postgres.DefaultReadRole, "role for query, list_tables and describe_table")
	f.StringVar(&cfg.WriteRole, "write-role", postgres.DefaultWriteRole, "role for execute")
	f.DurationVar(&cfg.StatementTimeout, "statement-timeout", postgres.DefaultStatementTimeout, "statement timeout of each call")
	f.IntVar(&cfg.MaxRows, "max-rows", postgres.DefaultMaxRows, "most rows a call returns")
	f.IntVar(&cfg.MaxResultBytes, "max-result-bytes", postgres.DefaultMaxResultBytes, "most bytes of values a call returns")
	f.StringSliceVar(&cfg.Tools, "tools", nil, "tools to serve (default: query,list_tables,describe_table)")
	f.StringVar(&jwksURL, "jwks-url", "", "Warden's JWKS URL (http://<listen>/.well-known/jwks.json): require a valid per-call credential on every call")
	f.StringVar(&issuer, "issuer", "warden", "issuer of Warden's credentials (credentials.issuer)")
	f.StringVar(&audience, "audience", "db", "this connector's upstream name in Warden's configuration (the credentials' audience)")
	return cmd
}
