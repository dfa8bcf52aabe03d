package storetest

import (
	"slices"
	"strconv"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// ids returns the runs' ids, sorted.
func runIDs(runs []retry.Run) []string {
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = r.ID
	}
	slices.Sort(out)
	return out
}

func (h *harness) claimDue(s retry.Store, now time.Time, limit int) []retry.Run {
	h.t.Helper()
	return h.claimDueBy(s, now, now, limit)
}

// claimDueBy claims what was due at dueBy, with leases from now.
func (h *harness) claimDueBy(s retry.Store, dueBy, now time.Time, limit int) []retry.Run {
	h.t.Helper()
	runs, err := s.ClaimDue(h.ctx, "w", dueBy, now, lease, limit)
	if err != nil {
		h.t.Fatalf("ClaimDue(%v, %v, %d): %v", dueBy, now, limit, err)
	}
	if len(runs) > limit {
		h.t.Fatalf("ClaimDue(%v, %v, %d) returned %d runs", dueBy, now, limit, len(runs))
	}
	for _, r := range runs {
		if r.Status != retry.StatusInProgress || r.ClaimToken == "" || !r.LeaseExpiresAt.Equal(now.Add(lease)) {
			h.t.Fatalf("ClaimDue returned %s with status %s, token %q, lease %v; want in_progress, a token, lease %v",
				r.ID, r.Status, r.ClaimToken, r.LeaseExpiresAt, now.Add(lease))
		}
	}
	return runs
}

