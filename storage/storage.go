// Package storage is the durable run store: a [retry.Store] and
// [retry.Inspector] on github.com/uptrace/bun, with SQLite (the embedded
// default) and PostgreSQL (for many worker processes) behind the same code.
//
// The store is the source of truth for every run and every retry decision.
// Every write that belongs to a claim states the claim's token and live
// lease in its WHERE clause, so a worker whose lease was taken over changes
// nothing and gets [retry.ErrLostClaim].
//
// # Opening and migrating
//
// [Open] connects but does not change the schema: call [Store.Migrate] once
// at start-up (it is idempotent, so calling it on every start is fine), as
// the demo and the migrate command do. Keeping the two apart lets an
// operator upgrade an existing legacy database deliberately, and lets a
// read-only tool open a store without writing to it.
//
// # SQLite and "database is locked"
//
// SQLite allows one writer at a time. The store never lets two of its own
// connections compete for that lock: every write goes through one writer
// goroutine on one connection (see group commit below), and reads use a
// separate pool of read-only connections, which WAL mode lets run beside
// the writer. Transactions begin IMMEDIATE and the busy timeout
// ([Config.BusyTimeout]) covers a second process on the same file, so
// "database is locked" does not reach callers under the executor's
// concurrent use. An in-memory database (DSN ":memory:") uses a single
// connection for everything.
//
// # Group commit
//
// A commit costs more than the writes it carries, so writes are queued to a
// writer goroutine (one on SQLite, [Config.Writers] on PostgreSQL, where
// the writes charging one retry budget always go to the same one) that
// runs every write waiting in the queue in one shared transaction, commits,
// and only then answers each caller: a caller is told its write succeeded
// only after its commit. One write's failure does not affect the others: a
// write that finds its claim lost or its run missing has written nothing
// and the rest go on; a write that fails after writing, or with a database
// error, rolls the batch back and every write of the batch runs again
// alone. (A SAVEPOINT around each write would do the same, but on SQLite
// it copies every page the write touches to a journal.) A lone caller pays
// for a transaction of its own, as it would without batching. On SQLite
// statements are prepared once on the writer's connection. On PostgreSQL
// the records of a batch (node completions, failures and snoozes: the
// executor's hot path) and its new runs are written by one execution of
// one prepared statement, whatever their number, with the records and the
// runs as arrays of parameters, so the server parses and plans it once
// per connection (see openPostgres); a batch of records and new runs that
// run nothing in the transaction and count no budget is that statement
// alone, with no BEGIN and COMMIT around it: one commit. A
// batch costs a round trip where each record would otherwise cost two
// statements, each parsed and planned.
//
// # Locks (PostgreSQL)
//
// Transactions of several writers and processes never wait for each other
// in a cycle, so PostgreSQL never has a deadlock to break (each costs both
// transactions deadlock_timeout, a second by default). Every write of a
// batch writes one run (its row and its attempts), and a batch runs its
// writes in run id order, so every batch takes its row locks in one order.
// The statement for a batch's records locks every run of the batch, in id
// order (SELECT ... ORDER BY id FOR UPDATE), before any other write of the
// batch runs.
// Claims (ClaimRun, ClaimDue) are kept out of the batches: concurrent
// ClaimRun calls are batched among themselves, by two claimer goroutines,
// into one statement of its own, ClaimDue is a statement of its own, and
// both skip rows another transaction holds (FOR UPDATE SKIP LOCKED)
// instead of waiting, since a row being written is not claimable at that
// moment anyway. ClaimRun therefore reports a run that
// another transaction is writing as not claimable. A batch that charges
// retry budgets locks their rows first, in key order, and writes the
// budgets' attempt counters last, in key order (see budget.go): budget
// rows, runs, counters is every transaction's one order.
//
// # Cancellation and deadlines
//
// A write whose context ends is never misreported. If the context ends
// before the writer reaches the write, the write is skipped and its caller
// gets an error wrapping ctx.Err(): nothing was written. Once the writer
// has started it, the caller waits for the commit (the shared transaction
// runs without the callers' cancellations and takes milliseconds) and gets
// its real outcome, the committed result included, even though its context
// was cancelled.
//
// Every write has a deadline: its context's, or [Config.WriteTimeout]
// from the call if that is sooner. A shared transaction runs under the
// earliest deadline of the writes in it (claims on PostgreSQL, which run
// alone, under their own), so a database that stops answering fails every
// write by its deadline, with an error wrapping context.DeadlineExceeded,
// instead of holding lease renewals and shutdown forever. A write cut
// during its commit may have been committed all the same, as with any
// connection lost mid-commit: such a caller reads the run again.
//
// # Times
//
// Times the store owns are integer Unix milliseconds (UTC, millisecond
// precision), so comparisons are right in SQL on both dialects. The legacy
// created_at and updated_at columns keep their DATETIME text; new rows get
// "2006-01-02 15:04:05.000" UTC, and legacy values without milliseconds
// still read correctly.
package storage

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/journeyretry/journeyretry/internal/combine"
	"github.com/journeyretry/journeyretry/retry"
)

