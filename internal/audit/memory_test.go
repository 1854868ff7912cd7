package audit_test

import (
	"testing"

	"github.com/wardenmcp/warden/internal/audit"
	"github.com/wardenmcp/warden/internal/audit/audittest"
)

func TestMemoryStore(t *testing.T) {
	audittest.StoreSuite(t, func(t *testing.T) audit.Store { return audit.NewMemoryStore() })
}
