package executor_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
)

// await receives from ch, failing the test if nothing comes within a
// generous watchdog: a test that waits on real time must never hang.
func await[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("watchdog: no %s within 30s", what)
		panic("unreachable")
	}
}

// bubbleExecutor builds, inside a synctest bubble, an executor on a fresh
// store and a memory scheduler on the bubble's fake clock. The sweep is
// hourly and its grace an hour, so within these tests (whose fake time does
// not advance while anything runs) only the scheduler path hands out work.
func bubbleExecutor(t *testing.T, cfg executor.Config) (*executor.Executor, retry.Store, *memory.Scheduler) {
	t.Helper()
	store := openStore(t, "")
	sched, err := memory.New(memory.Config{})
	must(t, err)
	cfg.SweepSpec, cfg.SweepGrace = "@every 1h", time.Hour
	exec, err := executor.New(cfg, store, sched, defaultPolicy(t))
	must(t, err)
	return exec, store, sched
}

// runInBubble starts exec.Run and returns a stop function that cancels it
// and checks its error. Use it inside a synctest bubble: if Run never
// returned, the bubble would report the deadlock (its watchdog).
func runInBubble(t *testing.T, exec *executor.Executor) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- exec.Run(ctx) }()
	return func() {
		cancel()
		must(t, <-errc)
	}
}

// TestStaleWakeupIgnored: the scheduler is only a hint, so a wake-up for a
// run that cannot be claimed (completed, held by a live worker, or gone) is
// acknowledged, so it is not handed out again, and otherwise ignored: no
// handler runs and it does not count as a resume. It runs in a synctest
// bubble so synctest.Wait says when the executor has dealt with every
// delivery, without polling.
func TestStaleWakeupIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		exec, store, sched := bubbleExecutor(t, executor.Config{Lease: time.Minute})
		var calls atomic.Int32
		must(t, exec.Handle("n", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
			calls.Add(1)
			return nil, nil
		})))
		must(t, exec.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "n"}}}))
		ctx := context.Background()
		done, err := exec.StartRunSync(ctx, "j", nil, executor.WithRunID("done"))
		must(t, err)
		if done.Status != retry.StatusCompleted {
			t.Fatalf("run %s", done.Status)
		}
		held, err := store.Create(ctx, retry.NewRun{ID: "held", JourneyID: "j", JourneyVersion: 1, StartNodeID: "n", MaxRetries: 3,
			Worker: "other", Lease: time.Hour}, time.Now())
		must(t, err)
		for _, id := range []string{"done", "held", "gone"} {
			must(t, sched.Schedule(ctx, id, time.Now()))
		}
		stop := runInBubble(t, exec)
		synctest.Wait()
		s := exec.Stats()
		if n := sched.Len(); n != 0 || calls.Load() != 1 || s.Resumed != 0 || s.Attempts != 1 {
			t.Errorf("after stale wake-ups: %d entries left, %d handler calls, stats %+v; want 0 entries, the 1 call of StartRun, nothing resumed", n, calls.Load(), s)
		}
		if got, err := store.Get(ctx, "held"); err != nil || got.ClaimToken != held.ClaimToken || got.AttemptCount != 0 {
			t.Errorf("the run another worker holds was touched: %+v, %v", got, err)
		}
		stop()
	})
}

// committedFirst is a scheduler that, whenever it is told of a run, checks
// that the store already holds the run parked (retrying or waiting) due at
// exactly that time: the executor must commit before it tells the
// scheduler, or a wake-up could come for a run the store does not yet show
// as due, and a crash in between would leave a wake-up for a write that
// never happened.
type committedFirst struct {
	*memory.Scheduler
	t       testing.TB
	store   retry.Store
	checked atomic.Int32
}

func (s *committedFirst) Schedule(ctx context.Context, id string, at time.Time) error {
	run, err := s.store.Get(ctx, id)
	due, parked := run.DueAt()
	if err != nil || !parked || !due.Equal(at) {
		s.t.Errorf("scheduled %s at %s before the store held it: status %s, due %s, err %v", id, at, run.Status, due, err)
	}
	s.checked.Add(1)
	return s.Scheduler.Schedule(ctx, id, at)
}

