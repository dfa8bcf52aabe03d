// Package sqlpoll is a [retry.Scheduler] that keeps its entries in a table
// of a SQL database (SQLite or PostgreSQL, through bun), for teams that
// want durable wake-ups shared by several processes with no service beyond
// their database.
//
// # Durable and shared
//
// Entries survive a restart of every process: the executor does not
// rebuild them ([retry.DurableScheduler]), and every process on the same
// database sees them ([retry.SharedScheduler]). When the scheduler is on
// the store's own database (opened on the store's pool, storage's
// Store.DB, as package engine does), it joins the store's transactions
// ([retry.TxScheduler]): the executor writes a retry decision and its
// wake-up in one commit (a delay node's wait and its wake-up too), so no
// crash can leave a parked run without it.
//
// # Claims
//
// A claim is one statement: UPDATE ... WHERE id IN (SELECT ... ORDER BY
// next_ms LIMIT n) RETURNING on SQLite, and the same with FOR UPDATE SKIP
// LOCKED on PostgreSQL, so several processes claim disjoint batches
// without waiting on each other. Each claim gives its entries a fresh token
// and a lease; an entry whose consumer died is handed out again when the
// lease ends, and an Ack with a stale token removes nothing.
//
// # Wake-ups
//
// One goroutine per scheduler sleeps until the earliest due time it knows,
// capped by [Config.PollInterval], and then asks the database for the
// earliest (SELECT MIN over the index: at idle, one indexed query per
// poll interval). Scheduling something earlier in this process wakes it at
// once; on PostgreSQL so does scheduling something earlier in another
// process, through LISTEN/NOTIFY, so cross-process lateness does not depend
// on the poll interval either.
//
// # SQLite and "database is locked"
//
// Open the database as the store does (the store's own pool, storage's
// Store.DB): writes on one connection per process, transactions that begin
// IMMEDIATE, and a busy timeout that covers the other processes on the
// file. Every statement the scheduler runs is a single short write or
// read, so a second process waits its turn instead of failing.
//
// # Times
//
// Due times are kept in Unix milliseconds, rounded up: an entry is never
// handed out before its time, and a delivery's At is the scheduled time
// rounded up to the millisecond.
package sqlpoll

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/journeyretry/journeyretry/retry"
)

// Defaults for [Config]'s zero fields.
const (
	// LeaseDefault is the default [Config.Lease].
	LeaseDefault = 30 * time.Second
	// PollIntervalDefault is the default [Config.PollInterval].
	PollIntervalDefault = time.Second
)

// Table is the scheduler's table, and on PostgreSQL its NOTIFY channel.
const Table = "journeyretry_wakeups"

// txGrace is how long after ScheduleTx the scheduler first looks for an
// entry it wrote in a transaction of SQLite: time for that transaction to
// commit. (PostgreSQL sends the wake-up itself, at commit.) An entry it
// misses is found by the next poll.
const txGrace = 20 * time.Millisecond

