package executor_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/policy"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage"
)

// TestUnlimitedRetries: under a policy whose limit is -1 a new run keeps
// -1 in the store, and a node is retried past any count a limit would
// have stopped at (here 3 times the default) until it succeeds.
func TestUnlimitedRetries(t *testing.T) {
	onEachDialect(t, func(t *testing.T, store *storage.Store) {
		c := policy.DefaultConfig()
		c.MaxRetries = retry.Unlimited
		pol, err := c.Build()
		must(t, err)
		h := newHarnessOn(t, store, newClock(), executor.Config{}, pol, nil)
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
	})
}

// snoozing returns a handler that fails its first attempt (a network
// blip, retried), snoozes for a minute on its next snoozes calls, and
// then succeeds; calls counts its calls.
func snoozing(calls *int, snoozes int) executor.HandlerFunc {
	return func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		switch *calls++; {
		case *calls == 1:
			return nil, retry.WithClass(errors.New("connection reset"), retry.ClassNetworkBlip)
		case *calls <= 1+snoozes:
			return nil, retry.Snooze(errors.New("lab result not in"), time.Minute)
		}
		return json.RawMessage(`{"ok":true}`), nil
	}
}

// TestSnoozeKeepsRetryCount: a node that snoozes waits (StatusWaiting,
// due a minute later) at the same node, and runs again with its retry
// count unchanged: each snooze is recorded as one, not as a failure or a
// retry.
func TestSnoozeKeepsRetryCount(t *testing.T) {
	onEachDialect(t, func(t *testing.T, store *storage.Store) {
		var mu sync.Mutex
		var snoozedAt []time.Time
		outcomes := map[string]int{}
		obs := executor.ObserverFunc(func(ev executor.Event) {
			mu.Lock()
			defer mu.Unlock()
			switch ev := ev.(type) {
			case executor.NodeSnoozed:
				snoozedAt = append(snoozedAt, ev.At)
			case executor.AttemptRecorded:
				outcomes[ev.Outcome()]++
			}
		})
		h := newHarnessOn(t, store, newClock(), executor.Config{Observer: obs}, nil, nil)
		calls := 0
		must(t, h.exec.Handle("lab", snoozing(&calls, 3)))
		must(t, h.exec.RegisterJourney(executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{{ID: "a", Type: "lab"}}}))
		run, err := h.exec.StartRunSync(context.Background(), "j", nil)
		must(t, err)
		if run.Status != retry.StatusRetrying {
			t.Fatalf("after the first attempt: %s; want retrying", run.Status)
		}
		if run = h.drive(t, run.ID); run.Status != retry.StatusCompleted || calls != 5 {
			t.Fatalf("run %s after %d calls; want completed after 5", run.Status, calls)
		}
		as, err := h.store.Attempts(context.Background(), run.ID)
		must(t, err)
		want := []retry.Outcome{retry.OutcomeFailed, retry.OutcomeSnoozed, retry.OutcomeSnoozed, retry.OutcomeSnoozed, retry.OutcomeSucceeded}
		if len(as) != len(want) {
			t.Fatalf("%d attempts %+v; want %v", len(as), as, want)
		}
		for i, a := range as {
			// Retry 1 is counted once: every later attempt is node attempt 2.
			nodeAttempt := min(i+1, 2)
			if a.Outcome != want[i] || a.NodeAttempt != nodeAttempt {
				t.Errorf("attempt %d: %s, node attempt %d; want %s, %d", i+1, a.Outcome, a.NodeAttempt, want[i], nodeAttempt)
			}
			if a.Outcome == retry.OutcomeSnoozed && (a.Status != retry.StatusWaiting || a.Decision.Delay != time.Minute ||
				a.ErrorMessage != "lab result not in" || as[i+1].StartedAt.Before(a.FinishedAt.Add(time.Minute))) {
				t.Errorf("snooze %d: %+v, next attempt at %v; want waiting for a minute, with its reason", i, a, as[i+1].StartedAt)
			}
		}
		if st := h.exec.Stats(); st.Snoozed != 3 || st.Retries != 1 || st.Failed != 1 {
			t.Errorf("stats: %d snoozed, %d retries, %d failed; want 3, 1, 1", st.Snoozed, st.Retries, st.Failed)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(snoozedAt) != 3 || !snoozedAt[0].Equal(as[1].FinishedAt.Add(time.Minute)) || outcomes["snoozed"] != 3 || outcomes["retrying"] != 1 {
			t.Errorf("events: snoozes due %v, attempt outcomes %v; want 3 NodeSnoozed a minute after each, 3 snoozed and 1 retrying attempts",
				snoozedAt, outcomes)
		}
	})
}