// TestFailureCommittedBeforeScheduled: a retry and a delay node, each
// scheduled only once the store shows the run due at that time.
func TestFailureCommittedBeforeScheduled(t *testing.T) {
	var sched *committedFirst
	store := openStore(t, "")
	h := newHarnessOn(t, store, newClock(), executor.Config{Mode: executor.ModeFull}, nil, func(m *memory.Scheduler) retry.Scheduler {
		sched = &committedFirst{Scheduler: m, t: t, store: store}
		return sched
	})
	must(t, h.exec.Handle("flaky", failing(retry.WithClass(errors.New("503"), retry.ClassServiceUnavailable), 1)))
	must(t, h.exec.Handle("ok", executor.HandlerFunc(ok)))
	must(t, h.exec.RegisterJourney(executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{
		{ID: "a", Type: "flaky", Next: "w"},
		{ID: "w", Type: executor.NodeTypeDelay, Config: json.RawMessage(`{"delay":"1h"}`), Next: "c"},
		{ID: "c", Type: "ok"},
	}}))
	run, err := h.exec.StartRunSync(context.Background(), "j", nil)
	must(t, err)
	if run.Status != retry.StatusRetrying {
		t.Fatalf("run %s, want retrying", run.Status)
	}
	if run = h.drive(t, run.ID); run.Status != retry.StatusCompleted {
		t.Fatalf("run %s", run.Status)
	}
	if n := sched.checked.Load(); n != 2 {
		t.Fatalf("scheduled %d times, want 2 (the retry and the delay)", n)
	}
}

// TestVersionPinning: a run resumes on the journey version it started with,
// even after a newer version is registered; new runs take the newer one.
func TestVersionPinning(t *testing.T) {
	h := newHarness(t, executor.Config{Mode: executor.ModeFull}, nil)
	ctx := context.Background()
	var v1, v2 atomic.Int32
	v1Fails := failing(retry.WithClass(errors.New("503"), retry.ClassServiceUnavailable), 1)
	must(t, h.exec.Handle("v1", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		v1.Add(1)
		return v1Fails(ctx, in)
	})))
	must(t, h.exec.Handle("v2", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		v2.Add(1)
		return ok(ctx, in)
	})))
	must(t, h.exec.RegisterJourney(executor.Journey{ID: "j", Version: 1, Start: "a", Nodes: []executor.Node{{ID: "a", Type: "v1"}}}))
	run, err := h.exec.StartRunSync(ctx, "j", nil)
	must(t, err)
	if run.Status != retry.StatusRetrying || run.JourneyVersion != 1 {
		t.Fatalf("run %s on version %d, want retrying on 1", run.Status, run.JourneyVersion)
	}
	// Version 2 has a node of the same id with another handler.
	must(t, h.exec.RegisterJourney(executor.Journey{ID: "j", Version: 2, Start: "a", Nodes: []executor.Node{{ID: "a", Type: "v2"}}}))
	if run = h.drive(t, run.ID); run.Status != retry.StatusCompleted || v1.Load() != 2 || v2.Load() != 0 {
		t.Fatalf("run %s; version 1 ran %d times, version 2 %d: want completed on version 1 (2, 0)", run.Status, v1.Load(), v2.Load())
	}
	// Versions is what a cutover pins legacy rows to: the latest of
	// each (an unset version is 1).
	must(t, h.exec.RegisterJourney(executor.Journey{ID: "k", Start: "a", Nodes: []executor.Node{{ID: "a", Type: "v2"}}}))
	if got, want := h.exec.Versions(), map[string]int{"j": 2, "k": 1}; !maps.Equal(got, want) {
		t.Fatalf("Versions() = %v, want %v", got, want)
	}
	run, err = h.exec.StartRunSync(ctx, "j", nil)
	must(t, err)
	if run.Status != retry.StatusCompleted || run.JourneyVersion != 2 || v2.Load() != 1 {
		t.Fatalf("new run %s on version %d, version 2 ran %d times", run.Status, run.JourneyVersion, v2.Load())
	}
}

// TestModeSwitchKeepsScheduledRetry: the mode governs new failures only
// (see Mode's doc). A retry scheduled under ModeFull by one executor runs,
// and succeeds, when an executor configured ModeOff resumes it from the
// same store, as after a rollback of the configuration and a restart.
func TestModeSwitchKeepsScheduledRetry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.db")
	c := newClock()
	setup := func(mode executor.Mode) *harness {
		h := newHarnessOn(t, openStore(t, path), c, executor.Config{Mode: mode}, nil, nil)
		must(t, h.exec.Handle("flaky", failing(retry.WithClass(errors.New("503"), retry.ClassServiceUnavailable), 1)))
		must(t, h.exec.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "flaky"}}}))
		return h
	}
	full := setup(executor.ModeFull)
	run, err := full.exec.StartRunSync(context.Background(), "j", nil)
	must(t, err)
	if run.Status != retry.StatusRetrying {
		t.Fatalf("under full: run %s, want retrying", run.Status)
	}
	must(t, full.exec.Close())
	must(t, full.store.Close()) // the file is the next one's
	off := setup(executor.ModeOff)
	run = off.drive(t, run.ID)
	atts, err := off.store.Attempts(context.Background(), run.ID)
	must(t, err)
	if run.Status != retry.StatusCompleted || len(atts) != 2 || atts[1].Outcome != retry.OutcomeSucceeded {
		t.Fatalf("under off: run %s, attempts %+v; want the scheduled retry to run and complete", run.Status, atts)
	}
}

