package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

const benchSQL = "SELECT id, owner, balance FROM accounts ORDER BY id"

// BenchmarkDirectPgx is the baseline: the same query through a pgx pool,
// with no role switch, transaction, reset or MCP.
func BenchmarkDirectPgx(b *testing.B) {
	f := newFixture(b, Config{StatementTimeout: noDeadline})
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, f.server.DSN(f.db))
	if err != nil {
		b.Fatalf("pool: %v", err)
	}
	defer pool.Close()
	b.ReportAllocs()
	for b.Loop() {
		rows, err := pool.Query(ctx, benchSQL)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for rows.Next() {
			if _, err := rows.Values(); err != nil {
				b.Fatal(err)
			}
			n++
		}
		if err := rows.Err(); err != nil || n != 3 {
			b.Fatalf("rows %d, err %v", n, err)
		}
	}
}

// BenchmarkConnectorQuery is the same query as a query tool call through an
// in-memory MCP client: transaction, SET LOCAL ROLE, settings, the
// statement, rollback, DISCARD ALL and the MCP round trip.
func BenchmarkConnectorQuery(b *testing.B) {
	f := newFixture(b, Config{StatementTimeout: noDeadline})
	args := sqlArgs(benchSQL)
	scope := map[string]any{"customer_id": "42"}
	b.ReportAllocs()
	for b.Loop() {
		res := f.call(b, ToolQuery, args, scope)
		if res.IsError {
			b.Fatal(resultText(res))
		}
	}
}

// BenchmarkConnectorDatabasePath is the connector's database work alone
// (BenchmarkConnectorQuery without MCP): it separates the cost of least
// privilege from the cost of the protocol.
func BenchmarkConnectorDatabasePath(b *testing.B) {
	f := newFixture(b, Config{StatementTimeout: noDeadline})
	r := runner{cfg: f.cfg.WithDefaults(), pool: f.pool}
	st := statement{sql: benchSQL, scope: []scopeSetting{{name: "warden.customer_id", value: "42"}}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := r.run(ctx, readOnly, st)
		if err != nil || res.RowCount != 3 {
			b.Fatalf("rows %v, err %v", res, err)
		}
	}
}
