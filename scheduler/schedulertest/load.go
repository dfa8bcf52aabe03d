package schedulertest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/internal/conformance"
	"github.com/journeyretry/journeyretry/retry"
)

var loadChecks = []check{
	{"Thousands", func(h *harness) {
		n := 3000
		if testing.Short() {
			n = 1000
		}
		for i := range n {
			// A permutation of 0..n-1 (7919 is prime, n is not its multiple).
			h.schedule(h.s, fmt.Sprintf("t%05d", i), at(time.Duration(i*7919%n)*time.Second))
		}
		got := h.claimAll(h.s, at(time.Duration(n)*time.Second), 100, n)
		if len(got) != n {
			h.t.Fatalf("claimed %d of %d entries", len(got), n)
		}
		seen := make(map[string]bool, n)
		for i, d := range got {
			if seen[d.ID] {
				h.t.Fatalf("%s handed out twice", d.ID)
			}
			seen[d.ID] = true
			if i > 0 && d.At.Before(got[i-1].At) {
				h.t.Fatalf("%s (due %v) handed out after %s (due %v)", d.ID, d.At, got[i-1].ID, got[i-1].At)
			}
		}
	}},
	{"ConcurrentSchedule", func(h *harness) {
		// Each goroutine schedules its own ids and moves one shared id.
		const goroutines, each = 16, 50
		h.parallel(goroutines, func(g int) error {
			for i := range each {
				id := fmt.Sprintf("g%02d-%03d", g, i)
				if err := h.s.Schedule(h.ctx, id, at(time.Duration(i)*time.Second)); err != nil {
					return fmt.Errorf("Schedule(%q): %w", id, err)
				}
				if err := h.s.Schedule(h.ctx, "shared", at(time.Duration(g)*time.Second)); err != nil {
					return fmt.Errorf("Schedule(shared): %w", err)
				}
			}
			return nil
		})
		got := h.claimAll(h.s, at(time.Hour), 100, goroutines*each+1)
		if len(got) != goroutines*each+1 {
			h.t.Fatalf("claimed %d entries; want %d (each id once)", len(got), goroutines*each+1)
		}
	}},
	{"ConcurrentClaim", func(h *harness) {
		h.concurrentClaim([]retry.Scheduler{h.s})
	}},
}

// concurrentClaim schedules entries that are all due, has consumers claim
// them concurrently through handles, and fails unless each was handed out
// exactly once.
func (h *harness) concurrentClaim(handles []retry.Scheduler) {
	h.t.Helper()
	const n, consumers = 1000, 8
	for i := range n {
		h.schedule(h.s, fmt.Sprintf("c%04d", i), at(time.Duration(i)*time.Millisecond))
	}
	now := at(time.Hour)
	var mu sync.Mutex
	count := make(map[string]int, n)
	h.parallel(consumers, func(c int) error {
		s := handles[c%len(handles)]
		for {
			ds, err := s.Claim(h.ctx, now, 7)
			if err != nil {
				return fmt.Errorf("Claim: %w", err)
			}
			if len(ds) == 0 {
				return nil
			}
			for _, d := range ds {
				if err := s.Ack(h.ctx, d); err != nil {
					return fmt.Errorf("Ack(%q): %w", d.ID, err)
				}
			}
			mu.Lock()
			for _, d := range ds {
				count[d.ID]++
			}
			mu.Unlock()
		}
	})
	if len(count) != n {
		h.t.Fatalf("%d consumers claimed %d distinct entries; want %d", consumers, len(count), n)
	}
	for id, c := range count {
		if c != 1 {
			h.t.Fatalf("%s handed out %d times to concurrent consumers; want once", id, c)
		}
	}
}

// parallel runs f(0..n-1) on n goroutines under the watchdog and fails the
// check with the first error.
func (h *harness) parallel(n int, f func(i int) error) {
	h.t.Helper()
	errs, ok := conformance.Parallel(h.t, fmt.Sprintf("%d goroutines", n), n, Watchdog, f)
	if !ok {
		h.t.FailNow()
	}
	for _, err := range errs {
		if err != nil {
			h.t.Fatal(err)
		}
	}
}
