package schedulertest

import (
	"errors"
	"slices"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// batchChecks cover the optional retry.BatchScheduler.
var batchChecks = []check{
	{"ScheduleMany", func(h *harness) {
		bs := h.batch()
		h.schedule(h.s, "b", at(time.Hour))
		var err error
		h.within("ScheduleMany", func() { err = bs.ScheduleMany(h.ctx, []string{"c", "b", "a"}, at(time.Minute)) })
		if err != nil {
			h.t.Fatalf("ScheduleMany: %v", err)
		}
		h.expectNone(h.s, at(time.Minute-time.Millisecond), "due at +1m")
		ds := h.claimAll(h.s, at(time.Minute), 10, 3)
		got := ids(ds)
		slices.Sort(got)
		if !slices.Equal(got, []string{"a", "b", "c"}) {
			h.t.Fatalf("Claim after ScheduleMany of a, b, c at +1m handed out %v; want each once (b moved from +1h)", ids(ds))
		}
		for _, d := range ds {
			if !d.At.Equal(at(time.Minute)) {
				h.t.Fatalf("delivery of %q has At %v; want %v", d.ID, d.At, at(time.Minute))
			}
		}
		h.expectNone(h.s, at(2*time.Hour), "acknowledged, and b no longer at +1h")
	}},
	{"ScheduleManyInvalid", func(h *harness) {
		bs := h.batch()
		var err error
		h.within("ScheduleMany", func() { err = bs.ScheduleMany(h.ctx, []string{"a", ""}, at(time.Minute)) })
		if !errors.Is(err, retry.ErrInvalidArgument) {
			h.t.Fatalf("ScheduleMany with an empty id = %v; want an error wrapping retry.ErrInvalidArgument", err)
		}
		h.expectNone(h.s, at(time.Hour), "ScheduleMany with an empty id schedules none")
	}},
}

// batch returns the scheduler's BatchScheduler, or skips the check.
func (h *harness) batch() retry.BatchScheduler {
	h.t.Helper()
	bs, ok := h.s.(retry.BatchScheduler)
	if !ok {
		h.t.Skip("scheduler does not implement retry.BatchScheduler")
	}
	return bs
}
