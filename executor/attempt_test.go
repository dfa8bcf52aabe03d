package executor_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
)

var errTest = errors.New("connection reset")

// lateStore is a store that answers claims late, as one under load does:
// each claim (and each Create with a lease) is made at the clock's time,
// and the clock then moves on by late before it comes back, for the first
// lateN claims, and the same for the first lateExtends lease extensions.
// It counts the claims and lease extensions it is asked for.
type lateStore struct {
	retry.Store
	clock       *clock
	late        time.Duration
	lateN       atomic.Int64
	lateExtends atomic.Int64
	claims      atomic.Int64
	extends     atomic.Int64
}

func (s *lateStore) answer() {
	if s.lateN.Add(-1) >= 0 {
		s.clock.Add(s.late)
	}
}

func (s *lateStore) Create(ctx context.Context, nr retry.NewRun, now time.Time) (retry.Run, error) {
	r, err := s.Store.Create(ctx, nr, now)
	if nr.Lease > 0 {
		s.answer()
	}
	return r, err
}

func (s *lateStore) ClaimRun(ctx context.Context, id, worker string, now time.Time, lease time.Duration) (retry.Run, error) {
	s.claims.Add(1)
	r, err := s.Store.ClaimRun(ctx, id, worker, now, lease)
	s.answer()
	return r, err
}

func (s *lateStore) ClaimDue(ctx context.Context, worker string, dueBy, now time.Time, lease time.Duration, limit int) ([]retry.Run, error) {
	s.claims.Add(1)
	rs, err := s.Store.ClaimDue(ctx, worker, dueBy, now, lease, limit)
	if len(rs) > 0 {
		s.answer()
	}
	return rs, err
}

func (s *lateStore) ExtendLease(ctx context.Context, c retry.Claim, now time.Time, lease time.Duration) (retry.Claim, error) {
	s.extends.Add(1)
	c, err := s.Store.ExtendLease(ctx, c, now, lease)
	if s.lateExtends.Add(-1) >= 0 {
		s.clock.Add(s.late)
	}
	return c, err
}

const attemptLease = 10 * time.Second

// newLateExecutor is an executor with a stub clock on a fresh SQLite store
// behind a lateStore whose first lateN claims come back late.
func newLateExecutor(t *testing.T, late time.Duration, lateN int64) (*executor.Executor, *lateStore, *harness) {
	t.Helper()
	c := newClock()
	ls := &lateStore{Store: openStore(t, ""), clock: c, late: late}
	ls.lateN.Store(lateN)
	h := &harness{clock: c}
	sched, err := memory.New(memory.Config{Now: c.Now})
	must(t, err)
	h.sched = sched
	ex, err := executor.New(executor.Config{Workers: 4, Mode: executor.ModeFull, Lease: attemptLease, SweepSpec: "@every 1h",
		Now: c.Now, Worker: "test-worker"}, ls, sched, retryAfter(0))
	must(t, err)
	t.Cleanup(func() { ex.Close() })
	h.exec = ex
	return ex, ls, h
}

// countingHandler counts its executions and checks that each starts with
// at least half the lease left by the executor's clock.
func countingHandler(t *testing.T, c *clock, n *atomic.Int64, fails int) executor.HandlerFunc {
	return func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		n.Add(1)
		if left := in.Run.LeaseExpiresAt.Sub(c.Now()); left < attemptLease/2 {
			t.Errorf("node %s of %s started with %v of its lease left; want at least %v", in.Node.ID, in.Run.ID, left, attemptLease/2)
		}
		if in.Attempt <= fails {
			return nil, retry.WithClass(errTest, retry.ClassNetworkBlip)
		}
		return json.RawMessage(`{"ok":true}`), nil
	}
}

// A failure with a zero delay is retried under the claim the store kept:
// one store write per attempt, no claim between them.
func TestZeroDelayRetryKeepsClaim(t *testing.T) {
	ex, ls, h := newLateExecutor(t, 0, 0)
	var calls atomic.Int64
	must(t, ex.Handle("flaky", countingHandler(t, h.clock, &calls, 2)))
	must(t, ex.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "flaky"}}}))
	run, err := ex.StartRunSync(context.Background(), "j", nil, executor.WithRunID("r1"))
	if err != nil || run.Status != retry.StatusCompleted {
		t.Fatalf("StartRun = %s, %v; want completed", run.Status, err)
	}
	if n := ls.claims.Load(); n != 0 || calls.Load() != 3 {
		t.Fatalf("%d claims for 3 attempts (%d executions); want none: the zero-delay retries keep the claim", n, calls.Load())
	}
	as, err := ls.Attempts(context.Background(), "r1")
	must(t, err)
	if len(as) != 3 || as[0].ClaimToken != as[2].ClaimToken || as[0].Status != retry.StatusRetrying || as[2].NodeAttempt != 3 {
		t.Fatalf("attempts %+v; want three under one token, the first recorded retrying", as)
	}
	if st := ex.Stats(); st.Immediate != 2 || st.Retries != 2 || st.Attempts != 3 {
		t.Fatalf("Stats %+v; want 2 immediate retries of 3 attempts", st)
	}
}

