package schedulertest

import "time"

var leaseChecks = []check{
	{"RedeliveredAfterLease", func(h *harness) {
		lease := h.lease()
		now := at(time.Minute)
		h.schedule(h.s, "a", now)
		d1 := h.expectOne(h.s, now, "a", now)
		h.expectNone(h.s, now.Add(lease-time.Millisecond), "leased until now + Lease")
		d2 := h.expectOne(h.s, now.Add(lease), "a", now)
		if d2.Token == d1.Token {
			h.t.Fatalf("a redelivery reused token %q", d1.Token)
		}
		// The first consumer's late Ack is stale: the entry stays, and
		// comes back when the second delivery's lease runs out too.
		h.ack(h.s, d1)
		d3 := h.expectOne(h.s, now.Add(2*lease), "a", now)
		h.ack(h.s, d3)
		h.expectNone(h.s, now.Add(10*lease), "acknowledged")
	}},
}
