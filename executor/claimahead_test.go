package executor_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
)

// gatedStore holds every CompleteNode until the test sends on gate.
type gatedStore struct {
	retry.Store
	gate chan struct{}
}

func (s *gatedStore) CompleteNode(ctx context.Context, c retry.Claim, n retry.NodeSuccess) (retry.Run, error) {
	<-s.gate
	return s.Store.CompleteNode(ctx, c, n)
}

// heldScheduler counts the deliveries claimed, and keeps the peak of those
// claimed but not yet started (started is counted by the handler).
type heldScheduler struct {
	retry.Scheduler
	mu                     sync.Mutex
	claimed, started, peak int
}

func (s *heldScheduler) Claim(ctx context.Context, now time.Time, limit int) ([]retry.Delivery, error) {
	ds, err := s.Scheduler.Claim(ctx, now, limit)
	s.mu.Lock()
	s.claimed += len(ds)
	s.peak = max(s.peak, s.claimed-s.started)
	s.mu.Unlock()
	return ds, err
}

func (s *heldScheduler) start() {
	s.mu.Lock()
	s.started++
	s.mu.Unlock()
}

func (s *heldScheduler) counts() (claimed, started int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claimed, s.started
}

// TestClaimAhead: with a backlog of due wake-ups, a run writing its last
// result has already claimed the wake-up that takes its worker next, so a
// networked scheduler's round trip overlaps the write; that delivery waits
// for this worker only, so the deliveries held unstarted never outnumber
// the workers (one here). The store's CompleteNode is held open so that
// each step is seen while the write is in flight.
func TestClaimAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &gatedStore{Store: openStore(t, ""), gate: make(chan struct{})}
		mem, err := memory.New(memory.Config{})
		must(t, err)
		sched := &heldScheduler{Scheduler: mem}
		exec, err := executor.New(executor.Config{Workers: 1, SweepSpec: "@every 1h", SweepGrace: time.Hour}, store, sched, defaultPolicy(t))
		must(t, err)
		must(t, exec.Handle("ok", executor.HandlerFunc(func(context.Context, executor.NodeInput) (json.RawMessage, error) {
			sched.start()
			return nil, nil
		})))
		must(t, exec.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "ok"}}}))
		ctx := context.Background()
		const runs = 3
		var ids []string
		for range runs {
			run, err := exec.StartRunSync(ctx, "j", nil, executor.Deferred())
			must(t, err)
			ids = append(ids, run.ID)
		}
		stop := runInBubble(t, exec)
		defer stop()
		for i := range runs {
			synctest.Wait() // run i's handler returned; its CompleteNode waits
			claimed, started := sched.counts()
			if want := min(i+2, runs); started != i+1 || claimed != want {
				t.Fatalf("writing run %d: %d deliveries claimed, %d started; want %d claimed (the next one ahead), %d started", i, claimed, started, want, i+1)
			}
			store.gate <- struct{}{}
		}
		synctest.Wait()
		s := exec.Stats()
		if s.Resumed != runs || s.Deliveries != runs || s.Wasted != 0 {
			t.Fatalf("stats %+v; want all %d resumed, one delivery each", s, runs)
		}
		if sched.peak > 1 {
			t.Fatalf("%d deliveries held unstarted at once with 1 worker; want at most 1", sched.peak)
		}
		for _, id := range ids {
			if run, err := store.Get(ctx, id); err != nil || run.Status != retry.StatusCompleted {
				t.Fatalf("run %s: %s, %v", id, run.Status, err)
			}
		}
	})
}
