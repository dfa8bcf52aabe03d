package executor_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
	"github.com/journeyretry/journeyretry/storage"
	"github.com/journeyretry/journeyretry/storage/pgtest"
)

const (
	cancelEnvDSN = "JRETRY_CANCEL_DSN"
	// cancelLease is the child's lease: a cancel must stop its node
	// within it (the renewal, every third of it, learns of the cancel).
	cancelLease = 3 * time.Second
)

// TestCancelStopsNodeInAnotherProcess: a worker process runs a node that
// takes as long as its context lets it; this process cancels the run
// through its own handle on the store. The worker's lease renewal learns
// of it, the node's context is cancelled within a lease, the node after
// it never runs, nothing of the node is recorded, and the run ends
// cancelled. On a SQLite file and on PostgreSQL.
func TestCancelStopsNodeInAnotherProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test skipped in -short mode")
	}
	dsns := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "runs.db") },
		"postgres": func(t *testing.T) string { return pgtest.DSN(t) },
	}
	for name, newDSN := range dsns {
		t.Run(name, func(t *testing.T) {
			dsn := newDSN(t)
			ctx := t.Context()
			store, err := storage.Open(ctx, storage.Config{DSN: dsn})
			must(t, err)
			defer store.Close()
			must(t, store.Migrate(ctx))
			_, err = store.Create(ctx, retry.NewRun{ID: "r1", JourneyID: "cancel", JourneyVersion: 1, StartNodeID: "slow", MaxRetries: 3}, time.Now())
			must(t, err)

			cmd := exec.Command(os.Args[0], "-test.run=^TestCancelWorkerProcess$")
			cmd.Env = append(os.Environ(), cancelEnvDSN+"="+dsn)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			must(t, err)
			must(t, cmd.Start())
			t.Cleanup(func() { cmd.Process.Kill() })
			lines := make(chan string, 16)
			go func() {
				defer close(lines)
				for sc := bufio.NewScanner(out); sc.Scan(); {
					lines <- sc.Text()
				}
			}()
			var seen []string
			// expect returns the first line, in any order, that starts with prefix.
			expect := func(prefix string) string {
				t.Helper()
				for _, l := range seen {
					if strings.HasPrefix(l, prefix) {
						return l
					}
				}
				watchdog := time.After(60 * time.Second)
				for {
					select {
					case l, ok := <-lines:
						if !ok {
							t.Fatalf("the worker exited before printing %q; it printed %q", prefix, seen)
						}
						seen = append(seen, l)
						if strings.HasPrefix(l, prefix) {
							return l
						}
					case <-watchdog:
						t.Fatalf("the worker did not print %q; it printed %q", prefix, seen)
					}
				}
			}
			expect("started")
			cancelledAt := time.Now()
			if _, err := store.Cancel(ctx, "r1", "test", cancelledAt); err != nil {
				t.Fatalf("Cancel: %v", err)
			}
			stopped := expect("stopped")
			took := time.Since(cancelledAt)
			t.Logf("the worker's node stopped %s after the cancel (lease %s): %s", took, cancelLease, stopped)
			if took > cancelLease {
				t.Errorf("the node stopped %s after the cancel; want within the lease, %s", took, cancelLease)
			}
			if l := expect("stats"); l != "stats cancelled=1 lost=0" {
				t.Errorf("worker: %q; want one cancelled run and no lost claim", l)
			}
			if l := expect("event"); l != "event RunCancelled run=r1 node=slow type=slow" {
				t.Errorf("worker: %q; want the cancel as an event of its node", l)
			}
			for l := range lines {
				seen = append(seen, l)
			}
			must(t, cmd.Wait())
			for _, l := range seen {
				if strings.HasPrefix(l, "after") {
					t.Errorf("the node after the cancelled one ran: %q", l)
				}
			}
			run, err := store.Get(ctx, "r1")
			must(t, err)
			as, err := store.Attempts(ctx, "r1")
			must(t, err)
			if run.Status != retry.StatusCancelled || run.ClaimToken != "" || len(as) != 1 || as[0].Outcome != retry.OutcomeCancelled ||
				as[0].Act == nil || as[0].Act.By != "test" || as[0].Worker != "cancel-worker" {
				t.Fatalf("run %s (token %q), history %+v; want cancelled, unclaimed, the cancel by test of cancel-worker's claim alone", run.Status, run.ClaimToken, as)
			}
		})
	}
}

// TestCancelWorkerProcess is the child of
// TestCancelStopsNodeInAnotherProcess: a worker whose node "slow" runs
// until its context ends, saying so on stdout, and which exits once run
// r1 has ended, printing its counters.
func TestCancelWorkerProcess(t *testing.T) {
	dsn := os.Getenv(cancelEnvDSN)
	if dsn == "" {
		t.Skip("the cancel test's worker process")
	}
	ctx := context.Background()
	store, err := storage.Open(ctx, storage.Config{DSN: dsn})
	must(t, err)
	defer store.Close()
	sched, err := memory.New(memory.Config{Lease: time.Second})
	must(t, err)
	defer sched.Close()
	ex, err := executor.New(executor.Config{Worker: "cancel-worker", Lease: cancelLease, SweepSpec: "@every 1s",
		SweepGrace: 50 * time.Millisecond, Mode: executor.ModeFull, Observer: executor.ObserverFunc(func(ev executor.Event) {
			if c, ok := ev.(executor.RunCancelled); ok {
				fmt.Printf("event RunCancelled run=%s node=%s type=%s\n", c.RunID, c.NodeID, c.NodeType)
			}
		})}, store, sched, defaultPolicy(t))
	must(t, err)
	// The executor does not wait for a cancelled node's handler to return:
	// the process waits for it before exiting, so that it prints "stopped".
	slowDone := make(chan struct{})
	must(t, ex.Handle("slow", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		defer close(slowDone)
		fmt.Println("started", in.Run.ID)
		<-ctx.Done()
		fmt.Println("stopped", ctx.Err())
		return nil, ctx.Err()
	})))
	must(t, ex.Handle("after", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		fmt.Println("after", in.Run.ID)
		return nil, nil
	})))
	must(t, ex.RegisterJourney(executor.Journey{ID: "cancel", Start: "slow", Nodes: []executor.Node{
		{ID: "slow", Type: "slow", Next: "after", Timeout: time.Minute}, {ID: "after", Type: "after"},
	}}))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ex.Run(runCtx) }()
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err = ex.Wait(waitCtx, "r1", executor.WaitPoll(100*time.Millisecond))
	must(t, err)
	stop()
	must(t, <-done)
	<-slowDone
	st := ex.Stats()
	fmt.Printf("stats cancelled=%d lost=%d\n", st.Cancelled, st.LostClaims)
}
