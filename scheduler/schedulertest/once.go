package schedulertest

import "time"

var onceChecks = []check{
	{"OnceThenAcked", func(h *harness) {
		h.schedule(h.s, "a", at(time.Minute))
		d := h.expectOne(h.s, at(time.Minute), "a", at(time.Minute))
		h.ack(h.s, d)
		h.expectNone(h.s, at(time.Minute), "acknowledged")
		h.expectNone(h.s, at(48*time.Hour+h.backend.Lease), "acknowledged, long ago")
	}},
	{"OnceWhileUnacked", func(h *harness) {
		// A delivery under lease is not handed out again, even unacked.
		h.schedule(h.s, "a", at(time.Minute))
		h.expectOne(h.s, at(time.Minute), "a", at(time.Minute))
		h.expectNone(h.s, at(time.Minute), "delivered and not yet acknowledged")
	}},
	{"OneEntryPerID", func(h *harness) {
		h.schedule(h.s, "a", at(time.Minute))
		h.schedule(h.s, "a", at(time.Minute))
		h.schedule(h.s, "b", at(time.Minute))
		if got := h.claimAll(h.s, at(time.Hour), 100, 2); len(got) != 2 {
			h.t.Fatalf("claimed %v; want a and b once each", ids(got))
		}
	}},
}
