package engine

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
	redisched "github.com/journeyretry/journeyretry/scheduler/redis"
	"github.com/journeyretry/journeyretry/scheduler/sqlpoll"
	"github.com/journeyretry/journeyretry/storage"
)

// Scheduler backends, by the name scheduler.backend takes.
const (
	// SchedulerMemory keeps wake-ups in the process (the default): lost
	// on exit, rebuilt from the store on start.
	SchedulerMemory = "memory"
	// SchedulerRedis shares wake-ups between processes through Redis.
	SchedulerRedis = "redis"
	// SchedulerSQLPoll keeps wake-ups in a table of the store's database
	// (package sqlpoll): durable, shared by every process on it, and
	// written in the transaction that records a failure.
	SchedulerSQLPoll = "sqlpoll"
)

// SchedulerConfig selects the wake-up service. Each backend reads only
// its own fields.
type SchedulerConfig struct {
	// Backend is memory, redis or sqlpoll. Default memory.
	Backend string `json:"backend"`
	// RedisURL is the Redis server of the redis backend:
	// redis://[user:password@]host[:port][/db], or rediss:// for TLS. With
	// RedisCluster it gives only the credentials and TLS.
	RedisURL string `json:"redisUrl"`
	// RedisCluster, for the redis backend, are host:port seeds of a Redis
	// Cluster (comma-separated in a flag or the environment).
	RedisCluster []string `json:"redisCluster"`
	// RedisPrefix names the redis backend's keys; the processes of one
	// application share it, other applications on the same Redis choose
	// their own. Default redis.PrefixDefault ("jretry").
	RedisPrefix string `json:"redisPrefix"`
	// PollInterval (sqlpoll) caps the sleep between two looks at the
	// table; default [sqlpoll.PollIntervalDefault] (1s).
	PollInterval time.Duration `json:"pollInterval"`
	// SQLPollDSN (sqlpoll) puts the wake-up table in a database of its
	// own, a SQLite path or a PostgreSQL URL as Store.DSN takes. Default
	// empty: the store's database, the only place where a wake-up is
	// written in the transaction that records its retry or wait; in
	// another database the executor schedules after the store's commit,
	// as with any other backend, and a crash between the two is repaired
	// by the sweeper.
	SQLPollDSN string `json:"sqlpollDsn"`
}

func (c SchedulerConfig) redisConn() redisched.Conn {
	return redisched.Conn{URL: c.RedisURL, ClusterAddrs: c.RedisCluster}
}

// openScheduler opens one backend from the configuration and the store
// Open has opened (a backend that polls the store's table needs it). db,
// when not nil, is a database it opened for the scheduler, to close after
// it.
type openScheduler func(ctx context.Context, c SchedulerConfig, store *storage.Store) (s retry.Scheduler, db io.Closer, err error)

// schedulerBackends maps each name Backend accepts to its constructor;
// nil marks a backend accepted by name but not available yet, so that a
// configuration naming it is refused with a clear message and does not
// change when the backend arrives.
//
// Adding a backend: its constant above, its fields in SchedulerConfig
// (checked in Validate), and its constructor here.
var schedulerBackends = map[string]openScheduler{
	SchedulerMemory: func(context.Context, SchedulerConfig, *storage.Store) (retry.Scheduler, io.Closer, error) {
		s, err := memory.New(memory.Config{})
		return s, nil, err
	},
	SchedulerRedis: func(ctx context.Context, c SchedulerConfig, _ *storage.Store) (retry.Scheduler, io.Closer, error) {
		s, err := redisched.Open(ctx, c.redisConn(), redisched.Config{Prefix: c.RedisPrefix})
		if err != nil {
			return nil, nil, err // not a nil *Scheduler in a non-nil interface
		}
		return s, nil, nil
	},
	SchedulerSQLPoll: openSQLPoll,
}

