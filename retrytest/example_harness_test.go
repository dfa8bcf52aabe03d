package retrytest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/retrytest"
)

// exampleT stands in for the *testing.T a real test passes (an Example has
// none): it runs cleanups when done and turns a failure into a panic.
type exampleT struct {
	testing.TB
	cleanups []func()
}

func (t *exampleT) Helper()                           {}
func (t *exampleT) Cleanup(f func())                  { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (t *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

func (t *exampleT) done() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

// onboarding registers a one-node journey whose handler fails fails times
// with a network blip before it succeeds.
func onboarding(h *retrytest.Harness, fails int) {
	_ = h.Executor.Handle("send", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		if in.Attempt <= fails {
			return nil, retry.WithClass(errors.New("connection reset"), retry.ClassNetworkBlip)
		}
		return json.RawMessage(`{"sent":true}`), nil
	}))
	_ = h.Executor.RegisterJourney(executor.Journey{ID: "onboarding", Start: "send",
		Nodes: []executor.Node{{ID: "send", Type: "send"}}})
}

// A journey runs to its end in the test's goroutine, retries and all,
// without sleeping: the harness moves its clock to each retry's time.
func ExampleHarness() {
	t := &exampleT{}
	defer t.done()
	h := retrytest.New(t, retrytest.Options{Config: executor.Config{Mode: executor.ModeFull}})
	onboarding(h, 2)

	run := h.Run(t, "onboarding", json.RawMessage(`{"patient":"p1"}`))
	retrytest.RequireStatus(t, h.Store, run.ID, retry.StatusCompleted)
	retrytest.RequireAttempts(t, h.Store, run.ID,
		retrytest.Expect{Node: "send", Outcome: retry.OutcomeFailed, Class: retry.ClassNetworkBlip},
		retrytest.Expect{Node: "send", Outcome: retry.OutcomeFailed, Class: retry.ClassNetworkBlip},
		retrytest.Expect{Node: "send", Outcome: retry.OutcomeSucceeded})
	fmt.Println(run.Status, "after", run.AttemptCount, "attempts")
	// Output: completed after 3 attempts
}

// A test stops a run at its first failure and asserts when the policy
// scheduled the retry, from the store.
func ExampleRequireScheduledWithin() {
	t := &exampleT{}
	defer t.done()
	inTwoSeconds := retry.PolicyFunc(func(retry.Failure) retry.Decision {
		return retry.Decision{Retry: true, Delay: 2 * time.Second, Strategy: "fixed", Rule: "example"}
	})
	h := retrytest.New(t, retrytest.Options{Config: executor.Config{Mode: executor.ModeFull}, Policy: inTwoSeconds})
	onboarding(h, 1)

	run, err := h.Executor.StartRunSync(context.Background(), "onboarding", nil)
	if err != nil {
		t.Fatal(err)
	}
	at := retrytest.RequireScheduledWithin(t, h.Store, run.ID, h.Clock.Now(), 2*time.Second)
	fmt.Println(run.Status, "until", at.Sub(retrytest.Start))
	// Output: retrying until 2s
}
