package executor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/policy"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
	"github.com/journeyretry/journeyretry/storage"
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
