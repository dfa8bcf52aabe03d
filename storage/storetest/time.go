package storetest

import (
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

var timeChecks = []check{
	{"Time/UTCMilliseconds", func(h *harness) {
		// A now in another zone, with nanoseconds: stored as the same
		// instant, UTC, cut to the millisecond.
		zone := time.FixedZone("UTC+5:30", 5*3600+1800)
		now := at(0).Add(123456789 * time.Nanosecond).In(zone)
		want := at(123 * time.Millisecond)
		nr := newRun("r1")
		nr.Worker, nr.Lease = "w", lease
		r := h.create(nr, now)
		for what, got := range map[string]time.Time{"CreatedAt": r.CreatedAt, "UpdatedAt": r.UpdatedAt, "LeaseExpiresAt": r.LeaseExpiresAt} {
			w := want
			if what == "LeaseExpiresAt" {
				w = want.Add(lease)
			}
			if !got.Equal(w) || got.Location() != time.UTC {
				h.t.Fatalf("%s = %v; want %v in UTC", what, got, w)
			}
		}
		f := retryAfter("a", now.Add(time.Second), 1500*time.Microsecond)
		r = h.fail(r.Claim(), f)
		for what, got := range map[string]time.Time{"LastErrorAt": r.LastErrorAt, "NextRetryAt": r.NextRetryAt} {
			w := want.Add(time.Second)
			if what == "NextRetryAt" {
				w = w.Add(time.Millisecond)
			}
			if !got.Equal(w) || got.Location() != time.UTC {
				h.t.Fatalf("%s = %v; want %v in UTC", what, got, w)
			}
		}
		a := h.attemptsN("r1", 1)[0]
		if !a.StartedAt.Equal(want) || !a.FinishedAt.Equal(want.Add(time.Second)) || a.FinishedAt.Location() != time.UTC {
			h.t.Fatalf("attempt times %v, %v; want %v, %v in UTC", a.StartedAt, a.FinishedAt, want, want.Add(time.Second))
		}
	}},
	{"Time/FarDates", func(h *harness) {
		for _, now := range []time.Time{time.Date(1970, 1, 1, 0, 0, 0, 1e6, time.UTC), time.Date(2200, 12, 31, 23, 59, 59, 999e6, time.UTC)} {
			id := now.Format("2006")
			r := h.createClaimed(id, now)
			if !r.CreatedAt.Equal(now) || !r.LeaseExpiresAt.Equal(now.Add(lease)) {
				h.t.Fatalf("created at %v: CreatedAt %v, lease %v", now, r.CreatedAt, r.LeaseExpiresAt)
			}
			if got := h.fail(r.Claim(), retryAfter("a", now, time.Hour)); !got.NextRetryAt.Equal(now.Add(time.Hour)) {
				h.t.Fatalf("NextRetryAt %v; want %v", got.NextRetryAt, now.Add(time.Hour))
			}
		}
	}},
	{"Time/DueOrderAcrossDigits", func(h *harness) {
		// Due times whose text forms would sort wrongly (9s before 10s).
		for i, d := range []time.Duration{10 * time.Second, 9 * time.Second, 100 * time.Second} {
			r := h.createClaimed(string(rune('a'+i)), at(0))
			h.fail(r.Claim(), retryAfter("a", at(0), d))
		}
		got := h.claimDue(h.s, at(time.Hour), 1)
		if len(got) != 1 || got[0].ID != "b" {
			h.t.Fatalf("ClaimDue(limit 1) claimed %v; want [b], due first", runIDs(got))
		}
		if got := h.claimDue(h.s, at(10*time.Second-time.Millisecond), 10); len(got) != 0 {
			h.t.Fatalf("ClaimDue at 9.999s claimed %v; want nothing", runIDs(got))
		}
	}},
	{"Time/Attempts", func(h *harness) {
		r := h.createClaimed("r1", at(0))
		h.complete(r.Claim(), retry.NodeSuccess{NodeID: "a", NextNodeID: "b", FinishedAt: at(time.Second)}) // no StartedAt
		if a := h.attemptsN("r1", 1)[0]; !a.StartedAt.IsZero() || !a.FinishedAt.Equal(at(time.Second)) {
			h.t.Fatalf("attempt without a start time: StartedAt %v, FinishedAt %v; want zero, %v", a.StartedAt, a.FinishedAt, at(time.Second))
		}
	}},
}
