package executor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/policy"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
	"github.com/journeyretry/journeyretry/storage"
	"github.com/journeyretry/journeyretry/storage/memstore"
)

// Wire a store, a scheduler and a policy into an executor, register a
// handler and a journey, and start a run whose first node hits a database
// lock once: the policy retries it at once, and the run completes.
func Example() {
	dir, err := os.MkdirTemp("", "executor-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	store, err := storage.Open(ctx, storage.Config{DSN: filepath.Join(dir, "runs.db")})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	sched, err := memory.New(memory.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer sched.Close()
	// Production code builds the router from configuration
	// (policy.DefaultConfig().Build()); this policy retries database locks
	// at once so the example's output is exact.
	lockAtOnce := retry.PolicyFunc(func(f retry.Failure) retry.Decision {
		if f.Class != retry.ClassDatabaseLock || f.Permanent {
			return retry.Decision{Strategy: policy.StrategyNone, Rule: "default"}
		}
		return retry.Decision{Retry: true, Strategy: policy.StrategyImmediate, Rule: "class:database_lock"}
	})
	// The executor uses store and scheduler; who opened them closes them.
	exec, err := executor.New(executor.Config{Mode: executor.ModeFull, Workers: 4}, store, sched, lockAtOnce)
	if err != nil {
		log.Fatal(err)
	}
	defer exec.Close()

	locked := true
	err = exec.Handle("save_patient", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		if locked {
			locked = false
			return nil, retry.WithClass(errors.New("database is locked"), retry.ClassDatabaseLock)
		}
		return json.RawMessage(`{"saved":true}`), nil
	}))
	if err != nil {
		log.Fatal(err)
	}
	err = exec.RegisterJourney(executor.Journey{ID: "onboarding", Start: "save", Nodes: []executor.Node{
		{ID: "save", Type: "save_patient"},
	}})
	if err != nil {
		log.Fatal(err)
	}

	run, err := exec.StartRunSync(ctx, "onboarding", json.RawMessage(`{"patient":"p-1"}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(run.Status, string(run.Context.Outputs["save"]))
	atts, _ := store.Attempts(ctx, run.ID)
	for _, a := range atts {
		fmt.Println(a.NodeID, a.NodeAttempt, a.Outcome, a.ErrorClass, a.Decision.Strategy)
	}
	// In a service, exec.Run(ctx) now serves wake-ups until ctx ends.

	// Output:
	// completed {"saved":true}
	// save 1 failed database_lock immediate
	// save 2 succeeded
}

// Retry budgets: with 2 retries a minute allowed per class, the third run
// that fails with service_unavailable at once has its retry deferred past
// the budget's window, recorded with the budget's rule; nothing is
// dropped.
func ExampleBudgetConfig() {
	ctx := context.Background()
	store := memstore.New()
	sched, err := memory.New(memory.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer sched.Close()
	retrySoon := retry.PolicyFunc(func(retry.Failure) retry.Decision {
		return retry.Decision{Retry: true, Delay: time.Second, Strategy: "short", Rule: "default"}
	})
	now := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	ex, err := executor.New(executor.Config{Now: func() time.Time { return now },
		Budget: executor.BudgetConfig{Enabled: true, MinRetries: 2, Ratio: 0.01, Window: time.Minute}}, store, sched, retrySoon)
	if err != nil {
		log.Fatal(err)
	}
	defer ex.Close()
	down := retry.WithClass(errors.New("503 from the clinic API"), retry.ClassServiceUnavailable)
	if err := ex.Handle("call", executor.HandlerFunc(func(context.Context, executor.NodeInput) (json.RawMessage, error) {
		return nil, down
	})); err != nil {
		log.Fatal(err)
	}
	if err := ex.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "call"}}}); err != nil {
		log.Fatal(err)
	}
	for range 3 {
		run, err := ex.StartRunSync(ctx, "j", nil)
		if err != nil {
			log.Fatal(err)
		}
		as, err := store.Attempts(ctx, run.ID)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: retry in %s (rule %s)\n", run.Status, run.NextRetryAt.Sub(now), as[0].Decision.Rule)
	}
	// Output:
	// retrying: retry in 1s (rule default)
	// retrying: retry in 1s (rule default)
	// retrying: retry in 1m0s (rule budget:service_unavailable)
}