// Defaults for [Config]'s zero fields.
const (
	// BusyTimeoutDefault is how long a SQLite connection waits for a lock
	// held by another process before giving up.
	BusyTimeoutDefault = 5 * time.Second
	// MaxBatchDefault bounds how many queued writes share one transaction.
	MaxBatchDefault = 256
	// ReadConnsDefault is the size of the SQLite read pool, and of the
	// PostgreSQL pool.
	ReadConnsDefault = 4
	// WritersDefault is the number of PostgreSQL writers: two, so that one
	// batch gathers while the other's commit is under way. More make
	// smaller batches, each of which costs the server about as much as a
	// large one: on a 2-core host, 64 workers did 15 % fewer attempts a
	// second with 4 writers, each attempt taking a quarter more CPU
	// (BENCHMARKS.md, the attempt path).
	WritersDefault = 2
	// ReadConnsLimit, WritersLimit and MaxBatchLimit bound ReadConns,
	// Writers and MaxBatch: far above any useful value, low enough that a
	// typo cannot exhaust the database's connections or the process's
	// memory.
	ReadConnsLimit = 256
	WritersLimit   = 64
	MaxBatchLimit  = 10_000
	// WriteTimeoutDefault bounds every write (see [Config.WriteTimeout]).
	WriteTimeoutDefault = 30 * time.Second
	// SynchronousDefault is SQLite's synchronous setting. NORMAL in WAL
	// mode loses no committed transaction when the process crashes; only a
	// power loss may undo the last few.
	SynchronousDefault = "NORMAL"
)

// Config configures [Open]. The zero value of every field but DSN means its
// default.
type Config struct {
	// DSN names the database: a SQLite file path (or a "file:" URI),
	// ":memory:" for a private in-memory SQLite database, or a
	// postgres:// (postgresql://) URL. Required.
	DSN string `json:"dsn"`
	// BusyTimeout (SQLite) is how long to wait for another process's lock;
	// default [BusyTimeoutDefault].
	BusyTimeout time.Duration `json:"busy_timeout"`
	// Synchronous (SQLite) is OFF, NORMAL or FULL; default
	// [SynchronousDefault].
	Synchronous string `json:"synchronous"`
	// ReadConns is the number of connections that serve reads. Default
	// [ReadConnsDefault].
	ReadConns int `json:"read_conns"`
	// Writers (PostgreSQL) is the number of writer goroutines, each
	// batching the queued writes into transactions on a connection of its
	// own; SQLite has one writer. Default [WritersDefault].
	Writers int `json:"writers"`
	// MaxBatch bounds the writes that share one transaction; 1 disables
	// group commit. Default [MaxBatchDefault].
	MaxBatch int `json:"max_batch"`
	// WriteTimeout bounds each write, its wait in the queue and its
	// transaction together, for a caller whose context has no sooner
	// deadline: a database connection that stops answering cannot hold a
	// lease renewal or a shutdown forever. Default [WriteTimeoutDefault].
	WriteTimeout time.Duration `json:"write_timeout"`
	// ReadOnly opens the database for reading only, for tools that only
	// look: the store changes nothing in it (on SQLite it neither switches
	// the file to WAL nor accepts a write) and every write fails. A
	// program's choice, not a setting.
	ReadOnly bool `json:"-"`
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	c.BusyTimeout = cmp.Or(c.BusyTimeout, BusyTimeoutDefault)
	c.Synchronous = strings.ToUpper(cmp.Or(c.Synchronous, SynchronousDefault))
	c.ReadConns = cmp.Or(c.ReadConns, ReadConnsDefault)
	c.Writers = cmp.Or(c.Writers, WritersDefault)
	c.MaxBatch = cmp.Or(c.MaxBatch, MaxBatchDefault)
	c.WriteTimeout = cmp.Or(c.WriteTimeout, WriteTimeoutDefault)
	return c
}