// openSQLPoll migrates the sqlpoll table into the store's database and
// opens the scheduler on the store's own pool, so that it joins the
// store's transactions (and, on SQLite, its single writer connection).
// With SQLPollDSN it does the same on that database, opened as the store
// opens its own (so SQLite gets the same writer discipline) and returned
// to be closed after the scheduler.
func openSQLPoll(ctx context.Context, c SchedulerConfig, store *storage.Store) (retry.Scheduler, io.Closer, error) {
	var own *storage.Store
	if c.SQLPollDSN != "" {
		var err error
		if own, err = storage.Open(ctx, storage.Config{DSN: c.SQLPollDSN}); err != nil {
			return nil, nil, fmt.Errorf("sqlpoll database: %w", err)
		}
		store = own
	}
	fail := func(err error) (retry.Scheduler, io.Closer, error) {
		if own != nil {
			err = multierror.Append(&multierror.Error{ErrorFormat: retry.FormatErrors}, err, own.Close()).ErrorOrNil()
		}
		return nil, nil, err
	}
	if err := sqlpoll.Migrate(ctx, store.DB()); err != nil {
		return fail(err)
	}
	s, err := sqlpoll.New(ctx, store.DB(), sqlpoll.Config{PollInterval: c.PollInterval})
	if err != nil {
		return fail(err) // not a nil *Scheduler in a non-nil interface
	}
	if own == nil {
		return s, nil, nil
	}
	return s, own, nil
}

// backendNames lists the accepted names (only the available ones if
// available), for messages.
func backendNames(available bool) string {
	names := make([]string, 0, len(schedulerBackends))
	for n, open := range schedulerBackends {
		if open != nil || !available {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// Validate names the bad fields, each error wrapping
// [retry.ErrInvalidArgument]. The Redis URL is checked whatever the
// backend, so that a configuration written for redis is right when it is
// chosen.
func (c SchedulerConfig) Validate() error {
	errs := &multierror.Error{ErrorFormat: retry.FormatErrors}
	backend := c.backend()
	switch open, known := schedulerBackends[backend]; {
	case !known:
		errs = multierror.Append(errs, retry.InvalidField("backend", "%q: want one of %s", c.Backend, backendNames(false)))
	case open == nil:
		errs = multierror.Append(errs, retry.InvalidField("backend", "%q is not available yet (%s is): it comes with a later release", c.Backend, backendNames(true)))
	}
	if c.SQLPollDSN != "" {
		if err := (storage.Config{DSN: c.SQLPollDSN}).Validate(); err != nil {
			errs = multierror.Append(errs, retry.InvalidField("sqlpollDsn", "%w", err))
		}
	}
	if c.PollInterval < 0 {
		errs = multierror.Append(errs, retry.InvalidField("pollInterval", "%v is negative", c.PollInterval))
	}
	if c.RedisURL != "" {
		if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			errs = multierror.Append(errs, retry.InvalidField("redisUrl", "%s: want a redis:// or rediss:// URL with a host", redisched.Redact(c.RedisURL)))
		}
	}
	if backend == SchedulerRedis {
		switch {
		case c.RedisURL == "" && len(c.RedisCluster) == 0:
			errs = multierror.Append(errs, retry.InvalidField("redisUrl", "required by the redis backend (or redisCluster)"))
		case errs.ErrorOrNil() == nil:
			if err := c.redisConn().Validate(); err != nil {
				errs = multierror.Append(errs, retry.InvalidField("redisCluster", "%w", err))
			}
		}
		if err := (redisched.Config{Prefix: c.RedisPrefix}).Validate(); err != nil {
			errs = multierror.Append(errs, retry.InvalidField("redisPrefix", "%w", err))
		}
	}
	return errs.ErrorOrNil()
}

func (c SchedulerConfig) backend() string {
	if c.Backend == "" {
		return SchedulerMemory
	}
	return c.Backend
}

// open opens the configured backend; c is valid.
func (c SchedulerConfig) open(ctx context.Context, store *storage.Store) (retry.Scheduler, io.Closer, error) {
	return schedulerBackends[c.backend()](ctx, c, store)
}
