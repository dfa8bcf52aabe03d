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
	{"RestoreOnlyWhenAbsent", func(h *harness) {
		// Restore, which rebuilds use, inserts what is missing and
		// disturbs nothing already there: neither a pending entry's time
		// nor a delivery another consumer holds.
		rs, ok := h.s.(retry.SharedScheduler)
		if !ok {
			h.t.Skip("backend is not a retry.SharedScheduler: Restore not checked")
		}
		restore := func(id string, t time.Time) {
			h.t.Helper()
			var err error
			h.within("Restore", func() { err = rs.Restore(h.ctx, id, t) })
			if err != nil {
				h.t.Fatalf("Restore(%q, %v): %v", id, t, err)
			}
		}
		h.schedule(h.s, "pending", at(time.Hour))
		h.schedule(h.s, "delivered", at(time.Minute))
		d := h.expectOne(h.s, at(time.Minute), "delivered", at(time.Minute))
		restore("pending", at(time.Minute))
		restore("delivered", at(time.Minute))
		restore("absent", at(time.Minute))
		// At +1m: only what was absent; pending keeps +1h, and delivered
		// stays leased to its consumer.
		h.ack(h.s, h.expectOne(h.s, at(time.Minute), "absent", at(time.Minute)))
		h.ack(h.s, d) // still the delivery's token: removes it
		h.ack(h.s, h.expectOne(h.s, at(time.Hour), "pending", at(time.Hour)))
		h.expectNone(h.s, at(48*time.Hour+h.backend.Lease), "all acknowledged")
	}},
	{"LostClosedByClose", func(h *harness) {
		lr, ok := h.s.(retry.LossReporter)
		if !ok {
			h.t.Skip("backend is not a retry.LossReporter: Lost not checked")
		}
		if err := h.closeWithin(h.s); err != nil {
			h.t.Fatalf("Close: %v", err)
		}
		timeout := time.After(h.wait)
		for {
			select {
			case _, open := <-lr.Lost():
				if !open {
					return
				}
			case <-timeout:
				h.t.Fatalf("Lost not closed %v after Close returned", h.wait)
			}
		}
	}},
}
