// Command warden is a least-privilege policy gateway for the Model Context
// Protocol: it stands between MCP clients and servers and decides every call.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes shared by every command.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and found a problem (a denial, a broken chain)
	exitUsage   = 2 // bad arguments, unreadable files
)

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// gcPercent and memoryLimit tune the collector for a relay: every message
// the protocol library decodes allocates tens of kilobytes that die at
// once, so collecting less often cuts the CPU per call by about half
// (bench/NOTES.md), while the soft limit keeps the heap bounded. 300 rather
// than 400 keeps the gateway's peak RSS under load below 100 MiB (about 86
// against 98–107 MiB in `warden bench`). GOGC and GOMEMLIMIT in the
// environment take precedence.
const (
	gcPercent   = 300
	memoryLimit = 512 << 20
)

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile := startCPUProfile(os.Getenv("WARDEN_CPUPROFILE"))
	root := newRootCmd()
	err := root.ExecuteContext(ctx)
	stopProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "warden:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(exitUsage)
	}
}

// startCPUProfile writes a CPU profile of the whole run to path, if set:
// how bench/NOTES.md profiles a gateway under load (`warden bench` passes
// its environment to the processes it starts).
func startCPUProfile(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	fh, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid()))
	if err == nil {
		err = pprof.StartCPUProfile(fh)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "warden: WARDEN_CPUPROFILE:", err)
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); fh.Close() }
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "warden",
		Short: "A least-privilege policy gateway for the Model Context Protocol",
		Long: `Warden sits between MCP clients (agent hosts) and MCP servers and decides
every call before anything executes: who is calling, which tool, with which
arguments, in which task. What is not allowed is denied.

Start with 'warden serve --config FILE' (Streamable HTTP) or
'warden stdio --config FILE' (for desktop hosts that spawn servers).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newDemoCmd(),
		newServeCmd(),
		newStdioCmd(),
		newPolicyCmd(),
		newSQLCmd(),
		newDBCmd(),
		newConnectorCmd(),
		newMaskCmd(),
		newAuditCmd(),
		newGrantsCmd(),
		newApprovalsCmd(),
		newToolsCmd(),
		newBenchCmd(),
	)
	return root
}
