package executor_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/retrytest"
	"github.com/journeyretry/journeyretry/scheduler/memory"
)

// leaveRetry leaves, in store, a run id that failed once and is due for a
// retry at at, as a previous process would.
func leaveRetry(t *testing.T, store retry.Store, id string, at time.Time) {
	t.Helper()
	ctx := context.Background()
	now := at.Add(-time.Second)
	run, err := store.Create(ctx, retry.NewRun{ID: id, JourneyID: "j", JourneyVersion: 1, StartNodeID: "n", MaxRetries: 3, Worker: "old", Lease: time.Minute}, now)
	must(t, err)
	_, err = store.RecordFailure(ctx, run.Claim(), retry.FailureRecord{NodeID: "n", Class: retry.ClassNetworkBlip, Message: "x",
		Decision: retry.Decision{Retry: true, Delay: time.Second, Strategy: "immediate"}, StartedAt: now, FinishedAt: now})
	must(t, err)
}

// downScheduler is a scheduler whose backend is unreachable for Schedule.
type downScheduler struct{ retry.Scheduler }

func (downScheduler) Schedule(context.Context, string, time.Time) error {
	return errors.New("dial tcp: connection refused")
}

// TestRunSurvivesFailedRebuild: a scheduler that cannot be rebuilt (Redis
// down) does not stop Run: it logs, and the sweeper runs what is due.
func TestRunSurvivesFailedRebuild(t *testing.T) {
	store := openStore(t, "")
	leaveRetry(t, store, "r1", time.Now())
	sched, err := memory.New(memory.Config{})
	must(t, err)
	exec, err := executor.New(executor.Config{Mode: executor.ModeFull, SweepSpec: "@every 1s", SweepGrace: time.Millisecond},
		store, downScheduler{sched}, defaultPolicy(t))
	must(t, err)
	done := make(chan string, 1)
	must(t, exec.Handle("n", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		done <- in.Run.ID
		return nil, nil
	})))
	must(t, exec.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "n"}}}))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- exec.Run(ctx) }()
	select {
	case err := <-errc:
		t.Fatalf("Run returned %v with the scheduler down; want it to keep running", err)
	case id := <-done:
		if id != "r1" {
			t.Fatalf("ran %s", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the retry did not run within 10s (the sweeper should have taken it)")
	}
	cancel()
	must(t, await(t, errc, "Run's return"))
	if s := exec.Stats(); s.SweeperCaught != 1 || s.Rebuilt != 0 {
		t.Fatalf("stats %+v; want the retry caught by the sweeper and nothing rebuilt", s)
	}
}

// sharedLossy is a shared scheduler that reports losses: the test fires
// Lost, and counts the Schedule and Restore calls it gets.
type sharedLossy struct {
	retry.Scheduler
	lost chan struct{}

	mu        sync.Mutex
	scheduled int
	restored  []string
	fail      int           // the next Restores that fail
	rebuilt   chan struct{} // one value per Restore
}

func (s *sharedLossy) Shared() bool          { return true }
func (s *sharedLossy) Lost() <-chan struct{} { return s.lost }

func (s *sharedLossy) Schedule(ctx context.Context, id string, at time.Time) error {
	s.mu.Lock()
	s.scheduled++
	s.mu.Unlock()
	return s.Scheduler.Schedule(ctx, id, at)
}

func (s *sharedLossy) Restore(ctx context.Context, id string, at time.Time) error {
	s.mu.Lock()
	s.restored = append(s.restored, id)
	failing := s.fail > 0
	s.fail--
	s.mu.Unlock()
	s.rebuilt <- struct{}{}
	if failing {
		return errors.New("LOADING Redis is loading the dataset in memory")
	}
	return nil // a real backend inserts only what is absent
}

var (
	_ retry.SharedScheduler = (*sharedLossy)(nil)
	_ retry.LossReporter    = (*sharedLossy)(nil)
)

// runLossy runs an executor configured by cfg (Mode, SweepSpec and the
// rest set here) on a sharedLossy scheduler and a store holding one retry,
// r1, due in an hour, until its rebuild on start; stop ends Run.
func runLossy(t *testing.T, cfg executor.Config) (sched *sharedLossy, exec *executor.Executor, stop func()) {
	t.Helper()
	store := openStore(t, "")
	leaveRetry(t, store, "r1", time.Now().Add(time.Hour))
	mem, err := memory.New(memory.Config{})
	must(t, err)
	sched = &sharedLossy{Scheduler: mem, lost: make(chan struct{}), rebuilt: make(chan struct{}, 10)}
	cfg.Mode, cfg.SweepSpec = executor.ModeFull, "@every 1h"
	exec, err = executor.New(cfg, store, sched, defaultPolicy(t))
	must(t, err)
	must(t, exec.Handle("n", executor.HandlerFunc(ok)))
	must(t, exec.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "n"}}}))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- exec.Run(ctx) }()
	await(t, sched.rebuilt, "the rebuild on start")
	return sched, exec, func() {
		cancel()
		must(t, await(t, errc, "Run's return"))
	}
}