// Config configures a [Scheduler]. The zero value is ready to use.
type Config struct {
	// Lease is how long a delivery may stay unacknowledged before the entry
	// is handed out again: a Claim at now >= (the delivering Claim's now) +
	// Lease redelivers it with a new token. Default LeaseDefault (30s); it
	// must not be negative.
	Lease time.Duration

	// PollInterval caps how long the scheduler sleeps between two looks at
	// the table: the longest an entry written by a process it does not hear
	// from (another process on SQLite, or a lost notification) may wait
	// past its time. Default PollIntervalDefault (1s); it must not be
	// negative.
	PollInterval time.Duration

	// Now is the clock by which the scheduler decides when to signal Ready.
	// Claim compares due times with its now argument, never with this
	// clock. Default time.Now.
	Now func() time.Time

	// Logger hears of failed polls (the next poll tries again). Default
	// slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	c.Lease = cmp.Or(c.Lease, LeaseDefault)
	c.PollInterval = cmp.Or(c.PollInterval, PollIntervalDefault)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports a field that cannot be used, naming it.
func (c Config) Validate() error {
	switch {
	case c.Lease < 0:
		return fmt.Errorf("sqlpoll: %w", retry.InvalidField("Lease", "%v is negative", c.Lease))
	case c.PollInterval < 0:
		return fmt.Errorf("sqlpoll: %w", retry.InvalidField("PollInterval", "%v is negative", c.PollInterval))
	}
	return nil
}

// Scheduler is a SQL-polling [retry.Scheduler], safe for concurrent use.
// Create it with [New] on a migrated database ([Migrate]).
type Scheduler struct {
	db    *bun.DB
	pg    bool
	q     queries
	cfg   Config
	ready chan struct{}

	// mu is held for reading around every statement on the scheduler's
	// own pool, and Close takes it to wait for them. ScheduleTx only
	// reads closed: its statement runs in a caller's transaction, which
	// on SQLite may hold the one connection a Claim under mu waits for.
	mu     sync.RWMutex
	closed atomic.Bool

	wakeMu sync.Mutex
	wakeAt time.Time     // when the poller looks next
	kick   chan struct{} // tells the poller wakeAt moved earlier

	stop       context.CancelFunc
	pollerDone chan struct{}
	listener   *pgdriver.Listener
}

var (
	_ retry.DurableScheduler = (*Scheduler)(nil)
	_ retry.SharedScheduler  = (*Scheduler)(nil)
	_ retry.TxScheduler      = (*Scheduler)(nil)
	_ retry.BatchScheduler   = (*Scheduler)(nil)
)

// New returns a running scheduler on db, which must hold the scheduler's
// table ([Migrate]). It does not take db over: close the scheduler, then
// db. On PostgreSQL through pgdriver it listens for other processes'
// wake-ups on one connection of its own.
func New(ctx context.Context, db *bun.DB, cfg Config) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if db == nil {
		return nil, fmt.Errorf("sqlpoll: nil database: %w", retry.ErrInvalidArgument)
	}
	cfg = cfg.withDefaults()
	pg := db.Dialect().Name() == dialect.PG
	s := &Scheduler{
		db: db, pg: pg, q: queriesFor(pg), cfg: cfg,
		ready:      make(chan struct{}, 1),
		kick:       make(chan struct{}, 1),
		pollerDone: make(chan struct{}),
	}
	if _, ok := db.Driver().(pgdriver.Driver); ok {
		s.listener = pgdriver.NewListener(db)
		if err := s.listener.Listen(ctx, Table); err != nil {
			s.listener.Close()
			return nil, fmt.Errorf("sqlpoll: listen: %w", err)
		}
	}
	pctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = stop
	go s.poll(pctx)
	return s, nil
}

// Durable reports true: entries are rows in the database.
func (s *Scheduler) Durable() bool { return true }

// Shared reports true: every process on the database sees the entries.
func (s *Scheduler) Shared() bool { return true }

// SQLDB returns the pool the scheduler runs its statements on.
func (s *Scheduler) SQLDB() *sql.DB { return s.db.DB }

// Schedule inserts id due at at, or moves it to at, making any outstanding
// delivery of it stale. An empty id or one that is not storable text
// ([retry.StorableText]), or at outside the years 1970 to 9999 (the zero
// time, say), wraps [retry.ErrInvalidArgument].
func (s *Scheduler) Schedule(ctx context.Context, id string, at time.Time) error {
	return s.upsert(ctx, s.db.DB, "schedule", s.q.schedule, s.q.scheduleNotify, id, at)
}

// ScheduleTx is Schedule in tx, a transaction on [Scheduler.SQLDB]; see
// [retry.TxScheduler].
func (s *Scheduler) ScheduleTx(ctx context.Context, tx *sql.Tx, id string, at time.Time) error {
	if tx == nil {
		return fmt.Errorf("schedule %q: nil transaction: %w", id, retry.ErrInvalidArgument)
	}
	return s.upsert(ctx, tx, "schedule", s.q.schedule, s.q.scheduleNotify, id, at)
}

// ScheduleMany is Schedule of each of ids at at, in one transaction; see
// [retry.BatchScheduler]. A bad id or time rolls it back: none is
// scheduled.
func (s *Scheduler) ScheduleMany(ctx context.Context, ids []string, at time.Time) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return fmt.Errorf("schedule many: %w", retry.ErrClosed)
	}
	tx, err := s.db.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("schedule many: %w", err)
	}
	for _, id := range ids {
		if err := s.upsert(ctx, tx, "schedule", s.q.schedule, s.q.scheduleNotify, id, at); err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("schedule many: %w", err)
	}
	if !at.After(s.cfg.Now()) {
		s.signal() // committed and due
	}
	return nil
}

// Restore inserts id due at at unless it is present (due or delivered); see
// [retry.SharedScheduler]. Its arguments are checked as Schedule's.
func (s *Scheduler) Restore(ctx context.Context, id string, at time.Time) error {
	return s.upsert(ctx, s.db.DB, "restore", s.q.restore, s.q.restoreNotify, id, at)
}