// TestSnoozeBound: the snooze past MaxSnoozes fails the node as
// exhausted, rule max_snoozes: the run ends failed_max_retries with no
// retry counted, and nothing runs it again.
func TestSnoozeBound(t *testing.T) {
	onEachDialect(t, func(t *testing.T, store *storage.Store) {
		h := newHarnessOn(t, store, newClock(), executor.Config{MaxSnoozes: 3}, nil, nil)
		calls := 0
		must(t, h.exec.Handle("lab", executor.HandlerFunc(func(context.Context, executor.NodeInput) (json.RawMessage, error) {
			calls++
			return nil, retry.Snooze(nil, time.Second)
		})))
		must(t, h.exec.RegisterJourney(executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{{ID: "a", Type: "lab"}}}))
		run, err := h.exec.StartRunSync(context.Background(), "j", nil)
		must(t, err)
		run = h.drive(t, run.ID)
		if run.Status != retry.StatusFailedMaxRetries || run.RetryCount != 0 || run.SnoozeCount != 3 || calls != 4 {
			t.Fatalf("run %s, retry count %d, snooze count %d after %d calls; want failed_max_retries, 0, 3 after 4",
				run.Status, run.RetryCount, run.SnoozeCount, calls)
		}
		as, err := h.store.Attempts(context.Background(), run.ID)
		must(t, err)
		last := as[len(as)-1]
		if len(as) != 4 || last.Outcome != retry.OutcomeFailed || last.Decision.Rule != executor.RuleMaxSnoozes || !last.Decision.Exhausted ||
			last.ErrorMessage != "snoozed for 1s" {
			t.Fatalf("attempts %+v; want 3 snoozes then a failure exhausted by max_snoozes", as)
		}
	})
}

// TestMaxElapsed: a node that keeps failing under unlimited retries ends
// failed_max_retries, rule max_elapsed, once its time across attempts
// (counted from its first attempt, whichever claim runs it) passes the
// policy's maxElapsedMs.
func TestMaxElapsed(t *testing.T) {
	onEachDialect(t, func(t *testing.T, store *storage.Store) {
		c := policy.DefaultConfig()
		c.MaxRetries = retry.Unlimited
		c.MaxElapsedMs = (10 * time.Second).Milliseconds()
		pol, err := c.Build()
		must(t, err)
		h := newHarnessOn(t, store, newClock(), executor.Config{}, pol, nil)
		calls := 0
		must(t, h.exec.Handle("slow", executor.HandlerFunc(func(context.Context, executor.NodeInput) (json.RawMessage, error) {
			calls++
			h.clock.Add(3 * time.Second)                                                        // each attempt takes 3 s
			return nil, retry.WithClass(errors.New("connection reset"), retry.ClassNetworkBlip) // immediate: at most 1 s
		})))
		must(t, h.exec.RegisterJourney(executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{{ID: "a", Type: "slow"}}}))
		start := h.clock.Now()
		run, err := h.exec.StartRunSync(context.Background(), "j", nil)
		must(t, err)
		run = h.drive(t, run.ID)
		as, err := h.store.Attempts(context.Background(), run.ID)
		must(t, err)
		last := as[len(as)-1]
		if run.Status != retry.StatusFailedMaxRetries || last.Decision.Rule != policy.RuleMaxElapsed || !last.Decision.Exhausted {
			t.Fatalf("run %s after %d calls, last decision %+v; want failed_max_retries by max_elapsed", run.Status, calls, last.Decision)
		}
		// Each failure is retried while the retry can start within 10 s of
		// the first attempt's start: 3 attempts of 3 s, the third ending
		// 9-11 s in, are the most that fit.
		if calls < 2 || calls > 3 || run.RetryCount != calls-1 || !run.NodeStartedAt.Equal(start.Truncate(time.Millisecond)) {
			t.Fatalf("%d calls, retry count %d, node started %v; want 2 or 3 calls, one retry fewer, started %v",
				calls, run.RetryCount, run.NodeStartedAt, start)
		}
	})
}

// onEachDialect runs test on a fresh store of each dialect (PostgreSQL when
// RETRY_TEST_POSTGRES_URL is set).
func onEachDialect(t *testing.T, test func(t *testing.T, store *storage.Store)) {
	for name, open := range dialectStores {
		t.Run(name, func(t *testing.T) { test(t, open(t)) })
	}
}
