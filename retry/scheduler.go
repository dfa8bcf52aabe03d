package retry

import (
	"context"
	"time"
)

// Delivery is one hand-out of a due entry by a [Scheduler].
type Delivery struct {
	// ID is the entry's id (the run id).
	ID string
	// At is the time the entry was scheduled for.
	At time.Time
	// Token identifies this hand-out: Ack with a stale token (the entry was
	// rescheduled, or redelivered to another consumer) removes nothing.
	Token string
}

// Scheduler is a wake-up service keyed by run id. It is only a hint: the
// executor claims the run in the [Store] before running it, so a late,
// duplicate or stale wake-up is harmless, and a scheduler that loses its
// entries is rebuilt from the store. It must be safe for concurrent use.
//
// The shape is pull: consumers Claim what is due at now, Ack each delivery
// once they have acted on it, and wait on Ready between claims. Entries that
// are due while consumers are busy wait in the scheduler (back-pressure); a
// delivery not acknowledged within the scheduler's lease is handed out again.
type Scheduler interface {
	// Schedule inserts the entry id due at at, or replaces its due time (and
	// any outstanding delivery of it).
	Schedule(ctx context.Context, id string, at time.Time) error
	// Cancel removes the entry id; cancelling an absent id is not an error.
	Cancel(ctx context.Context, id string) error
	// Claim hands out up to limit entries due at or before now, earliest
	// first, each leased to the caller. Never an entry due after now.
	Claim(ctx context.Context, now time.Time, limit int) ([]Delivery, error)
	// Ack removes the delivered entry unless it was rescheduled since.
	Ack(ctx context.Context, d Delivery) error
	// Ready receives a value when an entry may have become due (its time
	// came, or an earlier entry was scheduled): consumers Claim after each
	// receive. It is closed by Close.
	Ready() <-chan struct{}
	// Close stops the scheduler promptly; later calls return ErrClosed and
	// nothing is handed out after it returns.
	Close() error
}
