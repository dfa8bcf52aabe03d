package schedulertest

import (
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// sharedChecks run only for backends that declare Backend.Open.
var sharedChecks = []check{
	{"SharedSeesEntries", func(h *harness) {
		other := h.open()
		h.schedule(h.s, "a", at(time.Minute))
		h.schedule(other, "b", at(2*time.Minute))
		h.cancel(other, "a")
		h.ack(h.s, h.expectOne(h.s, at(time.Hour), "b", at(2*time.Minute)))
		h.expectNone(other, at(time.Hour), "acknowledged through the other handle")
	}},
	{"SharedReady", func(h *harness) {
		// A consumer is woken for an entry another process scheduled.
		other := h.open()
		h.schedule(h.s, "a", h.backend.Now().Truncate(time.Millisecond))
		h.awaitReady(other, "a", Watchdog)
	}},
	{"SharedConcurrentClaim", func(h *harness) {
		h.concurrentClaim([]retry.Scheduler{h.s, h.open()})
	}},
	{"SharedVanishedConsumer", func(h *harness) {
		// The first consumer takes the entry and goes away without
		// acknowledging it; the second gets it once the lease runs out.
		other := h.open()
		lease := h.lease()
		now := at(time.Minute)
		h.schedule(h.s, "a", now)
		h.expectOne(h.s, now, "a", now)
		if err := h.closeWithin(h.s); err != nil {
			h.t.Fatalf("Close: %v", err)
		}
		h.expectNone(other, now.Add(lease-time.Millisecond), "leased to the first consumer")
		h.ack(other, h.expectOne(other, now.Add(lease), "a", now))
	}},
}
