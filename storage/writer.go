package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"

	"github.com/journeyretry/journeyretry/retry"
)

// writeOp is one write waiting for the writer: fn runs its statements in
// the shared transaction and stores its result where its caller reads it
// after done delivers. state settles, once, whether the writer runs fn or
// the caller gives up on it: never both.
type writeOp struct {
	ctx context.Context // the caller's, under the write's deadline: once it ends, fn no longer starts
	key string          // the run fn writes: a batch runs its ops in key order
	// budgetKey is the retry budget fn may charge: on PostgreSQL the batch
	// locks it before any run (see budget.go).
	budgetKey string
	fn        func(ctx context.Context, tx queryer) error
	// rec, when not nil, is what fn writes, as a record the batch's one
	// statement for records may write instead (PostgreSQL; see
	// execRecords): then fn does not run.
	rec *record
	// row, when not nil, is the run fn creates, which the batch's one
	// statement for new runs may insert instead (PostgreSQL; see
	// execCreates): then fn does not run.
	row *runRow
	// claim, when not nil, makes the op a by-id claim on PostgreSQL, for
	// the claimers (see runClaims), instead of a write.
	claim *claimReq
	done  chan error
	state atomic.Int32
}

// The states of a writeOp.
const (
	opQueued    int32 = iota
	opStarted         // the writer ran (or runs) fn: its caller waits for done
	opAbandoned       // the caller's ctx ended first: fn never runs
)

// start reports whether the writer may run w: its caller has not given up
// and its ctx has not ended. Once started, w stays started, so a batch
// replayed one op at a time runs it again unless its ctx ended meanwhile
// (its first run was rolled back, so the caller still gets the truth).
func (w *writeOp) start() bool {
	return w.ctx.Err() == nil && (w.state.Load() == opStarted || w.state.CompareAndSwap(opQueued, opStarted))
}

// write queues fn, which writes run key and no other, for the writer and
// waits until its transaction commits (nil) or fn or the commit fails. Other writes share fn's transaction, so
// fn must change nothing when it returns a sentinel it found by reading (a
// lost claim, a missing run), and must wrap with [dirty] an error it
// returns after writing.
//
// The caller's ctx ending never misreports a write: if it ends before the
// writer starts fn, fn never runs and write returns ctx.Err(); once the
// writer has started fn, write waits for the commit and returns its
// outcome (the batch runs without the callers' cancellations, under the
// earliest of their deadlines: see batchContext). So a caller told
// ctx.Err() knows nothing was written, and results fn stores are read only
// after the writer is done with them. The write's deadline is ctx's, or
// the store's write timeout from now if sooner.
func (s *Store) write(ctx context.Context, op, key string, fn func(ctx context.Context, tx queryer) error) error {
	return s.submit(ctx, op, &writeOp{key: key, fn: fn})
}

// writeCharging is write for a write that may charge retry budget
// budgetKey ("" for none).
func (s *Store) writeCharging(ctx context.Context, op, key, budgetKey string, fn func(ctx context.Context, tx queryer) error) error {
	return s.submit(ctx, op, &writeOp{key: key, budgetKey: budgetKey, fn: fn})
}

// submit queues w, whose key, budgetKey, fn and rec are set, and waits for
// its outcome, as write describes.
func (s *Store) submit(ctx context.Context, op string, w *writeOp) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	ctx, cancel := context.WithDeadline(ctx, s.deadline(ctx))
	defer cancel()
	w.ctx, w.done = ctx, make(chan error, 1)
	s.mu.RLock()
	if s.closed.Load() {
		s.mu.RUnlock()
		return fmt.Errorf("%s: %w", op, retry.ErrClosed)
	}
	queue := s.ops
	switch {
	case w.claim != nil:
		queue = s.claims
	case w.budgetKey != "" && len(s.charging) > 0:
		h := fnv.New32a()
		h.Write([]byte(w.budgetKey))
		queue = s.charging[h.Sum32()%uint32(len(s.charging))]
	}
	select {
	case queue <- w:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return fmt.Errorf("%s: %w", op, ctx.Err())
	}
	var err error
	select {
	case err = <-w.done:
	case <-ctx.Done():
		if w.state.CompareAndSwap(opQueued, opAbandoned) {
			return fmt.Errorf("%s: %w", op, ctx.Err())
		}
		err = <-w.done // started: its outcome is the truth
	}
	if err != nil {
		return fmt.Errorf("%s: %w", op, timedOut(ctx, err))
	}
	return nil
}

