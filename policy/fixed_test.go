package policy_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/policy"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
	"github.com/journeyretry/journeyretry/storage"
)

func TestFixedDecide(t *testing.T) {
	p := policy.Fixed{Delay: 250 * time.Millisecond, Max: 2}
	for _, tc := range []struct {
		name string
		f    retry.Failure
		want retry.Decision
	}{
		{"first retry", retry.Failure{RetryCount: 0}, retry.Decision{Retry: true, Delay: 250 * time.Millisecond, Strategy: "fixed", Rule: policy.RuleBackoff}},
		{"same delay later", retry.Failure{RetryCount: 1, PrevDelay: time.Hour}, retry.Decision{Retry: true, Delay: 250 * time.Millisecond, Strategy: "fixed", Rule: policy.RuleBackoff}},
		{"exhausted", retry.Failure{RetryCount: 2}, retry.Decision{Strategy: "fixed", Rule: policy.RuleMaxRetries, Exhausted: true}},
		{"permanent", retry.Failure{Permanent: true}, retry.Decision{Strategy: policy.StrategyNone, Rule: policy.RulePermanent}},
		{"retry-after", retry.Failure{HasRetryAfter: true, RetryAfter: 3 * time.Second}, retry.Decision{Retry: true, Delay: 3 * time.Second, Strategy: "fixed", Rule: policy.RuleRetryAfter}},
	} {
		if got := p.Decide(tc.f); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if lo, hi, ok := p.Bounds(7); lo != 250*time.Millisecond || hi != lo || !ok {
		t.Errorf("Bounds: %s %s %v", lo, hi, ok)
	}
	for bad, field := range map[policy.Fixed]string{{Delay: -time.Second}: "delay", {Max: -2}: "max", {Delay: policy.MaxDelayLimit + 1}: "delay"} {
		err := bad.Validate()
		if fe, ok := errors.AsType[*retry.FieldError](err); !ok || fe.Field != field || !errors.Is(err, retry.ErrInvalidArgument) {
			t.Errorf("Validate(%+v): %v, want a retry.FieldError naming %s, wrapping ErrInvalidArgument", bad, err, field)
		}
	}
}

// TestFixedZeroDelayInTheExecutor: a zero fixed delay retries at once, in
// line, with no clock to advance and no scheduler round trip; the run
// keeps the policy's limit.
func TestFixedZeroDelayInTheExecutor(t *testing.T) {
	ctx := context.Background()
	store, err := storage.Open(ctx, storage.Config{DSN: filepath.Join(t.TempDir(), "runs.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	sched, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sched.Close()
	ex, err := executor.New(executor.Config{}, store, sched, policy.Fixed{Max: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	calls := 0
	if err := ex.Handle("flaky", executor.HandlerFunc(func(context.Context, executor.NodeInput) (json.RawMessage, error) {
		if calls++; calls <= 3 {
			return nil, errors.New("flaky")
		}
		return nil, nil
	})); err != nil {
		t.Fatal(err)
	}
	if err := ex.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "flaky"}}}); err != nil {
		t.Fatal(err)
	}
	run, err := ex.StartRunSync(ctx, "j", nil)
	if err != nil || run.Status != retry.StatusCompleted || run.MaxRetries != 4 || calls != 4 {
		t.Fatalf("run %s (max retries %d) after %d calls, %v; want completed after 4, limit 4", run.Status, run.MaxRetries, calls, err)
	}
}