// Validate reports the first field that is out of range, by its JSON name.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case strings.TrimSpace(c.DSN) == "":
		return retry.InvalidField("dsn", "empty: want a SQLite path, \":memory:\" or a postgres:// URL")
	case c.BusyTimeout < 0:
		return retry.InvalidField("busy_timeout", "%v is negative", c.BusyTimeout)
	case c.Synchronous != "OFF" && c.Synchronous != "NORMAL" && c.Synchronous != "FULL":
		return retry.InvalidField("synchronous", "%q: want OFF, NORMAL or FULL", c.Synchronous)
	case c.ReadConns < 0 || c.ReadConns > ReadConnsLimit:
		return retry.InvalidField("read_conns", "%d: want 1 to %d", c.ReadConns, ReadConnsLimit)
	case c.Writers < 0 || c.Writers > WritersLimit:
		return retry.InvalidField("writers", "%d: want 1 to %d", c.Writers, WritersLimit)
	case c.MaxBatch < 0 || c.MaxBatch > MaxBatchLimit:
		return retry.InvalidField("max_batch", "%d: want 1 to %d", c.MaxBatch, MaxBatchLimit)
	case c.WriteTimeout < 0:
		return retry.InvalidField("write_timeout", "%v is negative", c.WriteTimeout)
	}
	pg, err := dsnKind(c.DSN)
	if err == nil && pg {
		_, err = pgConnector(c.DSN)
	}
	return err
}

// pgConnector parses a PostgreSQL URL into a connector, without
// connecting. pgdriver panics on a URL it cannot use (an unknown sslmode,
// say): that is bad input, so it comes back as an error naming the field.
func pgConnector(dsn string) (c *pgdriver.Connector, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = retry.InvalidField("dsn", "%v", p)
		}
	}()
	return pgdriver.NewConnector(pgdriver.WithDSN(dsn)), nil
}

// IsPostgres reports whether dsn names a PostgreSQL database (a
// postgres:// or postgresql:// URL, the scheme in any case) rather than a
// SQLite one.
func IsPostgres(dsn string) bool {
	pg, _ := dsnKind(dsn)
	return pg
}

// dsnKind reports whether dsn is a PostgreSQL URL. A URL of any other
// scheme than file: is an error, never taken for a file name.
func dsnKind(dsn string) (pg bool, err error) {
	scheme, _, ok := strings.Cut(dsn, "://")
	switch {
	case !ok || !isScheme(scheme) || strings.EqualFold(scheme, "file"):
		return false, nil
	case strings.EqualFold(scheme, "postgres") || strings.EqualFold(scheme, "postgresql"):
		return true, nil
	}
	return false, retry.InvalidField("dsn", "scheme %q: want a SQLite path, \":memory:\", a file: URI or a postgres:// URL", scheme)
}