// deadline is the deadline of a write called with ctx: ctx's, or the
// write timeout from now if that is sooner.
func (s *Store) deadline(ctx context.Context) time.Time {
	d := time.Now().Add(s.writeTimeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		return cd
	}
	return d
}

// timedOut makes err, a write's failure, wrap context.DeadlineExceeded
// when the write's deadline has passed: the driver reports the deadline it
// set on the connection as a network timeout, possibly before ctx's own
// timer has fired.
func timedOut(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) || errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return err
}

// claim runs fn, a claim, and returns its error. On PostgreSQL fn runs
// outside every batch, each statement its own transaction (and prepared
// once per connection: see pgPrepared), and its
// statements never wait for a locked row (SKIP LOCKED): a claim inside a
// batch would hold the rows it took until that batch commits, rows of any
// id, where the batch's other writes take theirs in id order. On SQLite it
// is a write like any other: one writer, so no transaction waits for a lock.
// As in a batch, fn runs to its end once started, without the caller's
// cancellation but under the write's deadline, and its outcome is the
// caller's.
func (s *Store) claim(ctx context.Context, op string, fn func(ctx context.Context, q queryer) error) error {
	if !s.pg {
		return s.write(ctx, op, "", fn)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	s.mu.RLock() // Close waits for the claims in flight before closing db
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", op, retry.ErrClosed)
	}
	fctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), s.deadline(ctx))
	defer cancel()
	if err := fn(fctx, pgPrepared{s: s}); err != nil {
		return fmt.Errorf("%s: %w", op, timedOut(fctx, err))
	}
	return nil
}

// serve runs queued ops, from the shared queue and its own (nil if none),
// until Close closes them: each turn takes every op already waiting (up
// to maxBatch) and hands the batch to run. The writers serve writes
// (SQLite: one; PostgreSQL: one per read connection, own being its
// budgets' queue: see Store.charging) with runBatch; on PostgreSQL the
// claimers serve by-id claims with runClaims.
func (s *Store) serve(shared, own chan *writeOp, run func([]*writeOp)) {
	batch := make([]*writeOp, 0, s.maxBatch)
	for shared != nil || own != nil {
		var w *writeOp
		ok := true
		select {
		case w, ok = <-shared:
			if !ok {
				shared = nil
			}
		case w, ok = <-own:
			if !ok {
				own = nil
			}
		}
		if !ok {
			continue
		}
		batch = append(batch[:0], w)
	fill:
		for len(batch) < s.maxBatch {
			select {
			case w, ok := <-own:
				if !ok {
					own = nil
					continue
				}
				batch = append(batch, w)
			case w, ok := <-shared:
				if !ok {
					shared = nil
					continue
				}
				batch = append(batch, w)
			default:
				break fill
			}
		}
		run(batch)
		clear(batch)
	}
}

// runBatch runs batch in one transaction and answers every op after the
// commit. The ops run in the order of the runs they write (see Locks in
// the package doc). An op that fails cleanly (it found by reading that it must not
// write: a lost claim, a missing run) wrote nothing, so the others go on
// without it. An op that fails after writing ([dirty]), or with a database
// error, rolls the transaction back, and then every op of the batch runs
// again alone, so that its failure reaches only its own caller. This costs
// less than a SAVEPOINT around every op, which on SQLite copies each page
// the op touches to a statement journal.
func (s *Store) runBatch(batch []*writeOp) {
	slices.SortStableFunc(batch, func(a, b *writeOp) int { return strings.Compare(a.key, b.key) })
	errs, err := s.runTx(batch)
	if errors.Is(err, errReplay) {
		for _, w := range batch {
			errs, err := s.runTx([]*writeOp{w})
			w.done <- cmpErr(errs[0], err)
		}
		return
	}
	for i, w := range batch {
		w.done <- cmpErr(errs[i], err)
	}
}

// errReplay: runTx rolled back a batch of several ops for one op's failure.
var errReplay = errors.New("replay the batch one op at a time")

