package approval_test

import (
	"testing"

	"github.com/wardenmcp/warden/internal/approval"
	"github.com/wardenmcp/warden/internal/approval/approvaltest"
)

func TestMemoryStore(t *testing.T) {
	approvaltest.StoreSuite(t, func(*testing.T) approval.Store { return approval.NewMemoryStore() })
}
