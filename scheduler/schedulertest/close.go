package schedulertest

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

var closeChecks = []check{
	{"CloseStopsEverything", func(h *harness) {
		// One entry due (by both clocks), one delivered and unacked, one
		// pending on the backend's timer, and a consumer waiting on Ready.
		h.schedule(h.s, "due", at(time.Minute))
		h.schedule(h.s, "delivered", at(time.Second))
		d := h.expectOne(h.s, at(time.Second), "delivered", at(time.Second))
		h.schedule(h.s, "timer", h.backend.Now().Add(time.Hour))
		waiter := make(chan struct{})
		go func() {
			defer close(waiter)
			for range h.s.Ready() {
			}
		}()

		if err := h.closeWithin(h.s); err != nil {
			h.t.Fatalf("Close: %v", err)
		}
		select {
		case <-waiter:
		case <-time.After(Watchdog):
			h.t.Fatalf("Ready not closed %v after Close returned", Watchdog)
		}

		ds, err := h.s.Claim(h.ctx, at(48*time.Hour), 100)
		if !errors.Is(err, retry.ErrClosed) || len(ds) > 0 {
			h.t.Fatalf("Claim after Close = %v, %v; want nothing and an error wrapping retry.ErrClosed", ids(ds), err)
		}
		for name, err := range map[string]error{
			"Schedule": h.s.Schedule(h.ctx, "new", at(time.Minute)),
			"Cancel":   h.s.Cancel(h.ctx, "due"),
			"Ack":      h.s.Ack(h.ctx, d),
		} {
			if !errors.Is(err, retry.ErrClosed) {
				h.t.Errorf("%s after Close = %v; want an error wrapping retry.ErrClosed", name, err)
			}
		}
	}},
	{"CloseDuringClaims", func(h *harness) {
		// Consumers claim in a loop while Close runs: once Close has
		// returned, no Claim that starts hands anything out.
		for i := range 500 {
			h.schedule(h.s, fmt.Sprintf("e%03d", i), at(time.Duration(i)*time.Millisecond))
		}
		var closed atomic.Bool
		claimed := make(chan struct{}, 4)
		stop := make(chan struct{})
		go func() {
			<-claimed // Close once the consumers are under way
			if err := h.s.Close(); err != nil {
				h.t.Errorf("Close: %v", err)
			}
			closed.Store(true)
			close(stop)
		}()
		h.parallel(4, func(int) error {
			for {
				after := closed.Load()
				ds, err := h.s.Claim(h.ctx, at(time.Hour), 1)
				switch {
				case after && (len(ds) > 0 || !errors.Is(err, retry.ErrClosed)):
					return fmt.Errorf("Claim after Close returned = %v, %v; want nothing and retry.ErrClosed", ids(ds), err)
				case err != nil && !errors.Is(err, retry.ErrClosed):
					return fmt.Errorf("Claim: %w", err)
				case after:
					return nil
				}
				select {
				case claimed <- struct{}{}:
				default:
				}
			}
		})
		select {
		case <-stop:
		case <-time.After(Watchdog):
			h.t.Fatalf("Close did not return within %v", Watchdog)
		}
	}},
}