var claimChecks = []check{
	{"ClaimRun/NotFound", func(h *harness) {
		_, err := h.s.ClaimRun(h.ctx, "missing", "w", at(0), lease)
		h.expectErr("ClaimRun of a missing run", err, retry.ErrNotFound)
	}},
	{"ClaimRun/NotClaimable", func(h *harness) {
		r := h.createClaimed("r1", at(0))
		_, err := h.s.ClaimRun(h.ctx, "r1", "w2", at(lease-time.Millisecond), lease)
		h.expectErr("ClaimRun under a live lease", err, retry.ErrNotClaimable)
		h.unchanged("ClaimRun under a live lease", r, 0)

		h.fail(r.Claim(), retryAfter("a", at(time.Second), 10*time.Second))
		_, err = h.s.ClaimRun(h.ctx, "r1", "w2", at(11*time.Second-time.Millisecond), lease)
		h.expectErr("ClaimRun of a retry not yet due", err, retry.ErrNotClaimable)
		c := h.claimRun("r1", at(11*time.Second))
		h.complete(c.Claim(), retry.NodeSuccess{NodeID: "a", FinishedAt: at(12 * time.Second)})
		_, err = h.s.ClaimRun(h.ctx, "r1", "w2", at(time.Hour), lease)
		h.expectErr("ClaimRun of a completed run", err, retry.ErrNotClaimable)
	}},
	{"ClaimRun/NewTokenEachClaim", func(h *harness) {
		a := h.createClaimed("r1", at(0))
		b := h.claimRun("r1", at(lease)) // the first lease expired
		if a.ClaimToken == b.ClaimToken {
			h.t.Fatalf("two claims of r1 carry the same token %q", a.ClaimToken)
		}
		if b.ClaimedBy != "w1" {
			h.t.Fatalf("ClaimedBy %q; want w1", b.ClaimedBy)
		}
	}},
	{"ClaimDue/EarliestFirst", func(h *harness) {
		// r0..r4 retry at 50s, 40s, ... 10s; r5 is not due.
		for i := range 6 {
			id := "r" + strconv.Itoa(i)
			c := h.createClaimed(id, at(0))
			h.fail(c.Claim(), retryAfter("a", at(0), time.Duration(50-10*i)*time.Second+time.Duration(i/5)*time.Hour))
		}
		if got := runIDs(h.claimDue(h.s, at(20*time.Second), 10)); !slices.Equal(got, []string{"r3", "r4"}) {
			h.t.Fatalf("ClaimDue at 20s claimed %v; want [r3 r4]", got)
		}
		if got := runIDs(h.claimDue(h.s, at(time.Minute), 2)); !slices.Equal(got, []string{"r1", "r2"}) {
			h.t.Fatalf("ClaimDue at 1m, limit 2, claimed %v; want the earliest due [r1 r2]", got)
		}
		if got := runIDs(h.claimDue(h.s, at(time.Minute), 10)); !slices.Equal(got, []string{"r0"}) {
			h.t.Fatalf("ClaimDue at 1m claimed %v; want [r0]", got)
		}
		if got := h.claimDue(h.s, at(time.Minute), 10); len(got) != 0 {
			h.t.Fatalf("ClaimDue claimed %v again; want nothing", runIDs(got))
		}
	}},
	{"ClaimDue/NewAndWaiting", func(h *harness) {
		h.create(newRun("new"), at(0))
		c := h.createClaimed("parked", at(0))
		h.complete(c.Claim(), retry.NodeSuccess{NodeID: "a", NextNodeID: "b", WakeAt: at(30 * time.Second), FinishedAt: at(1)})
		if got := runIDs(h.claimDue(h.s, at(time.Second), 10)); !slices.Equal(got, []string{"new"}) {
			h.t.Fatalf("ClaimDue at 1s claimed %v; want [new]", got)
		}
		if got := runIDs(h.claimDue(h.s, at(30*time.Second), 10)); !slices.Equal(got, []string{"parked"}) {
			h.t.Fatalf("ClaimDue at 30s claimed %v; want [parked]", got)
		}
	}},
	{"ClaimDue/DueByBeforeNow", func(h *harness) {
		// A sweeper's claim: what was due (or whose lease expired) at 16s,
		// claimed at 30s with leases from 30s; "late" stays for a consumer
		// claiming at now.
		for id, d := range map[string]time.Duration{"early": 10 * time.Second, "late": 20 * time.Second} {
			c := h.createClaimed(id, at(0))
			h.fail(c.Claim(), retryAfter("a", at(0), d))
		}
		h.createClaimed("expired", at(15*time.Second-lease))
		if got := runIDs(h.claimDueBy(h.s, at(16*time.Second), at(30*time.Second), 10)); !slices.Equal(got, []string{"early", "expired"}) {
			h.t.Fatalf("ClaimDue due by 16s at 30s claimed %v; want [early expired]", got)
		}
		if got := runIDs(h.claimDue(h.s, at(30*time.Second), 10)); !slices.Equal(got, []string{"late"}) {
			h.t.Fatalf("ClaimDue at 30s claimed %v; want [late]", got)
		}
	}},
	{"ClaimDue/ReturnsTheStoredRun", func(h *harness) {
		// Each claimed run is the run as stored after the claim, every
		// field of it: a node's output, a failure, the claim's own fields.
		c := h.createClaimed("r1", at(0))
		r := h.complete(c.Claim(), retry.NodeSuccess{NodeID: "a", Output: []byte(`{"ok":true}`), NextNodeID: "b",
			StartedAt: at(0), FinishedAt: at(time.Second)})
		h.fail(r.Claim(), retryAfter("b", at(2*time.Second), time.Second))
		h.create(newRun("r2"), at(0))
		now := at(time.Minute + 234*time.Millisecond)
		claimed := h.claimDue(h.s, now, 10)
		if got := runIDs(claimed); !slices.Equal(got, []string{"r1", "r2"}) {
			h.t.Fatalf("ClaimDue claimed %v; want [r1 r2]", got)
		}
		for _, got := range claimed {
			if want := h.get(got.ID); !sameRun(got, want) {
				h.t.Fatalf("ClaimDue returned %+v; the store holds %+v", got, want)
			}
		}
	}},
	{"ClaimDue/Empty", func(h *harness) {
		if got := h.claimDue(h.s, at(0), 10); len(got) != 0 {
			h.t.Fatalf("ClaimDue on an empty store returned %v", runIDs(got))
		}
	}},
}