// isScheme reports whether s has the shape of a URL scheme (RFC 3986): a
// letter, then letters, digits, '+', '-' or '.'.
func isScheme(s string) bool {
	for i, c := range s {
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && (i == 0 || !('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}

// Store is the Bun run store. It is safe for concurrent use; open it with
// [Open] and close it with [Store.Close]. A write method whose context ends
// either returns an error wrapping ctx.Err() having written nothing, or
// returns the committed result (see Cancellation in the package doc).
type Store struct {
	db           *bun.DB // writes (SQLite: one connection), and everything on PostgreSQL
	rdb          *bun.DB // reads; db itself unless SQLite has a read pool
	pg           bool
	maxBatch     int
	writeTimeout time.Duration

	mu     sync.RWMutex // held to read closed and send on ops; Close takes it to close ops
	closed atomic.Bool
	ops    chan *writeOp
	// charging (PostgreSQL) are the writers' own queues: the writes that
	// charge one retry budget all go to one writer, so that they share its
	// batches instead of taking turns on the budget's row across writers.
	charging []chan *writeOp
	claims   chan *writeOp // PostgreSQL: by-id claims, for the claimers
	done     chan struct{} // closed when every writer and claimer goroutine returned
	stmts    sync.Map      // SQLite: query text to its statement prepared on db

	budgetPruned sync.Map // budget scope to the newest bucket this store pruned its attempts up to
}

var (
	_ retry.Store           = (*Store)(nil)
	_ retry.Inspector       = (*Store)(nil)
	_ retry.BatchCreator    = (*Store)(nil)
	_ retry.BudgetInspector = (*Store)(nil)
)

// Open connects to the database cfg names and starts the writer. It does
// not migrate: call [Store.Migrate].
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	cfg = cfg.withDefaults()
	s := &Store{maxBatch: cfg.MaxBatch, writeTimeout: cfg.WriteTimeout, ops: make(chan *writeOp, cfg.MaxBatch), done: make(chan struct{})}
	var err error
	what := "postgres" // never the URL: it may hold a password
	if s.pg = IsPostgres(cfg.DSN); s.pg {
		err = s.openPostgres(cfg.DSN, cfg)
	} else {
		what = "sqlite " + cfg.DSN
		if cfg.DSN == ":memory:" {
			what = "sqlite in memory"
		}
		err = s.openSQLite(cfg.DSN, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %s: %w", what, err)
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.closeDBs()
		if !s.pg {
			err = sqliteCause(cfg.DSN, err)
		}
		return nil, fmt.Errorf("open store: %s: %w", what, err)
	}
	// SQLite has one writer; PostgreSQL takes concurrent transactions, and
	// round trips, not commits, bound one writer there.
	writers := 1
	if s.pg {
		writers = cfg.Writers
	}
	var wg sync.WaitGroup
	for range writers {
		var own chan *writeOp
		if s.pg {
			own = make(chan *writeOp, cfg.MaxBatch)
			s.charging = append(s.charging, own)
		}
		wg.Go(func() { s.serve(s.ops, own, s.runBatch) })
	}
	if s.pg {
		// Claims take their batches apart from the writes (see Locks);
		// two claimers, so that claims queue for one while the other's
		// statement runs.
		s.claims = make(chan *writeOp, cfg.MaxBatch)
		for range 2 {
			wg.Go(func() { s.serve(s.claims, nil, s.runClaims) })
		}
	}
	go func() { wg.Wait(); close(s.done) }()
	return s, nil
}

// writerSettings are the server settings of the writers' and claimers'
// connections on PostgreSQL (see openPostgres).
var writerSettings = map[string]string{
	"enable_seqscan":   "off",
	"enable_hashjoin":  "off",
	"enable_mergejoin": "off",
	"plan_cache_mode":  "force_generic_plan",
}

func (s *Store) openPostgres(dsn string, cfg Config) error {
	writes, err := pgConnector(dsn)
	if err != nil {
		return err
	}
	reads, _ := pgConnector(dsn)
	// Every statement the writers and claimers run finds its runs by id,
	// and the store's prepared ones (see prepared) keep a plan per
	// connection, perhaps made while the tables were empty, where a
	// sequential scan or a hash join over one looks cheapest and then
	// reads all of journey_runs on every batch once it has grown. Their
	// connections plan without those, so every plan of theirs looks its
	// rows up by index, and always use the prepared statement's generic
	// plan: the server's own choice, made from the first five executions'
	// costs, sometimes settles on planning the records' statement anew at
	// every execution, which at 2 workers cost 60 % more CPU an attempt
	// (BENCHMARKS.md, the attempt path). A DSN parameter overrides each.
	// Reads, which may want other plans, have a pool of their own.
	conf := writes.Config()
	for p, v := range writerSettings {
		if _, set := conf.ConnParams[p]; !set {
			if conf.ConnParams == nil {
				conf.ConnParams = map[string]any{}
			}
			conf.ConnParams[p] = v
		}
	}
	wdb := sql.OpenDB(writes)
	// The writers', the claimers' (two), and as many as the read pool for
	// what shares the pool (DB): a SQL-polling scheduler's statements and
	// its listener, sweeps.
	conns := cfg.Writers + 2 + cfg.ReadConns
	wdb.SetMaxOpenConns(conns)
	wdb.SetMaxIdleConns(conns)
	rdb := sql.OpenDB(reads)
	rdb.SetMaxOpenConns(cfg.ReadConns)
	rdb.SetMaxIdleConns(cfg.ReadConns)
	s.db, s.rdb = bun.NewDB(wdb, pgdialect.New()), bun.NewDB(rdb, pgdialect.New())
	return nil
}

// openSQLite opens the writer connection and, for a file, the read pool.
// sqliteCause replaces the driver's error opening a SQLite file, which
// says "out of memory (14)" for most causes, with the real one when the
// file system tells it: a missing or read-only folder, a folder given as
// the file.
func sqliteCause(dsn string, err error) error {
	p := strings.TrimPrefix(dsn, "file:")
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if p == "" || p == ":memory:" || strings.Contains(dsn, "mode=memory") || strings.Contains(dsn, "vfs=memdb") {
		return err
	}
	dir := filepath.Dir(p)
	if fi, serr := os.Stat(p); serr == nil && fi.IsDir() {
		return fmt.Errorf("%s is a folder, not a database file", p)
	} else if serr == nil {
		if f, oerr := os.OpenFile(p, os.O_RDWR, 0); oerr != nil {
			return fmt.Errorf("cannot open the file for writing: %w", oerr)
		} else {
			f.Close()
		}
	}
	if fi, serr := os.Stat(dir); serr != nil {
		return fmt.Errorf("folder %s: %w", dir, serr)
	} else if !fi.IsDir() {
		return fmt.Errorf("%s is not a folder", dir)
	}
	// SQLite creates the file and its -wal and -shm beside it.
	if f, cerr := os.CreateTemp(dir, ".journeyretry-probe-*"); cerr != nil {
		return fmt.Errorf("folder %s is not writable (SQLite keeps its journal beside the database): %w", dir, cerr)
	} else {
		f.Close()
		os.Remove(f.Name())
	}
	return err
}

func (s *Store) openSQLite(dsn string, cfg Config) error {
	memory := dsn == ":memory:" || strings.Contains(dsn, "mode=memory") || strings.Contains(dsn, "vfs=memdb")
	if dsn == ":memory:" {
		// A private database that every connection of this store shares.
		dsn = "file:/journeyretry-" + newToken() + "?vfs=memdb"
	}
	pragmas := url.Values{}
	set := []string{fmt.Sprintf("busy_timeout(%d)", cfg.BusyTimeout.Milliseconds())}
	if cfg.ReadOnly {
		set = append(set, "query_only(1)")
	} else {
		set = append(set, "journal_mode(WAL)", "synchronous("+cfg.Synchronous+")")
	}
	for _, p := range set {
		pragmas.Add("_pragma", p)
	}
	pragmas.Set("_txlock", "immediate")
	open := func(extra url.Values, conns int) (*bun.DB, error) {
		q := url.Values{}
		for k, v := range pragmas {
			q[k] = v
		}
		for k, v := range extra {
			q[k] = append(q[k], v...)
		}
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		if !strings.HasPrefix(dsn, "file:") {
			dsn = "file:" + dsn
		}
		sqldb, err := sql.Open(sqliteshim.ShimName, dsn+sep+q.Encode())
		if err != nil {
			return nil, err
		}
		sqldb.SetMaxOpenConns(conns)
		sqldb.SetMaxIdleConns(conns)
		sqldb.SetConnMaxLifetime(0)
		sqldb.SetConnMaxIdleTime(0)
		return bun.NewDB(sqldb, sqlitedialect.New()), nil
	}
	var err error
	if s.db, err = open(nil, 1); err != nil {
		return err
	}
	s.rdb = s.db
	if !memory && cfg.ReadConns > 0 {
		if s.rdb, err = open(url.Values{"_pragma": {"query_only(1)"}}, cfg.ReadConns); err != nil {
			s.db.Close()
			return err
		}
	}
	return nil
}

// DB returns the database the store writes to, for queries the store does
// not offer (the demo cross-checks its figures with it). Writing through it
// bypasses the store's contracts.
func (s *Store) DB() *bun.DB { return s.db }

// Close waits for the writes already queued, then closes the database.
// Later calls return errors wrapping [retry.ErrClosed].
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return fmt.Errorf("close store: %w", retry.ErrClosed)
	}
	s.closed.Store(true)
	close(s.ops)
	for _, ch := range s.charging {
		close(ch)
	}
	if s.claims != nil {
		close(s.claims)
	}
	s.mu.Unlock()
	<-s.done
	return s.closeDBs()
}

func (s *Store) closeDBs() error {
	err := s.db.Close()
	if s.rdb != s.db {
		err = combine.Errors(err, s.rdb.Close())
	}
	if err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// checkOpen returns an error wrapping retry.ErrClosed once Close was called.
func (s *Store) checkOpen(op string) error {
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", op, retry.ErrClosed)
	}
	return nil
}
