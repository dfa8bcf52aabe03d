package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// operatorChecks cover [retry.Operator] and the ListRuns filters bulk
// replay uses.
var operatorChecks = []check{
	{"Cancel/EveryStatus", func(h *harness) {
		// Cancel takes a run that has not ended, claimed or not, and
		// refuses one that has, changing nothing.
		op := h.operator()
		now := at(time.Hour)
		h.runInEveryStatus()
		h.createClaimed("expired", at(0)) // its lease ended before now
		for _, id := range []string{"new", "claimed", "expired", "retrying", "waiting"} {
			before := h.get(id)
			n := len(h.attempts(id))
			got, err := op.Cancel(h.ctx, id, "ops", now)
			if err != nil {
				h.t.Fatalf("Cancel of a %s run (%s): %v", before.Status, id, err)
			}
			if got.Status != retry.StatusCancelled || got.ClaimToken != "" || got.ClaimedBy != "" || !sameRun(got, h.get(id)) {
				h.t.Fatalf("cancelled %s run: status %s, token %q, worker %q; want cancelled, unclaimed, as Get returns it", id, got.Status, got.ClaimToken, got.ClaimedBy)
			}
			as := h.attemptsN(id, n+1)
			if a := as[n]; a.Outcome != retry.OutcomeCancelled || a.Status != retry.StatusCancelled || a.NodeID != before.CurrentNodeID ||
				!a.FinishedAt.Equal(now) || a.Act == nil || a.Act.By != "ops" {
				h.t.Fatalf("history of the cancelled %s run ends with %+v (act %+v); want a cancel at %s by ops at %v", id, a, a.Act, before.CurrentNodeID, now)
			}
			_, err = h.s.ClaimRun(h.ctx, id, "w2", at(24*time.Hour), lease)
			h.expectErr("ClaimRun of a cancelled run", err, retry.ErrNotClaimable)
		}
		if due := h.claimDue(h.s, at(24*time.Hour), 100); len(due) != 0 {
			h.t.Fatalf("ClaimDue a day later claimed %v; cancelled and ended runs are never due", runIDs(due))
		}
		ws, err := h.s.ListWakeups(h.ctx, "", 100)
		if err != nil || len(ws) != 0 {
			h.t.Fatalf("ListWakeups = %v, %v; want none (the waiting and retrying runs were cancelled)", ws, err)
		}
		for _, id := range []string{"completed", "failed", "failed_max_retries", "claimed"} { // claimed is cancelled by now
			before := h.get(id)
			n := len(h.attempts(id))
			_, err := op.Cancel(h.ctx, id, "ops", now)
			h.expectErr(fmt.Sprintf("Cancel of a %s run (%s)", before.Status, id), err, retry.ErrNotCancellable)
			h.unchanged("a refused Cancel", before, n)
		}
		_, err = op.Cancel(h.ctx, "missing", "ops", now)
		h.expectErr("Cancel of a missing run", err, retry.ErrNotFound)
	}},
	{"Cancel/HolderLearns", func(h *harness) {
		// A worker holding a cancelled run learns it from any write
		// under its claim, the lease renewal first: ErrCancelled beside
		// ErrLostClaim, and nothing written.
		op := h.operator()
		for _, w := range writes {
			id := "held-" + w.name
			r := h.createClaimed(id, at(0))
			if _, err := op.Cancel(h.ctx, id, "ops", at(time.Second)); err != nil {
				h.t.Fatalf("Cancel: %v", err)
			}
			cancelled := h.get(id)
			err := w.call(h, r.Claim(), at(2*time.Second))
			if !errors.Is(err, retry.ErrCancelled) || !errors.Is(err, retry.ErrLostClaim) {
				h.t.Fatalf("%s under the claim a cancel voided: error %v; want one wrapping ErrCancelled and ErrLostClaim", w.name, err)
			}
			h.unchanged(w.name+" on a cancelled run", cancelled, 1)
			// A claim lost otherwise is not a cancel.
			id = "expired-" + w.name
			r = h.createClaimed(id, at(0))
			err = w.call(h, r.Claim(), at(lease))
			h.expectErr(w.name+" at its lease's end", err, retry.ErrLostClaim)
			if errors.Is(err, retry.ErrCancelled) {
				h.t.Fatalf("%s under an expired claim of a run nobody cancelled: %v wraps ErrCancelled", w.name, err)
			}
		}
	}},
	{"Cancel/Replayable", func(h *harness) {
		op := h.operator()
		h.createClaimed("r1", at(0))
		if _, err := op.Cancel(h.ctx, "r1", "ops", at(time.Second)); err != nil {
			h.t.Fatalf("Cancel: %v", err)
		}
		got, err := h.s.Replay(h.ctx, "r1", at(time.Minute))
		if err != nil || got.Status != retry.StatusRetrying || !got.NextRetryAt.Equal(at(time.Minute)) {
			h.t.Fatalf("Replay of a cancelled run = %+v, %v; want retrying, due %v", got, err, at(time.Minute))
		}
		h.claimRun("r1", at(time.Minute))
	}},
	{"ReplayWith/FromNode", func(h *harness) {
		// a, b and c complete, d fails for good; a replay from b moves b's
		// and c's outputs into its history row and restarts at b with
		// the override, a fresh retry count and a's output kept.
		op := h.operator()
		r := h.createClaimed("r1", at(0))
		now := at(time.Second)
		for _, n := range [][2]string{{"a", "b"}, {"b", "c"}, {"c", "d"}} {
			r = h.complete(r.Claim(), retry.NodeSuccess{NodeID: n[0], Output: json.RawMessage(`{"from":"` + n[0] + `"}`), NextNodeID: n[1], FinishedAt: now})
			now = now.Add(time.Second)
		}
		r = h.fail(r.Claim(), retryAfter("d", now, time.Second))
		r = h.claimRun("r1", now.Add(time.Second))
		h.fail(r.Claim(), retry.FailureRecord{NodeID: "d", Decision: retry.Decision{Exhausted: true}, FinishedAt: now.Add(2 * time.Second)})
		five := 5
		o := retry.ReplayOptions{By: "ops", From: "b", Override: retry.PolicyOverride{Strategy: "long", MaxRetries: &five}}
		replayAt := at(time.Hour)
		got, err := op.ReplayWith(h.ctx, "r1", o, replayAt)
		if err != nil {
			h.t.Fatalf("ReplayWith(from b): %v", err)
		}
		if got.Status != retry.StatusRetrying || got.CurrentNodeID != "b" || got.RetryCount != 0 || got.MaxRetries != 5 ||
			!got.NextRetryAt.Equal(replayAt) || got.ClaimToken != "" || !sameRun(got, h.get("r1")) {
			h.t.Fatalf("replayed run: %s at %s, due %v, retry count %d of %d, token %q; want retrying at b, due %v, retry count 0 of 5, unclaimed, as Get returns it",
				got.Status, got.CurrentNodeID, got.NextRetryAt, got.RetryCount, got.MaxRetries, got.ClaimToken, replayAt)
		}
		if got.Override.Strategy != "long" || got.Override.MaxRetries == nil || *got.Override.MaxRetries != 5 {
			h.t.Fatalf("replayed run's override %+v; want strategy long, max retries 5", got.Override)
		}
		if keys := slices.Sorted(maps.Keys(got.Context.Outputs)); !slices.Equal(keys, []string{"a"}) || !jsonEqual(got.Context.Input, []byte(`{"patient":"p1"}`)) {
			h.t.Fatalf("replayed run's context %s; want the input and a's output only", show(got.Context))
		}
		as := h.attemptsN("r1", 6)
		a := as[5]
		if a.Outcome != retry.OutcomeReplayed || a.NodeID != "b" || a.Status != retry.StatusRetrying || !a.FinishedAt.Equal(replayAt) || a.Act == nil {
			h.t.Fatalf("history ends with %+v; want a replay at b", a)
		}
		if act := a.Act; act.By != "ops" || act.From != "b" || act.Override.Strategy != "long" || act.Override.MaxRetries == nil ||
			*act.Override.MaxRetries != 5 || len(act.Moved) != 2 || !jsonEqual(act.Moved["b"], []byte(`{"from":"b"}`)) ||
			!jsonEqual(act.Moved["c"], []byte(`{"from":"c"}`)) {
			h.t.Fatalf("replay's act %+v; want by ops, from b, the override, b's and c's outputs moved", act)
		}
		// b runs again and its new output is the one kept.
		r = h.claimRun("r1", replayAt)
		r = h.complete(r.Claim(), retry.NodeSuccess{NodeID: "b", Output: json.RawMessage(`{"again":true}`), NextNodeID: "c", FinishedAt: replayAt.Add(time.Second)})
		if !jsonEqual(r.Context.Outputs["b"], []byte(`{"again":true}`)) || len(r.Context.Outputs) != 2 {
			h.t.Fatalf("context after b ran again: %s; want a's output and b's new one", show(r.Context))
		}
		// A replay without options clears the override.
		h.fail(r.Claim(), retry.FailureRecord{NodeID: "c", FinishedAt: replayAt.Add(2 * time.Second)})
		if got, err = op.ReplayWith(h.ctx, "r1", retry.ReplayOptions{}, replayAt.Add(time.Minute)); err != nil || !got.Override.IsZero() || got.CurrentNodeID != "c" {
			h.t.Fatalf("ReplayWith(no options) = %+v, %v; want the override cleared, at c", got, err)
		}
	}},
	{"ReplayWith/NotReached", func(h *harness) {
		op := h.operator()
		r := h.createClaimed("r1", at(0))
		r = h.complete(r.Claim(), retry.NodeSuccess{NodeID: "a", NextNodeID: "b", FinishedAt: at(time.Second)})
		h.fail(r.Claim(), retry.FailureRecord{NodeID: "b", FinishedAt: at(2 * time.Second)})
		before := h.get("r1")
		_, err := op.ReplayWith(h.ctx, "r1", retry.ReplayOptions{From: "z"}, at(time.Hour))
		h.expectErr("ReplayWith from a node the run never reached", err, retry.ErrInvalidArgument)
		h.unchanged("a refused ReplayWith", before, 2)
		got, err := op.ReplayWith(h.ctx, "r1", retry.ReplayOptions{From: "b"}, at(time.Hour))
		if err != nil || got.CurrentNodeID != "b" || !sameContext(got.Context, before.Context) {
			h.t.Fatalf("ReplayWith from the current node = %+v, %v; want at b, the context unchanged", got, err)
		}
		if as := h.attemptsN("r1", 3); as[2].Act == nil || len(as[2].Act.Moved) != 0 {
			h.t.Fatalf("replay from the current node moved %+v; want nothing", as[2].Act)
		}
		_, err = op.ReplayWith(h.ctx, "missing", retry.ReplayOptions{}, at(time.Hour))
		h.expectErr("ReplayWith of a missing run", err, retry.ErrNotFound)
		_, err = op.ReplayWith(h.ctx, "r1", retry.ReplayOptions{}, at(time.Hour))
		h.expectErr("ReplayWith of a retrying run", err, retry.ErrNotReplayable)
	}},
	{"Inspector/ListRunsFailureWindow", func(h *harness) {
		// Runs failing at 10 s, 20 s, 30 s, at nodes a, b, a.
		in := h.inspector()
		for i, node := range []string{"a", "b", "a"} {
			nr := newRun(fmt.Sprintf("r%d", i))
			nr.StartNodeID, nr.Lease, nr.Worker = node, time.Minute, "w"
			r := h.create(nr, at(0))
			h.fail(r.Claim(), retry.FailureRecord{NodeID: node, Class: retry.ClassRateLimit, Message: "x", FinishedAt: at(time.Duration(i+1) * 10 * time.Second)})
		}
		h.create(newRun("never-failed"), at(0))
		for _, c := range []struct {
			f    retry.RunFilter
			want []string
		}{
			{retry.RunFilter{NodeID: "a"}, []string{"never-failed", "r0", "r2"}},
			{retry.RunFilter{NodeID: "a", Status: retry.StatusFailed}, []string{"r0", "r2"}},
			{retry.RunFilter{FailedSince: at(20 * time.Second)}, []string{"r1", "r2"}},
			{retry.RunFilter{FailedUntil: at(20 * time.Second)}, []string{"r0"}},
			{retry.RunFilter{FailedSince: at(10 * time.Second), FailedUntil: at(30 * time.Second), NodeID: "a"}, []string{"r0"}},
		} {
			runs, err := in.ListRuns(h.ctx, c.f)
			if got := runIDs(runs); err != nil || !slices.Equal(got, c.want) {
				h.t.Fatalf("ListRuns(%+v) = %v, %v; want %v", c.f, got, err, c.want)
			}
		}
		_, err := in.ListRuns(h.ctx, retry.RunFilter{FailedSince: at(time.Minute), FailedUntil: at(time.Minute)})
		h.expectErr("ListRuns with an empty failure window", err, retry.ErrInvalidArgument)
	}},
}
