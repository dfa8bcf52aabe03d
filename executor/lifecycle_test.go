package executor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
)

// TestLostLeaseWritesNothing: a worker whose lease was taken over while its
// node ran abandons the run and writes nothing, and reports the attempt it
// could not record to the Observer.
func TestLostLeaseWritesNothing(t *testing.T) {
	obs := &recordingObserver{}
	h := newHarness(t, executor.Config{Lease: time.Minute, Observer: obs}, nil)
	ctx := context.Background()
	entered, proceed := make(chan struct{}), make(chan struct{})
	must(t, h.exec.Handle("slow", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		close(entered)
		<-proceed
		return json.RawMessage(`{"by":"a"}`), nil
	})))
	must(t, h.exec.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "slow"}}}))
	done := make(chan retry.Run)
	go func() {
		run, err := h.exec.StartRunSync(ctx, "j", nil, executor.WithRunID("r1"))
		if err != nil {
			t.Error(err)
		}
		done <- run
	}()
	<-entered
	h.clock.Add(2 * time.Minute) // the lease expired: another worker takes over
	other, err := h.store.ClaimRun(ctx, "r1", "other", h.clock.Now(), time.Minute)
	must(t, err)
	close(proceed)
	<-done
	run, _ := h.store.Get(ctx, "r1")
	atts, _ := h.store.Attempts(ctx, "r1")
	if run.ClaimToken != other.ClaimToken || run.Status != retry.StatusInProgress || len(atts) != 0 || len(run.Context.Outputs) != 0 {
		t.Fatalf("the lost worker wrote: %+v, attempts %v", run, atts)
	}
	if s := h.exec.Stats(); s.LostClaims != 1 {
		t.Fatalf("stats %+v", s)
	}
	lost, recorded := eventsOf[executor.LeaseLost](obs), eventsOf[executor.AttemptRecorded](obs)
	if len(lost) != 1 || len(recorded) != 0 || lost[0].RunID != "r1" || lost[0].NodeID != "n" || lost[0].NodeType != "slow" ||
		!errors.Is(lost[0].Err, retry.ErrLostClaim) {
		t.Fatalf("lost %+v, recorded %+v; want the one successful attempt reported lost, nothing recorded", lost, recorded)
	}
}

// TestSweepOnceCatches counts what a sweep hands over: deferred runs, which
// no scheduler heard of, and a run whose worker's lease expired, each once
// the sweep grace has passed; each resumes from its last successful node.
func TestSweepOnceCatches(t *testing.T) {
	h := newHarness(t, executor.Config{Lease: time.Minute}, nil)
	ctx := context.Background()
	var mu sync.Mutex
	runs := map[string]int{}
	must(t, h.exec.Handle("count", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		mu.Lock()
		defer mu.Unlock()
		runs[in.Run.ID+"/"+in.Node.ID]++
		return nil, nil
	})))
	must(t, h.exec.RegisterJourney(executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{
		{ID: "a", Type: "count", Next: "b"}, {ID: "b", Type: "count"}}}))
	for _, id := range []string{"d1", "d2"} {
		_, err := h.exec.StartRunSync(ctx, "j", nil, executor.WithRunID(id), executor.Deferred())
		must(t, err)
	}
	// A crashed worker: completed a, died in b.
	crashed, err := h.store.Create(ctx, retry.NewRun{ID: "c1", JourneyID: "j", JourneyVersion: 1, StartNodeID: "a", MaxRetries: 3, Worker: "dead", Lease: time.Minute}, h.clock.Now())
	must(t, err)
	_, err = h.store.CompleteNode(ctx, crashed.Claim(), retry.NodeSuccess{NodeID: "a", Output: json.RawMessage(`1`), NextNodeID: "b", StartedAt: h.clock.Now(), FinishedAt: h.clock.Now()})
	must(t, err)
	res, err := h.exec.SweepOnce(ctx)
	must(t, err)
	if res.Caught != 0 {
		t.Fatalf("caught %d within the sweep grace, want none: due runs are the scheduler's first", res.Caught)
	}
	h.clock.Add(h.grace)
	res, err = h.exec.SweepOnce(ctx)
	must(t, err)
	if res.Caught != 2 {
		t.Fatalf("caught %d before the lease expired, want the 2 deferred runs", res.Caught)
	}
	h.clock.Add(time.Minute)
	res, err = h.exec.SweepOnce(ctx)
	must(t, err)
	c1, _ := h.store.Get(ctx, "c1")
	if res.Caught != 1 || c1.Status != retry.StatusCompleted || runs["c1/a"] != 0 || runs["c1/b"] != 1 {
		t.Fatalf("caught %d, c1 %s, executions %v", res.Caught, c1.Status, runs)
	}
	if s := h.exec.Stats(); s.SweeperCaught != 3 {
		t.Fatalf("stats %+v", s)
	}
}

