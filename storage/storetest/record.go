package storetest

import (
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/journeyretry/journeyretry/retry"
)

var recordChecks = []check{
	{"CompleteNode/Next", func(h *harness) {
		r := h.createClaimed("r1", at(0))
		got := h.complete(r.Claim(), retry.NodeSuccess{NodeID: "a", Output: []byte(`{"sent":true}`), NextNodeID: "b",
			StartedAt: at(time.Second), FinishedAt: at(2 * time.Second)})
		if got.Status != retry.StatusInProgress || got.CurrentNodeID != "b" || got.ClaimToken != r.ClaimToken || got.AttemptCount != 1 {
			h.t.Fatalf("after CompleteNode: status %s, node %q, token %q, attempts %d; want in_progress, b, the same token, 1",
				got.Status, got.CurrentNodeID, got.ClaimToken, got.AttemptCount)
		}
		want := retry.RunContext{Input: json.RawMessage(`{"patient":"p1"}`), Outputs: map[string]json.RawMessage{"a": json.RawMessage(`{"sent":true}`)}}
		if !sameContext(got.Context, want) || !sameRun(got, h.get("r1")) {
			h.t.Fatalf("context %s; want %s (and Get to agree)", show(got.Context), show(want))
		}
		// The claim is kept: the next node completes under it.
		got = h.complete(r.Claim(), retry.NodeSuccess{NodeID: "b", Output: []byte(`[1,2]`), NextNodeID: "c", FinishedAt: at(3 * time.Second)})
		if len(got.Context.Outputs) != 2 || !jsonEqual(got.Context.Outputs["b"], []byte(`[1,2]`)) {
			h.t.Fatalf("outputs %s; want a and b", show(got.Context))
		}
		as := h.attemptsN("r1", 2)
		if as[0].Outcome != retry.OutcomeSucceeded || as[0].NodeID != "a" || as[0].Number != 1 ||
			as[0].NodeAttempt != 1 || as[0].ClaimToken != r.ClaimToken || as[0].Worker != "w1" ||
			!as[0].StartedAt.Equal(at(time.Second)) || !as[0].FinishedAt.Equal(at(2*time.Second)) ||
			as[0].Status != retry.StatusInProgress || as[1].Number != 2 || as[1].NodeID != "b" {
			h.t.Fatalf("attempts %+v", as)
		}
	}},
	{"CompleteNode/Last", func(h *harness) {
		r := h.createClaimed("r1", at(0))
		got := h.complete(r.Claim(), retry.NodeSuccess{NodeID: "a", Output: []byte(`"done"`), FinishedAt: at(time.Second)})
		if got.Status != retry.StatusCompleted || got.ClaimToken != "" || got.CurrentNodeID != "" {
			h.t.Fatalf("after the last node: status %s, token %q, node %q; want completed, no claim, no node",
				got.Status, got.ClaimToken, got.CurrentNodeID)
		}
		if as := h.attemptsN("r1", 1); as[0].Status != retry.StatusCompleted {
			h.t.Fatalf("attempts %+v; want one, leaving the run completed", as)
		}
		if runs := h.claimDue(h.s, at(time.Hour), 10); len(runs) != 0 {
			h.t.Fatalf("a completed run was claimed: %v", runIDs(runs))
		}
	}},
	{"CompleteNode/ResetsRetryCount", func(h *harness) {
		r := h.createClaimed("r1", at(0))
		h.fail(r.Claim(), retryAfter("a", at(time.Second), time.Second))
		r = h.claimRun("r1", at(2*time.Second))
		h.fail(r.Claim(), retryAfter("a", at(3*time.Second), 2*time.Second))
		r = h.claimRun("r1", at(5*time.Second))
		if r.RetryCount != 2 || r.LastDelay != 2*time.Second {
			h.t.Fatalf("RetryCount %d, LastDelay %v; want 2, 2s", r.RetryCount, r.LastDelay)
		}
		got := h.complete(r.Claim(), retry.NodeSuccess{NodeID: "a", NextNodeID: "b", FinishedAt: at(6 * time.Second)})
		if got.RetryCount != 0 || got.LastDelay != 0 {
			h.t.Fatalf("after the node completed: RetryCount %d, LastDelay %v; want 0, 0", got.RetryCount, got.LastDelay)
		}
		as := h.attemptsN("r1", 3)
		for i, want := range []int{1, 2, 3} {
			if as[i].NodeAttempt != want || as[i].Number != i+1 {
				h.t.Fatalf("attempt %d: number %d, node attempt %d; want %d, %d", i, as[i].Number, as[i].NodeAttempt, i+1, want)
			}
		}
	}},
	{"RecordFailure/Retry", func(h *harness) {
		r := h.createClaimed("r1", at(0))
		f := retryAfter("a", at(time.Second), 1500*time.Millisecond)
		f.Class = retry.ClassRateLimit
		got := h.fail(r.Claim(), f)
		if got.Status != retry.StatusRetrying || got.RetryCount != 1 || !got.NextRetryAt.Equal(at(2500*time.Millisecond)) ||
			got.LastDelay != 1500*time.Millisecond || got.LastErrorMessage != "connection reset" ||
			got.LastErrorClass != retry.ClassRateLimit || !got.LastErrorAt.Equal(at(time.Second)) ||
			got.ClaimToken != "" || got.AttemptCount != 1 || got.CurrentNodeID != "a" {
			h.t.Fatalf("after a retried failure: %+v", got)
		}
		if !sameRun(got, h.get("r1")) {
			h.t.Fatalf("RecordFailure returned %+v but Get %+v", got, h.get("r1"))
		}
		as := h.attemptsN("r1", 1)
		want := retry.Attempt{RunID: "r1", Number: 1, NodeID: "a", NodeAttempt: 1, Worker: "w1", ClaimToken: r.ClaimToken,
			StartedAt: at(0), FinishedAt: at(time.Second), Outcome: retry.OutcomeFailed, ErrorClass: retry.ClassRateLimit,
			ErrorMessage: "connection reset", Decision: f.Decision, Status: retry.StatusRetrying}
		if !sameAttempt(as[0], want) {
			h.t.Fatalf("attempts %+v; want [%+v]", as, want)
		}
	}},
	{"RecordFailure/ZeroDelayKeepsClaim", func(h *harness) {
		// A retry at once keeps the claim, as a node completion does: the
		// run stays in progress under the same token, worker and lease
		// (not moved), nobody else claims it before that lease expires,
		// and the holder's next write needs no second claim.
		r := h.createClaimed("r1", at(0))
		got := h.fail(r.Claim(), retryAfter("a", at(time.Second), 0))
		if got.Status != retry.StatusInProgress || got.ClaimToken != r.ClaimToken || got.ClaimedBy != "w1" ||
			!got.LeaseExpiresAt.Equal(at(lease)) || got.RetryCount != 1 || !got.NextRetryAt.Equal(at(time.Second)) ||
			got.LastDelay != 0 || got.AttemptCount != 1 || got.LastErrorMessage != "connection reset" {
			h.t.Fatalf("after a zero-delay retry: %+v; want in_progress under the same claim and lease %v, retry count 1", got, at(lease))
		}
		if !sameRun(got, h.get("r1")) {
			h.t.Fatalf("RecordFailure returned %+v but Get %+v", got, h.get("r1"))
		}
		if as := h.attempts("r1"); len(as) != 1 || as[0].Status != retry.StatusRetrying || as[0].ClaimToken != r.ClaimToken {
			h.t.Fatalf("attempts %+v; want one recording retrying under the claim", as)
		}
		_, err := h.s.ClaimRun(h.ctx, "r1", "w2", at(lease-time.Millisecond), lease)
		h.expectErr("ClaimRun of a run whose zero-delay retry kept its claim", err, retry.ErrNotClaimable)
		if runs := h.claimDue(h.s, at(lease-time.Millisecond), 10); len(runs) != 0 {
			h.t.Fatalf("ClaimDue took %v under a kept claim", runIDs(runs))
		}
		ws, err := h.s.ListWakeups(h.ctx, "", 10)
		if err != nil || len(ws) != 0 {
			h.t.Fatalf("ListWakeups = %v, %v; want nothing: the run is in progress", ws, err)
		}
		// The holder retries again, extends the lease, and completes.
		got = h.fail(got.Claim(), retryAfter("a", at(2*time.Second), 0))
		c, err := h.s.ExtendLease(h.ctx, got.Claim(), at(3*time.Second), lease)
		if err != nil || got.RetryCount != 2 {
			h.t.Fatalf("ExtendLease under the kept claim: %v (retry count %d; want 2)", err, got.RetryCount)
		}
		done := h.complete(c, retry.NodeSuccess{NodeID: "a", FinishedAt: at(4 * time.Second)})
		as := h.attempts("r1")
		if done.Status != retry.StatusCompleted || len(as) != 3 || as[2].NodeAttempt != 3 || as[2].ClaimToken != r.ClaimToken {
			h.t.Fatalf("completed under the kept claim: status %s, attempts %+v; want completed, node attempt 3 under one token", done.Status, as)
		}
	}},
	{"RecordFailure/ZeroDelayClaimExpires", func(h *harness) {
		// The kept claim lasts as long as its lease: then the run is
		// claimable, under a new token, and the old one writes nothing.
		r := h.createClaimed("r1", at(0))
		old := h.fail(r.Claim(), retryAfter("a", at(time.Second), 0))
		if runs := h.claimDue(h.s, at(lease), 10); len(runs) != 1 || runs[0].ClaimToken == r.ClaimToken || runs[0].RetryCount != 1 {
			h.t.Fatalf("ClaimDue at the kept lease's expiry claimed %+v; want r1 under a new token, retry count 1", runs)
		}
		cur := h.get("r1")
		_, err := h.s.RecordFailure(h.ctx, old.Claim(), retryAfter("a", at(lease), 0))
		h.expectErr("RecordFailure under a kept claim that expired", err, retry.ErrLostClaim)
		h.unchanged("a write under an expired kept claim", cur, 1)
	}},
	{"RecordFailure/ZeroDelayEndReleases", func(h *harness) {
		// A zero-delay failure that ends the run (max retries reached)
		// releases the claim like any other end.
		nr := newRun("r1")
		nr.MaxRetries = 1
		h.create(nr, at(0))
		r := h.claimRun("r1", at(0))
		r = h.fail(r.Claim(), retryAfter("a", at(time.Second), 0))
		got := h.fail(r.Claim(), retryAfter("a", at(2*time.Second), 0))
		if got.Status != retry.StatusFailedMaxRetries || got.ClaimToken != "" || got.ClaimedBy != "" || !got.LeaseExpiresAt.IsZero() || got.RetryCount != 1 {
			h.t.Fatalf("after the last retry: %+v; want failed_max_retries, no claim, retry count 1", got)
		}
		if runs := h.claimDue(h.s, at(time.Hour), 10); len(runs) != 0 {
			h.t.Fatalf("an ended run was claimed: %v", runIDs(runs))
		}
	}},
	{"RecordFailure/Outcomes", func(h *harness) {
		for _, tc := range []struct {
			name    string
			edit    func(*retry.FailureRecord)
			disable bool
			want    retry.Status
		}{
			{"no retry", func(f *retry.FailureRecord) { f.Decision = retry.Decision{Strategy: "none", Rule: "permanent"} }, false, retry.StatusFailed},
			{"exhausted", func(f *retry.FailureRecord) { f.Decision = retry.Decision{Exhausted: true, Rule: "max_retries"} }, false, retry.StatusFailedMaxRetries},
			{"shadow", func(f *retry.FailureRecord) { f.Shadow = true }, false, retry.StatusFailed},
			{"retry disabled", func(*retry.FailureRecord) {}, true, retry.StatusFailed},
			{"exhausted with retry disabled", func(f *retry.FailureRecord) { f.Decision = retry.Decision{Exhausted: true, Rule: "max_retries"} }, true, retry.StatusFailed},
		} {
			id := strings.ReplaceAll(tc.name, " ", "-")
			nr := newRun(id)
			nr.DisableRetry = tc.disable
			h.create(nr, at(0))
			r := h.claimRun(id, at(0))
			f := retryAfter("a", at(time.Second), time.Second)
			tc.edit(&f)
			got := h.fail(r.Claim(), f)
			if got.Status != tc.want || got.RetryCount != 0 || got.ClaimToken != "" || got.LastErrorMessage != f.Message {
				h.t.Fatalf("%s: status %s, retry count %d, token %q, message %q; want %s, 0, none, %q",
					tc.name, got.Status, got.RetryCount, got.ClaimToken, got.LastErrorMessage, tc.want, f.Message)
			}
			as := h.attemptsN(id, 1)
			if as[0].Status != tc.want || as[0].Shadow != f.Shadow || as[0].Decision != f.Decision {
				h.t.Fatalf("%s: attempts %+v; want one recording the decision %+v (shadow %v)", tc.name, as, f.Decision, f.Shadow)
			}
			if _, err := h.s.ClaimRun(h.ctx, id, "w", at(time.Hour), lease); err == nil {
				h.t.Fatalf("%s: a run that ended %s was claimed", tc.name, tc.want)
			}
		}
	}},
	{"RecordFailure/MaxRetriesBoundary", func(h *harness) {
		nr := newRun("r1")
		nr.MaxRetries = 2
		h.create(nr, at(0))
		now := at(0)
		for i := range 3 {
			r := h.claimRun("r1", now)
			got := h.fail(r.Claim(), retryAfter("a", now, time.Millisecond)) // the decision always asks for a retry
			now = now.Add(time.Second)
			want, count := retry.StatusRetrying, i+1
			if i == 2 {
				want, count = retry.StatusFailedMaxRetries, 2
			}
			if got.Status != want || got.RetryCount != count {
				h.t.Fatalf("failure %d with max retries 2: status %s, retry count %d; want %s, %d", i+1, got.Status, got.RetryCount, want, count)
			}
		}
	}},
	{"RecordFailure/MaxRetriesZero", func(h *harness) {
		nr := newRun("r1")
		nr.MaxRetries = 0
		h.create(nr, at(0))
		r := h.claimRun("r1", at(0))
		if got := h.fail(r.Claim(), retryAfter("a", at(1), 0)); got.Status != retry.StatusFailedMaxRetries {
			h.t.Fatalf("max retries 0: status %s; want failed_max_retries", got.Status)
		}
	}},
	{"RecordFailure/MaxRetriesUnlimited", func(h *harness) {
		// -1 bounds nothing: the store retries as long as the decision
		// asks, and shows the limit as it was created.
		nr := newRun("r1")
		nr.MaxRetries = retry.Unlimited
		if r := h.create(nr, at(0)); r.MaxRetries != retry.Unlimited {
			h.t.Fatalf("created with max retries -1: MaxRetries %d", r.MaxRetries)
		}
		now := at(0)
		const n = 25
		for i := range n {
			r := h.claimRun("r1", now)
			got := h.fail(r.Claim(), retryAfter("a", now, time.Millisecond))
			now = now.Add(time.Second)
			if got.Status != retry.StatusRetrying || got.RetryCount != i+1 || got.MaxRetries != retry.Unlimited {
				h.t.Fatalf("failure %d with unlimited retries: status %s, retry count %d, max %d; want retrying, %d, -1",
					i+1, got.Status, got.RetryCount, got.MaxRetries, i+1)
			}
		}
		// Only the decision ends it.
		r := h.claimRun("r1", now)
		f := retryAfter("a", now, 0)
		f.Decision = retry.Decision{Exhausted: true, Rule: "max_elapsed"}
		if got := h.fail(r.Claim(), f); got.Status != retry.StatusFailedMaxRetries || got.RetryCount != n {
			h.t.Fatalf("exhausted by the decision: status %s, retry count %d; want failed_max_retries, %d", got.Status, got.RetryCount, n)
		}
	}},
	{"RecordFailure/Truncation", func(h *harness) {
		r := h.createClaimed("r1", at(0))
		msg := "x" + strings.Repeat("é", retry.MaxErrorMessageLen) // 2-byte runes: the limit falls mid-rune
		f := retryAfter("a", at(time.Second), 0)
		f.Message = msg
		got := h.fail(r.Claim(), f)
		for what, m := range map[string]string{"run": got.LastErrorMessage, "attempt": h.attemptsN("r1", 1)[0].ErrorMessage} {
			if len(m) > retry.MaxErrorMessageLen || len(m) < retry.MaxErrorMessageLen-3 || !utf8.ValidString(m) || !strings.HasPrefix(msg, m) {
				h.t.Fatalf("%s message: %d bytes, valid UTF-8 %v, prefix %v; want a valid prefix of at most %d bytes",
					what, len(m), utf8.ValidString(m), strings.HasPrefix(msg, m), retry.MaxErrorMessageLen)
			}
		}
	}},
	{"RecordFailure/UnstorableText", func(h *harness) {
		// A failure's text is stored, never rejected: NUL and invalid
		// UTF-8 (which PostgreSQL's text refuses) become U+FFFD, the same
		// on every database.
		r := h.createClaimed("r1", at(0))
		f := retryAfter("a", at(time.Second), time.Second)
		f.Message, f.Class = "nul\x00byte \xff", "custom\x00"
		f.Decision.Strategy, f.Decision.Rule = "short\x00", "re:\xfe"
		got := h.fail(r.Claim(), f)
		const msg = "nul\uFFFDbyte \uFFFD"
		a := h.attemptsN("r1", 1)[0]
		if got.LastErrorMessage != msg || a.ErrorMessage != msg || got.LastErrorClass != "custom\uFFFD" || a.ErrorClass != "custom\uFFFD" ||
			a.Decision.Strategy != "short\uFFFD" || a.Decision.Rule != "re:\uFFFD" {
			h.t.Fatalf("stored run message %q class %q, attempt %+v; want NUL and invalid UTF-8 as U+FFFD", got.LastErrorMessage, got.LastErrorClass, a)
		}
		if back := h.get("r1"); back.LastErrorMessage != msg || back.Status != retry.StatusRetrying {
			h.t.Fatalf("read back: message %q, status %s; want %q, retrying", back.LastErrorMessage, back.Status, msg)
		}
	}},
}

func sameAttempt(a, b retry.Attempt) bool {
	if !a.StartedAt.Equal(b.StartedAt) || !a.FinishedAt.Equal(b.FinishedAt) {
		return false
	}
	a.StartedAt, a.FinishedAt = b.StartedAt, b.FinishedAt
	return a == b
}
