package executor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/policy"
	"github.com/journeyretry/journeyretry/retry"
)

// recordingPolicy passes decisions to its Policy and keeps every Failure it
// was asked about, so a test sees what the executor told the policy.
type recordingPolicy struct {
	retry.Policy
	mu   sync.Mutex
	seen []retry.Failure
}

func (p *recordingPolicy) Decide(f retry.Failure) retry.Decision {
	p.mu.Lock()
	p.seen = append(p.seen, f)
	p.mu.Unlock()
	return p.Policy.Decide(f)
}

// take returns the failures seen since the last take.
func (p *recordingPolicy) take() []retry.Failure {
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := p.seen
	p.seen = nil
	return seen
}

// seededRouter is the default router with a fixed jitter seed, so the delays
// it picks, and the tests checking them, repeat from run to run.
func seededRouter(t testing.TB) *policy.Router {
	t.Helper()
	o, err := policy.DefaultConfig().RouterOptions()
	must(t, err)
	o.Rand = policy.NewRand(1)
	r, err := policy.NewRouter(o)
	must(t, err)
	return r
}

// TestEndToEndClasses runs a three-node journey whose middle node fails with
// each error class, under the default router, and checks attempts, delays,
// final statuses and the attempt history against the policy.
func TestEndToEndClasses(t *testing.T) {
	ctx := context.Background()
	router := seededRouter(t)
	pol := &recordingPolicy{Policy: router}
	h := newHarness(t, executor.Config{Mode: executor.ModeFull}, pol)
	routes := policy.DefaultRoutes()
	for _, c := range retry.BuiltinClasses {
		must(t, h.exec.Handle("fail_"+string(c), failing(retry.WithClass(errors.New("boom "+string(c)), c), -1)))
	}
	must(t, h.exec.Handle("ok", executor.HandlerFunc(ok)))
	var recMu sync.Mutex
	var recInputs []executor.NodeInput
	recovers := failing(retry.WithClass(errors.New("blip"), retry.ClassNetworkBlip), 2)
	must(t, h.exec.Handle("recovers", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		recMu.Lock()
		recInputs = append(recInputs, in)
		recMu.Unlock()
		return recovers(ctx, in)
	})))
	for _, c := range retry.BuiltinClasses {
		must(t, h.exec.RegisterJourney(executor.Journey{ID: "j_" + string(c), Start: "a", Nodes: []executor.Node{
			{ID: "a", Type: "ok", Next: "b"},
			{ID: "b", Type: "fail_" + string(c), Next: "c"},
			{ID: "c", Type: "ok"},
		}}))
	}
	for _, c := range retry.BuiltinClasses {
		t.Run(string(c), func(t *testing.T) {
			pol.take()
			run, err := h.exec.StartRunSync(ctx, "j_"+string(c), json.RawMessage(`{"patient":1}`))
			must(t, err)
			run = h.drive(t, run.ID)
			asked := pol.take()
			atts, err := h.store.Attempts(ctx, run.ID)
			must(t, err)
			retries := 3
			wantStatus := retry.StatusFailedMaxRetries
			if routes[c] == policy.StrategyNone {
				retries, wantStatus = 0, retry.StatusFailed
			}
			if run.Status != wantStatus || run.LastErrorClass != c || run.CurrentNodeID != "b" {
				t.Fatalf("run %+v: want %s at b with class %s", run, wantStatus, c)
			}
			if len(atts) != 2+retries {
				t.Fatalf("%d attempts, want %d: %+v", len(atts), 2+retries, atts)
			}
			if atts[0].NodeID != "a" || atts[0].Outcome != retry.OutcomeSucceeded {
				t.Fatalf("attempt 1: %+v", atts[0])
			}
			// The policy decided every failure of b, told its retry
			// number and the delay before it as the store holds them (0
			// for b's first attempt: a's success reset them). A wrong
			// count or delay here would shift the backoff below.
			if len(asked) != 1+retries {
				t.Fatalf("policy asked %d times, want %d: %+v", len(asked), 1+retries, asked)
			}
			for i, f := range asked {
				var prev time.Duration
				if i > 0 {
					prev = atts[i].Decision.Delay
				}
				if f.RetryCount != i || f.PrevDelay != prev || f.Class != c {
					t.Fatalf("failure %d told the policy retry count %d, previous delay %s, class %s; want %d, %s, %s", i+1, f.RetryCount, f.PrevDelay, f.Class, i, prev, c)
				}
			}
			strategy := router.Explain(retry.Failure{Class: c}).Strategy
			for i, a := range atts[1:] {
				if a.NodeID != "b" || a.NodeAttempt != i+1 || a.Outcome != retry.OutcomeFailed || a.ErrorClass != c || a.Shadow {
					t.Fatalf("attempt %d: %+v", i+2, a)
				}
				if i < retries {
					if !a.Decision.Retry || a.Decision.Strategy != routes[c] || a.Status != retry.StatusRetrying {
						t.Fatalf("attempt %d: decision %+v status %s, want a %s retry", i+2, a.Decision, a.Status, routes[c])
					}
					// The delay is the strategy's for retry i+1, whose
					// bounds are disjoint enough (seeded jitter) that an
					// executor passing the wrong retry count lands outside.
					if lo, hi, ok := strategy.Bounds(i); !ok || a.Decision.Delay < lo || a.Decision.Delay > hi {
						t.Fatalf("attempt %d: delay %s outside the %s strategy's bounds [%s, %s] for retry %d", i+2, a.Decision.Delay, routes[c], lo, hi, i+1)
					}
					// The retry ran when it was due, as the harness's
					// sweep finds it: the failure's end plus the decided
					// delay plus the sweep grace.
					if got := atts[i+2].StartedAt.Sub(a.FinishedAt); got != a.Decision.Delay+h.grace {
						t.Fatalf("attempt %d started %s after the failure, want the delay %s + the sweep grace %s", i+3, got, a.Decision.Delay, h.grace)
					}
				} else if a.Decision.Retry || a.Status != wantStatus {
					t.Fatalf("last attempt: %+v", a)
				}
			}
		})
	}
	// recovers fails twice and then succeeds. It is the second node, so a
	// node's Attempt (its own retries) and the RunAttempt (all nodes) differ.
	t.Run("recovers", func(t *testing.T) {
		must(t, h.exec.RegisterJourney(executor.Journey{ID: "rec", Start: "a", Nodes: []executor.Node{
			{ID: "a", Type: "ok", Next: "b"}, {ID: "b", Type: "recovers", Next: "c"}, {ID: "c", Type: "ok"}}}))
		run, err := h.exec.StartRunSync(ctx, "rec", nil)
		must(t, err)
		run = h.drive(t, run.ID)
		if run.Status != retry.StatusCompleted || string(run.Context.Outputs["b"]) != `{"ok":true}` {
			t.Fatalf("run %+v", run)
		}
		atts, _ := h.store.Attempts(ctx, run.ID)
		if len(atts) != 5 {
			t.Fatalf("%d attempts, want 5", len(atts))
		}
		// Every retry of b carries the same idempotency key, so an
		// upstream can deduplicate a repeated request, and numbers itself.
		recMu.Lock()
		defer recMu.Unlock()
		if len(recInputs) != 3 {
			t.Fatalf("b ran %d times, want 3", len(recInputs))
		}
		for i, in := range recInputs {
			if in.IdempotencyKey != run.ID+"/b" || in.Attempt != i+1 || in.RunAttempt != i+2 || in.Node.ID != "b" {
				t.Errorf("execution %d of b: key %q, attempt %d, run attempt %d, node %s; want %q, %d, %d, b",
					i+1, in.IdempotencyKey, in.Attempt, in.RunAttempt, in.Node.ID, run.ID+"/b", i+1, i+2)
			}
		}
	})
}

