package storage

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

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
		batch[i] = &writeOp{fn: fn, done: make(chan error, 1)}
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
