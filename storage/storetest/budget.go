package storetest

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// budgeted is retryAfter charged to budget key (scope "*") with b.
func budgeted(node string, now time.Time, d time.Duration, key string, b retry.Budget) retry.FailureRecord {
	f := retryAfter(node, now, d)
	f.Budget = retry.BudgetUse{Key: key, Scope: "*", Budget: b}
	return f
}

// budgetTight allows 3 retries a minute whatever the attempts.
var budgetTight = retry.Budget{Ratio: 0.001, MinRetries: 3, Window: time.Minute}

// failBudgeted creates and claims run id at now and records a budgeted
// failure of it asking for delay d; it returns the run and its attempt.
func (h *harness) failBudgeted(id string, now time.Time, d time.Duration, key string, b retry.Budget) (retry.Run, retry.Attempt) {
	h.t.Helper()
	r := h.createClaimed(id, now)
	got := h.fail(r.Claim(), budgeted("a", now, d, key, b))
	as := h.attemptsN(id, 1)
	return got, as[0]
}

// budgetStatus returns key's status if the store is a
// retry.BudgetInspector, and false if it is not.
func (h *harness) budgetStatus(key string, now time.Time) (retry.BudgetStatus, bool) {
	h.t.Helper()
	bi, ok := h.backend.Store.(retry.BudgetInspector)
	if !ok {
		return retry.BudgetStatus{}, false
	}
	all, err := bi.Budgets(h.ctx, now)
	if err != nil {
		h.t.Fatalf("Budgets: %v", err)
	}
	for _, b := range all {
		if b.Key == key {
			return b, true
		}
	}
	h.t.Fatalf("Budgets %+v: no %s", all, key)
	return retry.BudgetStatus{}, false
}

