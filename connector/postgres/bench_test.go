package postgres

import (
	"context"
	"testing"
)

const benchSQL = "SELECT id, owner, balance FROM accounts ORDER BY id"

// BenchmarkConnectorDatabasePath is the connector's database work alone:
// transaction, SET LOCAL ROLE, settings and task scope, the statement,
// rollback and the session reset, without MCP. Set against test/postgres's
// BenchmarkConnectorDirect (the same query as a tool call) and
// BenchmarkDirectPgx (the driver alone), it separates the cost of least
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