// TestModes runs the same failing journeys under each rollout mode.
func TestModes(t *testing.T) {
	ctx := context.Background()
	pc := policy.DefaultConfig()
	pc.RetryableErrors = []string{"class:network_blip"}
	pol, err := pc.Build()
	must(t, err)
	type want struct {
		status     retry.Status
		attempts   int
		shadow     bool
		strategy   string
		disabledOK bool
	}
	for _, tc := range []struct {
		mode       executor.Mode
		blip, slow want // blip is eligible in selective mode, slow (service_unavailable) is not
	}{
		{executor.ModeOff, want{retry.StatusFailed, 1, false, "none", true}, want{retry.StatusFailed, 1, false, "none", true}},
		{executor.ModeShadow, want{retry.StatusFailed, 1, true, policy.StrategyImmediate, true}, want{retry.StatusFailed, 1, true, policy.StrategyShort, true}},
		{executor.ModeSelective, want{retry.StatusCompleted, 3, false, policy.StrategyImmediate, true}, want{retry.StatusFailed, 1, false, "none", true}},
		{executor.ModeFull, want{retry.StatusCompleted, 3, false, policy.StrategyImmediate, true}, want{retry.StatusCompleted, 3, false, policy.StrategyShort, true}},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			h := newHarness(t, executor.Config{Mode: tc.mode}, pol)
			must(t, h.exec.Handle("blip", failing(retry.WithClass(errors.New("reset"), retry.ClassNetworkBlip), 2)))
			must(t, h.exec.Handle("slow", failing(retry.WithClass(errors.New("503"), retry.ClassServiceUnavailable), 2)))
			for _, typ := range []string{"blip", "slow"} {
				must(t, h.exec.RegisterJourney(executor.Journey{ID: typ, Start: "n", Nodes: []executor.Node{{ID: "n", Type: typ}}}))
			}
			for typ, w := range map[string]want{"blip": tc.blip, "slow": tc.slow} {
				run, err := h.exec.StartRunSync(ctx, typ, nil)
				must(t, err)
				run = h.drive(t, run.ID)
				atts, _ := h.store.Attempts(ctx, run.ID)
				if run.Status != w.status || len(atts) != w.attempts || atts[0].Shadow != w.shadow || atts[0].Decision.Strategy != w.strategy {
					t.Errorf("%s: status %s, %d attempts, first %+v; want %+v", typ, run.Status, len(atts), atts[0], w)
				}
				if tc.mode == executor.ModeOff && atts[0].Decision.Rule != "mode:off" {
					t.Errorf("off: rule %q", atts[0].Decision.Rule)
				}
				// retry_enabled false is never retried, in any mode.
				run, err = h.exec.StartRunSync(ctx, typ, nil, executor.WithoutRetry())
				must(t, err)
				if run = h.drive(t, run.ID); run.Status != retry.StatusFailed || run.RetryEnabled {
					t.Errorf("%s without retry: %s", typ, run.Status)
				}
			}
		})
	}
}

