package executor_test

import (
	"context"
	"errors"
	"testing"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/policy"
	"github.com/journeyretry/journeyretry/retry"
)

// TestUnlimitedRetries: under a policy whose limit is -1 a new run keeps
// -1 in the store, and a node is retried past any count a limit would
// have stopped at (here 3 times the default) until it succeeds.
func TestUnlimitedRetries(t *testing.T) {
	c := policy.DefaultConfig()
	c.MaxRetries = retry.Unlimited
	pol, err := c.Build()
	must(t, err)
	h := newHarness(t, executor.Config{}, pol)
	const fails = 3 * executor.MaxRetriesDefault
	must(t, h.exec.Handle("flaky", failing(retry.WithClass(errors.New("503"), retry.ClassServiceUnavailable), fails)))
	must(t, h.exec.RegisterJourney(executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{{ID: "a", Type: "flaky"}}}))
	run, err := h.exec.StartRunSync(context.Background(), "j", nil)
	must(t, err)
	if run.MaxRetries != retry.Unlimited {
		t.Fatalf("new run's MaxRetries %d; want -1", run.MaxRetries)
	}
	if run = h.drive(t, run.ID); run.Status != retry.StatusCompleted {
		t.Fatalf("run %s after %d failures, retry count %d; want completed", run.Status, fails, run.RetryCount)
	}
	as, err := h.store.Attempts(context.Background(), run.ID)
	must(t, err)
	if len(as) != fails+1 || as[fails-1].Status != retry.StatusRetrying {
		t.Fatalf("%d attempts; want %d, every failure retried", len(as), fails+1)
	}
}
