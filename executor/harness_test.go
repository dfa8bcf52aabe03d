package executor_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/policy"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/retrytest"
	"github.com/journeyretry/journeyretry/scheduler/memory"
	"github.com/journeyretry/journeyretry/storage"
)

// clock is retrytest's clock; the tests' own name for it.
type clock = retrytest.Clock

func newClock() *clock { return retrytest.NewClock() }

// harness is the executor's test harness: retrytest's, with the SQLite
// store typed for the tests that read it as one.
type harness struct {
	rt    *retrytest.Harness
	exec  *executor.Executor
	store *storage.Store
	sched *memory.Scheduler
	clock *clock
	// grace is the executor's sweep grace: a sweep takes what was due
	// that long before the clock.
	grace time.Duration
}

// openStore opens a migrated SQLite store in a temporary directory.
func openStore(t testing.TB, path string) *storage.Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "runs.db")
	}
	s, err := storage.Open(context.Background(), storage.Config{DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func defaultPolicy(t testing.TB) retry.Policy {
	t.Helper()
	r, err := policy.DefaultConfig().Build()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// newHarness builds an executor on a fresh SQLite store, a memory scheduler
// and pol (the default router when nil), with a stub clock.
func newHarness(t testing.TB, cfg executor.Config, pol retry.Policy) *harness {
	t.Helper()
	return newHarnessOn(t, openStore(t, ""), newClock(), cfg, pol, nil)
}

// newHarnessOn is newHarness on a given store and clock, for tests that
// hand one store from executor to executor. wrap, when set, wraps the
// memory scheduler the executor is given (h.sched stays the bare one).
func newHarnessOn(t testing.TB, store *storage.Store, c *clock, cfg executor.Config, pol retry.Policy, wrap func(*memory.Scheduler) retry.Scheduler) *harness {
	t.Helper()
	cfg.Worker = "test-worker"
	rt := retrytest.New(t, retrytest.Options{Config: cfg, Policy: pol, Store: store, Clock: c, WrapScheduler: wrap})
	return &harness{rt: rt, exec: rt.Executor, store: store, sched: rt.Scheduler, clock: rt.Clock, grace: rt.Grace}
}

// failing returns a handler that fails with err on its first n attempts (all
// of them when n < 0) and then succeeds with {"ok":true}.
func failing(err error, n int) executor.HandlerFunc {
	return func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		if n < 0 || in.Attempt <= n {
			return nil, err
		}
		return json.RawMessage(`{"ok":true}`), nil
	}
}

func ok(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
	return json.RawMessage(`{"ok":true}`), nil
}

// drive runs run id to its end; see retrytest.Harness.Drive.
func (h *harness) drive(t *testing.T, id string) retry.Run {
	t.Helper()
	return h.rt.Drive(t, id)
}

// openInspector opens a second handle on a SQLite file for reading reports.
func openInspector(path string) (*storage.Store, error) {
	return storage.Open(context.Background(), storage.Config{DSN: path})
}