// TestRunRebuildsAndWakes: Run schedules every retrying and waiting run of
// the store (two retries, one run parked on a delay node), then executes
// them when they are due, through the scheduler.
// The sweep grace is an hour, so Run's first sweep cannot take the runs
// however slow the machine: both must come through the rebuilt scheduler.
func TestRunRebuildsAndWakes(t *testing.T) {
	store := openStore(t, "")
	ctx := context.Background()
	now := time.Now()
	// Two retries due soon, left by a previous process.
	for _, id := range []string{"r1", "r2"} {
		run, err := store.Create(ctx, retry.NewRun{ID: id, JourneyID: "j", JourneyVersion: 1, StartNodeID: "n", MaxRetries: 3, Worker: "old", Lease: time.Minute}, now)
		must(t, err)
		_, err = store.RecordFailure(ctx, run.Claim(), retry.FailureRecord{NodeID: "n", Class: retry.ClassNetworkBlip, Message: "x",
			Decision: retry.Decision{Retry: true, Delay: 20 * time.Millisecond, Strategy: "immediate"}, StartedAt: now, FinishedAt: now})
		must(t, err)
	}
	// And a run parked on a delay node, due soon.
	parked, err := store.Create(ctx, retry.NewRun{ID: "w1", JourneyID: "wait", JourneyVersion: 1, StartNodeID: "d", MaxRetries: 3, Worker: "old", Lease: time.Minute}, now)
	must(t, err)
	_, err = store.CompleteNode(ctx, parked.Claim(), retry.NodeSuccess{NodeID: "d", NextNodeID: "n", WakeAt: now.Add(20 * time.Millisecond), StartedAt: now, FinishedAt: now})
	must(t, err)
	sched, err := memory.New(memory.Config{})
	must(t, err)
	exec, err := executor.New(executor.Config{Mode: executor.ModeFull, SweepSpec: "@every 1h", SweepGrace: time.Hour}, store, sched, defaultPolicy(t))
	must(t, err)
	done := make(chan string, 3)
	must(t, exec.Handle("n", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		done <- in.Run.ID
		return nil, nil
	})))
	must(t, exec.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "n"}}}))
	must(t, exec.RegisterJourney(executor.Journey{ID: "wait", Start: "d", Nodes: []executor.Node{
		{ID: "d", Type: executor.NodeTypeDelay, Config: json.RawMessage(`{"delayMs":20}`), Next: "n"}, {ID: "n", Type: "n"}}}))
	rctx, cancel := context.WithCancel(ctx)
	errc := make(chan error)
	go func() { errc <- exec.Run(rctx) }()
	woken := map[string]bool{}
	for _, what := range []string{"first wake-up", "second wake-up", "third wake-up"} {
		woken[await(t, done, what)] = true
	}
	cancel()
	must(t, await(t, errc, "Run's return"))
	if s := exec.Stats(); s.Rebuilt != 3 || s.Resumed != 3 || s.SweeperCaught != 0 || !woken["r1"] || !woken["r2"] || !woken["w1"] {
		t.Fatalf("stats %+v, woken %v; want the two retries and the parked run rebuilt and resumed", s, woken)
	}
}

