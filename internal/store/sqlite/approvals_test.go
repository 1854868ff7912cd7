package sqlite

import (
	"testing"

	"github.com/wardenmcp/warden/internal/approval"
	"github.com/wardenmcp/warden/internal/approval/approvaltest"
)

func TestApprovalStore(t *testing.T) {
	approvaltest.StoreSuite(t, func(t *testing.T) approval.Store { return openTestDB(t).Approvals() })
}
