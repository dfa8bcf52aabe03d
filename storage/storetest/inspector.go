package storetest

import (
	"fmt"
	"slices"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

var inspectorChecks = []check{
	{"Inspector/CountByStatus", func(h *harness) {
		in := h.inspector()
		counts, err := in.CountByStatus(h.ctx)
		if err != nil {
			h.t.Fatalf("CountByStatus: %v", err)
		}
		for _, st := range retry.Statuses {
			if n, ok := counts[st]; !ok || n != 0 {
				h.t.Fatalf("empty store: CountByStatus()[%s] = %d, %v; want 0, true", st, n, ok)
			}
		}
		h.create(newRun("new"), at(0))
		r := h.createClaimed("retrying", at(0))
		h.fail(r.Claim(), retryAfter("a", at(1), time.Minute))
		for _, id := range []string{"done", "done too"} {
			r = h.createClaimed(id, at(0))
			h.complete(r.Claim(), retry.NodeSuccess{NodeID: "a", FinishedAt: at(1)})
		}
		r = h.createClaimed("waiting", at(0))
		h.complete(r.Claim(), retry.NodeSuccess{NodeID: "a", NextNodeID: "b", FinishedAt: at(1), WakeAt: at(time.Hour)})
		r = h.createClaimed("failed", at(0))
		h.fail(r.Claim(), retry.FailureRecord{NodeID: "a", FinishedAt: at(1)})
		r = h.createClaimed("exhausted", at(0))
		h.fail(r.Claim(), retry.FailureRecord{NodeID: "a", Decision: retry.Decision{Exhausted: true}, FinishedAt: at(1)})
		cancelled := 0
		if _, ok := h.s.s.(retry.Operator); ok {
			h.create(newRun("cancelled"), at(0))
			if _, err := h.operator().Cancel(h.ctx, "cancelled", "operator", at(1)); err != nil {
				h.t.Fatalf("Cancel: %v", err)
			}
			cancelled = 1
		}
		// Every status counted apart: a store that counts one status as
		// the rest of another (completed, say) would be off by one here.
		counts, err = in.CountByStatus(h.ctx)
		if err != nil {
			h.t.Fatalf("CountByStatus: %v", err)
		}
		want := map[retry.Status]int{retry.StatusInProgress: 1, retry.StatusRetrying: 1, retry.StatusCompleted: 2,
			retry.StatusWaiting: 1, retry.StatusFailed: 1, retry.StatusFailedMaxRetries: 1, retry.StatusCancelled: cancelled}
		if fmt.Sprint(counts) != fmt.Sprint(want) {
			h.t.Fatalf("CountByStatus = %v; want %v", counts, want)
		}
	}},
	{"Inspector/RetryHistogram", func(h *harness) {
		in := h.inspector()
		h.create(newRun("zero"), at(0))
		for i, id := range []string{"one", "two"} {
			r := h.createClaimed(id, at(0))
			for j := range i + 1 { // retried at once: the claim is kept
				r = h.fail(r.Claim(), retryAfter("a", at(time.Duration(j)*time.Second), 0))
			}
		}
		r := h.createClaimed("ended", at(0))
		h.fail(r.Claim(), retry.FailureRecord{NodeID: "a", FinishedAt: at(1)})
		hist, err := in.RetryHistogram(h.ctx)
		if err != nil {
			h.t.Fatalf("RetryHistogram: %v", err)
		}
		if want := map[int]int{0: 1, 1: 1, 2: 1}; fmt.Sprint(hist) != fmt.Sprint(want) {
			h.t.Fatalf("RetryHistogram = %v; want %v (ended runs left out)", hist, want)
		}
	}},
	{"Inspector/TopErrors", func(h *harness) {
		in := h.inspector()
		// At 10s, 20s, ... 60s: three "reset", two "timeout", one "refused".
		for i, msg := range []string{"reset", "timeout", "reset", "refused", "timeout", "reset"} {
			id := fmt.Sprintf("r%d", i)
			r := h.createClaimed(id, at(time.Duration(i)*10*time.Second))
			f := retryAfter("a", at(time.Duration(i+1)*10*time.Second), 0)
			f.Message = msg
			h.fail(r.Claim(), f)
		}
		r := h.createClaimed("ok", at(0))
		h.complete(r.Claim(), retry.NodeSuccess{NodeID: "a", FinishedAt: at(30 * time.Second)})
		top, err := in.TopErrors(h.ctx, at(10*time.Second), at(70*time.Second), 10)
		if err != nil {
			h.t.Fatalf("TopErrors: %v", err)
		}
		want := []retry.ErrorCount{{Class: retry.ClassNetworkBlip, Message: "reset", Count: 3}, {Class: retry.ClassNetworkBlip, Message: "timeout", Count: 2}, {Class: retry.ClassNetworkBlip, Message: "refused", Count: 1}}
		if !slices.Equal(top, want) {
			h.t.Fatalf("TopErrors over everything = %v; want %v", top, want)
		}
		// [20s, 60s): the window's start is in, its end is out.
		top, err = in.TopErrors(h.ctx, at(20*time.Second), at(60*time.Second), 1)
		if err != nil {
			h.t.Fatalf("TopErrors: %v", err)
		}
		if want := []retry.ErrorCount{{Class: retry.ClassNetworkBlip, Message: "timeout", Count: 2}}; !slices.Equal(top, want) {
			h.t.Fatalf("TopErrors over [20s, 60s), limit 1 = %v; want %v", top, want)
		}
	}},
	{"Inspector/RetryStats", func(h *harness) {
		in := h.inspector()
		st, err := in.RetryStats(h.ctx)
		if err != nil {
			h.t.Fatalf("RetryStats: %v", err)
		}
		if st.AttemptsPerRun == nil || st.RetriesByStrategy == nil || st.RetriesByClass == nil ||
			st.ShadowRetriesByStrategy == nil || st.ShadowRetriesByClass == nil ||
			len(st.AttemptsPerRun)+len(st.RetriesByStrategy)+len(st.RetriesByClass)+st.Replays+st.Snoozes+st.ShadowDecisions+
				len(st.ShadowRetriesByStrategy)+len(st.ShadowRetriesByClass) != 0 {
			h.t.Fatalf("empty store: RetryStats = %+v; want empty, non-nil maps", st)
		}
		h.create(newRun("new"), at(0))
		// Two retries, then a success: three attempts. The first is
		// retried at once under the same claim, the second after a delay.
		r := h.createClaimed("twice", at(0))
		r = h.fail(r.Claim(), retryAfter("a", at(0), 0))
		h.fail(r.Claim(), retryAfter("a", at(time.Second), time.Millisecond))
		r = h.claimRun("twice", at(time.Second+time.Millisecond))
		h.complete(r.Claim(), retry.NodeSuccess{NodeID: "a", FinishedAt: at(2 * time.Second)})
		r = h.createClaimed("lock", at(0))
		f := retryAfter("a", at(time.Second), time.Minute)
		f.Class, f.Decision.Strategy = retry.ClassDatabaseLock, "long"
		h.fail(r.Claim(), f)
		// Decisions to retry that the run did not act on are not retries.
		r = h.createClaimed("shadow", at(0))
		f = retryAfter("a", at(time.Second), 0)
		f.Shadow = true
		h.fail(r.Claim(), f)
		// ... but shadow decisions, counted apart: one to retry, one not.
		r = h.createClaimed("shadow-none", at(0))
		f = retryAfter("a", at(time.Second), 0)
		f.Shadow, f.Class, f.Decision = true, retry.ClassValidation, retry.Decision{Strategy: "none", Rule: "class:validation"}
		h.fail(r.Claim(), f)
		nr := newRun("disabled")
		nr.DisableRetry = true
		h.create(nr, at(0))
		r = h.claimRun("disabled", at(0))
		h.fail(r.Claim(), retryAfter("a", at(time.Second), 0))
		nr = newRun("maxed")
		nr.MaxRetries = 0
		h.create(nr, at(0))
		r = h.claimRun("maxed", at(0))
		h.fail(r.Claim(), retryAfter("a", at(time.Second), 0))
		// A snooze is an attempt, not a retry.
		r = h.createClaimed("snoozed", at(0))
		h.snooze(r.Claim(), at(time.Second), time.Minute)
		// A replay is not an attempt.
		if _, err := in.Replay(h.ctx, "maxed", at(time.Hour)); err != nil {
			h.t.Fatalf("Replay: %v", err)
		}
		st, err = in.RetryStats(h.ctx)
		if err != nil {
			h.t.Fatalf("RetryStats: %v", err)
		}
		want := retry.RetryStats{
			AttemptsPerRun:          map[int]int{0: 1, 1: 6, 3: 1},
			RetriesByStrategy:       map[string]int{"short": 2, "long": 1},
			RetriesByClass:          map[retry.Class]int{retry.ClassNetworkBlip: 2, retry.ClassDatabaseLock: 1},
			Replays:                 1,
			Snoozes:                 1,
			ShadowDecisions:         2,
			ShadowRetriesByStrategy: map[string]int{"short": 1},
			ShadowRetriesByClass:    map[retry.Class]int{retry.ClassNetworkBlip: 1},
		}
		if fmt.Sprint(st) != fmt.Sprint(want) { // fmt sorts map keys
			h.t.Fatalf("RetryStats = %+v; want %+v", st, want)
		}
	}},
	{"Inspector/ListRuns", func(h *harness) {
		in := h.inspector()
		for i := range 5 {
			r := h.createClaimed(fmt.Sprintf("r%d", i), at(0))
			if i%2 == 0 {
				h.fail(r.Claim(), retryAfter("a", at(1), time.Second))
			}
		}
		runs, err := in.ListRuns(h.ctx, retry.RunFilter{Status: retry.StatusRetrying, AfterID: "r0", Limit: 1})
		if err != nil {
			h.t.Fatalf("ListRuns: %v", err)
		}
		if got := runIDs(runs); !slices.Equal(got, []string{"r2"}) {
			h.t.Fatalf("ListRuns(retrying after r0, limit 1) = %v; want [r2]", got)
		}
		runs, err = in.ListRuns(h.ctx, retry.RunFilter{})
		if err != nil || len(runs) != 5 {
			h.t.Fatalf("ListRuns() = %d runs, %v; want 5", len(runs), err)
		}
		_, err = in.ListRuns(h.ctx, retry.RunFilter{Status: "Retrying"})
		h.expectErr("ListRuns with an invalid status", err, retry.ErrInvalidStatus)
	}},
	{"Inspector/Replay", func(h *harness) {
		in := h.inspector()
		nr := newRun("r1")
		nr.MaxRetries = 0
		h.create(nr, at(0))
		r := h.claimRun("r1", at(0))
		r = h.complete(r.Claim(), retry.NodeSuccess{NodeID: "a", NextNodeID: "b", FinishedAt: at(1)})
		h.fail(r.Claim(), retryAfter("b", at(time.Second), 0))
		got, err := in.Replay(h.ctx, "r1", at(time.Hour))
		if err != nil {
			h.t.Fatalf("Replay: %v", err)
		}
		if got.Status != retry.StatusRetrying || got.RetryCount != 0 || !got.NextRetryAt.Equal(at(time.Hour)) || got.CurrentNodeID != "b" {
			h.t.Fatalf("replayed run: status %s, retry count %d, next retry %v, node %q; want retrying, 0, %v, b",
				got.Status, got.RetryCount, got.NextRetryAt, got.CurrentNodeID, at(time.Hour))
		}
		as := h.attemptsN("r1", 3)
		if last := as[2]; last.Outcome != retry.OutcomeReplayed || last.NodeID != "b" ||
			!last.FinishedAt.Equal(at(time.Hour)) || last.Status != retry.StatusRetrying {
			h.t.Fatalf("history after replay %+v; want a third, replayed attempt at b", as)
		}
		if runs := h.claimDue(h.s, at(time.Hour), 10); len(runs) != 1 {
			h.t.Fatalf("the replayed run is not due at once")
		}
		_, err = in.Replay(h.ctx, "r1", at(time.Hour))
		h.expectErr("Replay of a run in progress", err, retry.ErrNotReplayable)
		_, err = in.Replay(h.ctx, "missing", at(time.Hour))
		h.expectErr("Replay of a missing run", err, retry.ErrNotFound)
	}},
}
