package schedulertest

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// MaxLeaseWait is the longest declared lease the Ready check for
// redelivery waits for in real time; a backend with a longer Lease has that
// check skipped with a message.
const MaxLeaseWait = 5 * time.Second

// Ready is what a consumer sleeps on between Claims, so every check here
// asks the one thing a consumer relies on: that it is woken when something
// became claimable, whatever made it so.
var readyChecks = []check{
	{"ReadyWhenDueNow", func(h *harness) {
		h.schedule(h.s, "a", h.backend.Now().Truncate(time.Millisecond))
		h.awaitReady(h.s, "a", h.wait)
	}},
	{"ReadyWhenTimeComes", func(h *harness) {
		due := h.backend.Now().Add(50 * time.Millisecond).Truncate(time.Millisecond)
		h.schedule(h.s, "a", due)
		h.awaitReady(h.s, "a", h.wait)
	}},
	{"ReadyWhenEarlierScheduled", func(h *harness) {
		// A consumer asleep until the earliest entry's time must be woken
		// for an entry scheduled before it.
		now := h.backend.Now()
		h.schedule(h.s, "late", now.Add(time.Hour).Truncate(time.Millisecond))
		h.drainReady(h.s)
		h.schedule(h.s, "early", now.Add(50*time.Millisecond).Truncate(time.Millisecond))
		h.awaitReady(h.s, "early", h.wait)
	}},
	{"ReadyKeepsComing", func(h *harness) {
		// Signals over the scheduler's whole life, not only the first.
		for i := range 5 {
			id := fmt.Sprintf("round-%d", i)
			h.schedule(h.s, id, h.backend.Now().Add(20*time.Millisecond).Truncate(time.Millisecond))
			h.ack(h.s, h.awaitReady(h.s, id, h.wait))
		}
	}},
	{"ReadyWhenLeaseRunsOut", func(h *harness) {
		// A delivery never acknowledged becomes claimable again when its
		// lease runs out, and a sleeping consumer must hear of it.
		lease := h.lease()
		if lease > MaxLeaseWait {
			h.t.Skipf("backend's lease %v is longer than the %v this check waits in real time for a redelivery", lease, MaxLeaseWait)
		}
		h.schedule(h.s, "a", h.backend.Now().Truncate(time.Millisecond))
		d1 := h.awaitReady(h.s, "a", h.wait) // not acknowledged
		d2 := h.awaitReady(h.s, "a", lease+h.wait)
		if d2.Token == d1.Token {
			h.t.Fatalf("the redelivery after the lease reused token %q", d1.Token)
		}
	}},
	{"ReadyUnderConcurrency", func(h *harness) {
		// Producers schedule while consumers claim, and consumers Claim
		// only after a Ready signal: every entry must still come out.
		const producers, each, consumers = 4, 25, 4
		now := h.backend.Now()
		var (
			mu      sync.Mutex
			claimed = map[string]int{}
			done    = make(chan struct{})
			once    sync.Once
		)
		finish := func() { once.Do(func() { close(done) }) }
		deadline := time.After(h.wait / 2)
		h.parallel(producers+consumers, func(g int) error {
			if g < producers {
				for i := range each {
					at := now.Add(time.Duration(i%10) * time.Millisecond).Truncate(time.Millisecond)
					if err := h.s.Schedule(h.ctx, fmt.Sprintf("p%d-%02d", g, i), at); err != nil {
						return fmt.Errorf("Schedule: %w", err)
					}
				}
				return nil
			}
			for {
				select {
				case <-done:
					return nil
				case <-deadline:
					mu.Lock()
					defer mu.Unlock()
					finish()
					return fmt.Errorf("consumers woken by Ready claimed %d of %d entries within %v: a signal was missed", len(claimed), producers*each, h.wait/2)
				case _, ok := <-h.s.Ready():
					if !ok {
						return fmt.Errorf("Ready closed before Close")
					}
				}
				ds, err := h.s.Claim(h.ctx, h.backend.Now(), 10)
				if err != nil {
					return fmt.Errorf("Claim: %w", err)
				}
				for _, d := range ds {
					if err := h.s.Ack(h.ctx, d); err != nil {
						return fmt.Errorf("Ack(%q): %w", d.ID, err)
					}
				}
				mu.Lock()
				for _, d := range ds {
					claimed[d.ID]++
				}
				if len(claimed) == producers*each {
					finish()
				}
				mu.Unlock()
			}
		})
		for id, n := range claimed {
			if n != 1 {
				h.t.Fatalf("%s handed out %d times; want once", id, n)
			}
		}
	}},
}

// drainReady takes whatever signal Ready holds now, without waiting.
func (h *harness) drainReady(s retry.Scheduler) {
	for {
		select {
		case _, ok := <-s.Ready():
			if !ok {
				h.t.Fatal("Ready closed before Close")
			}
		default:
			return
		}
	}
}

// awaitReady waits for s's Ready and claims through s at the backend's now
// after each signal (a signal may be spurious) until id is handed out,
// failing after bound, and returns id's delivery.
func (h *harness) awaitReady(s retry.Scheduler, id string, bound time.Duration) retry.Delivery {
	h.t.Helper()
	watchdog := time.After(bound)
	for {
		select {
		case _, ok := <-s.Ready():
			if !ok {
				h.t.Fatal("Ready closed before Close")
			}
		case <-watchdog:
			h.t.Fatalf("no Ready signal handed out %q within %v (by Backend.Now, it was claimable)", id, bound)
		}
		ds := h.claim(s, h.backend.Now(), 100)
		if i := slices.IndexFunc(ds, func(d retry.Delivery) bool { return d.ID == id }); i >= 0 {
			return ds[i]
		}
	}
}
