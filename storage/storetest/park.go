package storetest

import (
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

var parkChecks = []check{
	{"Park/WaitsUntilWakeAt", func(h *harness) {
		r := h.createClaimed("r1", at(0))
		got := h.complete(r.Claim(), retry.NodeSuccess{NodeID: "a", Output: []byte(`1`), NextNodeID: "b",
			WakeAt: at(time.Hour), FinishedAt: at(time.Second)})
		if got.Status != retry.StatusWaiting || !got.WakeAt.Equal(at(time.Hour)) || got.ClaimToken != "" || got.CurrentNodeID != "b" {
			h.t.Fatalf("parked run: status %s, wake %v, token %q, node %q; want waiting, %v, none, b",
				got.Status, got.WakeAt, got.ClaimToken, got.CurrentNodeID, at(time.Hour))
		}
		if due, ok := got.DueAt(); !ok || !due.Equal(at(time.Hour)) {
			h.t.Fatalf("DueAt() = %v, %v; want %v, true", due, ok, at(time.Hour))
		}
		_, err := h.s.ClaimRun(h.ctx, "r1", "w", at(time.Hour-time.Millisecond), lease)
		h.expectErr("ClaimRun before the wake-up time", err, retry.ErrNotClaimable)
		_, err = h.s.RecordFailure(h.ctx, r.Claim(), retryAfter("b", at(2*time.Second), 0))
		h.expectErr("RecordFailure under the claim parking released", err, retry.ErrLostClaim)
		woken := h.claimRun("r1", at(time.Hour))
		if woken.CurrentNodeID != "b" || !jsonEqual(woken.Context.Outputs["a"], []byte(`1`)) {
			h.t.Fatalf("woken run at node %q with outputs %s; want b with a's output", woken.CurrentNodeID, show(woken.Context))
		}
	}},
}