// execer is a database or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// upsert runs query (or, on PostgreSQL for an entry due before the next
// poll, notify, which also tells the other processes) for id due at at.
func (s *Scheduler) upsert(ctx context.Context, db execer, op, query, notify string, id string, at time.Time) error {
	if err := checkID(op, id); err != nil {
		return err
	}
	if at.Year() < 1970 || at.Year() > 9999 {
		return fmt.Errorf("%s %q: at %v outside years 1970 to 9999: %w", op, id, at, retry.ErrInvalidArgument)
	}
	due := ceilMs(at)
	_, inTx := db.(*sql.Tx)
	if !inTx {
		s.mu.RLock()
		defer s.mu.RUnlock()
	}
	if s.closed.Load() {
		return fmt.Errorf("%s %q: %w", op, id, retry.ErrClosed)
	}
	now := s.cfg.Now()
	if s.pg && at.Before(now.Add(s.cfg.PollInterval)) {
		query = notify
	}
	if _, err := db.ExecContext(ctx, query, id, due); err != nil {
		return fmt.Errorf("%s %q: %w", op, id, err)
	}
	switch {
	case inTx && !s.pg:
		s.nudge(latest(at, now.Add(txGrace)))
	case !at.After(now) && !inTx:
		s.signal() // committed and due: no need to wake the poller
	default:
		s.nudge(at)
	}
	return nil
}

// Cancel removes id; an absent id is not an error. An empty id wraps
// [retry.ErrInvalidArgument].
func (s *Scheduler) Cancel(ctx context.Context, id string) error {
	if err := checkID("cancel", id); err != nil {
		return err
	}
	return s.exec(ctx, "cancel "+strconv.Quote(id), s.q.cancel, id)
}

// Ack removes the delivered entry unless it was rescheduled or handed out
// again since (d.Token is stale). Acknowledging an entry that is gone is
// not an error. An empty d.ID wraps [retry.ErrInvalidArgument].
func (s *Scheduler) Ack(ctx context.Context, d retry.Delivery) error {
	if d.ID == "" {
		return fmt.Errorf("ack: empty id: %w", retry.ErrInvalidArgument)
	}
	if !retry.StorableText(d.ID) || !retry.StorableText(d.Token) {
		return nil // no entry has it
	}
	// An undelivered entry has the empty token: an Ack without one matches
	// nothing.
	return s.exec(ctx, "ack "+strconv.Quote(d.ID), s.q.ack, d.ID, cmp.Or(d.Token, "-"))
}

func (s *Scheduler) exec(ctx context.Context, op, query string, args ...any) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", op, retry.ErrClosed)
	}
	if err := s.execLazy(ctx, query, args...); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// execLazy runs a removal. On PostgreSQL through pgdriver, whose simple
// query protocol runs both statements in one implicit transaction, it
// commits without waiting for the WAL flush (synchronous_commit off, for
// that transaction only): a removal that a server crash undoes hands the
// entry out once more, which the executor's claim in the store makes
// harmless, and the flush is most of a removal's cost (BENCHMARKS.md).
func (s *Scheduler) execLazy(ctx context.Context, query string, args ...any) error {
	if s.listener != nil {
		query = `SET LOCAL synchronous_commit TO OFF; ` + query
	}
	_, err := s.db.DB.ExecContext(ctx, query, args...)
	return err
}

// Claim hands out up to limit entries due at or before now, earliest due
// first, each with a fresh token and leased until now + Lease. It is one
// statement; a limit below 1 wraps [retry.ErrInvalidArgument], and after
// Close it wraps [retry.ErrClosed].
func (s *Scheduler) Claim(ctx context.Context, now time.Time, limit int) ([]retry.Delivery, error) {
	if limit < 1 {
		return nil, fmt.Errorf("claim: limit %d below 1: %w", limit, retry.ErrInvalidArgument)
	}
	token := newToken()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return nil, fmt.Errorf("claim: %w", retry.ErrClosed)
	}
	rows, err := s.db.DB.QueryContext(ctx, s.q.claim, token, now.Add(s.cfg.Lease).UnixMilli(), now.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	out := make([]retry.Delivery, 0, limit)
	for rows.Next() {
		var (
			d   retry.Delivery
			due int64
		)
		if err := rows.Scan(&d.ID, &due); err != nil {
			rows.Close()
			return nil, fmt.Errorf("claim: %w", err)
		}
		d.At, d.Token = time.UnixMilli(due).UTC(), token
		out = append(out, d)
	}
	if err := cmp.Or(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	// RETURNING has no order.
	slices.SortFunc(out, func(a, b retry.Delivery) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.ID, b.ID))
	})
	if len(out) == limit {
		s.signal() // more may be due
	}
	return out, nil
}

