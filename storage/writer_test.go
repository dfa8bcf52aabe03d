package storage

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// TestBatchIsolation runs one batch whose ops succeed, fail cleanly, fail
// after writing, and fail in the database: each caller gets its own
// outcome, and only the successful ops' writes are committed.
func TestBatchIsolation(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{DSN: filepath.Join(t.TempDir(), "runs.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	insert := func(id string) func(context.Context, queryer) error {
		return func(ctx context.Context, tx queryer) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO journey_runs (id, journey_id, status) VALUES (?, 'j', 'completed')`, id)
			return err
		}
	}
	errBoom := errors.New("boom")
	ops := []func(context.Context, queryer) error{
		insert("ok-1"),
		func(context.Context, queryer) error { return fmt.Errorf("x: %w", retry.ErrLostClaim) }, // clean
		insert("ok-2"),
		func(ctx context.Context, tx queryer) error { // wrote, then failed
			if err := insert("dirty")(ctx, tx); err != nil {
				return err
			}
			return dirty(errBoom)
		},
		insert("ok-1"), // a database error: the id is taken
		insert("ok-3"),
	}
	batch := make([]*writeOp, len(ops))
	for i, fn := range ops {
		batch[i] = &writeOp{ctx: ctx, fn: fn, done: make(chan error, 1)}
	}
	s.runBatch(batch)
	var errs []error
	for _, w := range batch {
		errs = append(errs, <-w.done)
	}
	want := []func(error) bool{
		func(err error) bool { return err == nil },
		func(err error) bool { return errors.Is(err, retry.ErrLostClaim) },
		func(err error) bool { return err == nil },
		func(err error) bool { return errors.Is(err, errBoom) },
		func(err error) bool { return err != nil && !errors.Is(err, errBoom) },
		func(err error) bool { return err == nil },
	}
	for i, ok := range want {
		if !ok(errs[i]) {
			t.Errorf("op %d: error %v", i, errs[i])
		}
	}
	for id, want := range map[string]bool{"ok-1": true, "ok-2": true, "ok-3": true, "dirty": false} {
		found, err := exists(ctx, s.db, id)
		if err != nil || found != want {
			t.Errorf("row %s exists: %v, %v; want %v", id, found, err, want)
		}
	}
}

// openTest opens and migrates a store on a fresh SQLite file: one writer,
// so queued ops run in queue order.
func openTest(t *testing.T) *Store {
	t.Helper()
	return openMigrated(t, filepath.Join(t.TempDir(), "runs.db"))
}

// openMigrated opens and migrates a store on dsn, closed when t ends.
func openMigrated(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// block is a write that holds the writer's batch until released.
type block struct {
	started, release chan struct{}
	done             chan error
}

// queueBlock queues a block; it starts when the writer reaches it.
func queueBlock(s *Store) *block {
	b := &block{started: make(chan struct{}), release: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		b.done <- s.write(context.Background(), "block", "", func(context.Context, queryer) error {
			close(b.started)
			<-b.release
			return nil
		})
	}()
	return b
}

// finish releases b and waits for its commit.
func (b *block) finish(t *testing.T) {
	t.Helper()
	close(b.release)
	if err := <-b.done; err != nil {
		t.Fatal(err)
	}
}

// waitQueued returns once n ops wait in the writer's queue.
func waitQueued(s *Store, n int) {
	for len(s.ops) < n {
		runtime.Gosched()
	}
}

var testNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// TestWriteCancelledBeforeStart cancels a RecordFailure queued behind a
// busy writer: its caller gets ctx's error, and the failure is never
// written.
func TestWriteCancelledBeforeStart(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	run, err := s.Create(ctx, retry.NewRun{JourneyID: "j", StartNodeID: "a", Worker: "w", Lease: time.Hour}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	b := queueBlock(s)
	<-b.started
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := s.RecordFailure(cctx, retry.Claim{RunID: run.ID, Token: run.ClaimToken}, retry.FailureRecord{
			NodeID: "a", FinishedAt: testNow.Add(time.Second), Decision: retry.Decision{Retry: true, Delay: time.Second}})
		errc <- err
	}()
	waitQueued(s, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("RecordFailure after cancel: %v; want context.Canceled", err)
	}
	b.finish(t)
	if err := s.write(ctx, "flush", "", func(context.Context, queryer) error { return nil }); err != nil {
		t.Fatal(err) // queued after the cancelled op: it has had its turn
	}
	got, err := s.Get(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.AttemptCount != 0 || got.Status != retry.StatusInProgress || got.ClaimToken != run.ClaimToken {
		t.Fatalf("after a cancelled RecordFailure the run is %s with %d attempts and token %q; want it unchanged",
			got.Status, got.AttemptCount, got.ClaimToken)
	}
}

// TestWriterSkipsEndedOp: an op whose ctx ended while it waited in the
// queue, before its caller noticed, is skipped by the writer and answered
// with ctx's error.
func TestWriterSkipsEndedOp(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	b := queueBlock(s)
	<-b.started
	cctx, cancel := context.WithCancel(ctx)
	w := &writeOp{ctx: cctx, done: make(chan error, 1), fn: func(ctx context.Context, tx queryer) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO journey_runs (id, journey_id, status) VALUES ('skipped', 'j', 'completed')`)
		return err
	}}
	s.ops <- w
	cancel()
	b.finish(t)
	if err := <-w.done; !errors.Is(err, context.Canceled) {
		t.Fatalf("op cancelled in the queue answered %v; want context.Canceled", err)
	}
	if found, err := exists(ctx, s.db, "skipped"); err != nil || found {
		t.Fatalf("the skipped op's row exists: %v, %v", found, err)
	}
}

