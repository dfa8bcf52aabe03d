package schedulertest

import "time"

var cancelChecks = []check{
	{"CancelPreventsHandOut", func(h *harness) {
		h.schedule(h.s, "a", at(time.Minute))
		h.schedule(h.s, "b", at(time.Minute))
		h.cancel(h.s, "a")
		h.expectOne(h.s, at(time.Hour), "b", at(time.Minute))
	}},
	{"CancelAbsent", func(h *harness) {
		h.cancel(h.s, "never-scheduled")
		h.schedule(h.s, "a", at(time.Minute))
		h.cancel(h.s, "a")
		h.cancel(h.s, "a")
		h.expectNone(h.s, at(time.Hour), "cancelled")
	}},
	{"CancelDelivered", func(h *harness) {
		// A cancelled delivery is not redelivered, and acknowledging it
		// afterwards is not an error.
		h.schedule(h.s, "a", at(time.Minute))
		d := h.expectOne(h.s, at(time.Minute), "a", at(time.Minute))
		h.cancel(h.s, "a")
		h.expectNone(h.s, at(24*time.Hour+h.backend.Lease), "cancelled while delivered")
		h.ack(h.s, d)
	}},
}
