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
	// Ack removes the delivered entry unless it was rescheduled since. The
	// executor sends it beside the run's execution, so it may arrive after
	// the execution's own Schedule of the entry: its stale token must then
	// remove nothing.
	Ack(ctx context.Context, d Delivery) error
	// Ready receives a value when an entry may have become claimable: its
	// time came, an entry was scheduled earlier than the earliest pending
	// one, or an unacknowledged delivery's lease ran out. Consumers Claim
	// after each receive and sleep on Ready between Claims, so a signal
	// is never missed, however many come over the scheduler's life and
	// however Schedule and Claim interleave; a spurious one is harmless.
	// It is closed by Close.
	Ready() <-chan struct{}
	// Close stops the scheduler promptly; later calls return ErrClosed and
	// nothing is handed out after it returns.
	Close() error
}

// Optional scheduler capabilities. The executor detects each with a type
// assertion on the Scheduler it is given; a scheduler implements only those
// that are true of it, and one that implements none is treated as the
// in-process memory scheduler is: volatile, private to its process, and
// rebuilt from the store when the executor starts. They are designed
// together so that a backend says what it is, and the executor, not the
// backend, decides what to do about it.

// DurableScheduler is a scheduler whose entries survive a restart of every
// process that uses it (a table in a database, say). The executor does not
// Rebuild it on start: its entries are already there, and rebuilding would
// only make outstanding deliveries of other processes stale.
type DurableScheduler interface {
	Scheduler
	// Durable reports whether the entries outlive the processes; false makes
	// the scheduler volatile again (a configuration that keeps it in memory).
	Durable() bool
}

// SharedScheduler is a scheduler whose entries every process using the same
// backend sees (Redis, a database table). A rebuild from the store then
// needs to run once for all of them, not once per process, and must not
// disturb an entry another process already holds.
type SharedScheduler interface {
	Scheduler
	// Shared reports whether other processes see this scheduler's entries.
	Shared() bool
	// Restore inserts the entry id due at at only when it is absent (neither
	// due nor delivered): unlike Schedule it never moves an entry's due time
	// or makes an outstanding delivery stale. Rebuilds use it.
	Restore(ctx context.Context, id string, at time.Time) error
}

// BatchScheduler is a scheduler that schedules many entries in one
// transaction or round trip (a table in the store's database, where each
// Schedule is a commit of its own; a server where each is a round trip). The executor's StartMany tells it of a
// batch of new runs with one call; without it, one Schedule each.
type BatchScheduler interface {
	Scheduler
	// ScheduleMany is Schedule of each of ids, all due at at. An id or a
	// time Schedule would refuse wraps ErrInvalidArgument, and then none
	// of ids is scheduled.
	ScheduleMany(ctx context.Context, ids []string, at time.Time) error
}

// LossReporter is a scheduler that can notice it lost its entries (a Redis
// restarted empty or flushed). The executor rebuilds it from the store when
// Lost delivers, without waiting for the sweeper.
type LossReporter interface {
	Scheduler
	// Lost receives a value each time the scheduler finds its entries gone
	// and this process should rebuild them: a backend shared by several
	// processes signals one of them per loss, not all. It is closed by Close.
	Lost() <-chan struct{}
}