// TestWorkerPoolBound: with Workers 2 and ten runs due at once, at most two
// handlers run at a time, and two do. The handlers are held on a channel
// and released one by one; in a synctest bubble, synctest.Wait tells when
// the executor has filled every free worker, so the count is exact at each
// step without sleeps (a hang is reported by the bubble as a deadlock).
// outstandingScheduler counts the deliveries claimed and not yet
// acknowledged, and keeps the peak.
type outstandingScheduler struct {
	retry.Scheduler
	mu        sync.Mutex
	out, peak int
}

func (s *outstandingScheduler) Claim(ctx context.Context, now time.Time, limit int) ([]retry.Delivery, error) {
	ds, err := s.Scheduler.Claim(ctx, now, limit)
	s.mu.Lock()
	s.out += len(ds)
	s.peak = max(s.peak, s.out)
	s.mu.Unlock()
	return ds, err
}

func (s *outstandingScheduler) Ack(ctx context.Context, d retry.Delivery) error {
	s.mu.Lock()
	s.out--
	s.mu.Unlock()
	return s.Scheduler.Ack(ctx, d)
}

func TestWorkerPoolBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := openStore(t, "")
		mem, err := memory.New(memory.Config{})
		must(t, err)
		sched := &outstandingScheduler{Scheduler: mem}
		exec, err := executor.New(executor.Config{Workers: 2, SweepSpec: "@every 1h", SweepGrace: time.Hour}, store, sched, defaultPolicy(t))
		must(t, err)
		release := make(chan struct{})
		var mu sync.Mutex
		active, peak := 0, 0
		must(t, exec.Handle("hold", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
			mu.Lock()
			active++
			peak = max(peak, active)
			mu.Unlock()
			defer func() { mu.Lock(); active--; mu.Unlock() }()
			select {
			case <-release:
				return nil, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})))
		must(t, exec.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "hold"}}}))
		ctx := context.Background()
		const runs = 10
		var ids []string
		for range runs {
			run, err := exec.StartRunSync(ctx, "j", nil, executor.Deferred()) // due now, told to the scheduler
			must(t, err)
			ids = append(ids, run.ID)
		}
		stop := runInBubble(t, exec)
		defer stop()
		for released := range runs {
			synctest.Wait()
			mu.Lock()
			n := active
			mu.Unlock()
			if want := min(2, runs-released); n != want {
				t.Fatalf("after %d released: %d handlers running, want %d", released, n, want)
			}
			release <- struct{}{}
		}
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if s := exec.Stats(); peak != 2 || active != 0 || s.Resumed != runs || s.SweeperCaught != 0 {
			t.Fatalf("peak %d, %d still running, stats %+v; want peak 2, all %d resumed by the scheduler", peak, active, s, runs)
		}
		// Back-pressure: due entries waited in the scheduler; the
		// executor never took more than its free workers could run.
		if sched.peak > 2 {
			t.Fatalf("the executor held %d deliveries at once with 2 workers; want due entries left in the scheduler", sched.peak)
		}
		for _, id := range ids {
			if run, err := store.Get(ctx, id); err != nil || run.Status != retry.StatusCompleted {
				t.Fatalf("run %s: %s, %v", id, run.Status, err)
			}
		}
	})
}

// TestZeroConfigRetries: the zero Config is rollout mode full, so a
// failure the policy retries is retried and the run completes; off, shadow
// and selective are explicit.
func TestZeroConfigRetries(t *testing.T) {
	if got := (executor.Config{}).WithDefaults().Mode; got != executor.ModeFull {
		t.Fatalf("zero Config's mode %q, want full", got)
	}
	h := newHarness(t, executor.Config{}, nil)
	must(t, h.exec.Handle("flaky", failing(retry.WithClass(errors.New("connection reset"), retry.ClassNetworkBlip), 1)))
	must(t, h.exec.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "flaky"}}}))
	run, err := h.exec.StartRunSync(context.Background(), "j", nil)
	must(t, err)
	run = h.drive(t, run.ID)
	atts, err := h.store.Attempts(context.Background(), run.ID)
	must(t, err)
	if run.Status != retry.StatusCompleted || len(atts) != 2 || atts[0].Decision.Strategy != "immediate" {
		t.Fatalf("run %s after %d attempts (%+v); want a retry, then completed", run.Status, len(atts), atts)
	}
}
