// Package retrytest is a test kit for teams that write node handlers and
// journeys, shaped after River's rivertest: a clock the test moves by
// hand, an executor harness that runs a journey to its end without
// sleeping, assertions on what the store holds, and a way to run one
// handler once as a given attempt of its node.
//
// The harness runs on the in-memory store (storage/memstore) and the
// memory scheduler by default, so a test needs no database; pass a store
// in [Options] to run the same test on the real one.
package retrytest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/policy"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
	"github.com/journeyretry/journeyretry/storage/memstore"
)

// Start is the time a [Clock] from [NewClock] shows before it is moved:
// a fixed, whole-second time, so that tests print and compare the same
// times on every run.
var Start = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// Clock is a clock the test moves by hand, safe for concurrent use. Pass
// its Now wherever a component takes a clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock showing [Start].
func NewClock() *Clock { return &Clock{t: Start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// Options configures [New]. The zero value is ready to use.
type Options struct {
	// Config is the executor's configuration; New sets its Now to the
	// harness's clock and, when empty, its Worker to "test-worker".
	Config executor.Config
	// Policy decides retries; default the policy package's default router.
	Policy retry.Policy
	// Store is where runs are kept; default a fresh in-memory store. A
	// store given here is not closed by the harness: who opens it closes
	// it.
	Store retry.Store
	// Clock is the harness's clock; default [NewClock].
	Clock *Clock
	// WrapScheduler, when set, wraps the memory scheduler the executor is
	// given (to count or drop wake-ups); Harness.Scheduler stays the bare
	// one.
	WrapScheduler func(*memory.Scheduler) retry.Scheduler
}

// Harness is an executor on a store and a memory scheduler, all on one
// hand-moved clock. Register journeys and handlers on Executor, start runs
// with [Harness.Run], and assert with the Require functions.
type Harness struct {
	Executor  *executor.Executor
	Store     retry.Store
	Scheduler *memory.Scheduler
	Clock     *Clock
	// Grace is the executor's sweep grace: a sweep takes what was due that
	// long before the clock.
	Grace time.Duration
}

// New returns a harness that is closed when the test ends. It fails the
// test if the executor cannot be built from o.
func New(t testing.TB, o Options) *Harness {
	t.Helper()
	h := &Harness{Store: o.Store, Clock: o.Clock}
	if h.Clock == nil {
		h.Clock = NewClock()
	}
	if h.Store == nil {
		s := memstore.New()
		t.Cleanup(func() { _ = s.Close() })
		h.Store = s
	}
	var err error
	if h.Scheduler, err = memory.New(memory.Config{Now: h.Clock.Now}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Scheduler.Close() })
	var sched retry.Scheduler = h.Scheduler
	if o.WrapScheduler != nil {
		sched = o.WrapScheduler(h.Scheduler)
	}
	if o.Policy == nil {
		if o.Policy, err = policy.DefaultConfig().Build(); err != nil {
			t.Fatal(err)
		}
	}
	cfg := o.Config
	cfg.Now = h.Clock.Now
	cfg.Worker = cmp.Or(cfg.Worker, "test-worker")
	h.Grace = cmp.Or(cfg.SweepGrace, executor.SweepGraceDefault)
	if h.Executor, err = executor.New(cfg, h.Store, sched, o.Policy); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Executor.Close() })
	return h
}

// Run starts a run of journeyID with input in the calling goroutine
// ([executor.Executor.StartRunSync]) and drives it to its end (see
// [Harness.Drive]), returning it as the store then holds it.
func (h *Harness) Run(t testing.TB, journeyID string, input json.RawMessage, opts ...executor.StartOption) retry.Run {
	t.Helper()
	run, err := h.Executor.StartRunSync(context.Background(), journeyID, input, opts...)
	if err != nil {
		t.Fatalf("start run of %s: %v", journeyID, err)
	}
	return h.Drive(t, run.ID)
}

// MaxRounds bounds [Harness.Drive]: a run still waiting after that many
// retries and wake-ups fails the test instead of looping.
const MaxRounds = 100

// Drive runs run id to its end without sleeping: while it waits (a retry
// or a delay node), it moves the clock past its due time and the sweep
// grace and sweeps, so the run resumes in the calling goroutine. It returns
// the run once it is no longer waiting: ended, or in progress under a
// claim the harness did not take.
func (h *Harness) Drive(t testing.TB, id string) retry.Run {
	t.Helper()
	ctx := context.Background()
	for range MaxRounds {
		run, err := h.Store.Get(ctx, id)
		if err != nil {
			t.Fatalf("drive %s: %v", id, err)
		}
		at, waiting := run.DueAt()
		if !waiting {
			return run
		}
		h.Clock.Set(at.Add(h.Grace))
		if _, err := h.Executor.SweepOnce(ctx); err != nil {
			t.Fatalf("drive %s: %v", id, err)
		}
	}
	t.Fatalf("run %s still waiting after %d rounds", id, MaxRounds)
	return retry.Run{}
}

// CompleteRuns starts runs runs of journeyID from workers goroutines, each
// executed in line (Executor.StartRunSync) under the id "round-NNNNNN", and
// returns the wall time they took. A run that does not complete fails tb.
// Benchmarks of a whole executor drive their load with it, so that their
// figures come from one workload.
func CompleteRuns(tb testing.TB, ex *executor.Executor, journeyID string, round, workers, runs int) time.Duration {
	tb.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for n := next.Add(1); n <= int64(runs); n = next.Add(1) {
				run, err := ex.StartRunSync(context.Background(), journeyID, nil, executor.WithRunID(fmt.Sprintf("%d-%06d", round, n)))
				if err != nil || run.Status != retry.StatusCompleted {
					tb.Errorf("run %d-%06d: %v %s", round, n, err, run.Status)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}
