package schedulertest

import "time"

var rescheduleChecks = []check{
	{"RescheduleLater", func(h *harness) {
		h.schedule(h.s, "a", at(time.Minute))
		h.schedule(h.s, "a", at(time.Hour))
		h.expectNone(h.s, at(time.Minute), "moved to +1h")
		h.ack(h.s, h.expectOne(h.s, at(time.Hour), "a", at(time.Hour)))
	}},
	{"RescheduleEarlier", func(h *harness) {
		h.schedule(h.s, "a", at(time.Hour))
		h.schedule(h.s, "a", at(time.Minute))
		h.ack(h.s, h.expectOne(h.s, at(time.Minute), "a", at(time.Minute)))
		h.expectNone(h.s, at(2*time.Hour), "the earlier time replaced the later one")
	}},
	{"RescheduleDelivered", func(h *harness) {
		// Rescheduling an entry delivered and not acknowledged replaces
		// that delivery: its token goes stale, the new time holds.
		h.schedule(h.s, "a", at(time.Minute))
		d1 := h.expectOne(h.s, at(time.Minute), "a", at(time.Minute))
		h.schedule(h.s, "a", at(2*time.Minute))
		h.expectNone(h.s, at(time.Minute+time.Second), "rescheduled to +2m")
		h.ack(h.s, d1) // stale: removes nothing
		d2 := h.expectOne(h.s, at(2*time.Minute), "a", at(2*time.Minute))
		if d2.Token == d1.Token {
			h.t.Fatalf("the delivery after a reschedule reused token %q", d1.Token)
		}
		h.ack(h.s, d2)
		h.expectNone(h.s, at(2*time.Hour+h.backend.Lease), "acknowledged")
	}},
	{"StaleAckRemovesNothing", func(h *harness) {
		// Same time, new schedule: the entry is due again at once, and
		// the first delivery's Ack must not remove the second schedule.
		h.schedule(h.s, "a", at(time.Minute))
		d1 := h.expectOne(h.s, at(time.Minute), "a", at(time.Minute))
		h.schedule(h.s, "a", at(time.Minute))
		h.ack(h.s, d1)
		d2 := h.expectOne(h.s, at(time.Minute), "a", at(time.Minute))
		if d2.Token == d1.Token {
			h.t.Fatalf("two deliveries share token %q", d1.Token)
		}
	}},
}
