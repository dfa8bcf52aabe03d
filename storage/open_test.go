package storage_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/retry"
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
// who trades commit durability for retry precision, and overrides the
// writers' own settings.
func TestOpenPostgresServerSettings(t *testing.T) {
	s, err := storage.Open(t.Context(), storage.Config{DSN: pgtest.DSN(t) + "&synchronous_commit=off&plan_cache_mode=auto&enable_seqscan=on"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for setting, want := range map[string]string{"synchronous_commit": "off", "plan_cache_mode": "auto", "enable_seqscan": "on", "enable_hashjoin": "off"} {
		var got string
		if err := s.DB().QueryRowContext(t.Context(), "SHOW "+setting).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s = %q; want %s", setting, got, want)
		}
	}
}

// TestPostgresWriters: Config.Writers, not the read pool's size, sets how
// many connections write at once, and the pool makes room for them, the
// two claimers and as many shared connections as the read pool has.
func TestPostgresWriters(t *testing.T) {
	dsn := pgtest.DSN(t)
	for _, writers := range []int{1, 3} {
		s, err := storage.Open(t.Context(), storage.Config{DSN: dsn, Writers: writers, ReadConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 64 {
			wg.Go(func() {
				id := fmt.Sprintf("w%d-%d", writers, i)
				if _, err := s.Create(t.Context(), retry.NewRun{ID: id, JourneyID: "j", StartNodeID: "a"}, time.Now()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		st := s.DB().Stats()
		if st.OpenConnections > writers {
			t.Errorf("writers=%d: 64 concurrent writes opened %d connections", writers, st.OpenConnections)
		}
		if want := writers + 2 + 8; st.MaxOpenConnections != want {
			t.Errorf("writers=%d: pool bound %d; want %d", writers, st.MaxOpenConnections, want)
		}
	}
}
