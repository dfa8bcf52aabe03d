package storetest

import "github.com/journeyretry/journeyretry/retry"

var createChecks = []check{
	{"Create/Unclaimed", func(h *harness) {
		nr := newRun("r1")
		r := h.create(nr, at(0))
		want := retry.Run{ID: "r1", JourneyID: "journey", JourneyVersion: 2, Status: retry.StatusInProgress,
			CurrentNodeID: "a", Context: retry.RunContext{Input: nr.Input}, MaxRetries: 3, RetryEnabled: true,
			CreatedAt: at(0), UpdatedAt: at(0)}
		if !sameRun(r, want) {
			h.t.Fatalf("Create returned %+v; want %+v", r, want)
		}
		if got := h.get("r1"); !sameRun(got, want) {
			h.t.Fatalf("Get returned %+v; want %+v", got, want)
		}
		if as := h.attempts("r1"); len(as) != 0 {
			h.t.Fatalf("a new run has %d attempts; want none", len(as))
		}
		// Unclaimed means claimable at once by any worker.
		h.claimRun("r1", at(0))
	}},
	{"Create/Claimed", func(h *harness) {
		nr := newRun("r1")
		nr.Worker, nr.Lease = "creator", lease
		r := h.create(nr, at(0))
		if r.ClaimToken == "" || r.ClaimedBy != "creator" || !r.LeaseExpiresAt.Equal(at(lease)) {
			h.t.Fatalf("Create with a lease: token %q, worker %q, lease %v; want a token, creator, %v",
				r.ClaimToken, r.ClaimedBy, r.LeaseExpiresAt, at(lease))
		}
		if got := h.get("r1"); !sameRun(got, r) {
			h.t.Fatalf("Get returned %+v; Create returned %+v", got, r)
		}
		_, err := h.s.ClaimRun(h.ctx, "r1", "other", at(lease-1), lease)
		h.expectErr("ClaimRun of a run created claimed, before its lease expired", err, retry.ErrNotClaimable)
		// The creator writes under its claim at once.
		h.fail(r.Claim(), retryAfter("a", at(1), 0))
	}},
	{"Create/GeneratedID", func(h *harness) {
		a, b := h.create(newRun(""), at(0)), h.create(newRun(""), at(0))
		if a.ID == "" || a.ID == b.ID {
			h.t.Fatalf("generated ids %q and %q; want two distinct non-empty ids", a.ID, b.ID)
		}
		h.get(a.ID)
	}},
	{"Create/DuplicateID", func(h *harness) {
		before := h.create(newRun("r1"), at(0))
		nr := newRun("r1")
		nr.JourneyID = "other"
		_, err := h.s.Create(h.ctx, nr, at(1))
		h.expectErr("Create with a taken id", err, retry.ErrDuplicateRun)
		h.unchanged("Create with a taken id", before, 0)
	}},
	{"Create/DisableRetry", func(h *harness) {
		nr := newRun("r1")
		nr.DisableRetry, nr.MaxRetries = true, 7
		if r := h.create(nr, at(0)); r.RetryEnabled || r.MaxRetries != 7 {
			h.t.Fatalf("RetryEnabled %v, MaxRetries %d; want false, 7", r.RetryEnabled, r.MaxRetries)
		}
	}},
	{"Get/NotFound", func(h *harness) {
		_, err := h.s.Get(h.ctx, "missing")
		h.expectErr("Get of a missing run", err, retry.ErrNotFound)
		_, err = h.s.Attempts(h.ctx, "missing")
		h.expectErr("Attempts of a missing run", err, retry.ErrNotFound)
	}},
}
