package pin_test

import (
	"testing"

	"github.com/wardenmcp/warden/internal/pin"
	"github.com/wardenmcp/warden/internal/pin/pintest"
)

func TestMemoryStore(t *testing.T) {
	pintest.StoreSuite(t, func(t *testing.T) pin.Store { return pin.NewMemoryStore() })
}