func TestRegisterJourneyErrors(t *testing.T) {
	h := newHarness(t, executor.Config{}, nil)
	must(t, h.exec.Handle("ok", executor.HandlerFunc(ok)))
	n := func(id, next string) executor.Node { return executor.Node{ID: id, Type: "ok", Next: next} }
	for _, tc := range []struct {
		name string
		j    executor.Journey
		want string
	}{
		{"no id", executor.Journey{Start: "a", Nodes: []executor.Node{n("a", "")}}, "empty id"},
		{"NUL in the id", executor.Journey{ID: "j\x00", Start: "a", Nodes: []executor.Node{n("a", "")}}, `journey "j\x00": id holds a NUL byte`},
		{"invalid UTF-8 in a node id", executor.Journey{ID: "j", Start: "a\xff", Nodes: []executor.Node{n("a\xff", "")}}, `node "a\xff": id holds a NUL byte or invalid UTF-8`},
		{"duplicate", executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{n("a", ""), n("a", "")}}, "node a: duplicate id"},
		{"no start", executor.Journey{ID: "j", Nodes: []executor.Node{n("a", "")}}, "no start node"},
		{"missing start", executor.Journey{ID: "j", Start: "x", Nodes: []executor.Node{n("a", "")}}, "start node x does not exist"},
		{"unknown next", executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{n("a", "zz")}}, "node a: next node zz does not exist"},
		{"unknown branch", executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{{ID: "a", Type: "ok", Branches: map[string]string{"x": "q"}}}}, "node a: next node q does not exist"},
		{"cycle", executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{n("a", "b"), n("b", "c"), n("c", "a")}}, "node c: next node a closes a cycle"},
		{"delay loop", executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{n("a", "w"), {ID: "w", Type: "delay", Config: json.RawMessage(`{"delay":"1s"}`), Next: "a"}}}, "closes a cycle"},
		{"bad delay", executor.Journey{ID: "j", Start: "w", Nodes: []executor.Node{{ID: "w", Type: "delay", Config: json.RawMessage(`{"delay":"soon"}`), Next: "a"}, n("a", "")}}, `node w: config: delay "soon"`},
		{"delay last", executor.Journey{ID: "j", Start: "w", Nodes: []executor.Node{{ID: "w", Type: "delay", Config: json.RawMessage(`{"delayMs":5}`)}}}, "node w: a delay node needs a next node"},
		{"no handler", executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{{ID: "a", Type: "sms"}}}, `node a: no handler for type "sms"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := h.exec.RegisterJourney(tc.j)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := h.exec.StartRunSync(context.Background(), "j", nil); !errors.Is(err, executor.ErrUnknownJourney) {
		t.Fatalf("a rejected journey was registered: %v", err)
	}
}

func TestNodeTimeoutIsClassifiedTimeout(t *testing.T) {
	h := newHarness(t, executor.Config{Mode: executor.ModeFull}, nil)
	must(t, h.exec.Handle("hang", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})))
	must(t, h.exec.RegisterJourney(executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{{ID: "a", Type: "hang", Timeout: 20 * time.Millisecond}}}))
	run, err := h.exec.StartRunSync(context.Background(), "j", nil)
	must(t, err)
	if run.Status != retry.StatusRetrying || run.LastErrorClass != retry.ClassTimeout || !strings.Contains(run.LastErrorMessage, "timed out after 20ms") {
		t.Fatalf("run %s %s %q", run.Status, run.LastErrorClass, run.LastErrorMessage)
	}
}

// TestModeOffIsTheLegacyBehaviour: in mode off (phase 2 of
// docs/design.md, an explicit setting) a retryable error is recorded, not
// retried, exactly as the legacy system ended runs.
func TestModeOffIsTheLegacyBehaviour(t *testing.T) {
	h := newHarness(t, executor.Config{Mode: executor.ModeOff}, nil)
	must(t, h.exec.Handle("blip", executor.HandlerFunc(func(context.Context, executor.NodeInput) (json.RawMessage, error) {
		return nil, retry.WithClass(errors.New("connection reset"), retry.ClassNetworkBlip)
	})))
	must(t, h.exec.RegisterJourney(executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{{ID: "a", Type: "blip"}}}))
	run, err := h.exec.StartRunSync(context.Background(), "j", nil)
	must(t, err)
	as, err := h.store.Attempts(context.Background(), run.ID)
	must(t, err)
	if run.Status != retry.StatusFailed || run.LastErrorMessage != "connection reset" || len(as) != 1 || as[0].Decision.Rule != "mode:off" || as[0].Shadow {
		t.Fatalf("run %s %q, attempts %+v; want failed with its error, one attempt decided by mode:off", run.Status, run.LastErrorMessage, as)
	}
}

// TestUnstorableOutputFailsTheNode: output the store refuses (not JSON, or
// JSON holding \u0000) fails the node for good, class malformed_node, even
// in full mode: running it again would loop.
func TestUnstorableOutputFailsTheNode(t *testing.T) {
	for name, out := range map[string]string{"not JSON": `{"ok":`, "NUL escape": `{"x":"\u0000"}`} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, executor.Config{Mode: executor.ModeFull}, nil)
			must(t, h.exec.Handle("bad", executor.HandlerFunc(func(context.Context, executor.NodeInput) (json.RawMessage, error) {
				return json.RawMessage(out), nil
			})))
			must(t, h.exec.RegisterJourney(executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{{ID: "a", Type: "bad"}}}))
			run, err := h.exec.StartRunSync(context.Background(), "j", nil)
			must(t, err)
			if run.Status != retry.StatusFailed || run.LastErrorClass != retry.ClassMalformedNode || !strings.Contains(run.LastErrorMessage, "node a: output not stored") {
				t.Fatalf("run %s %s %q; want failed, malformed_node, naming the output", run.Status, run.LastErrorClass, run.LastErrorMessage)
			}
			if as, _ := h.store.Attempts(context.Background(), run.ID); len(as) != 1 || as[0].Outcome != retry.OutcomeFailed {
				t.Fatalf("attempts %+v; want the one failed attempt", as)
			}
		})
	}
}

// TestMissingJourneyOnResume: a run whose definition is gone when it
// resumes ends failed with class missing_journey; so does a run at version
// 0 (a legacy row nobody adopted), which no definition has: the executor
// does not guess a version for it (storage's AdoptLegacy pins one).
func TestMissingJourneyOnResume(t *testing.T) {
	h := newHarness(t, executor.Config{}, nil)
	ctx := context.Background()
	must(t, h.exec.Handle("step", executor.HandlerFunc(ok)))
	must(t, h.exec.RegisterJourney(executor.Journey{ID: "here", Start: "a", Nodes: []executor.Node{{ID: "a", Type: "step"}}}))
	for _, nr := range []retry.NewRun{
		{ID: "orphan", JourneyID: "gone", JourneyVersion: 1, StartNodeID: "a", MaxRetries: 3},
		{ID: "unpinned", JourneyID: "here", JourneyVersion: 0, StartNodeID: "a", MaxRetries: 3},
	} {
		_, err := h.store.Create(ctx, nr, h.clock.Now())
		must(t, err)
	}
	h.clock.Add(h.grace)
	res, err := h.exec.SweepOnce(ctx)
	must(t, err)
	for _, id := range []string{"orphan", "unpinned"} {
		run, _ := h.store.Get(ctx, id)
		if run.Status != retry.StatusFailed || run.LastErrorClass != retry.ClassMissingJourney || run.ClaimToken != "" {
			t.Fatalf("%s: run %s %s, claim %q; want failed, missing_journey, unclaimed", id, run.Status, run.LastErrorClass, run.ClaimToken)
		}
	}
	if res.Caught != 2 {
		t.Fatalf("caught %d, want 2", res.Caught)
	}
}

// TestResumeSkipsCompletedNodes: a delay node parks the run durably; the run
// resumes after it, with the outputs of the nodes before, never running them
// again; branches follow the output.
func TestDelayAndBranches(t *testing.T) {
	h := newHarness(t, executor.Config{}, nil)
	ctx := context.Background()
	calls := map[string]int{}
	must(t, h.exec.Handle("step", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		calls[in.Node.ID]++
		if in.Node.ID == "after" && string(in.Context.Outputs["pick"]) != `{"branch":"yes"}` {
			return nil, retry.Permanent(fmt.Errorf("missing output: %v", in.Context.Outputs))
		}
		return in.Config, nil
	})))
	must(t, h.exec.RegisterJourney(executor.Journey{ID: "j", Start: "pick", Nodes: []executor.Node{
		{ID: "pick", Type: "step", Config: json.RawMessage(`{"branch":"yes"}`), Branches: map[string]string{"yes": "wait", "no": "no"}, Next: "no"},
		{ID: "wait", Type: executor.NodeTypeDelay, Config: json.RawMessage(`{"delay":"2h"}`), Next: "after"},
		{ID: "after", Type: "step"},
		{ID: "no", Type: "step"},
	}}))
	run, err := h.exec.StartRunSync(ctx, "j", nil)
	must(t, err)
	if run.Status != retry.StatusWaiting || run.CurrentNodeID != "after" || !run.WakeAt.Equal(h.clock.Now().Add(2*time.Hour)) {
		t.Fatalf("run %s at %s wake %s", run.Status, run.CurrentNodeID, run.WakeAt)
	}
	// Due in the scheduler too.
	if ds, _ := h.sched.Claim(ctx, run.WakeAt, 10); len(ds) != 1 || ds[0].ID != run.ID {
		t.Fatalf("scheduler has %v", ds)
	}
	run = h.drive(t, run.ID)
	if run.Status != retry.StatusCompleted || calls["pick"] != 1 || calls["after"] != 1 || calls["no"] != 0 {
		t.Fatalf("run %s, calls %v", run.Status, calls)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
