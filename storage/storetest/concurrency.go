package storetest

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/journeyretry/journeyretry/internal/conformance"
	"github.com/journeyretry/journeyretry/retry"
)

// handles returns the store under test and, when the backend is shared,
// two more handles on the same database.
func (h *harness) handles() []retry.Store {
	hs := []retry.Store{h.s}
	if h.backend.Open != nil {
		hs = append(hs, h.open(), h.open())
	} else {
		h.t.Log("backend is not shared (Backend.Open is nil): claimers share one handle")
	}
	return hs
}

// parallel runs f(i) for i in [0, n) in goroutines and waits under the
// watchdog.
func (h *harness) parallel(what string, n int, f func(i int)) {
	h.t.Helper()
	if _, ok := conformance.Parallel(h.t, what, n, Watchdog, func(i int) error { f(i); return nil }); !ok {
		h.t.FailNow()
	}
}

var concurrencyChecks = []check{
	{"Concurrency/ClaimDueAcrossHandles", func(h *harness) {
		const runs, claimers = 300, 8
		for i := range runs {
			h.create(newRun(fmt.Sprintf("r%03d", i)), at(time.Duration(i)*time.Millisecond))
		}
		hs := h.handles()
		var mu sync.Mutex
		claimedBy := map[string]int{}
		var failed error
		h.parallel("concurrent ClaimDue", claimers, func(i int) {
			s := hs[i%len(hs)]
			for {
				got, err := s.ClaimDue(h.ctx, fmt.Sprint("w", i), at(time.Second), at(time.Second), lease, 7)
				mu.Lock()
				if err != nil && failed == nil {
					failed = err
				}
				for _, r := range got {
					claimedBy[r.ID]++
				}
				mu.Unlock()
				if err != nil || len(got) == 0 {
					return
				}
			}
		})
		if failed != nil {
			h.t.Fatalf("ClaimDue: %v", failed)
		}
		for id, n := range claimedBy {
			if n != 1 {
				h.t.Fatalf("run %s was handed out %d times", id, n)
			}
		}
		if len(claimedBy) != runs {
			h.t.Fatalf("%d runs handed out; want %d", len(claimedBy), runs)
		}
	}},
	{"Concurrency/ClaimRunOneWinner", func(h *harness) {
		const rounds, claimers = 20, 6
		hs := h.handles()
		for round := range rounds {
			id := fmt.Sprint("r", round)
			h.create(newRun(id), at(0))
			var mu sync.Mutex
			wins := 0
			h.parallel("concurrent ClaimRun", claimers, func(i int) {
				_, err := hs[i%len(hs)].ClaimRun(h.ctx, id, fmt.Sprint("w", i), at(time.Second), lease)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case !errors.Is(err, retry.ErrNotClaimable):
					h.t.Errorf("ClaimRun(%s): %v; want success or ErrNotClaimable", id, err)
				}
			})
			if wins != 1 {
				h.t.Fatalf("%s: %d claimers won; want exactly 1", id, wins)
			}
		}
	}},
	{"Concurrency/Writes", func(h *harness) {
		// Many workers write under their own claims at once, as the
		// executor's pool does; a few write with stale tokens among them.
		const workers, rounds = 16, 6
		for i := range workers {
			h.createClaimed(fmt.Sprint("r", i), at(0))
		}
		hs := h.handles()
		h.parallel("concurrent writes", workers, func(i int) {
			s, id := hs[i%len(hs)], fmt.Sprint("r", i)
			now := at(time.Second)
			r, err := s.Get(h.ctx, id)
			for round := 0; err == nil && round < rounds; round++ {
				stale := r.Claim()
				if r, err = s.RecordFailure(h.ctx, r.Claim(), retryAfter("a", now, time.Millisecond)); err != nil {
					break
				}
				now = now.Add(time.Millisecond) // the retry is due
				if _, err = s.ExtendLease(h.ctx, stale, now, lease); !errors.Is(err, retry.ErrLostClaim) {
					err = fmt.Errorf("stale ExtendLease: %v; want ErrLostClaim", err)
					break
				}
				if r, err = s.ClaimRun(h.ctx, id, "w", now, lease); err != nil {
					break
				}
				r, err = s.CompleteNode(h.ctx, r.Claim(), retry.NodeSuccess{NodeID: "a", NextNodeID: "a", Output: []byte(fmt.Sprint(round)), FinishedAt: now})
			}
			if err != nil {
				h.t.Errorf("worker %d: %v", i, err)
			}
		})
		for i := range workers {
			id := fmt.Sprint("r", i)
			if r := h.get(id); r.AttemptCount != 2*rounds || r.RetryCount != 0 {
				h.t.Fatalf("%s: attempt count %d, retry count %d; want %d, 0", id, r.AttemptCount, r.RetryCount, 2*rounds)
			}
			if as := h.attempts(id); len(as) != 2*rounds {
				h.t.Fatalf("%s: %d attempts; want %d", id, len(as), 2*rounds)
			}
		}
	}},
}