// dirtyError marks an op's error found after the op wrote: its transaction
// must be rolled back.
type dirtyError struct{ error }

func (e dirtyError) Unwrap() error { return e.error }

// dirty marks err as found after writing.
func dirty(err error) error { return dirtyError{err} }

// undirty is err without its dirty mark, for the caller.
func undirty(err error) error {
	if d, ok := errors.AsType[dirtyError](err); ok {
		return d.error
	}
	return err
}

// clean reports whether err left the transaction as it was.
func clean(err error) bool {
	if _, ok := errors.AsType[dirtyError](err); ok {
		return false
	}
	for _, e := range []error{retry.ErrLostClaim, retry.ErrNotFound, retry.ErrNotClaimable, retry.ErrNotReplayable, retry.ErrNotCancellable, retry.ErrInvalidArgument, retry.ErrDuplicateRun} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// runTx runs ops in one transaction and commits it, under batchContext.
// errs holds each op's clean error; err is the transaction's (or
// errReplay). An op whose caller's ctx ended before its turn is skipped
// and answered with ctx's error. The ops share one budgetTx, written
// before the commit. On PostgreSQL the records and new runs among ops are
// written first, by a statement each (see execPicked); a batch of nothing
// else is those statements alone, with no transaction around them.
func (s *Store) runTx(ops []*writeOp) (errs []error, err error) {
	ctx, cancel := batchContext(ops)
	defer cancel()
	errs = make([]error, len(ops))
	var (
		pick  []bool // the records and new runs execPicked writes
		rest  int    // the ops that need a transaction
		locks []string
	)
	if s.pg {
		pick, rest, locks = pickRecords(ops, errs)
		if rest == 0 {
			err = s.execPicked(ctx, s.db, ops, pick, locks, errs)
			if err != nil && len(ops) > 1 {
				return errs, errReplay
			}
			return errs, err
		}
	}
	bt := &budgetTx{s: s}
	ctx = context.WithValue(ctx, budgetCtxKey{}, bt)
	btx, err := s.db.BeginTx(s.driverContext(ctx), nil)
	if err != nil {
		return errs, err
	}
	tx := s.writeTx(btx)
	defer s.prepareNew(ctx, tx)
	if s.pg {
		if err := bt.lock(ctx, tx, ops); err != nil {
			_ = btx.Rollback()
			return errs, err
		}
		if slices.Contains(pick, true) {
			err := s.execPicked(ctx, tx, ops, pick, locks, errs)
			for i, w := range ops {
				if err == nil && pick[i] && w.rec != nil {
					if errs[i] = w.rec.after(ctx, tx, errs[i]); !clean(errs[i]) {
						err = errs[i]
					}
				}
			}
			if err != nil {
				_ = btx.Rollback()
				if len(ops) > 1 {
					return errs, errReplay
				}
				return []error{nil}, undirty(err)
			}
		}
	}
	for i, w := range ops {
		if pick != nil && (pick[i] || errs[i] != nil) {
			continue // written above, or abandoned
		}
		if !w.start() {
			errs[i] = w.ctx.Err() // it wrote nothing: the others go on
			continue
		}
		if errs[i] = w.fn(ctx, tx); errs[i] == nil || clean(errs[i]) {
			continue
		}
		_ = btx.Rollback()
		if len(ops) > 1 {
			return errs, errReplay
		}
		errs[0] = undirty(errs[0])
		return errs, nil
	}
	if err := bt.flush(ctx, tx); err != nil {
		_ = btx.Rollback()
		if len(ops) > 1 {
			return errs, errReplay
		}
		return errs, err
	}
	return errs, btx.Commit()
}

// execPicked writes the records and the new runs of ops that pick marks
// with one statement (see execRecords and execCreates); its arguments
// are theirs.
func (s *Store) execPicked(ctx context.Context, q queryer, ops []*writeOp, pick []bool, locks []string, errs []error) error {
	var recs, rows bool
	for i, w := range ops {
		recs = recs || pick[i] && w.rec != nil
		rows = rows || pick[i] && w.row != nil
	}
	switch {
	case recs:
		return s.execRecords(ctx, q, ops, pick, locks, errs, rows)
	case rows:
		return s.execCreates(ctx, q, ops, pick, errs)
	}
	return nil
}

// pickRecords marks the ops of a PostgreSQL batch that its statements for
// records and new runs write (see execPicked): each started op with a
// record or a new run, the first of its run (PostgreSQL updates a row once
// per statement; a later write of the run runs after it, as the ops'
// order says). An op whose caller gave up gets its ctx's error in errs.
// rest counts the ops that need a transaction: the others, and the
// records that run more in it than their statement. locks lists the
// batch's runs, in id order.
func pickRecords(ops []*writeOp, errs []error) (pick []bool, rest int, locks []string) {
	pick = make([]bool, len(ops))
	for i, w := range ops {
		if w.key != "" && (len(locks) == 0 || locks[len(locks)-1] != w.key) {
			locks = append(locks, w.key)
		}
		switch {
		case w.rec == nil && w.row == nil || i > 0 && ops[i-1].key == w.key:
			rest++
		case !w.start():
			errs[i] = w.ctx.Err()
		default:
			pick[i] = true
			if w.rec != nil && !w.rec.alone() {
				rest++ // it runs more in the transaction
			}
		}
	}
	return pick, rest, locks
}

// batchContext is the context of a transaction of ops: without their
// callers' cancellations, since one caller giving up must not interrupt a
// transaction that others share, but under the earliest deadline of
// those still waiting, so that a database that stops answering holds no
// caller past its own deadline.
func batchContext(ops []*writeOp) (context.Context, context.CancelFunc) {
	var earliest time.Time
	for _, w := range ops {
		if d, ok := w.ctx.Deadline(); ok && w.ctx.Err() == nil && (earliest.IsZero() || d.Before(earliest)) {
			earliest = d
		}
	}
	if earliest.IsZero() {
		return context.WithCancel(context.Background())
	}
	return context.WithDeadline(context.Background(), earliest)
}

// cmpErr returns op's own error if it has one, else the batch's.
func cmpErr(op, all error) error {
	if op != nil {
		return op
	}
	return all
}

// writeTx wraps the writer's transaction. On SQLite its statements run as
// statements prepared once on the writer's connection and reused: parsing
// would otherwise cost as much as executing. On PostgreSQL bun formats the
// arguments into the query, as everywhere else.
func (s *Store) writeTx(tx bun.Tx) queryer {
	if s.pg {
		return tx
	}
	return &preparedTx{s: s, tx: tx}
}

// preparedTx runs each query through the store's prepared statement for
// it. A query not prepared yet is prepared in the transaction this time,
// and on the connection (which the transaction holds until it ends) by
// prepareNew after it.
type preparedTx struct {
	s     *Store
	tx    bun.Tx
	fresh []string
}

func (p *preparedTx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := p.s.stmts.Load(query); ok {
		return p.tx.Tx.StmtContext(ctx, st.(*sql.Stmt)), nil
	}
	p.fresh = append(p.fresh, query)
	return p.tx.Tx.PrepareContext(ctx, query)
}

// prepareNew prepares, on the writer's connection, the queries the
// transaction met for the first time.
func (s *Store) prepareNew(ctx context.Context, tx queryer) {
	p, ok := tx.(*preparedTx)
	if !ok {
		return
	}
	for _, q := range p.fresh {
		if _, ok := s.stmts.Load(q); ok {
			continue
		}
		if st, err := s.db.DB.PrepareContext(ctx, q); err == nil {
			s.stmts.Store(q, st)
		}
	}
}

func (p *preparedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx = p.s.driverContext(ctx)
	st, err := p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (p *preparedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx = p.s.driverContext(ctx)
	st, err := p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// driverContext is the context the writer's transaction and statements
// run under: ctx on PostgreSQL, where the write's deadline bounds a
// connection that stops answering; on SQLite one without its deadline,
// since a statement there waits only for another process's lock, which
// the busy timeout bounds, and a context that can end makes the driver
// and database/sql watch it with a goroutine for every statement and
// transaction. A write still starts only before its deadline (see
// writeOp.start).
func (s *Store) driverContext(ctx context.Context) context.Context {
	if s.pg {
		return ctx
	}
	return context.WithoutCancel(ctx)
}