// TestShutdown: in-flight nodes are waited for up to the grace period, then
// cancelled and their claims released; the store and the scheduler the
// executor was given are still open and usable after it stops.
func TestShutdown(t *testing.T) {
	store := openStore(t, "")
	sched, err := memory.New(memory.Config{})
	must(t, err)
	defer sched.Close()
	exec, err := executor.New(executor.Config{ShutdownTimeout: 30 * time.Millisecond, Lease: time.Minute}, store, sched, defaultPolicy(t))
	must(t, err)
	entered := make(chan string, 2)
	finish := make(chan struct{})
	must(t, exec.Handle("polite", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		entered <- in.Run.ID
		<-finish
		return nil, nil
	})))
	must(t, exec.Handle("stuck", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		entered <- in.Run.ID
		<-ctx.Done()
		return nil, ctx.Err()
	})))
	must(t, exec.RegisterJourney(executor.Journey{ID: "polite", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "polite"}}}))
	must(t, exec.RegisterJourney(executor.Journey{ID: "stuck", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "stuck"}}}))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- exec.Run(ctx) }()
	started := make(chan retry.Run, 2)
	for _, j := range []string{"polite", "stuck"} {
		go func() {
			run, _ := exec.StartRunSync(context.Background(), j, nil, executor.WithRunID(j))
			started <- run
		}()
	}
	<-entered
	<-entered
	cancel()
	close(finish) // the polite node finishes within the grace period
	must(t, <-errc)
	<-started
	<-started
	if _, err := exec.StartRunSync(context.Background(), "polite", nil); !errors.Is(err, retry.ErrClosed) {
		t.Fatalf("StartRun after shutdown: %v, want ErrClosed", err)
	}
	// Who opens a resource closes it: both are still open.
	if err := sched.Schedule(context.Background(), "after", time.Now()); err != nil {
		t.Fatalf("the scheduler was closed by the executor: %v", err)
	}
	polite, err := store.Get(context.Background(), "polite")
	must(t, err)
	stuck, err := store.Get(context.Background(), "stuck")
	must(t, err)
	if polite.Status != retry.StatusCompleted {
		t.Errorf("the in-flight node was not waited for: %s", polite.Status)
	}
	if stuck.Status != retry.StatusInProgress || stuck.ClaimToken != "" || stuck.LastErrorMessage != "" {
		t.Errorf("the cancelled run was not released untouched: %+v", stuck)
	}
}

// TestCronSweepAndShutdown: a run only the cron sweeper can find (due after
// Run's first sweep, and the scheduler never heard of it) is caught on the
// sweeper's tick; a shutdown while its node hangs keeps ShutdownTimeout,
// though cron waits for its sweep and the sweep for the runs it started,
// and hands the run back untouched. The wait for the tick (a second) is on
// an event, under a watchdog.
func TestCronSweepAndShutdown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.db")
	store := openStore(t, path)
	sched, err := memory.New(memory.Config{})
	must(t, err)
	exec, err := executor.New(executor.Config{SweepSpec: "@every 1s", SweepGrace: time.Millisecond,
		ShutdownTimeout: 30 * time.Millisecond, NodeTimeout: time.Hour, Lease: time.Minute}, store, sched, defaultPolicy(t))
	must(t, err)
	entered := make(chan struct{})
	must(t, exec.Handle("stuck", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		close(entered)
		<-ctx.Done()
		return nil, ctx.Err()
	})))
	must(t, exec.RegisterJourney(executor.Journey{ID: "stuck", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "stuck"}}}))
	// Due in 300ms: after the sweep Run starts with, before cron's tick.
	_, err = store.Create(context.Background(), retry.NewRun{ID: "late", JourneyID: "stuck", JourneyVersion: 1, StartNodeID: "n", MaxRetries: 3},
		time.Now().Add(300*time.Millisecond))
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- exec.Run(ctx) }()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the cron sweeper did not pick the run up within 10s")
	}
	if got := exec.Stats().SweeperCaught; got != 1 {
		t.Fatalf("sweeper caught %d; want 1", got)
	}
	cancel()
	select {
	case err := <-errc:
		must(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of a shutdown with a 30ms deadline: it waited for the swept node")
	}
	check := openStore(t, path)
	defer check.Close()
	run, _ := check.Get(context.Background(), "late")
	if run.Status != retry.StatusInProgress || run.ClaimToken != "" || run.LastErrorMessage != "" || run.AttemptCount != 0 {
		t.Fatalf("the swept run was not handed back untouched: %+v", run)
	}
}

