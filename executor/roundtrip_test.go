package executor_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
)

// gatedScheduler holds every Schedule or Ack (as gate says) until open is
// closed, the way a networked scheduler's round trip holds its caller,
// and keeps the errors the calls got.
type gatedScheduler struct {
	retry.Scheduler
	schedules, acks bool
	open            chan struct{}
	release         func() // closes open, once
	held            atomic.Int32
	mu              sync.Mutex
	errs            []error
}

func (s *gatedScheduler) hold(call func() error) error {
	s.held.Add(1)
	<-s.open
	err := call()
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
	return err
}

func (s *gatedScheduler) Schedule(ctx context.Context, id string, at time.Time) error {
	if !s.schedules {
		return s.Scheduler.Schedule(ctx, id, at)
	}
	return s.hold(func() error { return s.Scheduler.Schedule(ctx, id, at) })
}

func (s *gatedScheduler) Ack(ctx context.Context, d retry.Delivery) error {
	if !s.acks {
		return s.Scheduler.Ack(ctx, d)
	}
	return s.hold(func() error { return s.Scheduler.Ack(ctx, d) })
}

// stopWithHeld cancels Run (cancel, whose result errc receives) while
// calls are held, checks that Run waits for them, then lets them through
// and waits for Run.
func (s *gatedScheduler) stopWithHeld(t *testing.T, cancel context.CancelFunc, errc <-chan error) {
	t.Helper()
	cancel()
	synctest.Wait()
	select {
	case err := <-errc:
		t.Fatalf("Run returned (%v) with %d scheduler calls in flight", err, s.held.Load())
	default:
	}
	s.release()
	must(t, <-errc)
}

// gatedExecutor is an executor of one worker on sched (wrapping a memory
// scheduler, returned too), with a journey "fail" failing once with a 1s
// retry and a journey "ok"; ran counts the "ok" node's executions.
func gatedExecutor(t *testing.T, sched *gatedScheduler) (*executor.Executor, *memory.Scheduler, *atomic.Int32) {
	t.Helper()
	mem, err := memory.New(memory.Config{})
	must(t, err)
	t.Cleanup(func() { mem.Close() })
	sched.Scheduler, sched.open = mem, make(chan struct{})
	sched.release = sync.OnceFunc(func() { close(sched.open) })
	exec, err := executor.New(executor.Config{Workers: 1, SweepSpec: "@every 1h", SweepGrace: time.Hour}, openStore(t, ""), sched, retryAfter(time.Second))
	must(t, err)
	var ran atomic.Int32
	must(t, exec.Handle("flaky", failing(retry.WithClass(errors.New("503"), retry.ClassServiceUnavailable), 1)))
	must(t, exec.Handle("ok", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		ran.Add(1)
		return nil, nil
	})))
	must(t, exec.RegisterJourney(executor.Journey{ID: "fail", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "flaky"}}}))
	must(t, exec.RegisterJourney(executor.Journey{ID: "ok", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "ok"}}}))
	return exec, mem, &ran
}

// TestScheduleFreesWorkerFirst: a run parked for a retry gives its worker
// back before it tells the scheduler, so with one worker another run
// executes while that Schedule is still on its way; StartRunSync still
// returns only once the scheduler has the entry; and shutdown waits for a
// Schedule in flight, so that it reaches the scheduler before Run returns
// (and the caller closes the scheduler).
func TestScheduleFreesWorkerFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sched := &gatedScheduler{schedules: true}
		exec, mem, ran := gatedExecutor(t, sched)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		defer sched.release() // a failed check ends the bubble too
		errc := make(chan error, 1)
		go func() { errc <- exec.Run(ctx) }()
		synctest.Wait()

		syncDone := make(chan retry.Run, 1)
		go func() {
			run, err := exec.StartRunSync(context.Background(), "fail", nil)
			must(t, err)
			syncDone <- run
		}()
		synctest.Wait()
		if sched.held.Load() != 1 {
			t.Fatalf("%d Schedules held; want the failed run's", sched.held.Load())
		}
		go func() { // blocks while the worker is taken
			if _, err := exec.StartRun(ctx, "ok", nil); err != nil && ctx.Err() == nil {
				t.Error(err)
			}
		}()
		synctest.Wait()
		if ran.Load() != 1 {
			t.Fatal("the only worker is still held by a run waiting for its Schedule")
		}
		select {
		case <-syncDone:
			t.Fatal("StartRunSync returned before the scheduler had the retry")
		default:
		}

		if _, err := exec.StartRun(context.Background(), "fail", nil); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // its Schedule held too
		sched.stopWithHeld(t, cancel, errc)
		if run := <-syncDone; run.Status != retry.StatusRetrying {
			t.Fatalf("StartRunSync returned the run %s; want retrying", run.Status)
		}
		sched.mu.Lock()
		defer sched.mu.Unlock()
		for _, err := range sched.errs {
			must(t, err)
		}
		if len(sched.errs) != 2 || mem.Len() != 2 {
			t.Fatalf("%d Schedules returned, %d entries; want both retries scheduled", len(sched.errs), mem.Len())
		}
	})
}

// TestAckBesideExecution: a woken run executes while its delivery's Ack is
// still on its way, and shutdown waits for that Ack before Run returns.
// The Ack lands after the run was rescheduled (its node failed again), and
// removes nothing: the token it carries is stale.
func TestAckBesideExecution(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sched := &gatedScheduler{acks: true}
		exec, mem, _ := gatedExecutor(t, sched)
		var attempts atomic.Int32
		must(t, exec.Handle("down", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
			attempts.Add(1)
			return nil, retry.WithClass(errors.New("503"), retry.ClassServiceUnavailable)
		})))
		must(t, exec.RegisterJourney(executor.Journey{ID: "down", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "down"}}}))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		defer sched.release() // a failed check ends the bubble too
		errc := make(chan error, 1)
		go func() { errc <- exec.Run(ctx) }()
		run, err := exec.StartRunSync(context.Background(), "down", nil)
		must(t, err)
		time.Sleep(time.Second) // the bubble's clock: the retry falls due
		synctest.Wait()
		if attempts.Load() != 2 || sched.held.Load() != 1 {
			t.Fatalf("%d attempts, %d Acks held; want the woken run executed beside its held Ack", attempts.Load(), sched.held.Load())
		}
		sched.stopWithHeld(t, cancel, errc)
		sched.mu.Lock()
		defer sched.mu.Unlock()
		if len(sched.errs) != 1 || sched.errs[0] != nil {
			t.Fatalf("Ack errors %v; want one that reached the scheduler", sched.errs)
		}
		if n := exec.Stats().Resumed; mem.Len() != 1 || n != 1 {
			t.Fatalf("%d entries, %d resumed; want the rescheduled retry of %s kept", mem.Len(), n, run.ID)
		}
	})
}
