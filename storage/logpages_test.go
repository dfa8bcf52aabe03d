package storage_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// TestSQLiteLogPages: the transactions of the attempt path write no page
// of an index whose entries they leave as they are. Every page a SQLite
// transaction changes is a frame of the log (a write, and later a copy
// back to the database), so each index an UPDATE names for nothing costs
// every attempt: a new run has no entry in the next_retry_at index, and a
// failure retried at once, keeping its claim, leaves the due_at and
// next_retry_at indexes as they were.
func TestSQLiteLogPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.db")
	s := open(t, path)
	ctx := t.Context()
	// written returns the trees (tables and indexes) whose pages op's
	// transaction put in the log.
	written := func(op func()) []string {
		t.Helper()
		if _, err := s.DB().ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() != 0 {
			t.Fatalf("the log after a truncating checkpoint: %v, %v; want it empty", fi, err)
		}
		op()
		log, err := os.ReadFile(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		names := map[uint32]string{}
		rows, err := s.DB().QueryContext(ctx, `SELECT name, pageno FROM dbstat`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var name string
			var page uint32
			if err := rows.Scan(&name, &page); err != nil {
				t.Fatal(err)
			}
			names[page] = name
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		const header, frameHeader, pageSize = 32, 24, 4096
		var trees []string
		for off := header; off+frameHeader <= len(log); off += frameHeader + pageSize {
			trees = append(trees, names[binary.BigEndian.Uint32(log[off:])])
		}
		slices.Sort(trees)
		return slices.Compact(trees)
	}
	now := time.Now()
	nr := retry.NewRun{JourneyID: "j", StartNodeID: "n", MaxRetries: 3, Worker: "w", Lease: time.Minute}
	// Runs enough that every tree has a page of its own.
	for range 49 {
		if _, err := s.Create(ctx, nr, now); err != nil {
			t.Fatal(err)
		}
	}
	var run retry.Run
	var err error
	created := written(func() { run, err = s.Create(ctx, nr, now) })
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(created, "idx_journey_runs_next_retry_at") {
		t.Errorf("creating a run wrote %v; want no page of idx_journey_runs_next_retry_at", created)
	}
	f := retry.FailureRecord{NodeID: "n", Class: retry.ClassNetworkBlip, Message: "reset", Decision: retry.Decision{Retry: true}, FinishedAt: now}
	failed := written(func() { run, err = s.RecordFailure(ctx, run.Claim(), f) })
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != retry.StatusInProgress || run.ClaimToken == "" {
		t.Fatalf("a failure retried at once left %s with token %q; want it in progress under its claim", run.Status, run.ClaimToken)
	}
	if !slices.Contains(failed, "journey_runs") || slices.Contains(failed, "idx_journey_runs_due_at") || slices.Contains(failed, "idx_journey_runs_next_retry_at") {
		t.Errorf("a failure retried at once wrote %v; want journey_runs, and no page of idx_journey_runs_due_at or idx_journey_runs_next_retry_at", failed)
	}
}