// TestLeaseRenewal: a node that runs for several leases keeps its claim
// (nobody else can claim the run meanwhile) and completes. The test runs in
// a synctest bubble: time advances only when every goroutine, the store's
// writer included, waits, so the renewals and the thief's claims happen in
// a fixed order without real sleeps.
func TestLeaseRenewal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := openStore(t, "")
		sched, err := memory.New(memory.Config{})
		must(t, err)
		const lease = time.Minute
		exec, err := executor.New(executor.Config{Lease: lease, NodeTimeout: 10 * lease}, store, sched, defaultPolicy(t))
		must(t, err)
		defer exec.Close()
		entered := make(chan struct{})
		must(t, exec.Handle("long", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
			close(entered)
			select {
			case <-time.After(3 * lease):
				return nil, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})))
		must(t, exec.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "long"}}}))
		done := make(chan retry.Run, 1)
		go func() {
			run, _ := exec.StartRunSync(context.Background(), "j", nil, executor.WithRunID("r"))
			done <- run
		}()
		<-entered
		for range 2 { // past the first lease, then past the second
			time.Sleep(lease + time.Second)
			if _, err := store.ClaimRun(context.Background(), "r", "thief", time.Now(), lease); !errors.Is(err, retry.ErrNotClaimable) {
				t.Fatalf("claim during a renewed lease: %v", err)
			}
		}
		if run := <-done; run.Status != retry.StatusCompleted {
			t.Fatalf("run %s", run.Status)
		}
	})
}

// TestPolicyOverrides: a node's policy wins over its journey's, which wins
// over the executor's.
func TestPolicyOverrides(t *testing.T) {
	named := func(name string) retry.Policy {
		return retry.PolicyFunc(func(retry.Failure) retry.Decision { return retry.Decision{Strategy: name, Rule: name} })
	}
	h := newHarness(t, executor.Config{Mode: executor.ModeFull}, named("executor"))
	must(t, h.exec.Handle("fail", failing(errors.New("x"), -1)))
	node := executor.Node{ID: "n", Type: "fail"}
	withNode := node
	withNode.Policy = named("node")
	for id, j := range map[string]executor.Journey{
		"exec":    {Nodes: []executor.Node{node}},
		"journey": {Nodes: []executor.Node{node}, Policy: named("journey")},
		"node":    {Nodes: []executor.Node{withNode}, Policy: named("journey")},
	} {
		j.ID, j.Start = id, "n"
		must(t, h.exec.RegisterJourney(j))
	}
	for id, want := range map[string]string{"exec": "executor", "journey": "journey", "node": "node"} {
		run, err := h.exec.StartRunSync(context.Background(), id, nil)
		must(t, err)
		atts, _ := h.store.Attempts(context.Background(), run.ID)
		if run.Status != retry.StatusFailed || atts[0].Decision.Strategy != want {
			t.Errorf("%s: %s decided by %q, want %q", id, run.Status, atts[0].Decision.Strategy, want)
		}
	}
}

// recordingObserver keeps every event, in order.
type recordingObserver struct {
	mu     sync.Mutex
	events []executor.Event
}

func (o *recordingObserver) Observe(ev executor.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, ev)
}

// all returns the events so far.
func (o *recordingObserver) all() []executor.Event {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]executor.Event(nil), o.events...)
}

