package storage_test

import (
	"path/filepath"
	"testing"

	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage"
	"github.com/journeyretry/journeyretry/storage/pgtest"
	"github.com/journeyretry/journeyretry/storage/storetest"
)

// open opens and migrates a store on dsn, closed when the test ends.
func open(t *testing.T, dsn string) *storage.Store {
	t.Helper()
	s, err := storage.Open(t.Context(), storage.Config{DSN: dsn})
	if err != nil {
		t.Fatalf("Open(%q): %v", dsn, err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

// factory gives each check a fresh database from newDSN; Open opens more
// handles on it.
func factory(newDSN func(t *testing.T) string) storetest.Factory {
	return func(t *testing.T) storetest.Backend {
		dsn := newDSN(t)
		return storetest.Backend{
			Store: open(t, dsn),
			Open:  func(t *testing.T) retry.Store { return open(t, dsn) },
		}
	}
}

func sqliteFile(t *testing.T) string { return filepath.Join(t.TempDir(), "runs.db") }

func TestConformanceSQLite(t *testing.T) {
	storetest.Run(t, factory(sqliteFile))
}

func TestConformanceSQLiteMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		return storetest.Backend{Store: open(t, ":memory:")}
	})
}

func TestConformancePostgres(t *testing.T) {
	storetest.Run(t, factory(func(t *testing.T) string { return pgtest.DSN(t) }))
}
