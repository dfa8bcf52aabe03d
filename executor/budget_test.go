package executor_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
)

// TestBudgetDefersAndReports: with budgets on, the executor charges each
// failure to its class's budget; a retry over it is deferred by the store,
// reported as deferred (a BudgetDeferred event, Stats.Deferred) with the
// delay the store gave, and its attempt records the budget's rule. A
// Retry-After, with PauseOnRetryAfter, pauses its class for every run.
// With PerNodeType, node types have budgets of their own.
func TestBudgetDefersAndReports(t *testing.T) {
	obs := &recordingObserver{}
	budget := executor.BudgetConfig{Enabled: true, Ratio: 0.001, MinRetries: 1, Window: time.Minute, PauseOnRetryAfter: true, PerNodeType: true}
	h := newHarness(t, executor.Config{Observer: obs, Budget: budget}, stormPolicy)
	down := retry.WithClass(errors.New("503"), retry.ClassServiceUnavailable)
	must(t, h.exec.Handle("down", failing(down, -1)))
	must(t, h.exec.Handle("other", failing(down, -1)))
	paused := false // the first rate limit carries a Retry-After
	must(t, h.exec.Handle("limited", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		if in.Attempt > 1 {
			return json.RawMessage(`{}`), nil
		}
		err := retry.WithClass(errors.New("429"), retry.ClassRateLimit)
		if !paused {
			paused, err = true, retry.RetryAfter(err, 5*time.Minute)
		}
		return nil, err
	})))
	must(t, h.exec.Handle("limitedToo", failing(retry.WithClass(errors.New("429"), retry.ClassRateLimit), 1)))
	for _, typ := range []string{"down", "other", "limited", "limitedToo"} {
		must(t, h.exec.RegisterJourney(executor.Journey{ID: typ, Start: "n", Nodes: []executor.Node{{ID: "n", Type: typ}}}))
	}
	ctx := context.Background()
	start := func(journey string) retry.Run {
		r, err := h.exec.StartRunSync(ctx, journey, nil)
		must(t, err)
		return r
	}
	first, second, other := start("down"), start("down"), start("other")
	if first.Status != retry.StatusRetrying || !first.NextRetryAt.Equal(h.clock.Now().Add(50*time.Millisecond)) {
		t.Fatalf("the first failure: %s due %v; want retrying as asked", first.Status, first.NextRetryAt)
	}
	if second.Status != retry.StatusRetrying || second.NextRetryAt.Sub(h.clock.Now()) < time.Minute-10*time.Second {
		t.Fatalf("the second failure of the class: due %v after now; want deferred past the window", second.NextRetryAt.Sub(h.clock.Now()))
	}
	if other.NextRetryAt.Sub(h.clock.Now()) != 50*time.Millisecond {
		t.Fatalf("the class on another node type: due %v after now; want as asked (a budget of its own)", other.NextRetryAt.Sub(h.clock.Now()))
	}
	as, err := h.store.Attempts(ctx, second.ID)
	must(t, err)
	if len(as) != 1 || as[0].Decision.Rule != retry.BudgetRule("service_unavailable@down") || as[0].Decision.Delay != second.NextRetryAt.Sub(as[0].FinishedAt) {
		t.Fatalf("the deferred attempt: %+v", as)
	}
	ds := eventsOf[executor.BudgetDeferred](obs)
	if len(ds) != 1 || ds[0].RunID != second.ID || ds[0].Rule != as[0].Decision.Rule || ds[0].Decision.Delay != as[0].Decision.Delay || !ds[0].At.Equal(second.NextRetryAt) {
		t.Fatalf("budget deferrals %+v; want the second failure's, as recorded", ds)
	}
	if st := h.exec.Stats(); st.Deferred != 1 || st.Retries != 3 {
		t.Fatalf("stats %+v; want 3 retries, 1 deferred", st)
	}

	// A rate limit's Retry-After pauses the class; another node type's
	// budget is its own, so the pause is per budget key.
	limited := start("limited")
	if d := limited.NextRetryAt.Sub(h.clock.Now()); d != 5*time.Minute {
		t.Fatalf("the rate-limited failure: due after %v; want the Retry-After's 5m", d)
	}
	again := start("limited")
	if d := again.NextRetryAt.Sub(h.clock.Now()); d < 5*time.Minute {
		t.Fatalf("the class during its pause: due after %v; want at least 5m", d)
	}
	if as, _ := h.store.Attempts(ctx, again.ID); as[0].Decision.Rule != retry.BudgetPausedRule("rate_limit@limited") {
		t.Fatalf("the attempt during the pause: %+v", as[0])
	}
	if r := start("limitedToo"); r.NextRetryAt.Sub(h.clock.Now()) != 50*time.Millisecond {
		t.Fatalf("rate_limit on another node type during the pause: due after %v; want as asked", r.NextRetryAt.Sub(h.clock.Now()))
	}
	// The deferred run still runs: deferred, not dropped.
	if r := h.drive(t, limited.ID); r.Status != retry.StatusCompleted {
		t.Fatalf("the paused run: %s; want completed once the pause ended", r.Status)
	}
}
