package storetest

import (
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// snooze snoozes the run under c for d at now.
func (h *harness) snooze(c retry.Claim, now time.Time, d time.Duration) retry.Run {
	h.t.Helper()
	r, err := h.s.Snooze(h.ctx, c, retry.SnoozeRecord{NodeID: "a", Message: "lab result not in", Delay: d,
		StartedAt: now.Add(-time.Second), FinishedAt: now})
	if err != nil {
		h.t.Fatalf("Snooze(%s): %v", c.RunID, err)
	}
	return r
}

var snoozeChecks = []check{
	{"Snooze/KeepsRetryCount", func(h *harness) {
		// A snooze after a retry parks the run waiting at the same node:
		// no retry counted, the last error and delay kept, the claim
		// released, an attempt recorded as a snooze.
		r := h.createClaimed("r1", at(0))
		h.fail(r.Claim(), retryAfter("a", at(time.Second), 2*time.Second))
		r = h.claimRun("r1", at(3*time.Second))
		got := h.snooze(r.Claim(), at(4*time.Second), 5*time.Second)
		if got.Status != retry.StatusWaiting || got.RetryCount != 1 || got.SnoozeCount != 1 || got.CurrentNodeID != "a" ||
			!got.WakeAt.Equal(at(9*time.Second)) || got.LastDelay != 2*time.Second || got.LastErrorMessage != "connection reset" ||
			!got.LastErrorAt.Equal(at(time.Second)) || got.ClaimToken != "" || got.AttemptCount != 2 {
			h.t.Fatalf("after a snooze: %+v; want waiting at a until %v, retry count 1, snooze count 1, the last error kept, no claim",
				got, at(9*time.Second))
		}
		if !sameRun(got, h.get("r1")) {
			h.t.Fatalf("Snooze returned %+v but Get %+v", got, h.get("r1"))
		}
		as := h.attemptsN("r1", 2)
		want := retry.Attempt{RunID: "r1", Number: 2, NodeID: "a", NodeAttempt: 2, Worker: "w1", ClaimToken: r.ClaimToken,
			StartedAt: at(3 * time.Second), FinishedAt: at(4 * time.Second), Outcome: retry.OutcomeSnoozed,
			ErrorMessage: "lab result not in", Decision: retry.Decision{Delay: 5 * time.Second}, Status: retry.StatusWaiting}
		if !sameAttempt(as[1], want) {
			h.t.Fatalf("snooze attempt %+v; want %+v", as[1], want)
		}
		ws, err := h.s.ListWakeups(h.ctx, "", 10)
		if err != nil || len(ws) != 1 || ws[0].Status != retry.StatusWaiting || !ws[0].At.Equal(at(9*time.Second)) {
			h.t.Fatalf("ListWakeups = %+v, %v; want r1 waiting until %v", ws, err, at(9*time.Second))
		}
		if runs := h.claimDue(h.s, at(9*time.Second-time.Millisecond), 10); len(runs) != 0 {
			h.t.Fatalf("a snoozed run was claimed before its wake time: %v", runIDs(runs))
		}
		// Woken, it runs the same node, and its next failure is retry 2.
		runs := h.claimDue(h.s, at(9*time.Second), 10)
		if len(runs) != 1 || runs[0].RetryCount != 1 || runs[0].SnoozeCount != 1 {
			h.t.Fatalf("ClaimDue at the wake time: %+v; want r1, retry count 1, snooze count 1", runs)
		}
		if got := h.fail(runs[0].Claim(), retryAfter("a", at(10*time.Second), time.Second)); got.RetryCount != 2 || got.SnoozeCount != 1 {
			h.t.Fatalf("a failure after the snooze: retry count %d, snooze count %d; want 2, 1", got.RetryCount, got.SnoozeCount)
		}
	}},
	{"Snooze/CountsUntilTheNodeCompletes", func(h *harness) {
		// SnoozeCount counts the node's snoozes; completing the node (or
		// a replay) resets it.
		h.create(newRun("r1"), at(0))
		now := at(0)
		for i := range 3 {
			r := h.claimRun("r1", now)
			if r.SnoozeCount != i {
				h.t.Fatalf("claim %d: snooze count %d; want %d", i+1, r.SnoozeCount, i)
			}
			now = now.Add(time.Second)
			h.snooze(r.Claim(), now, 0)
		}
		r := h.claimRun("r1", now)
		if got := h.complete(r.Claim(), retry.NodeSuccess{NodeID: "a", NextNodeID: "b", FinishedAt: now}); got.SnoozeCount != 0 || got.RetryCount != 0 {
			h.t.Fatalf("after the node completed: snooze count %d, retry count %d; want 0, 0", got.SnoozeCount, got.RetryCount)
		}
	}},
	{"Snooze/NodeStartedAt", func(h *harness) {
		// NodeStartedAt is the start of the node's first recorded attempt,
		// kept across retries and snoozes, cleared when the node
		// completes and by a replay.
		r := h.createClaimed("r1", at(0))
		if !r.NodeStartedAt.IsZero() {
			h.t.Fatalf("a new run: NodeStartedAt %v; want none", r.NodeStartedAt)
		}
		f := retryAfter("a", at(2*time.Second), time.Second) // started at 1s
		if got := h.fail(r.Claim(), f); !got.NodeStartedAt.Equal(at(time.Second)) {
			h.t.Fatalf("after the first failure: NodeStartedAt %v; want %v", got.NodeStartedAt, at(time.Second))
		}
		r = h.claimRun("r1", at(3*time.Second))
		if got := h.snooze(r.Claim(), at(5*time.Second), 0); !got.NodeStartedAt.Equal(at(time.Second)) {
			h.t.Fatalf("after a snooze: NodeStartedAt %v; want %v", got.NodeStartedAt, at(time.Second))
		}
		r = h.claimRun("r1", at(6*time.Second))
		if got := h.fail(r.Claim(), retryAfter("a", at(7*time.Second), 0)); !got.NodeStartedAt.Equal(at(time.Second)) || !sameRun(got, h.get("r1")) {
			h.t.Fatalf("after a second failure: NodeStartedAt %v (Get %v); want %v", got.NodeStartedAt, h.get("r1").NodeStartedAt, at(time.Second))
		}
		got := h.complete(r.Claim(), retry.NodeSuccess{NodeID: "a", NextNodeID: "b", FinishedAt: at(8 * time.Second)})
		if !got.NodeStartedAt.IsZero() {
			h.t.Fatalf("after the node completed: NodeStartedAt %v; want none", got.NodeStartedAt)
		}
		// The next node's first attempt is a snooze: it starts the clock.
		got = h.snooze(got.Claim(), at(9*time.Second), time.Second)
		if !got.NodeStartedAt.Equal(at(8 * time.Second)) {
			h.t.Fatalf("the next node's first snooze: NodeStartedAt %v; want %v", got.NodeStartedAt, at(8*time.Second))
		}
		// A failure that ends the run keeps it; a replay clears both.
		r = h.claimRun("r1", at(10*time.Second))
		h.fail(r.Claim(), retry.FailureRecord{NodeID: "b", FinishedAt: at(11 * time.Second)})
		if ended := h.get("r1"); !ended.NodeStartedAt.Equal(at(8*time.Second)) || ended.SnoozeCount != 1 {
			h.t.Fatalf("ended: NodeStartedAt %v, snooze count %d; want %v, 1", ended.NodeStartedAt, ended.SnoozeCount, at(8*time.Second))
		}
		got, err := h.inspector().Replay(h.ctx, "r1", at(12*time.Second))
		if err != nil || !got.NodeStartedAt.IsZero() || got.SnoozeCount != 0 || !sameRun(got, h.get("r1")) {
			h.t.Fatalf("after a replay: %v, NodeStartedAt %v, snooze count %d; want none, 0", err, got.NodeStartedAt, got.SnoozeCount)
		}
	}},
	{"Snooze/Invalid", func(h *harness) {
		r := h.createClaimed("r1", at(0))
		for what, sn := range map[string]retry.SnoozeRecord{
			"a negative delay": {NodeID: "a", Delay: -time.Second, FinishedAt: at(time.Second)},
			"no node":          {Delay: time.Second, FinishedAt: at(time.Second)},
			"no time":          {NodeID: "a", Delay: time.Second},
		} {
			_, err := h.s.Snooze(h.ctx, r.Claim(), sn)
			h.expectErr("Snooze with "+what, err, retry.ErrInvalidArgument)
		}
		h.unchanged("refused snoozes", r, 0)
	}},
}
