package sqlite

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/wardenmcp/warden/internal/audit"
	"github.com/wardenmcp/warden/internal/audit/audittest"
)

func openTestDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "warden.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestAuditStore(t *testing.T) {
	audittest.StoreSuite(t, func(t *testing.T) audit.Store { return openTestDB(t).Audit() })
}
