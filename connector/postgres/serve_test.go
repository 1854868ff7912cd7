package postgres

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestServeRunsThePreflightAndServes(t *testing.T) {
	f := newFixture(t, Config{StatementTimeout: noDeadline})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	serverTransport, clientTransport := mcp.NewInMemoryTransports()
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, f.cfg, f.server.UserDSN(f.roles.LoginRole, f.db), serverTransport, discardLogger())
	}()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "0"}, nil).Connect(ctx, clientTransport, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: ToolQuery, Arguments: sqlArgs("SELECT count(*) FROM accounts")})
	if err != nil {
		t.Fatalf("CallTool: %v", err)
	}
	if got := mustResult(t, res); !cmp.Equal([][]any{{json.Number("3")}}, got.Rows) {
		t.Errorf("rows %v, want [[3]]", got.Rows)
	}
	_ = cs.Close()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}

	// As a superuser, Serve refuses to start.
	_, st := mcp.NewInMemoryTransports()
	err = Serve(ctx, f.cfg, f.server.DSN(f.db), st, discardLogger())
	if err == nil || !strings.Contains(err.Error(), "superuser") {
		t.Errorf("Serve as a superuser: %v, want a preflight refusal", err)
	}
	// A bad DSN is reported without echoing it.
	err = Serve(ctx, f.cfg, "postgres://u:hunter2@[::1", st, discardLogger())
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Serve with a bad DSN: %v", err)
	}
}