// Ready receives a value when an entry may have become due: its time came
// by the configured clock, something due earlier was scheduled (on
// PostgreSQL, by any process), or a Claim took a full batch. A value may
// be spurious: Claim and wait again. The channel holds one value and is
// closed by Close.
func (s *Scheduler) Ready() <-chan struct{} { return s.ready }

// Close stops the poller and the listener and closes Ready, waiting for
// statements in flight; it leaves the entries in the table and the
// database open. Every later call, Close included, wraps
// [retry.ErrClosed].
func (s *Scheduler) Close() error {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return fmt.Errorf("close: %w", retry.ErrClosed)
	}
	s.closed.Store(true)
	s.mu.Unlock()
	s.stop()
	<-s.pollerDone
	var err error
	if s.listener != nil {
		if e := s.listener.Close(); e != nil {
			err = fmt.Errorf("close: listener: %w", e)
		}
	}
	close(s.ready)
	return err
}

// Len returns the number of entries in the table, delivered ones included:
// for metrics and tests.
func (s *Scheduler) Len(ctx context.Context) (int, error) {
	var n int
	if err := s.db.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+Table).Scan(&n); err != nil {
		return 0, fmt.Errorf("len: %w", err)
	}
	return n, nil
}

// signal makes Ready deliver, unless a value is already waiting. Called
// with s.mu held for reading (and closed false), or by the poller before
// Close closes the channel.
func (s *Scheduler) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// nudge makes the poller look no later than at.
func (s *Scheduler) nudge(at time.Time) {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	if !at.Before(s.wakeAt) {
		return
	}
	s.wakeAt = at
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// heard nudges the poller for another process's wake-up, whose payload is
// its due time in Unix milliseconds.
func (s *Scheduler) heard(n pgdriver.Notification) {
	if ms, err := strconv.ParseInt(n.Payload, 10, 64); err == nil {
		s.nudge(time.UnixMilli(ms))
	}
}

// poll is the scheduler's goroutine. It looks at the earliest entry,
// signals Ready when it is due, and sleeps until the earliest of its time
// and the poll interval. A nudge for a time already come signals at once
// (the entry that caused it is committed), without a query; one for a
// later time brings the next look forward.
func (s *Scheduler) poll(ctx context.Context) {
	defer close(s.pollerDone)
	var notes <-chan pgdriver.Notification
	if s.listener != nil {
		// A burst of wake-ups may fill the channel; one that overflows
		// still nudges.
		notes = s.listener.Channel(pgdriver.WithChannelSize(1024),
			pgdriver.WithChannelOverflowHandler(s.heard))
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := s.cfg.Now()
		planned := now.Add(s.cfg.PollInterval)
		due, next, ok, err := s.earliest(ctx, now)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.cfg.Logger.Warn("sqlpoll: poll", "err", err)
		default:
			if due {
				s.signal()
			}
			if ok && next.Before(planned) {
				planned = next
			}
		}
		s.setWake(planned)
		for looking := false; !looking; {
			timer.Reset(planned.Sub(s.cfg.Now()))
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
				looking = true
				continue
			case n, ok := <-notes:
				if !ok {
					notes = nil
				} else {
					s.heard(n)
				}
			case <-s.kick:
			}
			timer.Stop()
			s.wakeMu.Lock()
			nudged := s.wakeAt
			s.wakeMu.Unlock()
			switch {
			case !nudged.After(s.cfg.Now()):
				s.signal()
				s.setWake(planned)
			case nudged.Before(planned):
				planned = nudged
			}
		}
	}
}

func (s *Scheduler) setWake(t time.Time) {
	s.wakeMu.Lock()
	s.wakeAt = t
	s.wakeMu.Unlock()
}

// earliest reports whether an entry is due at now, and the earliest time
// after now an entry is next handed out at (its due time, or for a
// delivered one its lease's end).
func (s *Scheduler) earliest(ctx context.Context, now time.Time) (due bool, next time.Time, ok bool, err error) {
	var n sql.NullInt64
	if err := s.db.DB.QueryRowContext(ctx, s.q.earliest, now.UnixMilli()).Scan(&due, &n); err != nil {
		return false, time.Time{}, false, err
	}
	return due, time.UnixMilli(n.Int64), n.Valid, nil
}

func checkID(op, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%s: empty id: %w", op, retry.ErrInvalidArgument)
	case !retry.StorableText(id):
		return fmt.Errorf("%s %q: id is not valid UTF-8 without NUL: %w", op, id, retry.ErrInvalidArgument)
	}
	return nil
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// ceilMs is t in Unix milliseconds, rounded up.
func ceilMs(t time.Time) int64 {
	ms := t.UnixMilli()
	if time.UnixMilli(ms).Before(t) {
		ms++
	}
	return ms
}

func newToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}
