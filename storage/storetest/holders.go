package storetest

import (
	"fmt"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// write is one method that writes under a claim, called at now.
type write struct {
	name string
	call func(h *harness, c retry.Claim, now time.Time) error
}

// writes are the five methods every claim rule applies to alike.
var writes = []write{
	{"CompleteNode", func(h *harness, c retry.Claim, now time.Time) error {
		_, err := h.s.CompleteNode(h.ctx, c, retry.NodeSuccess{NodeID: "a", NextNodeID: "b", FinishedAt: now})
		return err
	}},
	{"RecordFailure", func(h *harness, c retry.Claim, now time.Time) error {
		_, err := h.s.RecordFailure(h.ctx, c, retryAfter("a", now, time.Second))
		return err
	}},
	{"Snooze", func(h *harness, c retry.Claim, now time.Time) error {
		_, err := h.s.Snooze(h.ctx, c, retry.SnoozeRecord{NodeID: "a", Delay: time.Second, FinishedAt: now})
		return err
	}},
	{"ExtendLease", func(h *harness, c retry.Claim, now time.Time) error {
		_, err := h.s.ExtendLease(h.ctx, c, now, lease)
		return err
	}},
	{"Release", func(h *harness, c retry.Claim, now time.Time) error {
		return h.s.Release(h.ctx, c, now)
	}},
}

var holderChecks = []check{
	{"Lease/EveryWriteEveryHolder", func(h *harness) {
		// Each write method, under each kind of claim a worker may still
		// hold: only a live claim with the current token writes.
		for _, w := range writes {
			// The current token, a millisecond before the lease ends.
			id := "live-" + w.name
			r := h.createClaimed(id, at(0))
			if err := w.call(h, r.Claim(), at(lease-time.Millisecond)); err != nil {
				h.t.Fatalf("%s under a live claim, a millisecond before it expires: %v", w.name, err)
			}
			// The current token once the lease ended, nobody else holding it.
			id = "expired-" + w.name
			r = h.createClaimed(id, at(0))
			h.expectErr(w.name+" with the current token at its lease's end", w.call(h, r.Claim(), at(lease)), retry.ErrLostClaim)
			h.unchanged(w.name+" at its lease's end", r, 0)
			// A stale token while the new holder's lease is live.
			id = "stale-" + w.name
			old := h.createClaimed(id, at(0))
			cur := h.claimRun(id, at(lease))
			h.expectErr(w.name+" with a stale token", w.call(h, old.Claim(), at(lease+time.Second)), retry.ErrLostClaim)
			h.unchanged(w.name+" with a stale token", cur, 0)
			// The token of a claim given up.
			id = "released-" + w.name
			r = h.createClaimed(id, at(0))
			if err := h.s.Release(h.ctx, r.Claim(), at(time.Second)); err != nil {
				h.t.Fatalf("Release: %v", err)
			}
			released := h.get(id)
			h.expectErr(w.name+" after Release", w.call(h, r.Claim(), at(2*time.Second)), retry.ErrLostClaim)
			h.unchanged(w.name+" after Release", released, 0)
		}
	}},
	{"Lease/EveryStatusReleases", func(h *harness) {
		// Every write that leaves a run in another status than in
		// progress gives the claim up: the token it ran under writes
		// nothing more, though its lease has not run out.
		for _, w := range writes {
			for status, end := range map[retry.Status]func(r retry.Run) retry.Run{
				retry.StatusCompleted: func(r retry.Run) retry.Run {
					return h.complete(r.Claim(), retry.NodeSuccess{NodeID: "a", FinishedAt: at(time.Second)})
				},
				retry.StatusWaiting: func(r retry.Run) retry.Run {
					return h.complete(r.Claim(), retry.NodeSuccess{NodeID: "a", NextNodeID: "b", WakeAt: at(time.Hour), FinishedAt: at(time.Second)})
				},
				retry.StatusRetrying: func(r retry.Run) retry.Run {
					return h.fail(r.Claim(), retryAfter("a", at(time.Second), time.Hour))
				},
				retry.StatusFailed: func(r retry.Run) retry.Run {
					return h.fail(r.Claim(), retry.FailureRecord{NodeID: "a", FinishedAt: at(time.Second)})
				},
				retry.StatusFailedMaxRetries: func(r retry.Run) retry.Run {
					return h.fail(r.Claim(), retry.FailureRecord{NodeID: "a", Decision: retry.Decision{Exhausted: true}, FinishedAt: at(time.Second)})
				},
			} {
				id := fmt.Sprintf("%s-%s", status, w.name)
				r := h.createClaimed(id, at(0))
				if got := end(r); got.Status != status || got.ClaimToken != "" {
					h.t.Fatalf("%s: status %s, token %q; want %s and no claim", id, got.Status, got.ClaimToken, status)
				}
				ended := h.get(id)
				h.expectErr(fmt.Sprintf("%s under the claim a %s run gave up", w.name, status),
					w.call(h, r.Claim(), at(2*time.Second)), retry.ErrLostClaim)
				h.unchanged(fmt.Sprintf("%s on a %s run", w.name, status), ended, 1)
			}
		}
	}},
}

var replayChecks = []check{
	{"Replay/EveryStatus", func(h *harness) {
		// Replay takes the two failed statuses and refuses every other,
		// changing nothing.
		in := h.inspector()
		now := at(time.Hour)
		h.runInEveryStatus()
		for _, id := range []string{"new", "claimed", "retrying", "waiting", "completed"} {
			before := h.get(id)
			n := len(h.attempts(id))
			_, err := in.Replay(h.ctx, id, now)
			h.expectErr(fmt.Sprintf("Replay of a %s run (%s)", before.Status, id), err, retry.ErrNotReplayable)
			h.unchanged("a refused Replay", before, n)
		}
		for _, id := range []string{"failed", "failed_max_retries"} {
			got, err := in.Replay(h.ctx, id, now)
			if err != nil {
				h.t.Fatalf("Replay of a %s run: %v", id, err)
			}
			if got.Status != retry.StatusRetrying || !got.NextRetryAt.Equal(now) || got.ClaimToken != "" || !sameRun(got, h.get(id)) {
				h.t.Fatalf("replayed %s run: %+v; want retrying, due %v, unclaimed, as Get returns it", id, got, now)
			}
			if as := h.attemptsN(id, 2); as[1].Outcome != retry.OutcomeReplayed || as[1].NodeID != "a" || !as[1].FinishedAt.Equal(now) {
				h.t.Fatalf("history of the replayed %s run: %+v; want the failure, then a replay at a", id, as)
			}
		}
	}},
	{"Replay/AfterRetries", func(h *harness) {
		// A run that used its retries is replayed with the whole budget
		// back, and its history keeps every attempt before the replay.
		in := h.inspector()
		nr := newRun("r1")
		nr.MaxRetries = 2
		h.create(nr, at(0))
		now := at(0)
		for range 3 {
			r := h.claimRun("r1", now)
			h.fail(r.Claim(), retryAfter("a", now, time.Millisecond))
			now = now.Add(time.Second)
		}
		if r := h.get("r1"); r.Status != retry.StatusFailedMaxRetries || r.RetryCount != 2 {
			h.t.Fatalf("before the replay: status %s, retry count %d; want failed_max_retries, 2", r.Status, r.RetryCount)
		}
		got, err := in.Replay(h.ctx, "r1", at(time.Hour))
		if err != nil {
			h.t.Fatalf("Replay: %v", err)
		}
		if got.RetryCount != 0 || got.LastDelay != 0 || got.Status != retry.StatusRetrying {
			h.t.Fatalf("replayed run: retry count %d, last delay %v, status %s; want 0, 0, retrying", got.RetryCount, got.LastDelay, got.Status)
		}
		if stored := h.get("r1"); stored.RetryCount != 0 {
			h.t.Fatalf("stored retry count after the replay %d; want 0", stored.RetryCount)
		}
		r := h.claimRun("r1", at(time.Hour))
		if got := h.fail(r.Claim(), retryAfter("a", at(time.Hour+time.Second), time.Second)); got.Status != retry.StatusRetrying || got.RetryCount != 1 {
			h.t.Fatalf("the first failure after the replay: status %s, retry count %d; want retrying, 1 (the budget back)", got.Status, got.RetryCount)
		}
		as := h.attemptsN("r1", 5)
		for i, want := range []struct {
			outcome     retry.Outcome
			nodeAttempt int
		}{{retry.OutcomeFailed, 1}, {retry.OutcomeFailed, 2}, {retry.OutcomeFailed, 3}, {retry.OutcomeReplayed, 0}, {retry.OutcomeFailed, 1}} {
			a := as[i]
			if a.Number != i+1 || a.Outcome != want.outcome || (want.nodeAttempt > 0 && a.NodeAttempt != want.nodeAttempt) {
				h.t.Fatalf("attempt %d: number %d, outcome %s, node attempt %d; want %d, %s, %d (history %+v)",
					i+1, a.Number, a.Outcome, a.NodeAttempt, i+1, want.outcome, want.nodeAttempt, as)
			}
		}
	}},
}