// TestLossRebuildsAtOnce: a shared scheduler is rebuilt with Restore (never
// Schedule, which would make other processes' deliveries stale), and again
// as soon as it reports a loss, without waiting for the sweeper.
func TestLossRebuildsAtOnce(t *testing.T) {
	sched, exec, stop := runLossy(t, executor.Config{})
	sched.lost <- struct{}{}
	await(t, sched.rebuilt, "the rebuild after the loss")
	stop()
	sched.mu.Lock()
	defer sched.mu.Unlock()
	if sched.scheduled != 0 || len(sched.restored) != 2 || sched.restored[0] != "r1" || sched.restored[1] != "r1" {
		t.Fatalf("Schedule called %d times, Restore for %v; want Restore of r1 on start and after the loss", sched.scheduled, sched.restored)
	}
	if s := exec.Stats(); s.Rebuilt != 2 {
		t.Fatalf("stats %+v; want 2 rebuilt", s)
	}
}

// TestRebuildOnStartLogged: the rebuild on start says how many wake-ups
// it gave the scheduler (what a Redis flushed while every process was
// down lacks).
func TestRebuildOnStartLogged(t *testing.T) {
	var logs retrytest.Buffer
	_, _, stop := runLossy(t, executor.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	const want = `msg="rebuilt the scheduler from the store" wakeups=1`
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10s:\n%s", want, logs.String())
		}
		time.Sleep(time.Millisecond) // the log follows the Restore just seen
	}
	stop()
}

// TestFailedLossRebuildRetried: a rebuild after a loss that fails (Redis
// back but still loading, say) is tried again until it succeeds: the
// scheduler reports a loss once, and nothing else would restore its
// entries.
func TestFailedLossRebuildRetried(t *testing.T) {
	var logs retrytest.Buffer
	sched, exec, stop := runLossy(t, executor.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	sched.mu.Lock()
	sched.fail = 2
	sched.mu.Unlock()
	sched.lost <- struct{}{}
	await(t, sched.rebuilt, "the rebuild after the loss, failing")
	await(t, sched.rebuilt, "the rebuild tried again, failing")
	await(t, sched.rebuilt, "the rebuild tried again, succeeding")
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "rebuilt them from the store"); {
		if time.Now().After(deadline) {
			t.Fatalf("no rebuild logged within 10s:\n%s", logs.String())
		}
		time.Sleep(time.Millisecond) // the log follows the Restore just seen
	}
	stop()
	if s := exec.Stats(); s.Rebuilt != 2 {
		t.Fatalf("stats %+v; want 2 rebuilt: on start, and once after the loss", s)
	}
	if out := logs.String(); strings.Count(out, "trying again") != 2 {
		t.Fatalf("log:\n%s\nwant two failed rebuilds, then a rebuilt one", out)
	}
}
