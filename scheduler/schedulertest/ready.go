package schedulertest

import (
	"slices"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

var readyChecks = []check{
	{"ReadyWhenDueNow", func(h *harness) {
		h.schedule(h.s, "a", h.backend.Now().Truncate(time.Millisecond))
		h.awaitReady(h.s, "a")
	}},
	{"ReadyWhenTimeComes", func(h *harness) {
		due := h.backend.Now().Add(50 * time.Millisecond).Truncate(time.Millisecond)
		h.schedule(h.s, "a", due)
		h.awaitReady(h.s, "a")
	}},
}

// awaitReady waits for s's Ready and claims through s at the backend's now
// after each signal (a signal may be spurious) until id is handed out,
// failing after Watchdog.
func (h *harness) awaitReady(s retry.Scheduler, id string) {
	h.t.Helper()
	watchdog := time.After(Watchdog)
	for {
		select {
		case _, ok := <-s.Ready():
			if !ok {
				h.t.Fatal("Ready closed before Close")
			}
		case <-watchdog:
			h.t.Fatalf("no Ready signal handed out %q within %v (by Backend.Now, it was due)", id, Watchdog)
		}
		if slices.Contains(ids(h.claim(s, h.backend.Now(), 100)), id) {
			return
		}
	}
}