// A claim the store hands back with less than half the lease left is
// released unused, counted, and the run scheduled again; the node runs only
// under a claim with most of its lease.
func TestLateClaimNotExecuted(t *testing.T) {
	const late = attemptLease/2 + time.Second
	for _, path := range []string{"StartRun", "SweepOnce", "wake"} {
		t.Run(path, func(t *testing.T) {
			ex, ls, h := newLateExecutor(t, late, 1)
			var calls atomic.Int64
			ran := make(chan struct{}, 1)
			check := countingHandler(t, h.clock, &calls, 0)
			must(t, ex.Handle("t", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
				defer func() { ran <- struct{}{} }()
				return check(ctx, in)
			})))
			must(t, ex.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "t"}}}))
			ctx := context.Background()
			switch path {
			case "StartRun":
				run, err := ex.StartRunSync(ctx, "j", nil, executor.WithRunID("r1"))
				must(t, err)
				if run.Status != retry.StatusInProgress {
					t.Fatalf("StartRun under a late claim: status %s; want in_progress, handed back", run.Status)
				}
			case "SweepOnce":
				_, err := ex.StartRunSync(ctx, "j", nil, executor.WithRunID("r1"), executor.Deferred())
				must(t, err)
				h.clock.Add(time.Minute) // past the sweep grace
				_, err = ex.SweepOnce(ctx)
				must(t, err)
			case "wake":
				_, err := ex.StartRunSync(ctx, "j", nil, executor.WithRunID("r1"), executor.Deferred())
				must(t, err)
				rctx, cancel := context.WithCancel(ctx)
				errc := make(chan error, 1)
				go func() { errc <- ex.Run(rctx) }()
				await(t, ran, "the node, claimed again in time")
				cancel()
				must(t, <-errc)
			}
			if st := ex.Stats(); st.ShortClaims != 1 {
				t.Fatalf("Stats.ShortClaims = %d; want 1", st.ShortClaims)
			}
			if path == "wake" { // scheduled again, claimed again in time, and run once
				return
			}
			if calls.Load() != 0 {
				t.Fatalf("the node ran %d times under a claim with less than half its lease", calls.Load())
			}
			r, err := ls.Get(ctx, "r1")
			must(t, err)
			if r.ClaimToken != "" || r.Status != retry.StatusInProgress {
				t.Fatalf("after the late claim: status %s, token %q; want in_progress, released", r.Status, r.ClaimToken)
			}
			if ds, err := h.sched.Claim(ctx, h.clock.Now(), 10); err != nil || len(ds) != 1 || ds[0].ID != "r1" {
				t.Fatalf("scheduler due entries %v, %v; want r1 scheduled again at once", ds, err)
			}
		})
	}
}

// A claim kept from one node to the next is extended before the next node
// when the first used up more than half of its lease.
func TestKeptClaimExtendedBeforeNode(t *testing.T) {
	ex, ls, h := newLateExecutor(t, 0, 0)
	var calls atomic.Int64
	must(t, ex.Handle("slow", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		h.clock.Add(attemptLease/2 + time.Second) // a long node, the renewal not yet due
		return nil, nil
	})))
	must(t, ex.Handle("t", countingHandler(t, h.clock, &calls, 0)))
	must(t, ex.RegisterJourney(executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{
		{ID: "a", Type: "slow", Next: "b"}, {ID: "b", Type: "t"}}}))
	run, err := ex.StartRunSync(context.Background(), "j", nil, executor.WithRunID("r1"))
	if err != nil || run.Status != retry.StatusCompleted || calls.Load() != 1 {
		t.Fatalf("StartRun = %s, %v, %d executions of b; want completed, 1", run.Status, err, calls.Load())
	}
	if n := ls.extends.Load(); n != 1 {
		t.Fatalf("%d lease extensions; want 1, before node b", n)
	}
}

