// Package engine builds a ready executor from one [Config]: the store
// (SQLite file or PostgreSQL URL), the scheduler backend, the retry policy
// and the executor, so that a program swaps any of them by configuration
// alone. Its Config has the sections and keys of the configuration file
// that package config loads (store, scheduler, executor, retry), so a
// program gets the file, environment and flag precedence of the demo with
//
//	cfg := engine.DefaultConfig()
//	if err := config.New(&cfg, "JRETRY").Load(); err != nil { ... }
//	eng, err := engine.Open(ctx, cfg)
//
// # Ownership
//
// [Open] opens the store and the scheduler; [Engine.Close] closes them.
// Register handlers and journeys on the embedded executor, start runs, and
// call Run to serve wake-ups; Close once Run has returned (or when it was
// never called).
package engine

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"sync"

	"github.com/hashicorp/go-multierror"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/internal/combine"
	"github.com/journeyretry/journeyretry/policy"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage"
)

// Config is the configuration of everything [Open] builds. The JSON keys
// are the sections of the configuration file. Start from [DefaultConfig]
// (a zero Retry section means [policy.DefaultConfig] too).
type Config struct {
	// Store is the database: a SQLite path or a postgres:// URL in DSN.
	Store storage.Config `json:"store"`
	// Scheduler selects the wake-up service; default memory.
	Scheduler SchedulerConfig `json:"scheduler"`
	// Executor is the worker pool, leases, sweeper and rollout mode. The
	// store's retry limit for new runs is the policy's, Retry.MaxRetries.
	Executor executor.Config `json:"executor"`
	// Retry is the default policy's configuration (policy.Config's keys).
	Retry policy.Config `json:"retry"`
}

// DefaultConfig returns the defaults of every section: the memory
// scheduler, the library's executor defaults and [policy.DefaultConfig].
// Store.DSN has no default: a program names its database.
func DefaultConfig() Config {
	return Config{
		Scheduler: SchedulerConfig{Backend: SchedulerMemory},
		Retry:     policy.DefaultConfig(),
	}
}

// withDefaults returns c with a zero Retry section replaced by the
// policy's defaults (a zero policy.Config is not a policy anyone means:
// its delays are zero and it never retries).
func (c Config) withDefaults() Config {
	if reflect.ValueOf(c.Retry).IsZero() {
		c.Retry = policy.DefaultConfig()
	}
	return c
}

// Validate reports every bad field of every section, each named by its
// dotted key ("store.dsn: ...", "retry.maxDelayMs: ...").
func (c Config) Validate() error {
	c = c.withDefaults()
	errs := &multierror.Error{ErrorFormat: retry.FormatErrors}
	for _, s := range []struct {
		key string
		err error
	}{
		{"store", c.Store.Validate()},
		{"scheduler", c.Scheduler.Validate()},
		{"executor", c.Executor.Validate()},
		{"retry", c.Retry.Validate()},
	} {
		for _, err := range splitErrors(s.err) {
			errs = multierror.Append(errs, fmt.Errorf("%s.%w", s.key, err))
		}
	}
	return errs.ErrorOrNil()
}

// splitErrors returns the errors err combines (one for a plain error,
// none for nil).
func splitErrors(err error) []error {
	switch e := err.(type) {
	case nil:
		return nil
	case *multierror.Error:
		return e.WrappedErrors()
	case interface{ Unwrap() []error }:
		return e.Unwrap()
	}
	return []error{err}
}

// ExecutorConfig is the executor's configuration as Open runs it: every
// zero field set to its default. A program prints it to say what it runs
// with.
func (c Config) ExecutorConfig() executor.Config {
	c = c.withDefaults()
	return c.Executor.WithDefaults()
}

// Engine is an executor with the store, scheduler and policy Open built
// for it. The executor's methods (Handle, RegisterJourney, StartRun, Run,
// ...) are promoted; Close closes what Open opened.
type Engine struct {
	*executor.Executor
	store *storage.Store
	sched retry.Scheduler
	// schedDB is a database opened for the scheduler alone, or nil.
	schedDB io.Closer
	policy  *policy.Router

	closeOnce sync.Once
	closeErr  error
}

// Open validates cfg, opens and migrates the store (creating a SQLite
// file, not its folder; migrating is idempotent), opens the scheduler,
// builds the policy and returns the executor over them. On error it closes
// what it had opened.
func Open(ctx context.Context, cfg Config) (*Engine, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("engine config: %w", err)
	}
	pol, err := cfg.Retry.Build()
	if err != nil {
		return nil, fmt.Errorf("build policy: %w", err)
	}
	store, err := storage.Open(ctx, cfg.Store) // its errors say "open store"
	if err != nil {
		return nil, err
	}
	e := &Engine{store: store, policy: pol}
	if err := store.Migrate(ctx); err != nil { // its errors say "migrate"
		return nil, e.closeAfter(err)
	}
	if e.sched, e.schedDB, err = cfg.Scheduler.open(ctx, store); err != nil {
		return nil, e.closeAfter(fmt.Errorf("scheduler: %w", err))
	}
	if e.Executor, err = executor.New(cfg.ExecutorConfig(), store, e.sched, pol); err != nil {
		return nil, e.closeAfter(fmt.Errorf("executor: %w", err))
	}
	return e, nil
}

// closeAfter closes what Open opened so far and returns err with the
// close errors combined.
func (e *Engine) closeAfter(err error) error {
	return combine.Errors(err, e.Close())
}

// Store is the run store: for reads (retry.Inspector) and operator actions.
func (e *Engine) Store() *storage.Store { return e.store }

// Scheduler is the wake-up service the executor consumes.
func (e *Engine) Scheduler() retry.Scheduler { return e.sched }

// Policy is the default retry policy built from Config.Retry.
func (e *Engine) Policy() *policy.Router { return e.policy }

// Close closes the executor, the scheduler and the store, returning their
// errors combined. Call it after Run has returned. It is idempotent.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		errs := &multierror.Error{ErrorFormat: retry.FormatErrors}
		if e.Executor != nil {
			e.Executor.Close() // stops taking work; returns nil
		}
		if e.sched != nil {
			if err := e.sched.Close(); err != nil {
				errs = multierror.Append(errs, fmt.Errorf("close scheduler: %w", err))
			}
		}
		if e.schedDB != nil {
			if err := e.schedDB.Close(); err != nil {
				errs = multierror.Append(errs, fmt.Errorf("close scheduler database: %w", err))
			}
		}
		if err := e.store.Close(); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("close store: %w", err))
		}
		e.closeErr = errs.ErrorOrNil()
	})
	return e.closeErr
}
