package retry

import (
	"testing"
	"time"
)

func TestRunDueAt(t *testing.T) {
	retryAt, wakeAt := time.Unix(100, 0), time.Unix(200, 0)
	for _, tc := range []struct {
		s    Status
		want time.Time
		ok   bool
	}{
		{StatusRetrying, retryAt, true},
		{StatusWaiting, wakeAt, true},
		{StatusInProgress, time.Time{}, false},
		{StatusFailed, time.Time{}, false},
		{StatusCompleted, time.Time{}, false},
	} {
		r := Run{Status: tc.s, NextRetryAt: retryAt, WakeAt: wakeAt}
		if got, ok := r.DueAt(); !got.Equal(tc.want) || ok != tc.ok {
			t.Errorf("%s: DueAt = %v, %v; want %v, %v", tc.s, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRunClaimAndIdempotencyKey(t *testing.T) {
	r := Run{ID: "r1", CurrentNodeID: "sms", ClaimToken: "tok", ClaimedBy: "w1", LeaseExpiresAt: time.Unix(5, 0)}
	if c := r.Claim(); c != (Claim{RunID: "r1", Token: "tok", Worker: "w1", LeaseExpiresAt: time.Unix(5, 0)}) {
		t.Errorf("Claim = %+v", c)
	}
	k := r.IdempotencyKey()
	r.RetryCount, r.AttemptCount, r.ClaimToken = 2, 7, "other"
	if r.IdempotencyKey() != k {
		t.Error("the idempotency key changed across retries of one node")
	}
	r.CurrentNodeID = "call"
	if r.IdempotencyKey() == k {
		t.Error("two nodes share an idempotency key")
	}
}
