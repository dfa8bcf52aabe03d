package executor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
	"github.com/journeyretry/journeyretry/storage"
	"github.com/journeyretry/journeyretry/storage/pgtest"
)

const (
	stormEnvDSN   = "JRETRY_STORM_DSN"
	stormEnvUntil = "JRETRY_STORM_UNTIL"
	stormProcs    = 3
	stormRuns     = 30 // runs of the class that fails every time
	fineRuns      = 6  // runs of another class, failing once each
	stormFor      = 9 * time.Second
)

// stormBudget allows 5 retries per 3 s window per class, whatever the
// attempts (the ratio is negligible), so the bound is exact to check.
var stormBudget = executor.BudgetConfig{Enabled: true, Ratio: 0.001, MinRetries: 5, Window: 3 * time.Second}

// stormPolicy retries every failure after 50 ms.
var stormPolicy = retry.PolicyFunc(func(retry.Failure) retry.Decision {
	return retry.Decision{Retry: true, Delay: 50 * time.Millisecond, Strategy: "storm", Rule: "default"}
})

// TestBudgetStorm runs 3 worker processes on one database while a
// downstream is down: every run of one journey fails with
// service_unavailable, every time, and retries forever; runs of another
// journey, started through the storm, fail once with network_blip and
// then succeed. The shared budget must hold the storm's retries to 5 per
// window across the three processes (every 6 consecutive buckets of the
// window hold at most 5 retries by the time they were given, and the
// retries executed stay within 5 a window), defer the rest with the
// budget's rule, and leave the other class alone: its runs all complete,
// none deferred. On SQLite, and on PostgreSQL when RETRY_TEST_POSTGRES_URL
// is set, where it also checks that PostgreSQL detected no deadlock.
func TestBudgetStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test skipped in -short mode")
	}
	t.Run("sqlite", func(t *testing.T) {
		stormRound(t, filepath.Join(t.TempDir(), "storm.db"), nil)
	})
	t.Run("postgres", func(t *testing.T) {
		base := os.Getenv(pgtest.EnvURL)
		if base == "" {
			t.Skipf("%s is not set: skipping the PostgreSQL round", pgtest.EnvURL)
		}
		dsn, db := mpDatabase(t, base)
		before := deadlocks(t, db)
		stormRound(t, dsn, func() {
			if n := deadlocks(t, db) - before; n != 0 {
				t.Errorf("PostgreSQL detected %d deadlocks in the workers' database", n)
			}
		})
	})
}

