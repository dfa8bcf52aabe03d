package storage

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage/pgtest"
)

// openPG opens and migrates a store on a fresh PostgreSQL schema.
func openPG(t *testing.T) *Store {
	t.Helper()
	return openMigrated(t, pgtest.DSN(t))
}

// TestClaimSkipsLockedRow: a by-id claim of a run whose row another
// transaction holds returns at once, not claimable, instead of waiting
// for that transaction (which, inside a shared batch, could be waiting for
// the claimer's own batch: a deadlock).
func TestClaimSkipsLockedRow(t *testing.T) {
	s := openPG(t)
	ctx := t.Context()
	now := time.Now()
	if _, err := s.Create(ctx, retry.NewRun{ID: "r1", JourneyID: "j", StartNodeID: "a"}, now); err != nil {
		t.Fatal(err)
	}
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM journey_runs WHERE id = 'r1' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.ClaimRun(context.Background(), "r1", "w", now, time.Minute)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, retry.ErrNotClaimable) {
			t.Fatalf("ClaimRun of a locked row: %v; want ErrNotClaimable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ClaimRun waited for a locked row")
	}
	if runs, err := s.ClaimDue(ctx, "w", now, now, time.Minute, 10); err != nil || len(runs) != 0 {
		t.Fatalf("ClaimDue with the only due row locked: %d runs, %v; want none", len(runs), err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimRun(ctx, "r1", "w", now, time.Minute); err != nil {
		t.Fatalf("ClaimRun once the row is free: %v", err)
	}
}

// TestBatchesLockInIDOrder: two batches that write the same two runs,
// queued in opposite orders, each holding its first row while the other
// takes its own, do not deadlock: every batch writes its runs in id order.
func TestBatchesLockInIDOrder(t *testing.T) {
	s := openPG(t)
	ctx := t.Context()
	now := time.Now()
	for _, id := range []string{"a", "b"} {
		if _, err := s.Create(ctx, retry.NewRun{ID: id, JourneyID: "j", StartNodeID: "a"}, now); err != nil {
			t.Fatal(err)
		}
	}
	// The first write each batch runs signals, and goes on once the other
	// batch's first write signalled too, or after a while (in id order the
	// other batch waits for this one's row instead of taking its own).
	var firsts sync.WaitGroup
	firsts.Add(2)
	var mu sync.Mutex
	var stmtErrs []error
	batch := func(ids ...string) []*writeOp {
		started := false
		var ops []*writeOp
		for _, id := range ids {
			ops = append(ops, &writeOp{ctx: ctx, key: id, done: make(chan error, 1), fn: func(ctx context.Context, tx queryer) error {
				_, err := tx.ExecContext(ctx, `UPDATE journey_runs SET updated_at = updated_at WHERE id = ?`, id)
				if err != nil {
					mu.Lock()
					stmtErrs = append(stmtErrs, err)
					mu.Unlock()
				}
				if !started {
					started = true
					firsts.Done()
					wait := make(chan struct{})
					go func() { firsts.Wait(); close(wait) }()
					select {
					case <-wait:
					case <-time.After(500 * time.Millisecond):
					}
				}
				return err
			}})
		}
		return ops
	}
	runTogether(t, s, [][]*writeOp{batch("a", "b"), batch("b", "a")}, func() []error { return stmtErrs })
}

// runTogether runs batches at once and fails t if a statement failed
// (stmtErrs, read once they are done: what the statements met, before a
// batch replays it away) or a write did.
func runTogether(t *testing.T, s *Store, batches [][]*writeOp, stmtErrs func() []error) {
	t.Helper()
	var wg sync.WaitGroup
	for _, b := range batches {
		wg.Go(func() { s.runBatch(b) })
	}
	wg.Wait()
	for _, err := range stmtErrs() {
		t.Errorf("a batch's statement failed (a deadlock the batch then replayed one op at a time?): %v", err)
	}
	for i, b := range batches {
		for _, w := range b {
			if err := <-w.done; err != nil {
				t.Errorf("batch %d, write of %s: %v", i, w.key, err)
			}
		}
	}
}
