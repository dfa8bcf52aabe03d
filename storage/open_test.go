package storage_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/journeyretry/journeyretry/storage"
	"github.com/journeyretry/journeyretry/storage/pgtest"
)

// TestOpenSQLiteNamesTheCause: opening a SQLite path that cannot be a
// database says why, not the driver's "out of memory (14)".
func TestOpenSQLiteNamesTheCause(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dsn, want string }{
		{dir, "is a folder, not a database file"},
		{filepath.Join(file, "runs.db"), "is not a folder"},
		{filepath.Join(dir, "missing", "runs.db"), "no such file or directory"},
		{"/sys/runs.db", "folder /sys is not writable"}, // read-only even for root
	} {
		s, err := storage.Open(t.Context(), storage.Config{DSN: tc.dsn})
		if err == nil {
			s.Close()
			t.Errorf("Open(%s) succeeded", tc.dsn)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "out of memory") {
			t.Errorf("Open(%s): %v; want it to say %q", tc.dsn, err, tc.want)
		}
	}
}

// TestOpenPostgresServerSettings: a server setting in the DSN's query
// reaches every connection of the store, as the README tells an operator
// who trades commit durability for retry precision.
func TestOpenPostgresServerSettings(t *testing.T) {
	s, err := storage.Open(t.Context(), storage.Config{DSN: pgtest.DSN(t) + "&synchronous_commit=off"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got string
	if err := s.DB().QueryRowContext(t.Context(), "SHOW synchronous_commit").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "off" {
		t.Errorf("synchronous_commit = %q; want off, as the DSN sets it", got)
	}
}