// TestWriteStartedOutlivesCancel cancels a ClaimDue after the writer ran it
// but before its batch committed: the caller still gets the runs the
// commit claimed.
func TestWriteStartedOutlivesCancel(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	for range 3 {
		if _, err := s.Create(ctx, retry.NewRun{JourneyID: "j", StartNodeID: "a"}, testNow); err != nil {
			t.Fatal(err)
		}
	}
	first := queueBlock(s)
	<-first.started
	cctx, cancel := context.WithCancel(ctx)
	type result struct {
		runs []retry.Run
		err  error
	}
	resc := make(chan result, 1)
	go func() {
		runs, err := s.ClaimDue(cctx, "w", testNow, testNow, time.Hour, 10)
		resc <- result{runs, err}
	}()
	waitQueued(s, 1)
	second := queueBlock(s) // in ClaimDue's batch, after it
	waitQueued(s, 2)
	first.finish(t)
	<-second.started // ClaimDue has run; its batch is not committed
	cancel()
	second.finish(t)
	res := <-resc
	if res.err != nil || len(res.runs) != 3 {
		t.Fatalf("ClaimDue cancelled after it ran: %d runs, %v; want the 3 it claimed", len(res.runs), res.err)
	}
	for _, r := range res.runs {
		got, err := s.Get(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ClaimToken == "" || got.ClaimToken != r.ClaimToken {
			t.Errorf("run %s: stored token %q, returned %q", r.ID, got.ClaimToken, r.ClaimToken)
		}
	}
}

// TestBatchRunsUnderTheEarliestDeadline: a shared transaction's statements
// run under the earliest deadline of the writes still waiting in it (one
// whose caller gave up does not count), never under a caller's
// cancellation.
func TestBatchRunsUnderTheEarliestDeadline(t *testing.T) {
	s := openMigrated(t, filepath.Join(t.TempDir(), "runs.db"))
	now := time.Now()
	late, cancelLate := context.WithDeadline(context.Background(), now.Add(time.Hour))
	defer cancelLate()
	soon, cancelSoon := context.WithDeadline(context.Background(), now.Add(time.Minute))
	defer cancelSoon()
	gone, cancelGone := context.WithDeadline(context.Background(), now.Add(time.Second))
	cancelGone()
	var seen []time.Time
	var cancelled []error
	op := func(ctx context.Context) *writeOp {
		return &writeOp{ctx: ctx, done: make(chan error, 1), fn: func(ctx context.Context, _ queryer) error {
			d, _ := ctx.Deadline()
			seen, cancelled = append(seen, d), append(cancelled, ctx.Err())
			return nil
		}}
	}
	batch := []*writeOp{op(late), op(gone), op(soon)}
	s.runBatch(batch)
	for _, w := range batch {
		<-w.done
	}
	if len(seen) != 2 || !seen[0].Equal(now.Add(time.Minute)) || !seen[1].Equal(seen[0]) || cancelled[0] != nil || cancelled[1] != nil {
		t.Fatalf("the live writes ran under deadlines %v (context errors %v); want both %v, not cancelled", seen, cancelled, now.Add(time.Minute))
	}
}
