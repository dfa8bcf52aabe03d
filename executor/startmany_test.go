package executor_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
	"github.com/journeyretry/journeyretry/storage/memstore"
)

// unbatched hides the store's retry.BatchCreator: StartMany falls back to
// one Create per run.
type unbatched struct{ retry.Store }

// batchScheduler is the memory scheduler as a retry.BatchScheduler that
// counts its ScheduleMany calls.
type batchScheduler struct {
	*memory.Scheduler
	calls int
}

func (s *batchScheduler) ScheduleMany(ctx context.Context, ids []string, at time.Time) error {
	s.calls++
	for _, id := range ids {
		if err := s.Schedule(ctx, id, at); err != nil {
			return err
		}
	}
	return nil
}

// TestStartMany: StartMany creates every run deferred (unclaimed, due now,
// the scheduler told: in one call per batch when it is a
// retry.BatchScheduler), on a store that writes batches and on one that
// does not; a duplicate id stops it,
// the runs before the failing batch (or, without batches, before the
// failing run) created and returned, nothing after.
func TestStartMany(t *testing.T) {
	const runs = 2*executor.StartManyBatch + 500
	for _, tc := range []struct {
		name       string
		wrap       func(retry.Store) retry.Store
		created    int // of the runs before the duplicate at 1500
		batchCalls int // ScheduleMany calls for the first StartMany, 0: no BatchScheduler
	}{
		{"batches", func(s retry.Store) retry.Store { return s }, executor.StartManyBatch, 0},
		{"batches, batch scheduler", func(s retry.Store) retry.Store { return s }, executor.StartManyBatch, 3},
		{"one at a time", func(s retry.Store) retry.Store { return unbatched{s} }, 1500, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := memstore.New() // the Bun store's CreateMany is storetest's
			mem, err := memory.New(memory.Config{})
			must(t, err)
			t.Cleanup(func() { mem.Close() })
			sched := &batchScheduler{Scheduler: mem}
			var given retry.Scheduler = mem
			if tc.batchCalls > 0 {
				given = sched
			}
			ex, err := executor.New(executor.Config{SweepSpec: "@every 1h"}, tc.wrap(store), given, defaultPolicy(t))
			must(t, err)
			t.Cleanup(func() { ex.Close() })
			must(t, ex.Handle("ok", executor.HandlerFunc(ok)))
			must(t, ex.RegisterJourney(executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{{ID: "a", Type: "ok"}}}))

			starts := func(prefix string) []executor.Start {
				out := make([]executor.Start, runs)
				for i := range out {
					out[i] = executor.Start{JourneyID: "j", Input: []byte(fmt.Sprintf(`{"n":%d}`, i)),
						Options: []executor.StartOption{executor.WithRunID(fmt.Sprintf("%s-%04d", prefix, i))}}
				}
				return out
			}
			created, err := ex.StartMany(t.Context(), starts("a"))
			must(t, err)
			if len(created) != runs || mem.Len() != runs || sched.calls != tc.batchCalls {
				t.Fatalf("StartMany: %d runs, %d scheduled in %d ScheduleMany calls; want %d in %d", len(created), mem.Len(), sched.calls, runs, tc.batchCalls)
			}
			for i, r := range created {
				if want := fmt.Sprintf("a-%04d", i); r.ID != want || r.ClaimToken != "" || r.Status != retry.StatusInProgress || string(r.Context.Input) != fmt.Sprintf(`{"n":%d}`, i) {
					t.Fatalf("run %d: %+v; want %s, unclaimed, in progress, its input", i, r, want)
				}
			}

			_, err = store.Create(t.Context(), retry.NewRun{ID: "b-1500", JourneyID: "j", StartNodeID: "a"}, time.Now())
			must(t, err)
			created, err = ex.StartMany(t.Context(), starts("b"))
			if !errors.Is(err, retry.ErrDuplicateRun) || !strings.Contains(err.Error(), `"b-1500"`) {
				t.Fatalf("StartMany with b-1500 taken: %v; want ErrDuplicateRun naming b-1500", err)
			}
			if len(created) != tc.created {
				t.Fatalf("StartMany with b-1500 taken returned %d runs; want %d", len(created), tc.created)
			}
			for i := range runs {
				id := fmt.Sprintf("b-%04d", i)
				_, gerr := store.Get(t.Context(), id)
				if exists := gerr == nil; exists != (i < tc.created || i == 1500) {
					t.Fatalf("run %s: Get %v after the failed StartMany (%d created)", id, gerr, tc.created)
				}
			}

			before, err := store.CountByStatus(t.Context())
			must(t, err)
			if _, err := ex.StartMany(t.Context(), []executor.Start{{JourneyID: "j"}, {JourneyID: "nope"}}); !errors.Is(err, executor.ErrUnknownJourney) {
				t.Fatalf("StartMany of an unknown journey: %v", err)
			}
			if after, err := store.CountByStatus(t.Context()); err != nil || !maps.Equal(after, before) {
				t.Fatalf("StartMany of an unknown journey wrote: %v, then %v (%v)", before, after, err)
			}
		})
	}
}

// TestStartManyRunsExecute: a running executor executes the runs StartMany
// created, to their end.
func TestStartManyRunsExecute(t *testing.T) {
	ex := realExecutor(t, openStore(t, ""), time.Hour)
	must(t, ex.Handle("ok", executor.HandlerFunc(ok)))
	must(t, ex.RegisterJourney(executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{{ID: "a", Type: "ok"}}}))
	runs, err := ex.StartMany(t.Context(), []executor.Start{{JourneyID: "j"}, {JourneyID: "j"}, {JourneyID: "j"}})
	must(t, err)
	serve(t, context.Background(), ex)
	for _, r := range runs {
		if run, err := ex.Wait(t.Context(), r.ID); err != nil || run.Status != retry.StatusCompleted {
			t.Fatalf("Wait(%s) = %s, %v; want completed", r.ID, run.Status, err)
		}
	}
}
