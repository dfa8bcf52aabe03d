package retry

import (
	"context"
	"database/sql"
	"time"
)

// Joining a store's transaction. A scheduler that keeps its entries in a
// table of the store's own database can write a retry's wake-up in the very
// transaction that records the failure (and a delay node's in the one that
// parks the run), so that the store and the scheduler
// never disagree: no crash between the two writes can leave a retrying run
// without its wake-up. The two capabilities below say so using only
// database/sql, so that neither backend imports the other; the executor
// joins them when both are present and [SameDatabase] holds.

// TxFunc runs inside a store's write transaction, after the store's own
// statements, with the run as they left it. An error from it rolls the
// whole transaction back: the store's write is not made either.
type TxFunc func(ctx context.Context, tx *sql.Tx, written Run) error

// TxStore is a [Store] on a SQL database whose failure records and node
// completions others may join.
type TxStore interface {
	Store
	// SQLDB returns the database the store writes to.
	SQLDB() *sql.DB
	// RecordFailureTx is [Recorder.RecordFailure] that also runs then in
	// the transaction that records the failure (it may share that
	// transaction with other writes). When then fails, nothing is
	// recorded and the error returned wraps then's.
	RecordFailureTx(ctx context.Context, c Claim, f FailureRecord, then TxFunc) (Run, error)
	// CompleteNodeTx is [Recorder.CompleteNode] that also runs then in the
	// transaction that records the node, so that a delay node's wake-up
	// is committed with the wait it ends, as a retry's is with its
	// failure. The same rules as RecordFailureTx's hold.
	CompleteNodeTx(ctx context.Context, c Claim, s NodeSuccess, then TxFunc) (Run, error)
	// SnoozeTx is [Recorder.Snooze] that also runs then in the
	// transaction that parks the run, so that the snooze's wake-up is
	// committed with it. The same rules as RecordFailureTx's hold.
	SnoozeTx(ctx context.Context, c Claim, s SnoozeRecord, then TxFunc) (Run, error)
}

// TxScheduler is a [Scheduler] whose entries live in a SQL database, and
// that can schedule inside a transaction on it.
type TxScheduler interface {
	Scheduler
	// SQLDB returns the database holding the entries.
	SQLDB() *sql.DB
	// ScheduleTx is Schedule run in tx, a transaction on SQLDB: the entry
	// exists once tx commits, and never if it rolls back.
	ScheduleTx(ctx context.Context, tx *sql.Tx, id string, at time.Time) error
}

// SameDatabase reports whether the store and the scheduler can share
// transactions: both are on SQL and on the same *sql.DB (the same pool, so
// the same database and the same connections).
func SameDatabase(store Store, sched Scheduler) (TxStore, TxScheduler, bool) {
	ts, ok1 := store.(TxStore)
	tsch, ok2 := sched.(TxScheduler)
	if !ok1 || !ok2 || ts.SQLDB() == nil || ts.SQLDB() != tsch.SQLDB() {
		return nil, nil, false
	}
	return ts, tsch, true
}
