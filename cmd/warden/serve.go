package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func newServeCmd() *cobra.Command {
	var (
		configPath string
		listen     string
		verbose    bool
	)
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Serve MCP over Streamable HTTP at http://<listen>/mcp",
		Long: `Serve MCP over Streamable HTTP. Clients connect to http://<listen>/mcp; every
request passes Warden's pipeline before it reaches an upstream.

On SIGINT or SIGTERM, Warden stops accepting requests and gives requests in
flight up to shutdown_timeout to finish.`,
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
			if listen != "" {
				rt.cfg.Listen = listen
			}
			ln, err := net.Listen("tcp", rt.cfg.Listen)
			if err != nil {
				return fmt.Errorf("listening: %w", err)
			}
			stop, err := rt.start(cmd.Context())
			if err != nil {
				return err
			}
			defer stop()
			return serve(cmd.Context(), ln, rt.gateway, rt.cfg.ShutdownTimeout, rt.logger.Info)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "configuration file (YAML)")
	cmd.Flags().StringVar(&listen, "listen", "", "override the configured listen address (host:port)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log debug detail")
	return cmd
}

// serveAdmin serves the admin API on its own listener, apart from the MCP
// endpoint, until the returned stop is called.
func serveAdmin(addr string, h http.Handler, logf func(string, ...any)) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	logf("admin API serving", "url", "http://"+ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// reloadSignal delivers SIGHUP, which asks for the policy to be reloaded.
func reloadSignal(ctx context.Context) <-chan os.Signal {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	context.AfterFunc(ctx, func() { signal.Stop(ch) })
	return ch
}

// gatewayServer is what serve needs of a gateway.
type gatewayServer interface {
	Start(context.Context) error
	Handler() http.Handler
	Close(context.Context) error
}

// serve runs the gateway on ln until ctx is done, then shuts down within
// the timeout: new requests are refused, requests in flight finish or fail.
func serve(ctx context.Context, ln net.Listener, g gatewayServer, shutdownTimeout time.Duration, logf func(string, ...any)) error {
	if err := g.Start(ctx); err != nil {
		return err
	}
	srv := &http.Server{Handler: g.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logf("warden serving", "url", "http://"+ln.Addr().String()+"/mcp")

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logf("warden shutting down", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	closeErr := g.Close(sctx)
	// Sessions are closed; streams still open are cut at the deadline.
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	return closeErr
}