var budgetChecks = []check{
	{"Budget/DefersOverTheLimit", func(h *harness) {
		// 3 a minute: 3 go as asked; the next are deferred past the
		// window (its 10 s buckets hold 3 in all), spread evenly in the
		// first bucket with room, each recorded with the rule that
		// deferred it.
		now := at(0)
		for i := range 6 {
			id := fmt.Sprint("r", i)
			got, a := h.failBudgeted(id, now, time.Second, "network_blip", budgetTight)
			want, rule := time.Second, "class:network_blip"
			if i >= 3 {
				want, rule = time.Minute+time.Duration(i-3)*3333*time.Millisecond, retry.BudgetRule("network_blip")
			}
			if got.Status != retry.StatusRetrying || !got.NextRetryAt.Equal(now.Add(want)) || got.LastDelay != want ||
				a.Decision.Delay != want || a.Decision.Rule != rule || !a.Decision.Retry || a.Status != retry.StatusRetrying {
				h.t.Fatalf("failure %d: run %s due %v (last delay %v), attempt %+v; want retrying after %v, rule %q",
					i, got.Status, got.NextRetryAt, got.LastDelay, a, want, rule)
			}
		}
		// Another class has a budget of its own.
		if got, a := h.failBudgeted("other", now, time.Second, "rate_limit", budgetTight); !got.NextRetryAt.Equal(now.Add(time.Second)) || a.Decision.Rule != "class:network_blip" {
			h.t.Fatalf("another class's retry: due %v, rule %q; want as asked", got.NextRetryAt, a.Decision.Rule)
		}
		if st, ok := h.budgetStatus("network_blip", now); ok && (st.Retries != 3 || st.Deferred != 3 || st.DeferredTotal != 3 || st.Attempts != 7 || st.Scope != "*") {
			h.t.Fatalf("Budgets: %+v; want 3 retries, 3 deferred, 7 attempts of *", st)
		}
		// Once the slots are past, retries go as asked again.
		if got, a := h.failBudgeted("later", at(3*time.Minute), time.Second, "network_blip", budgetTight); !got.NextRetryAt.Equal(at(3*time.Minute+time.Second)) || a.Decision.Rule != "class:network_blip" {
			h.t.Fatalf("a retry two windows later: due %v, rule %q; want as asked", got.NextRetryAt, a.Decision.Rule)
		}
	}},
	{"Budget/DeferredZeroDelayReleases", func(h *harness) {
		for i := range 4 {
			id := fmt.Sprint("r", i)
			got, _ := h.failBudgeted(id, at(0), 0, "network_blip", budgetTight)
			if i < 3 && (got.Status != retry.StatusInProgress || got.ClaimToken == "") {
				h.t.Fatalf("retry %d at once: status %s, token %q; want in_progress under the claim", i, got.Status, got.ClaimToken)
			}
			if i == 3 && (got.Status != retry.StatusRetrying || got.ClaimToken != "" || !got.NextRetryAt.Equal(at(time.Minute))) {
				h.t.Fatalf("deferred retry at once: status %s, token %q, due %v; want retrying, released, due at 1m", got.Status, got.ClaimToken, got.NextRetryAt)
			}
		}
		if runs := h.claimDue(h.s, at(59*time.Second), 10); len(runs) != 0 {
			h.t.Fatalf("the deferred run was claimable before its slot: %v", runIDs(runs))
		}
	}},
	{"Budget/AttemptsRaiseTheLimit", func(h *harness) {
		// Half of the attempts, the floor 1: ten successes counted in the
		// scope let the failures that follow retry; without them the
		// second is deferred.
		b := retry.Budget{Ratio: 0.5, MinRetries: 1, Window: time.Minute}
		r := h.createClaimed("ok", at(0))
		for i := range 10 {
			r = h.complete(r.Claim(), retry.NodeSuccess{NodeID: "a", NextNodeID: "a", FinishedAt: at(time.Duration(i) * time.Millisecond),
				Budget: retry.BudgetUse{Scope: "*", Budget: b}})
		}
		for i := range 5 {
			if _, a := h.failBudgeted(fmt.Sprint("busy", i), at(time.Second), time.Second, "network_blip", b); a.Decision.Rule != "class:network_blip" {
				h.t.Fatalf("failure %d after 10 successes: rule %q; want the retry as asked", i, a.Decision.Rule)
			}
		}
		other := func(i int) retry.FailureRecord {
			f := budgeted("a", at(time.Second), time.Second, "timeout", b)
			f.Budget.Scope = "*@quiet"
			return f
		}
		for i := range 2 {
			r := h.createClaimed(fmt.Sprint("quiet", i), at(time.Second))
			h.fail(r.Claim(), other(i))
			if a := h.attemptsN(fmt.Sprint("quiet", i), 1)[0]; (a.Decision.Rule == retry.BudgetRule("timeout")) != (i == 1) {
				h.t.Fatalf("failure %d of a scope with no successes: rule %q", i, a.Decision.Rule)
			}
		}
	}},
	{"Budget/PauseUntil", func(h *harness) {
		// A Retry-After pauses the class: its own retry and the next ones
		// of the class wait for the pause's end; other classes do not.
		r := h.createClaimed("limited", at(0))
		f := budgeted("a", at(0), time.Second, "rate_limit", budgetTight)
		f.Budget.PauseUntil = at(5 * time.Minute)
		got := h.fail(r.Claim(), f)
		a := h.attemptsN("limited", 1)[0]
		if !got.NextRetryAt.Equal(at(5*time.Minute)) || a.Decision.Rule != retry.BudgetPausedRule("rate_limit") {
			h.t.Fatalf("the pausing failure: due %v, rule %q; want at the pause's end, %q", got.NextRetryAt, a.Decision.Rule, retry.BudgetPausedRule("rate_limit"))
		}
		got, a = h.failBudgeted("next", at(time.Minute), time.Second, "rate_limit", budgetTight)
		if got.NextRetryAt.Before(at(5*time.Minute)) || a.Decision.Rule != retry.BudgetPausedRule("rate_limit") {
			h.t.Fatalf("a retry of the class during the pause: due %v, rule %q; want after the pause", got.NextRetryAt, a.Decision.Rule)
		}
		if got, _ := h.failBudgeted("free", at(time.Minute), time.Second, "network_blip", budgetTight); !got.NextRetryAt.Equal(at(time.Minute + time.Second)) {
			h.t.Fatalf("another class during the pause: due %v; want as asked", got.NextRetryAt)
		}
		if st, ok := h.budgetStatus("rate_limit", at(time.Minute)); ok && !st.PausedUntil.Equal(at(5*time.Minute)) {
			h.t.Fatalf("Budgets: %+v; want paused until 5m", st)
		}
	}},
	{"Budget/LostClaimChargesNothing", func(h *harness) {
		r := h.createClaimed("r0", at(0))
		stale := r.Claim()
		stale.Token = "stale"
		for range 5 {
			_, err := h.s.RecordFailure(h.ctx, stale, budgeted("a", at(0), time.Second, "network_blip", budgetTight))
			h.expectErr("budgeted failure under a stale claim", err, retry.ErrLostClaim)
		}
		for i := range 3 {
			if _, a := h.failBudgeted(fmt.Sprint("r", i+1), at(0), time.Second, "network_blip", budgetTight); a.Decision.Rule != "class:network_blip" {
				h.t.Fatalf("retry %d after lost claims: rule %q; want as asked (a lost claim charges nothing)", i, a.Decision.Rule)
			}
		}
	}},
	{"Budget/ExactAcrossHandles", func(h *harness) {
		// Failures of one class from many writers at once, on every
		// handle: exactly the budget's burst goes as asked.
		const n = 16
		for i := range n {
			h.createClaimed(fmt.Sprint("r", i), at(0))
		}
		hs := h.handles()
		var asked atomic.Int32
		h.parallel("budgeted failures", n, func(i int) {
			s, id := hs[i%len(hs)], fmt.Sprint("r", i)
			r, err := s.Get(h.ctx, id)
			if err == nil {
				r, err = s.RecordFailure(h.ctx, r.Claim(), budgeted("a", at(0), time.Second, "network_blip", budgetTight))
			}
			if err != nil {
				h.t.Errorf("run %s: %v", id, err)
			} else if r.NextRetryAt.Equal(at(time.Second)) {
				asked.Add(1)
			}
		})
		if asked.Load() != 3 {
			h.t.Fatalf("%d of %d retries went as asked; want the burst of 3", asked.Load(), n)
		}
		slots := map[time.Time]bool{}
		for i := range n {
			r := h.get(fmt.Sprint("r", i))
			if slots[r.NextRetryAt] && !r.NextRetryAt.Equal(at(time.Second)) {
				h.t.Fatalf("two deferred retries share the slot %v", r.NextRetryAt)
			}
			slots[r.NextRetryAt] = true
		}
	}},
	{"Budget/Invalid", func(h *harness) {
		r := h.createClaimed("r1", at(0))
		for _, b := range []retry.Budget{{Ratio: 2}, {MinRetries: -1}, {Window: -time.Second}} {
			_, err := h.s.RecordFailure(h.ctx, r.Claim(), budgeted("a", at(0), time.Second, "network_blip", b))
			h.expectErr(fmt.Sprintf("budget %+v", b), err, retry.ErrInvalidArgument)
		}
		h.unchanged("invalid budgets", r, 0)
	}},
}
