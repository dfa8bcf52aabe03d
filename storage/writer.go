package storage

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/journeyretry/journeyretry/retry"
)

// writeOp is one write waiting for the writer: fn runs its statements in
// the shared transaction and stores its result where its caller reads it
// after done delivers.
type writeOp struct {
	fn   func(ctx context.Context, tx bun.Tx) error
	done chan error
}

// write queues fn for the writer and waits until its transaction commits
// (nil) or fn or the commit fails. fn must change nothing when it returns
// an error it found by reading (a lost claim): other writes share its
// transaction. A caller whose ctx ends stops waiting, but a write already
// queued may still commit.
func (s *Store) write(ctx context.Context, op string, fn func(ctx context.Context, tx bun.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	w := &writeOp{fn: fn, done: make(chan error, 1)}
	s.mu.RLock()
	if s.closed.Load() {
		s.mu.RUnlock()
		return fmt.Errorf("%s: %w", op, retry.ErrClosed)
	}
	select {
	case s.ops <- w:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return fmt.Errorf("%s: %w", op, ctx.Err())
	}
	select {
	case err := <-w.done:
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", op, ctx.Err())
	}
}

// writer runs queued writes until Close closes the queue: each turn takes
// every write already waiting (up to maxBatch) into one transaction.
func (s *Store) writer() {
	defer close(s.done)
	batch := make([]*writeOp, 0, s.maxBatch)
	for w := range s.ops {
		batch = append(batch[:0], w)
	fill:
		for len(batch) < s.maxBatch {
			select {
			case w, ok := <-s.ops:
				if !ok {
					break fill
				}
				batch = append(batch, w)
			default:
				break fill
			}
		}
		s.runBatch(batch)
		clear(batch)
	}
}

// runBatch runs batch in one transaction and answers every op after the
// commit. Statements use a background context: cancelling one caller must
// not interrupt a transaction that others share.
func (s *Store) runBatch(batch []*writeOp) {
	ctx := context.Background()
	errs := make([]error, len(batch))
	answer := func(all error) {
		for i, w := range batch {
			w.done <- cmpErr(errs[i], all)
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		answer(err)
		return
	}
	if len(batch) == 1 {
		// Alone in the transaction: no savepoint needed.
		if errs[0] = batch[0].fn(ctx, tx); errs[0] != nil {
			_ = tx.Rollback()
			answer(nil)
			return
		}
	} else {
		for i, w := range batch {
			if _, err := tx.ExecContext(ctx, "SAVEPOINT op"); err != nil {
				_ = tx.Rollback()
				answer(err)
				return
			}
			var err error
			if errs[i] = w.fn(ctx, tx); errs[i] != nil {
				_, err = tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT op")
			}
			if err == nil {
				_, err = tx.ExecContext(ctx, "RELEASE SAVEPOINT op")
			}
			if err != nil {
				_ = tx.Rollback()
				answer(err)
				return
			}
		}
	}
	answer(tx.Commit())
}

// cmpErr returns op's own error if it has one, else the batch's.
func cmpErr(op, all error) error {
	if op != nil {
		return op
	}
	return all
}
