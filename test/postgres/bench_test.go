package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// benchSQL is the statement every benchmark runs: a small read.
const benchSQL = "SELECT id, owner, balance FROM accounts ORDER BY id"

// BenchmarkConnectorThroughWarden is one analyst query over the whole path:
// Streamable HTTP client → Warden (identity, validation, SQL classification
// and policy, audit log) → built-in connector (role, read-only transaction)
// → PostgreSQL, and back.
func BenchmarkConnectorThroughWarden(b *testing.B) {
	_, _, cs := connectorThroughWarden(b, nil)
	ctx := context.Background()
	params := &mcp.CallToolParams{Name: "db.query", Arguments: map[string]any{"sql": benchSQL}}
	for b.Loop() {
		res, err := cs.CallTool(ctx, params)
		if err != nil || res.IsError {
			b.Fatalf("db.query: %v %s", err, resultText(res))
		}
	}
}

// BenchmarkConnectorDirect is the same query to the connector over an
// in-memory transport, without Warden: the difference to
// BenchmarkConnectorThroughWarden is Warden's cost.
func BenchmarkConnectorDirect(b *testing.B) {
	d := newDatabase(b)
	srv := startConnector(b, d, exampleConfig(b, "warden.yaml"))
	ctx := context.Background()
	st, ct := mcp.NewInMemoryTransports()
	ss, err := srv.Connect(ctx, st, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ss.Close() })
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1.0.0"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cs.Close() })
	params := &mcp.CallToolParams{Name: "query", Arguments: map[string]any{"sql": benchSQL}}
	for b.Loop() {
		res, err := cs.CallTool(ctx, params)
		if err != nil || res.IsError {
			b.Fatalf("query: %v %s", err, resultText(res))
		}
	}
}

// BenchmarkDirectPgx is the same query with the driver alone, as the table
// owner, on a pooled connection: the floor.
func BenchmarkDirectPgx(b *testing.B) {
	d := newDatabase(b)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, d.ownerDSN())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	type account struct {
		ID      int
		Owner   string
		Balance string
	}
	for b.Loop() {
		rows, err := pool.Query(ctx, benchSQL)
		if err != nil {
			b.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (account, error) {
			var a account
			err := r.Scan(&a.ID, &a.Owner, &a.Balance)
			return a, err
		})
		if err != nil || len(got) != 3 {
			b.Fatalf("rows %v: %v", got, err)
		}
	}
}
