package schedulertest

import (
	"errors"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

var invalidChecks = []check{
	{"BadInputChangesNothing", func(h *harness) {
		h.schedule(h.s, "a", at(time.Minute))
		_, claimZero := h.s.Claim(h.ctx, at(time.Hour), 0)
		_, claimNegative := h.s.Claim(h.ctx, at(time.Hour), -1)
		for name, err := range map[string]error{
			"Schedule with an empty id": h.s.Schedule(h.ctx, "", at(time.Second)),
			"Cancel with an empty id":   h.s.Cancel(h.ctx, ""),
			"Ack with an empty id":      h.s.Ack(h.ctx, retry.Delivery{Token: "x"}),
			"Claim with limit 0":        claimZero,
			"Claim with limit -1":       claimNegative,
		} {
			if !errors.Is(err, retry.ErrInvalidArgument) {
				h.t.Errorf("%s = %v; want an error wrapping retry.ErrInvalidArgument", name, err)
			}
		}
		h.expectOne(h.s, at(time.Hour), "a", at(time.Minute))
	}},
}
