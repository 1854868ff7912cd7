package grant_test

import (
	"context"
	"testing"
	"time"

	"github.com/wardenmcp/warden/internal/grant"
	"github.com/wardenmcp/warden/internal/grant/granttest"
)

// BenchmarkResolveMemory is the identify stage's grant work per call on the
// in-memory store: parse, digest check, coverage, charge.
func BenchmarkResolveMemory(b *testing.B) {
	ctx := context.Background()
	s := grant.NewMemoryStore()
	g, token := granttest.Issue(b, grant.Spec{Principal: "alice", Tools: []string{"shop.*", "db.query"}, Scope: map[string]string{"order_id": "12345"}})
	if err := s.Create(ctx, g); err != nil {
		b.Fatal(err)
	}
	r := grant.NewResolver(s)
	now := granttest.Base.Add(time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Resolve(ctx, token, "alice", "shop.get_order", now); err != nil {
			b.Fatal(err)
		}
	}
}
