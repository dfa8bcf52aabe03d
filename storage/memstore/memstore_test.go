package memstore_test

import (
	"testing"

	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage/memstore"
	"github.com/journeyretry/journeyretry/storage/storetest"
)

// The in-memory store is the suite's second reference: every check the
// Bun store passes, it passes, shared handles included.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		s := memstore.New()
		return storetest.Backend{Store: s, Open: func(*testing.T) retry.Store { return s.Handle() }}
	})
}
