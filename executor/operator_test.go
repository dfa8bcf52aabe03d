package executor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/policy"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage"
	"github.com/journeyretry/journeyretry/storage/pgtest"
)

// dialectStores opens a fresh migrated store on SQLite, and on PostgreSQL
// when RETRY_TEST_POSTGRES_URL is set.
var dialectStores = map[string]func(t *testing.T) *storage.Store{
	"sqlite": func(t *testing.T) *storage.Store { return openStore(t, "") },
	"postgres": func(t *testing.T) *storage.Store {
		s, err := storage.Open(t.Context(), storage.Config{DSN: pgtest.DSN(t)})
		must(t, err)
		t.Cleanup(func() { s.Close() })
		must(t, s.Migrate(t.Context()))
		return s
	},
}

// TestReplayFromNode: a run a, b, c fails for good at c; replayed from b
// with the long strategy and a fresh retry count, it runs b and c again,
// never a, decides c's next failure with the long strategy, keeps a's
// output and b's new one, and its history holds the replay with what it
// moved aside.
func TestReplayFromNode(t *testing.T) {
	for name, open := range dialectStores {
		t.Run(name, func(t *testing.T) {
			store := open(t)
			h := newHarnessOn(t, store, newClock(), executor.Config{}, nil, nil)
			var mu sync.Mutex
			runs := map[string]int{}
			var cFails atomic.Int64 // c's failures to come: permanent first, then a network blip
			cFails.Store(1)
			step := executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
				mu.Lock()
				runs[in.Node.ID]++
				n := runs[in.Node.ID]
				mu.Unlock()
				if in.Node.ID == "c" && cFails.Add(-1) >= 0 {
					if n == 1 {
						return nil, retry.Permanent(errors.New("bad deploy"))
					}
					return nil, retry.WithClass(errors.New("connection reset"), retry.ClassNetworkBlip)
				}
				return json.RawMessage(fmt.Sprintf(`{"node":%q,"run":%d}`, in.Node.ID, n)), nil
			})
			must(t, h.exec.Handle("step", step))
			must(t, h.exec.RegisterJourney(executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{
				{ID: "a", Type: "step", Next: "b"}, {ID: "b", Type: "step", Next: "c"}, {ID: "c", Type: "step"},
			}}))
			run := h.rt.Run(t, "j", json.RawMessage(`{"patient":"p1"}`))
			if run.Status != retry.StatusFailed || run.CurrentNodeID != "c" {
				t.Fatalf("first pass: %s at %s; want failed at c", run.Status, run.CurrentNodeID)
			}
			cFails.Store(1) // after the replay c fails once more, retryably
			seven := 7
			o := retry.ReplayOptions{By: "alice", From: "b", Override: retry.PolicyOverride{Strategy: policy.StrategyLong, MaxRetries: &seven}}
			if _, err := store.ReplayWith(t.Context(), run.ID, o, h.clock.Now()); err != nil {
				t.Fatal(err)
			}
			run = h.drive(t, run.ID)
			if run.Status != retry.StatusCompleted {
				t.Fatalf("replayed run %s; want completed", run.Status)
			}
			mu.Lock()
			got := fmt.Sprint(runs)
			mu.Unlock()
			if want := "map[a:1 b:2 c:3]"; got != want {
				t.Fatalf("executions per node %s; want %s (a never again, b once more, c failing once then succeeding)", got, want)
			}
			if !jsonEqual(run.Context.Outputs["a"], `{"node":"a","run":1}`) || !jsonEqual(run.Context.Outputs["b"], `{"node":"b","run":2}`) {
				t.Fatalf("context %v; want a's first output and b's second", run.Context.Outputs)
			}
			as, err := store.Attempts(t.Context(), run.ID)
			must(t, err)
			var replay, retried *retry.Attempt
			for i, a := range as {
				switch {
				case a.Outcome == retry.OutcomeReplayed:
					replay = &as[i]
				case replay != nil && a.Outcome == retry.OutcomeFailed:
					retried = &as[i]
				}
			}
			if replay == nil || replay.Act == nil || replay.Act.By != "alice" || replay.Act.From != "b" ||
				replay.Act.Override.Strategy != policy.StrategyLong || len(replay.Act.Moved) != 1 || !jsonEqual(replay.Act.Moved["b"], `{"node":"b","run":1}`) {
				t.Fatalf("replay in the history: %+v; want by alice from b with the long strategy, b's first output moved", replay)
			}
			if retried == nil || retried.Decision.Strategy != policy.StrategyLong || retried.Decision.Rule != "override:long" || retried.NodeAttempt != 1 {
				t.Fatalf("c's failure after the replay: %+v; want decided by the long strategy (override:long), attempt 1 of the node", retried)
			}
		})
	}
}

func jsonEqual(got json.RawMessage, want string) bool {
	var a, b any
	return json.Unmarshal(got, &a) == nil && json.Unmarshal([]byte(want), &b) == nil && fmt.Sprint(a) == fmt.Sprint(b)
}
