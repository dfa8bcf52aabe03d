package executor_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
)

// burnEnv makes TestBurnCPU a CPU-burning child process.
const burnEnv = "JRETRY_TEST_BURN_CPU"

// TestBurnCPU is the child process of TestMinimumLeaseUnderLoad: it burns
// a CPU until killed (at most a minute, should its parent die first).
func TestBurnCPU(t *testing.T) {
	if os.Getenv(burnEnv) == "" {
		t.Skip("the lease test's CPU-burning child process")
	}
	x := 0
	for end := time.Now().Add(time.Minute); time.Now().Before(end); {
		for i := range 1_000_000 {
			x ^= i
		}
	}
	_ = x
}

// lostCounter counts lost claims.
type lostCounter struct {
	lost atomic.Int64
}

func (o *lostCounter) Observe(ev executor.Event) {
	if _, ok := ev.(executor.LeaseLost); ok {
		o.lost.Add(1)
	}
}

// TestMinimumLeaseUnderLoad: with two CPU-burning processes beside it, an
// executor on the shortest lease renews it in time while nodes run ten
// leases long: no claim is lost, each node runs once, every run completes.
//
// No renewal survives the process being descheduled, or a store write
// taking, longer than the two thirds of a lease it has to spare, as
// happens on a machine far busier than two burners (other test processes
// on its CPUs and disk): a probe measures the longest gap in the process's
// wake-ups and the slowest store write, and a round so disturbed is run
// again (a few times at most, then skipped, saying so). A claim lost while
// the process and the store ran on time fails.
func TestMinimumLeaseUnderLoad(t *testing.T) {
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBurnCPU$")
		cmd.Env = append(os.Environ(), burnEnv+"=1")
		must(t, cmd.Start())
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	var frozen time.Duration
	for range 4 {
		lost, short, gap := leaseRound(t)
		switch {
		case lost == 0 && short == 0:
			return
		case lost > 0 && gap < 2*executor.LeaseMin/3:
			t.Fatalf("%d claims lost while the process and the store ran on time (longest stall %s)", lost, gap)
		}
		frozen = gap
	}
	t.Skipf("the machine stalled the process or the store for %s (longer than two thirds of the %s lease) in every round", frozen, executor.LeaseMin)
}

// timedStore records the slowest write of the claim's life.
type timedStore struct {
	retry.Store
	mu      sync.Mutex
	slowest time.Duration
}

func (s *timedStore) took(start time.Time) {
	s.mu.Lock()
	s.slowest = max(s.slowest, time.Since(start))
	s.mu.Unlock()
}

func (s *timedStore) Create(ctx context.Context, nr retry.NewRun, now time.Time) (retry.Run, error) {
	defer s.took(time.Now())
	return s.Store.Create(ctx, nr, now)
}

func (s *timedStore) ExtendLease(ctx context.Context, c retry.Claim, now time.Time, lease time.Duration) (retry.Claim, error) {
	defer s.took(time.Now())
	return s.Store.ExtendLease(ctx, c, now, lease)
}

func (s *timedStore) CompleteNode(ctx context.Context, c retry.Claim, ns retry.NodeSuccess) (retry.Run, error) {
	defer s.took(time.Now())
	return s.Store.CompleteNode(ctx, c, ns)
}

// leaseRound runs journeys of two nodes ten leases long each on the
// shortest lease and returns the claims lost, the claims the store handed
// back too late to run a node under (Stats.ShortClaims: a stalled store),
// and the longest stall meanwhile: the slowest store write, or the longest
// gap between two wake-ups of a 5 ms ticker.
func leaseRound(t *testing.T) (lost, short int64, gap time.Duration) {
	t.Helper()
	store := &timedStore{Store: openStore(t, "")}
	sched, err := memory.New(memory.Config{})
	must(t, err)
	obs := &lostCounter{}
	ex, err := executor.New(executor.Config{Mode: executor.ModeFull, Lease: executor.LeaseMin, Workers: 4, Observer: obs},
		store, sched, retry.PolicyFunc(func(retry.Failure) retry.Decision { return retry.Decision{Strategy: "none"} }))
	must(t, err)
	defer ex.Close()
	var runs atomic.Int64
	must(t, ex.Handle("slow", executor.HandlerFunc(func(ctx context.Context, _ executor.NodeInput) (json.RawMessage, error) {
		runs.Add(1)
		select { // a node's work, ten leases long
		case <-time.After(10 * executor.LeaseMin):
			return json.RawMessage(`{}`), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})))
	must(t, ex.RegisterJourney(executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{
		{ID: "a", Type: "slow", Next: "b"}, {ID: "b", Type: "slow"}}}))

	stop, probed := make(chan struct{}), make(chan time.Duration)
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var longest time.Duration
		last := time.Now()
		for {
			select {
			case <-stop:
				probed <- max(longest, time.Since(last))
				return
			case now := <-tick.C:
				longest, last = max(longest, now.Sub(last)), now
			}
		}
	}()
	const n = 2
	var wg sync.WaitGroup
	statuses := make([]retry.Status, n)
	for i := range n {
		wg.Go(func() {
			run, err := ex.StartRunSync(t.Context(), "j", json.RawMessage(`{}`))
			must(t, err)
			statuses[i] = run.Status
		})
	}
	wg.Wait()
	close(stop)
	gap = max(<-probed, store.slowest)
	lost, short = obs.lost.Load(), ex.Stats().ShortClaims
	if lost == 0 && short == 0 && (runs.Load() != 2*n || slices.ContainsFunc(statuses, func(s retry.Status) bool { return s != retry.StatusCompleted })) {
		t.Fatalf("no claim lost, yet %d node executions (want %d), statuses %v", runs.Load(), 2*n, statuses)
	}
	t.Logf("%d claims lost, %d handed back too late, longest stall %s", lost, short, gap)
	return lost, short, gap
}
