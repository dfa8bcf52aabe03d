package storetest

import (
	"fmt"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

var wakeupChecks = []check{
	{"ListWakeups/Paged", func(h *harness) {
		want := map[string]retry.Wakeup{}
		for i := range 25 {
			id := fmt.Sprintf("r%02d", i)
			r := h.createClaimed(id, at(0))
			switch i % 3 {
			case 0:
				h.fail(r.Claim(), retryAfter("a", at(time.Second), time.Duration(i+1)*time.Second))
				want[id] = retry.Wakeup{RunID: id, Status: retry.StatusRetrying, At: at(time.Duration(i+2) * time.Second)}
			case 1:
				h.complete(r.Claim(), retry.NodeSuccess{NodeID: "a", NextNodeID: "b", WakeAt: at(time.Duration(i) * time.Hour), FinishedAt: at(1)})
				want[id] = retry.Wakeup{RunID: id, Status: retry.StatusWaiting, At: at(time.Duration(i) * time.Hour)}
			default: // in progress or completed: not waiting for a time
				if i%2 == 0 {
					h.complete(r.Claim(), retry.NodeSuccess{NodeID: "a", FinishedAt: at(1)})
				}
			}
		}
		var got []retry.Wakeup
		after := ""
		for pages := 0; ; pages++ {
			if pages > 25 {
				h.t.Fatal("ListWakeups never returned an empty page")
			}
			page, err := h.s.ListWakeups(h.ctx, after, 4)
			if err != nil {
				h.t.Fatalf("ListWakeups(%q, 4): %v", after, err)
			}
			if len(page) > 4 {
				h.t.Fatalf("ListWakeups returned %d; limit 4", len(page))
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			after = page[len(page)-1].RunID
		}
		if len(got) != len(want) {
			h.t.Fatalf("ListWakeups listed %d runs; want %d", len(got), len(want))
		}
		for i, w := range got {
			if i > 0 && got[i-1].RunID >= w.RunID {
				h.t.Fatalf("ListWakeups out of id order: %q then %q", got[i-1].RunID, w.RunID)
			}
			if x := want[w.RunID]; x.Status != w.Status || !x.At.Equal(w.At) {
				h.t.Fatalf("ListWakeups listed %+v; want %+v", w, x)
			}
		}
	}},
}
