package executor_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
	"github.com/journeyretry/journeyretry/storage"
)

// realExecutor is an executor on real time over store and a new memory
// scheduler, with a sweeper that takes nothing within a test unless grace
// is short (its first sweep, as Run starts, takes what was due grace ago).
func realExecutor(t *testing.T, store *storage.Store, grace time.Duration) *executor.Executor {
	t.Helper()
	sched, err := memory.New(memory.Config{})
	must(t, err)
	t.Cleanup(func() { sched.Close() })
	ex, err := executor.New(executor.Config{SweepSpec: "@every 1h", SweepGrace: grace}, store, sched, defaultPolicy(t))
	must(t, err)
	t.Cleanup(func() { ex.Close() })
	return ex
}

// serve runs ex.Run(ctx) until the test ends.
func serve(t *testing.T, ctx context.Context, ex *executor.Executor) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ex.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		must(t, await(t, done, "Run's return"))
	})
}

type ctxKey struct{}

// TestResumedHandlerSeesRunValues: a node resumed by a wake-up (after a
// delay node) runs with a context carrying the values of the context
// given to Run, and a node started by StartRun with those of StartRun's.
func TestResumedHandlerSeesRunValues(t *testing.T) {
	ex := realExecutor(t, openStore(t, ""), time.Hour)
	seen := make(chan any, 2)
	must(t, ex.Handle("look", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		seen <- ctx.Value(ctxKey{})
		return nil, nil
	})))
	must(t, ex.RegisterJourney(executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{
		{ID: "a", Type: "look", Next: "wait"},
		{ID: "wait", Type: executor.NodeTypeDelay, Config: json.RawMessage(`{"delayMs":10}`), Next: "b"},
		{ID: "b", Type: "look"},
	}}))
	serve(t, context.WithValue(context.Background(), ctxKey{}, "from Run"), ex)
	run, err := ex.StartRun(context.WithValue(context.Background(), ctxKey{}, "from StartRun"), "j", nil)
	must(t, err)
	if got := await(t, seen, "node a"); got != "from StartRun" {
		t.Errorf("the started node saw %v, want StartRun's value", got)
	}
	if got := await(t, seen, "node b"); got != "from Run" {
		t.Errorf("the resumed node saw %v, want Run's value", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if run, err = ex.Wait(ctx, run.ID); err != nil || run.Status != retry.StatusCompleted {
		t.Fatalf("Wait: %s, %v", run.Status, err)
	}
}

// TestStartRunReturnsAndWaitWakes: StartRun hands the run to the pool and
// returns while its node still runs; Wait returns the terminal run as soon
// as this executor ends it (the poll interval is an hour: only the
// in-process wake-up can end the wait); StartRunSync returns it ended.
func TestStartRunReturnsAndWaitWakes(t *testing.T) {
	ex := realExecutor(t, openStore(t, ""), time.Hour)
	release := make(chan struct{})
	must(t, ex.Handle("gated", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		<-release
		return json.RawMessage(`{"done":true}`), nil
	})))
	must(t, ex.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "gated"}}}))
	run, err := ex.StartRun(context.Background(), "j", nil)
	must(t, err)
	if run.Status != retry.StatusInProgress {
		t.Fatalf("StartRun returned a run %s, want in_progress (not yet executed)", run.Status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waited := make(chan retry.Run, 1)
	go func() {
		r, err := ex.Wait(ctx, run.ID, executor.WaitPoll(time.Hour))
		if err != nil {
			t.Error(err)
		}
		waited <- r
	}()
	close(release)
	if got := await(t, waited, "Wait's return"); got.Status != retry.StatusCompleted || string(got.Context.Outputs["n"]) != `{"done":true}` {
		t.Fatalf("Wait returned %s %s, want the completed run", got.Status, got.Context.Outputs["n"])
	}
	sync, err := ex.StartRunSync(context.Background(), "j", nil)
	if err != nil || sync.Status != retry.StatusCompleted {
		t.Fatalf("StartRunSync: %s, %v; want completed", sync.Status, err)
	}
}

// TestWaitPollsForAnotherProcess: a run another executor ends (as another
// process would) is seen by Wait within its poll interval; a context that
// ends first returns its error; an unknown run is ErrNotFound.
func TestWaitPollsForAnotherProcess(t *testing.T) {
	store := openStore(t, "")
	waiter := realExecutor(t, store, time.Hour)
	worker := realExecutor(t, store, time.Millisecond)
	for _, ex := range []*executor.Executor{waiter, worker} {
		must(t, ex.Handle("ok", executor.HandlerFunc(ok)))
		must(t, ex.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "ok"}}}))
	}
	run, err := waiter.StartRun(context.Background(), "j", nil, executor.Deferred())
	must(t, err)
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := waiter.Wait(short, run.ID, executor.WaitPoll(5*time.Millisecond)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a run nobody executes: %v, want the context's deadline", err)
	}
	serve(t, context.Background(), worker) // its first sweep takes the deferred run
	ctx, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	got, err := waiter.Wait(ctx, run.ID, executor.WaitPoll(10*time.Millisecond))
	if err != nil || got.Status != retry.StatusCompleted {
		t.Fatalf("Wait: %s, %v; want the run the other executor completed", got.Status, err)
	}
	if _, err := waiter.Wait(ctx, "no-such-run"); !errors.Is(err, retry.ErrNotFound) {
		t.Fatalf("Wait on an unknown run: %v, want ErrNotFound", err)
	}
	if _, err := waiter.Wait(ctx, run.ID, executor.WaitPoll(0)); !errors.Is(err, retry.ErrInvalidArgument) {
		t.Fatalf("Wait with a zero poll interval: %v, want ErrInvalidArgument", err)
	}
}