// eventsOf returns the events of o of type T, in order.
func eventsOf[T executor.Event](o *recordingObserver) []T {
	var out []T
	for _, ev := range o.all() {
		if t, ok := ev.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// TestObserver: every transition is an event, in order: a failure that is
// retried, its sweep, the success that completes the run; a run whose
// journey is gone; the store's limit; shadow mode.
func TestObserver(t *testing.T) {
	obs := &recordingObserver{}
	h := newHarness(t, executor.Config{Mode: executor.ModeFull, Observer: obs}, nil)
	must(t, h.exec.Handle("flaky", failing(retry.WithClass(errors.New("503"), retry.ClassServiceUnavailable), 1)))
	must(t, h.exec.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "flaky"}}}))
	run, err := h.exec.StartRunSync(context.Background(), "j", nil)
	must(t, err)
	h.drive(t, run.ID)
	evs := obs.all()
	want := []string{"AttemptRecorded", "RetryScheduled", "Swept", "RunRescued", "AttemptRecorded", "RunCompleted"}
	if got := eventNames(evs); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	f, r, s := evs[0].(executor.AttemptRecorded), evs[1].(executor.RetryScheduled), evs[4].(executor.AttemptRecorded)
	if f.Err == nil || f.Class != retry.ClassServiceUnavailable || f.Decision.Strategy != "short" || f.Status != retry.StatusRetrying ||
		f.NodeAttempt != 1 || f.NodeType != "flaky" || f.Outcome() != "retrying" {
		t.Errorf("failure event %+v", f)
	}
	if stored, _ := h.store.Get(context.Background(), run.ID); r.AttemptRecorded != f || r.At.IsZero() || r.At.After(stored.UpdatedAt.Add(time.Hour)) {
		t.Errorf("retry event %+v after %+v", r, f)
	}
	if sw, rs := evs[2].(executor.Swept), evs[3].(executor.RunRescued); sw.Caught != 1 || rs.RunID != run.ID || rs.NodeType != "flaky" {
		t.Errorf("sweep events %+v %+v", sw, rs)
	}
	if s.Err != nil || s.Status != retry.StatusCompleted || s.NodeAttempt != 2 || s.Outcome() != "succeeded" || evs[5].(executor.RunCompleted).AttemptRecorded != s {
		t.Errorf("success events %+v %+v", s, evs[5])
	}

	// A run whose journey is gone ends failed, of no node type.
	_, err = h.store.Create(context.Background(), retry.NewRun{ID: "orphan", JourneyID: "gone", JourneyVersion: 1, StartNodeID: "a", MaxRetries: 3}, h.clock.Now())
	must(t, err)
	h.clock.Add(h.grace)
	before := len(obs.all())
	_, err = h.exec.SweepOnce(context.Background())
	must(t, err)
	evs = obs.all()[before:]
	if got, want := eventNames(evs), []string{"Swept", "RunRescued", "AttemptRecorded", "RunFailed"}; !slices.Equal(got, want) {
		t.Fatalf("missing journey: events %v, want %v", got, want)
	}
	if m := evs[2].(executor.AttemptRecorded); m.RunID != "orphan" || m.NodeID != "a" || m.NodeType != "" || m.Err == nil ||
		m.Class != retry.ClassMissingJourney || m.Status != retry.StatusFailed || m.Outcome() != "failed" {
		t.Errorf("missing journey event %+v", m)
	}

	// Retries run out: the run ends failed_max_retries.
	exhausted := retry.PolicyFunc(func(retry.Failure) retry.Decision { return retry.Decision{Exhausted: true, Rule: "max_retries"} })
	must(t, h.exec.RegisterJourney(executor.Journey{ID: "down", Start: "n", Policy: exhausted, Nodes: []executor.Node{{ID: "n", Type: "flaky"}}}))
	before = len(obs.all())
	run, err = h.exec.StartRunSync(context.Background(), "down", nil)
	must(t, err)
	evs = obs.all()[before:]
	if got, want := eventNames(evs), []string{"AttemptRecorded", "RetriesExhausted"}; !slices.Equal(got, want) || run.Status != retry.StatusFailedMaxRetries {
		t.Fatalf("exhausted: %s, events %v, want %v", run.Status, got, want)
	}

	// Shadow mode records what the policy would have done, and the run
	// ends failed.
	shadow := &recordingObserver{}
	hs := newHarness(t, executor.Config{Mode: executor.ModeShadow, Observer: shadow}, nil)
	must(t, hs.exec.Handle("flaky", failing(retry.WithClass(errors.New("503"), retry.ClassServiceUnavailable), 1)))
	must(t, hs.exec.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "flaky"}}}))
	_, err = hs.exec.StartRunSync(context.Background(), "j", nil)
	must(t, err)
	evs = shadow.all()
	if got, want := eventNames(evs), []string{"AttemptRecorded", "ShadowDecision", "RunFailed"}; !slices.Equal(got, want) {
		t.Fatalf("shadow: events %v, want %v", got, want)
	}
	if d := evs[1].(executor.ShadowDecision); !d.Shadow || d.Decision.Strategy != "short" || !d.Decision.Retry {
		t.Errorf("shadow decision %+v", d)
	}
}

// eventNames are the type names of evs, without the package.
func eventNames(evs []executor.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, strings.TrimPrefix(fmt.Sprintf("%T", ev), "executor."))
	}
	return out
}
