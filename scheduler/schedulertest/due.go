package schedulertest

import (
	"fmt"
	"slices"
	"time"
)

var dueChecks = []check{
	{"NeverEarly", func(h *harness) {
		h.schedule(h.s, "a", at(time.Hour))
		h.expectNone(h.s, base, "due in an hour")
		h.expectNone(h.s, at(time.Hour-time.Millisecond), "due in a millisecond")
		h.expectOne(h.s, at(time.Hour), "a", at(time.Hour))
	}},
	{"DueOrderAcrossPages", func(h *harness) {
		// 20 entries at shuffled minutes, 5 more due after now.
		const n = 20
		want := make([]string, n)
		for i := range n {
			m := (i * 7) % n // a permutation of 0..n-1
			want[m] = fmt.Sprintf("due-%02d", m)
			h.schedule(h.s, want[m], at(time.Duration(m+1)*time.Minute))
		}
		for i := range 5 {
			h.schedule(h.s, fmt.Sprintf("later-%d", i), at(2*time.Hour+time.Duration(i)*time.Minute))
		}
		got := h.claimAll(h.s, at(time.Hour), 3, n)
		if !slices.Equal(ids(got), want) {
			h.t.Fatalf("claimed in pages of 3 at +1h: %v; want %v (earliest first, nothing due later)", ids(got), want)
		}
		if got := h.claimAll(h.s, at(3*time.Hour), 100, 5); len(got) != 5 {
			h.t.Fatalf("claimed %v at +3h; want the 5 entries due after +2h", ids(got))
		}
	}},
	{"LimitLeavesTheRestWaiting", func(h *harness) {
		// Back-pressure: what a Claim does not take stays, and comes out
		// in later Claims, each entry once.
		for i := range 10 {
			h.schedule(h.s, fmt.Sprintf("e%d", i), at(time.Duration(i)*time.Second))
		}
		now := at(time.Minute)
		first := h.claim(h.s, now, 4)
		if len(first) == 0 {
			h.t.Fatal("Claim(limit 4) with 10 entries due handed out nothing")
		}
		rest := h.claimAll(h.s, now, 4, 10)
		seen := map[string]int{}
		for _, d := range append(first, rest...) {
			seen[d.ID]++
		}
		for i := range 10 {
			if id := fmt.Sprintf("e%d", i); seen[id] != 1 {
				h.t.Fatalf("%s handed out %d times across Claims of limit 4; want once", id, seen[id])
			}
		}
	}},
}