// A kept claim's extension that comes back with less than half a lease
// left (the store answered late) is released unused like a late claim:
// the next node does not start under it, and the run is scheduled again
// at once.
func TestLateExtensionNotExecuted(t *testing.T) {
	ex, ls, h := newLateExecutor(t, attemptLease/2+time.Second, 0)
	ls.lateExtends.Store(1)
	var calls atomic.Int64
	must(t, ex.Handle("slow", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		h.clock.Add(attemptLease/2 + time.Second) // more than half the lease: b needs an extension
		return nil, nil
	})))
	must(t, ex.Handle("t", countingHandler(t, h.clock, &calls, 0)))
	must(t, ex.RegisterJourney(executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{
		{ID: "a", Type: "slow", Next: "b"}, {ID: "b", Type: "t"}}}))
	ctx := context.Background()
	run, err := ex.StartRunSync(ctx, "j", nil, executor.WithRunID("r1"))
	must(t, err)
	if run.Status != retry.StatusInProgress || calls.Load() != 0 {
		t.Fatalf("StartRun = %s, %d executions of b; want in_progress, handed back before b ran", run.Status, calls.Load())
	}
	if n, st := ls.extends.Load(), ex.Stats(); n != 1 || st.ShortClaims != 1 {
		t.Fatalf("%d extensions, Stats.ShortClaims = %d; want 1 and 1", n, st.ShortClaims)
	}
	r, err := ls.Get(ctx, "r1")
	must(t, err)
	if r.ClaimToken != "" || r.CurrentNodeID != "b" {
		t.Fatalf("after the late extension: node %s, token %q; want b, released", r.CurrentNodeID, r.ClaimToken)
	}
	if ds, err := h.sched.Claim(ctx, h.clock.Now(), 10); err != nil || len(ds) != 1 || ds[0].ID != "r1" {
		t.Fatalf("scheduler due entries %v, %v; want r1 scheduled again at once", ds, err)
	}
}

// durable is a memory scheduler that says its entries outlive the process.
type durable struct {
	*memory.Scheduler
	ready chan struct{} // closed at the first Ready: Run is past its rebuild
	once  sync.Once
	acked chan string
}

func (d *durable) Durable() bool { return true }

func (d *durable) Ack(ctx context.Context, dl retry.Delivery) error {
	defer func() { d.acked <- dl.ID }()
	return d.Scheduler.Ack(ctx, dl)
}

func (d *durable) Ready() <-chan struct{} {
	d.once.Do(func() { close(d.ready) })
	return d.Scheduler.Ready()
}

// listCounting counts ListWakeups calls: a rebuild.
type listCounting struct {
	retry.Store
	lists atomic.Int64
}

func (s *listCounting) ListWakeups(ctx context.Context, afterID string, limit int) ([]retry.Wakeup, error) {
	s.lists.Add(1)
	return s.Store.ListWakeups(ctx, afterID, limit)
}

// A durable scheduler is not rebuilt when Run starts: its entries are
// already there, and every process rebuilding it would race the others.
func TestDurableSchedulerNotRebuilt(t *testing.T) {
	c := newClock()
	store := &listCounting{Store: openStore(t, "")}
	r, err := store.Create(context.Background(), retry.NewRun{ID: "r1", JourneyID: "j", StartNodeID: "n", MaxRetries: 3, Worker: "w", Lease: time.Minute}, c.Now())
	must(t, err)
	_, err = store.RecordFailure(context.Background(), r.Claim(), retry.FailureRecord{NodeID: "n", FinishedAt: c.Now(),
		Decision: retry.Decision{Retry: true, Delay: time.Hour}})
	must(t, err)
	mem, err := memory.New(memory.Config{Now: c.Now})
	must(t, err)
	sched := &durable{Scheduler: mem, ready: make(chan struct{}), acked: make(chan string, 10)}
	must(t, sched.Schedule(context.Background(), "missing", c.Now())) // a stale entry: its run is gone
	ex, err := executor.New(executor.Config{Workers: 2, SweepSpec: "@every 1h", Now: c.Now}, store, sched, retryAfter(0))
	must(t, err)
	defer ex.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- ex.Run(ctx) }()
	await(t, sched.ready, "Run to consume")
	await(t, sched.acked, "the stale entry's delivery")
	cancel()
	must(t, <-errc)
	st := ex.Stats()
	if n := store.lists.Load(); n != 0 || st.Rebuilt != 0 {
		t.Fatalf("a durable scheduler was rebuilt: %d ListWakeups calls, Stats.Rebuilt %d; want none", n, st.Rebuilt)
	}
	if st.Deliveries != 1 || st.Wasted != 1 {
		t.Fatalf("Stats %+v; want the stale entry delivered and counted wasted", st)
	}
}
