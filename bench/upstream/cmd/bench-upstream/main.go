// Command bench-upstream runs the load harness's minimal MCP server on its
// own: `bench-upstream -listen 127.0.0.1:9100`. `warden bench` runs the
// same server by starting its own binary as `warden bench upstream`.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/wardenmcp/warden/bench/upstream"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "loopback host:port to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ln, err := upstream.Listen(*listen)
	if err == nil {
		err = upstream.Serve(ctx, ln, logger)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-upstream:", err)
		os.Exit(1)
	}
}
