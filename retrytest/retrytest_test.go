package retrytest_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/internal/conformance"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/retrytest"
)

// Each Require function passes on what holds and fails, naming what it
// found, on what does not.
func TestRequireFailsOnAMismatch(t *testing.T) {
	h := retrytest.New(t, retrytest.Options{Config: executor.Config{Mode: executor.ModeFull}})
	onboarding(h, 1)
	run, err := h.Executor.StartRunSync(context.Background(), "onboarding", nil)
	if err != nil {
		t.Fatal(err)
	}
	retrytest.RequireStatus(t, h.Store, run.ID, retry.StatusRetrying)
	retrytest.RequireAttempts(t, h.Store, run.ID, retrytest.Expect{Node: "send", Outcome: retry.OutcomeFailed})
	retrytest.RequireScheduledWithin(t, h.Store, run.ID, h.Clock.Now(), time.Minute)
	for what, check := range map[string]struct {
		f    func(testing.TB)
		want string
	}{
		"status": {func(tb testing.TB) { retrytest.RequireStatus(tb, h.Store, run.ID, retry.StatusCompleted) }, "is retrying"},
		"attempts": {func(tb testing.TB) {
			retrytest.RequireAttempts(tb, h.Store, run.ID, retrytest.Expect{Outcome: retry.OutcomeSucceeded})
		}, "send failed"},
		"too few attempts": {func(tb testing.TB) { retrytest.RequireAttempts(tb, h.Store, run.ID) }, "(none)"},
		"scheduled": {func(tb testing.TB) {
			retrytest.RequireScheduledWithin(tb, h.Store, run.ID, h.Clock.Now().Add(time.Hour), time.Minute)
		}, "want within 1m0s"},
	} {
		if msg := conformance.ExpectFailure(t, check.f); !strings.Contains(msg, check.want) {
			t.Errorf("%s: failure %q does not say %q", what, msg, check.want)
		}
	}
	if run := h.Drive(t, run.ID); run.Status != retry.StatusCompleted {
		t.Fatalf("driven to %s; want completed", run.Status)
	}
}

// RunNode gives the handler the attempt numbers and idempotency key the
// executor gives the same attempt of a real run.
func TestRunNodeMatchesTheExecutor(t *testing.T) {
	h := retrytest.New(t, retrytest.Options{Config: executor.Config{Mode: executor.ModeFull}})
	var seen []executor.NodeInput
	_ = h.Executor.Handle("send", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		seen = append(seen, in)
		if in.Attempt < 3 {
			return nil, retry.WithClass(errors.New("reset"), retry.ClassNetworkBlip)
		}
		return json.RawMessage(`1`), nil
	}))
	_ = h.Executor.RegisterJourney(executor.Journey{ID: "j", Start: "send", Nodes: []executor.Node{{ID: "send", Type: "send"}}})
	run := h.Run(t, "j", json.RawMessage(`{"x":1}`), executor.WithRunID("r1"))
	if run.Status != retry.StatusCompleted || len(seen) != 3 {
		t.Fatalf("run %s after %d attempts; want completed after 3", run.Status, len(seen))
	}
	got := retrytest.Attempt{RunID: "r1", JourneyID: "j", Node: executor.Node{ID: "send", Type: "send"}, RetryCount: 2,
		Input: json.RawMessage(`{"x":1}`)}.NodeInput()
	real := seen[2]
	if got.IdempotencyKey != real.IdempotencyKey || got.Attempt != real.Attempt || got.RunAttempt != real.RunAttempt ||
		got.Run.RetryCount != real.Run.RetryCount || string(got.Context.Input) != string(real.Context.Input) {
		t.Fatalf("RunNode's input %+v; the executor's %+v", got, real)
	}
}

// A Buffer takes writes of many goroutines while it is read, and keeps
// every byte (run with -race).
func TestBufferConcurrent(t *testing.T) {
	var b retrytest.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 {
			_ = b.String()
		}
	}()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("x"))
			}
		})
	}
	wg.Wait()
	<-done
	if n := len(b.String()); n != 800 {
		t.Fatalf("%d bytes written, want 800", n)
	}
}