func stormRound(t *testing.T, dsn string, after func()) {
	ctx := context.Background()
	store, err := storage.Open(ctx, storage.Config{DSN: dsn})
	must(t, err)
	defer store.Close()
	must(t, store.Migrate(ctx))
	start := time.Now()
	for i := range stormRuns {
		_, err := store.Create(ctx, retry.NewRun{ID: fmt.Sprintf("storm-%02d", i), JourneyID: "storm", JourneyVersion: 1, StartNodeID: "call", MaxRetries: 1000}, start)
		must(t, err)
	}
	until := start.Add(stormFor)
	var children []*exec.Cmd
	exited := make(chan error, stormProcs)
	for range stormProcs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBudgetStormWorker$")
		cmd.Env = append(os.Environ(), stormEnvDSN+"="+dsn, stormEnvUntil+"="+strconv.FormatInt(until.UnixMilli(), 10))
		cmd.Stderr = os.Stderr
		must(t, cmd.Start())
		children = append(children, cmd)
		go func() { exited <- cmd.Wait() }()
	}
	// The other class's runs start through the storm, one a second (a
	// sweep picks each up): fewer of their retries fall in one window than
	// the budget allows.
	for i := range fineRuns {
		time.Sleep(time.Second) // paces the load; nothing is decided by it
		_, err := store.Create(ctx, retry.NewRun{ID: fmt.Sprintf("fine-%02d", i), JourneyID: "fine", JourneyVersion: 1, StartNodeID: "call", MaxRetries: 3}, time.Now())
		must(t, err)
	}
	watchdog := time.After(stormFor + time.Minute)
	for range children {
		select {
		case err := <-exited:
			must(t, err)
		case <-watchdog:
			for _, c := range children {
				c.Process.Kill()
			}
			t.Fatal("the workers did not exit")
		}
	}
	if after != nil {
		after()
	}

	w := stormBudget.Window.Milliseconds() / retry.BudgetBuckets
	given := map[int64]int{} // bucket of the retry's due time -> retries
	deferred, executed := 0, 0
	workers := map[string]bool{}
	for i := range stormRuns {
		as, err := store.Attempts(ctx, fmt.Sprintf("storm-%02d", i))
		must(t, err)
		for _, a := range as {
			if a.Outcome != retry.OutcomeFailed || a.ErrorClass != retry.ClassServiceUnavailable {
				t.Fatalf("storm attempt %+v; want a service_unavailable failure", a)
			}
			workers[a.Worker] = true
			if a.NodeAttempt > 1 {
				executed++
			}
			if a.Status != retry.StatusRetrying {
				continue
			}
			given[a.FinishedAt.Add(a.Decision.Delay).UnixMilli()/w]++
			switch a.Decision.Rule {
			case retry.BudgetRule(string(retry.ClassServiceUnavailable)):
				deferred++
			case "default":
			default:
				t.Errorf("storm attempt %+v: rule %q", a, a.Decision.Rule)
			}
		}
	}
	for first := range given {
		n := 0
		for b := first; b < first+retry.BudgetBuckets; b++ {
			n += given[b]
		}
		if n > stormBudget.MinRetries {
			t.Errorf("the storm's retries due in one window (from bucket %d): %d; want at most %d", first, n, stormBudget.MinRetries)
		}
	}
	windows := int(stormFor/stormBudget.Window) + 2
	if limit := stormBudget.MinRetries * windows; executed > limit {
		t.Errorf("%d storm retries executed in %s; want at most %d (%d a window)", executed, stormFor, limit, stormBudget.MinRetries)
	}
	if deferred == 0 {
		t.Error("no storm retry was deferred")
	}
	if len(workers) < 2 {
		t.Errorf("storm attempts by %d worker processes; want them shared", len(workers))
	}
	for i := range fineRuns {
		id := fmt.Sprintf("fine-%02d", i)
		r, err := store.Get(ctx, id)
		must(t, err)
		as, err := store.Attempts(ctx, id)
		must(t, err)
		if r.Status != retry.StatusCompleted || len(as) != 2 {
			t.Errorf("run %s of the other class: %s after %d attempts; want completed after 2", id, r.Status, len(as))
		}
		for _, a := range as {
			if strings.HasPrefix(a.Decision.Rule, "budget:") {
				t.Errorf("run %s of the other class was deferred: %+v", id, a)
			}
		}
	}
	bs, err := store.Budgets(ctx, time.Now())
	must(t, err)
	t.Logf("%d storm retries executed, %d deferred, by %d processes; budgets: %v", executed, deferred, len(workers), bs)
}

// TestBudgetStormWorker is TestBudgetStorm's worker process: it executes
// runs until the time it is given. It is not a test of its own.
func TestBudgetStormWorker(t *testing.T) {
	dsn := os.Getenv(stormEnvDSN)
	if dsn == "" {
		t.Skip("TestBudgetStorm's worker process")
	}
	ms, err := strconv.ParseInt(os.Getenv(stormEnvUntil), 10, 64)
	must(t, err)
	ctx := context.Background()
	store, err := storage.Open(ctx, storage.Config{DSN: dsn})
	must(t, err)
	sched, err := memory.New(memory.Config{Lease: time.Second})
	must(t, err)
	// 4 workers per process and 100 ms a call: no process can take the
	// whole storm alone.
	ex, err := executor.New(executor.Config{Workers: 4, Lease: 2 * time.Second, SweepSpec: "@every 1s", SweepGrace: 100 * time.Millisecond,
		ShutdownTimeout: time.Second, Worker: fmt.Sprintf("w%d", os.Getpid()), Budget: stormBudget}, store, sched, stormPolicy)
	must(t, err)
	must(t, ex.Handle("down", executor.HandlerFunc(func(ctx context.Context, _ executor.NodeInput) (json.RawMessage, error) {
		select {
		case <-time.After(100 * time.Millisecond): // the downstream times out slowly
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return nil, retry.WithClass(errors.New("503 from the downstream"), retry.ClassServiceUnavailable)
	})))
	must(t, ex.Handle("flaky", executor.HandlerFunc(func(_ context.Context, in executor.NodeInput) (json.RawMessage, error) {
		if in.Attempt == 1 {
			return nil, retry.WithClass(errors.New("connection reset"), retry.ClassNetworkBlip)
		}
		return json.RawMessage(`{}`), nil
	})))
	must(t, ex.RegisterJourney(executor.Journey{ID: "storm", Start: "call", Nodes: []executor.Node{{ID: "call", Type: "down"}}}))
	must(t, ex.RegisterJourney(executor.Journey{ID: "fine", Start: "call", Nodes: []executor.Node{{ID: "call", Type: "flaky"}}}))
	rctx, cancel := context.WithDeadline(ctx, time.UnixMilli(ms))
	defer cancel()
	must(t, ex.Run(rctx))
	must(t, ex.Close())
	must(t, store.Close())
	fmt.Printf("worker done: %+v\n", ex.Stats())
}