// TestDuplicateRunID: starting a run with an id the store holds is
// retry.ErrDuplicateRun, not an invalid argument, and changes nothing.
func TestDuplicateRunID(t *testing.T) {
	h := newHarness(t, executor.Config{}, nil)
	must(t, h.exec.Handle("ok", executor.HandlerFunc(ok)))
	must(t, h.exec.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "ok"}}}))
	first, err := h.exec.StartRunSync(context.Background(), "j", nil, executor.WithRunID("order-1"))
	must(t, err)
	for _, opts := range [][]executor.StartOption{{executor.WithRunID("order-1")}, {executor.WithRunID("order-1"), executor.Deferred()}} {
		_, err := h.exec.StartRunSync(context.Background(), "j", nil, opts...)
		if !errors.Is(err, retry.ErrDuplicateRun) || errors.Is(err, retry.ErrInvalidArgument) {
			t.Fatalf("second start of order-1: %v, want ErrDuplicateRun alone", err)
		}
	}
	if again, err := h.store.Get(context.Background(), "order-1"); err != nil || again.UpdatedAt != first.UpdatedAt || again.Status != retry.StatusCompleted {
		t.Fatalf("the run changed: %+v, %v", again, err)
	}
}

// TestIDsQuotedInErrors: the executor's errors and recorded messages name
// a run or node id as retry.QuoteID prints it (quoted, cut to 200 bytes),
// so an id holding a newline, an escape or 1 KB cannot split, recolour or
// flood a line.
func TestIDsQuotedInErrors(t *testing.T) {
	hostile := "a\nb\x1b[31m" + strings.Repeat("x", 1024)
	ex := realExecutor(t, openStore(t, ""), time.Hour)
	ctx := context.Background()
	oneLine := func(what, msg string, ids int) {
		t.Helper()
		if strings.ContainsAny(msg, "\n\x1b") || !strings.Contains(msg, retry.QuoteID(hostile)) || len(msg) > ids*(retry.MaxIDInError+20)+100 {
			t.Errorf("%s: %d bytes, %.300q; want one line quoting the id cut to %d bytes", what, len(msg), msg, retry.MaxIDInError)
		}
	}
	_, err := ex.Wait(ctx, hostile, executor.WaitPoll(-1))
	oneLine("Wait with a bad poll", err.Error(), 1)
	_, err = ex.Wait(ctx, hostile)
	oneLine("Wait of a missing run", err.Error(), 2) // Wait's context and the store's
	if !errors.Is(err, retry.ErrNotFound) {
		t.Fatalf("Wait of a missing run: %v; want ErrNotFound", err)
	}
}
