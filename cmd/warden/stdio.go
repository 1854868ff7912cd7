package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
)

func newStdioCmd() *cobra.Command {
	var (
		configPath string
		verbose    bool
	)
	cmd := &cobra.Command{
		Use:   "stdio --config FILE",
		Short: "Serve one MCP client over standard input and output",
		Long: `Serve one MCP client over newline-delimited JSON-RPC on standard input and
output, for desktop hosts that spawn their servers. Logs go to standard error.
The caller is the local user, or the principal named in the configuration.
With admin_listen set, the admin API (task grants, approvals) is served too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath == "" {
				return &exitError{exitUsage, errors.New("--config is required")}
			}
			rt, err := build(configPath, cmd.ErrOrStderr(), logLevel(verbose))
			if err != nil {
				return err
			}
			defer rt.Close()
			ctx := cmd.Context()
			stop, err := rt.start(ctx)
			if err != nil {
				return err
			}
			defer stop()
			if err := rt.gateway.Start(ctx); err != nil {
				return err
			}
			serveErr := rt.gateway.ServeStdio(ctx, cmd.InOrStdin(), cmd.OutOrStdout())
			sctx, cancel := context.WithTimeout(context.Background(), rt.cfg.ShutdownTimeout)
			defer cancel()
			return errors.Join(serveErr, rt.gateway.Close(sctx))
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "configuration file (YAML)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log debug detail")
	return cmd
}
