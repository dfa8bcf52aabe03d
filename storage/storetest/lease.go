package storetest

import (
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

var leaseChecks = []check{
	{"Lease/Extend", func(h *harness) {
		r := h.createClaimed("r1", at(0))
		c, err := h.s.ExtendLease(h.ctx, r.Claim(), at(50*time.Second), lease)
		if err != nil {
			h.t.Fatalf("ExtendLease: %v", err)
		}
		if c.Token != r.ClaimToken || !c.LeaseExpiresAt.Equal(at(50*time.Second+lease)) {
			h.t.Fatalf("ExtendLease returned token %q, lease %v; want %q, %v", c.Token, c.LeaseExpiresAt, r.ClaimToken, at(50*time.Second+lease))
		}
		if got := h.get("r1"); !got.LeaseExpiresAt.Equal(c.LeaseExpiresAt) {
			h.t.Fatalf("stored lease %v; want %v", got.LeaseExpiresAt, c.LeaseExpiresAt)
		}
		// The old expiry no longer frees the run.
		_, err = h.s.ClaimRun(h.ctx, "r1", "w2", at(lease), lease)
		h.expectErr("ClaimRun at the old expiry of an extended lease", err, retry.ErrNotClaimable)
		// The new one does.
		h.claimRun("r1", c.LeaseExpiresAt)
	}},
	{"Lease/ExtendAfterExpiry", func(h *harness) {
		r := h.createClaimed("r1", at(0))
		_, err := h.s.ExtendLease(h.ctx, r.Claim(), at(lease), lease)
		h.expectErr("ExtendLease at its expiry", err, retry.ErrLostClaim)
		h.unchanged("ExtendLease at its expiry", r, 0)
	}},
	{"Lease/ExpiryMakesClaimable", func(h *harness) {
		old := h.createClaimed("r1", at(0))
		_, err := h.s.ClaimRun(h.ctx, "r1", "w2", at(lease-time.Millisecond), lease)
		h.expectErr("ClaimRun a millisecond before the lease expires", err, retry.ErrNotClaimable)
		if got := h.claimDue(h.s, at(lease-time.Millisecond), 10); len(got) != 0 {
			h.t.Fatalf("ClaimDue before the lease expired claimed %v", runIDs(got))
		}
		got := h.claimDue(h.s, at(lease), 10)
		if len(got) != 1 || got[0].ID != "r1" || got[0].ClaimToken == old.ClaimToken {
			h.t.Fatalf("ClaimDue at the expiry claimed %+v; want r1 under a new token", got)
		}
	}},
	{"Lease/StaleTokenChangesNothing", func(h *harness) {
		old := h.createClaimed("r1", at(0))
		cur := h.claimRun("r1", at(lease)) // taken over after the lease expired
		n := len(h.attempts("r1"))
		now := at(lease + time.Second)
		_, err := h.s.RecordFailure(h.ctx, old.Claim(), retryAfter("a", now, 0))
		h.expectErr("RecordFailure with a stale token", err, retry.ErrLostClaim)
		_, err = h.s.CompleteNode(h.ctx, old.Claim(), retry.NodeSuccess{NodeID: "a", FinishedAt: now})
		h.expectErr("CompleteNode with a stale token", err, retry.ErrLostClaim)
		_, err = h.s.ExtendLease(h.ctx, old.Claim(), now, lease)
		h.expectErr("ExtendLease with a stale token", err, retry.ErrLostClaim)
		h.expectErr("Release with a stale token", h.s.Release(h.ctx, old.Claim(), now), retry.ErrLostClaim)
		h.unchanged("writes with a stale token", cur, n)
		// The current holder still writes.
		h.fail(cur.Claim(), retryAfter("a", now, 0))
	}},
	{"Lease/ExpiredClaimWritesNothing", func(h *harness) {
		r := h.createClaimed("r1", at(0))
		_, err := h.s.RecordFailure(h.ctx, r.Claim(), retryAfter("a", at(lease), 0))
		h.expectErr("RecordFailure when the lease expired (nobody else claimed)", err, retry.ErrLostClaim)
		_, err = h.s.CompleteNode(h.ctx, r.Claim(), retry.NodeSuccess{NodeID: "a", FinishedAt: at(lease)})
		h.expectErr("CompleteNode when the lease expired", err, retry.ErrLostClaim)
		h.unchanged("writes after the lease expired", r, 0)
	}},
	{"Lease/Release", func(h *harness) {
		r := h.createClaimed("r1", at(0))
		if err := h.s.Release(h.ctx, r.Claim(), at(time.Second)); err != nil {
			h.t.Fatalf("Release: %v", err)
		}
		got := h.get("r1")
		if got.ClaimToken != "" || got.Status != retry.StatusInProgress || got.CurrentNodeID != "a" {
			h.t.Fatalf("after Release: token %q, status %s, node %q; want no token, in_progress, a", got.ClaimToken, got.Status, got.CurrentNodeID)
		}
		h.expectErr("a second Release", h.s.Release(h.ctx, r.Claim(), at(time.Second)), retry.ErrLostClaim)
		h.claimRun("r1", at(time.Second)) // claimable at once
	}},
	{"Lease/NotFound", func(h *harness) {
		c := retry.Claim{RunID: "missing", Token: "t"}
		_, err := h.s.ExtendLease(h.ctx, c, at(0), lease)
		h.expectErr("ExtendLease of a missing run", err, retry.ErrNotFound)
		h.expectErr("Release of a missing run", h.s.Release(h.ctx, c, at(0)), retry.ErrNotFound)
		_, err = h.s.RecordFailure(h.ctx, c, retryAfter("a", at(0), 0))
		h.expectErr("RecordFailure of a missing run", err, retry.ErrNotFound)
		_, err = h.s.CompleteNode(h.ctx, c, retry.NodeSuccess{NodeID: "a", FinishedAt: at(0)})
		h.expectErr("CompleteNode of a missing run", err, retry.ErrNotFound)
	}},
}
