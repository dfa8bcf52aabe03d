package storetest

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// dashboardChecks cover what the dashboard reads beyond the Inspector's
// first methods: ListRuns' journey and class filters, and the optional
// ActivityInspector.
var dashboardChecks = []check{
	{"Inspector/ListRunsFilters", func(h *harness) {
		in := h.inspector()
		for i, c := range []struct {
			journey string
			class   retry.Class
		}{{"j1", retry.ClassNetworkBlip}, {"j2", retry.ClassNetworkBlip}, {"j1", retry.ClassValidation}, {"j1", retry.ClassNetworkBlip}} {
			nr := newRun(fmt.Sprintf("r%d", i))
			nr.JourneyID, nr.Lease, nr.Worker = c.journey, time.Minute, "w"
			r := h.create(nr, at(0))
			h.fail(r.Claim(), retry.FailureRecord{NodeID: "a", Class: c.class, Message: "x", StartedAt: at(0), FinishedAt: at(1)})
		}
		runs, err := in.ListRuns(h.ctx, retry.RunFilter{Status: retry.StatusFailed, JourneyID: "j1", ErrorClass: retry.ClassNetworkBlip})
		if err != nil {
			h.t.Fatalf("ListRuns: %v", err)
		}
		if got := runIDs(runs); !slices.Equal(got, []string{"r0", "r3"}) {
			h.t.Fatalf("ListRuns(failed, journey j1, class network_blip) = %v; want [r0 r3]", got)
		}
		runs, err = in.ListRuns(h.ctx, retry.RunFilter{JourneyID: "j2"})
		if got := runIDs(runs); err != nil || !slices.Equal(got, []string{"r1"}) {
			h.t.Fatalf("ListRuns(journey j2) = %v, %v; want [r1]", got, err)
		}
	}},
	{"ActivityInspector/Activity", func(h *harness) {
		h.inspector()
		if _, ok := h.s.s.(retry.ActivityInspector); !ok {
			h.t.Skip("store does not implement retry.ActivityInspector")
		}
		// r1: fails at 1s with a 2 s delay, runs again at 4 s (1 s late)
		// and succeeds at 5 s. r2: fails for good at 61 s.
		r := h.createClaimed("r1", at(0))
		h.fail(r.Claim(), retryAfter("a", at(time.Second), 2*time.Second))
		r = h.claimRun("r1", at(4*time.Second))
		h.complete(r.Claim(), retry.NodeSuccess{NodeID: "a", StartedAt: at(4 * time.Second), FinishedAt: at(5 * time.Second)})
		r = h.createClaimed("r2", at(60*time.Second))
		h.fail(r.Claim(), retry.FailureRecord{NodeID: "a", Class: retry.ClassValidation, Message: "bad", StartedAt: at(60 * time.Second), FinishedAt: at(61 * time.Second)})

		act, err := h.s.Activity(h.ctx, retry.ActivityQuery{Since: at(0), Until: at(2 * time.Minute), Bucket: time.Minute})
		if err != nil {
			h.t.Fatalf("Activity: %v", err)
		}
		want := []retry.ActivityBucket{{Start: at(0), Attempts: 2, Failures: 1, Retries: 1}, {Start: at(time.Minute), Attempts: 1, Failures: 1}}
		if len(act.Buckets) != 2 || act.Truncated {
			h.t.Fatalf("Activity = %+v; want buckets %+v", act, want)
		}
		for i, b := range act.Buckets {
			if !b.Start.Equal(want[i].Start) || b.Attempts != want[i].Attempts || b.Failures != want[i].Failures || b.Retries != want[i].Retries {
				h.t.Fatalf("bucket %d = %+v; want %+v", i, b, want[i])
			}
		}
		if !slices.Equal(act.RetryLateness, []time.Duration{time.Second}) {
			h.t.Fatalf("RetryLateness = %v; want [1s]", act.RetryLateness)
		}
		if act.TopErrors != nil {
			h.t.Fatalf("TopErrors = %v unasked; want nil", act.TopErrors)
		}
		// The error patterns, most frequent first, then by class.
		r = h.createClaimed("r3", at(62*time.Second))
		h.fail(r.Claim(), retry.FailureRecord{NodeID: "a", Class: retry.ClassValidation, Message: "bad", StartedAt: at(62 * time.Second), FinishedAt: at(63 * time.Second)})
		q := retry.ActivityQuery{Since: at(0), Until: at(2 * time.Minute), Bucket: time.Minute, TopErrors: 5}
		act, err = h.s.Activity(h.ctx, q)
		wantTop := []retry.ErrorCount{{Class: retry.ClassValidation, Message: "bad", Count: 2}, {Class: retry.ClassNetworkBlip, Message: "connection reset", Count: 1}}
		if err != nil || !slices.Equal(act.TopErrors, wantTop) {
			h.t.Fatalf("Activity(TopErrors 5).TopErrors = %v, %v; want %v", act.TopErrors, err, wantTop)
		}
		q.TopErrors = 1
		if act, err = h.s.Activity(h.ctx, q); err != nil || !slices.Equal(act.TopErrors, wantTop[:1]) {
			h.t.Fatalf("Activity(TopErrors 1).TopErrors = %v, %v; want %v", act.TopErrors, err, wantTop[:1])
		}
		// MaxAttempts bounds what is read, the error patterns' too: the
		// latest attempt only.
		act, err = h.s.Activity(h.ctx, retry.ActivityQuery{Since: at(0), Until: at(2 * time.Minute), Bucket: time.Minute, MaxAttempts: 1, TopErrors: 5})
		if err != nil || !act.Truncated || act.Buckets[0].Attempts != 0 || act.Buckets[1].Attempts != 1 ||
			!slices.Equal(act.TopErrors, []retry.ErrorCount{{Class: retry.ClassValidation, Message: "bad", Count: 1}}) {
			h.t.Fatalf("Activity(MaxAttempts 1) = %+v, %v; want the latest attempt only, truncated", act, err)
		}
		for _, q := range []retry.ActivityQuery{
			{Since: at(time.Minute), Until: at(0), Bucket: time.Second},
			{Since: at(0), Until: at(time.Minute), Bucket: 0},
			{Since: at(0), Until: at(time.Hour), Bucket: time.Millisecond},
			{Since: at(0), Until: at(time.Minute), Bucket: time.Second, TopErrors: -1},
		} {
			if _, err := h.s.Activity(h.ctx, q); !errors.Is(err, retry.ErrInvalidArgument) {
				h.t.Errorf("Activity(%+v) = %v; want ErrInvalidArgument", q, err)
			}
		}
	}},
}
