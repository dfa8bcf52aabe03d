package executor_test

import (
	"cmp"
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/policy"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
	"github.com/journeyretry/journeyretry/storage"
)

// clock is a stub clock the tests advance by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

type harness struct {
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
	h := &harness{store: store, clock: c}
	var err error
	if h.sched, err = memory.New(memory.Config{Now: h.clock.Now}); err != nil {
		t.Fatal(err)
	}
	var sched retry.Scheduler = h.sched
	if wrap != nil {
		sched = wrap(h.sched)
	}
	if pol == nil {
		pol = defaultPolicy(t)
	}
	cfg.Now = h.clock.Now
	cfg.Worker = "test-worker"
	h.grace = cmp.Or(cfg.SweepGrace, executor.SweepGraceDefault)
	if h.exec, err = executor.New(cfg, h.store, sched, pol); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.exec.Close()
		h.sched.Close()
	})
	return h
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

// drive advances the clock past each retry's due time and its sweep grace,
// and sweeps, until run ends, at most 20 rounds.
func (h *harness) drive(t *testing.T, id string) retry.Run {
	t.Helper()
	ctx := context.Background()
	for range 20 {
		run, err := h.store.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		at, waiting := run.DueAt()
		if !waiting {
			return run
		}
		h.clock.Set(at.Add(h.grace))
		if _, err := h.exec.SweepOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("run %s did not end", id)
	return retry.Run{}
}

// openInspector opens a second handle on a SQLite file for reading reports.
func openInspector(path string) (*storage.Store, error) {
	return storage.Open(context.Background(), storage.Config{DSN: path})
}
