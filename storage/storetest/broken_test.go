package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/internal/conformance"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage/memstore"
)

// Each check the suite gained, and each that once passed vacuously or
// crashed, is shown failing on the in-memory store broken in exactly the
// way the check exists to catch.
func TestChecksCatchBrokenStores(t *testing.T) {
	for _, tc := range []struct {
		check, broken string
		store         func() retry.Store
	}{
		{"Lease/EveryWriteEveryHolder", "Release ignores the lease's end", func() retry.Store { return releaseIgnoresExpiry{memstore.New()} }},
		{"Lease/EveryWriteEveryHolder", "CompleteNode ignores the lease's end", func() retry.Store { return completeIgnoresExpiry{memstore.New()} }},
		{"Lease/EveryWriteEveryHolder", "ExtendLease extends whoever holds the run", func() retry.Store { return extendsAnyHolder{memstore.New()} }},
		{"Lease/EveryStatusReleases", "a claim outlives the run's end", func() retry.Store { return newKeepsEndedClaims() }},
		{"Replay/EveryStatus", "Replay accepts any status", func() retry.Store { return replaysAnything{memstore.New()} }},
		{"Replay/AfterRetries", "Replay keeps the retry count", func() retry.Store { return replayKeepsCount{memstore.New()} }},
		{"Cancel/EveryStatus", "Cancel ends a run but keeps its claim", func() retry.Store { return cancelKeepsClaim{memstore.New()} }},
		{"Cancel/HolderLearns", "a voided claim reads as merely lost", func() retry.Store { return hidesCancel{memstore.New()} }},
		{"ReplayWith/FromNode", "ReplayWith ignores From", func() retry.Store { return replayIgnoresFrom{memstore.New()} }},
		{"Snooze/KeepsRetryCount", "Snooze records a retried failure", func() retry.Store { return snoozeRetries{memstore.New()} }},
		{"RecordFailure/MaxRetriesUnlimited", "-1 enforced as no retry", func() retry.Store { return unlimitedIsZero{memstore.New()} }},
		{"Budget/DefersOverTheLimit", "RecordFailure ignores the budget", func() retry.Store { return ignoresBudget{memstore.New()} }},
		{"Budget/AttemptsRaiseTheLimit", "successes are not counted", func() retry.Store { return successesUncounted{memstore.New()} }},
		{"ClaimDue/ReturnsTheStoredRun", "ClaimDue returns nothing", func() retry.Store { return claimsNothing{memstore.New()} }},
		{"RecordFailure/Truncation", "Attempts returns no history", func() retry.Store { return noHistory{memstore.New()} }},
		{"CreateMany/DuplicateID", "CreateMany keeps the runs before a taken id", func() retry.Store { return createsOneByOne{memstore.New()} }},
		{"CreateMany/Invalid", "CreateMany keeps the runs before an invalid one", func() retry.Store { return createsOneByOne{memstore.New()} }},
	} {
		t.Run(tc.check+"/"+tc.broken, func(t *testing.T) {
			c := conformance.Find(t, allChecks(), tc.check)
			b := Backend{Store: tc.store()}
			msg := conformance.ExpectFailure(t, func(tb testing.TB) { c.Run(harnessOn(tb, t, b)) })
			t.Logf("%s on a store where %s: %s", tc.check, tc.broken, msg)
		})
	}
}

// createsOneByOne creates a batch's runs one Create at a time and stops at
// the first failure, keeping the runs created before it.
type createsOneByOne struct{ *memstore.Store }

func (s createsOneByOne) CreateMany(ctx context.Context, nrs []retry.NewRun, now time.Time) ([]retry.Run, error) {
	var runs []retry.Run
	for _, nr := range nrs {
		r, err := s.Create(ctx, nr, now)
		if err != nil {
			return runs, err
		}
		runs = append(runs, r)
	}
	return runs, nil
}

// releaseIgnoresExpiry checks the token but not the lease on Release.
type releaseIgnoresExpiry struct{ *memstore.Store }

func (s releaseIgnoresExpiry) Release(ctx context.Context, c retry.Claim, now time.Time) error {
	return s.Store.Release(ctx, c, c.LeaseExpiresAt.Add(-time.Millisecond))
}

// completeIgnoresExpiry checks the token but not the lease on CompleteNode.
type completeIgnoresExpiry struct{ *memstore.Store }

func (s completeIgnoresExpiry) CompleteNode(ctx context.Context, c retry.Claim, ns retry.NodeSuccess) (retry.Run, error) {
	ns.FinishedAt = c.LeaseExpiresAt.Add(-time.Millisecond)
	return s.Store.CompleteNode(ctx, c, ns)
}

// extendsAnyHolder extends the claim the run holds, whatever token it is
// given.
type extendsAnyHolder struct{ *memstore.Store }

func (s extendsAnyHolder) ExtendLease(ctx context.Context, c retry.Claim, now time.Time, lease time.Duration) (retry.Claim, error) {
	got, err := s.Store.ExtendLease(ctx, c, now, lease)
	if !errors.Is(err, retry.ErrLostClaim) {
		return got, err
	}
	r, gerr := s.Get(ctx, c.RunID)
	if gerr != nil || r.ClaimToken == "" {
		// No holder: claim the run for the caller, as an upsert would.
		if r, gerr = s.ClaimRun(ctx, c.RunID, c.Worker, now, lease); gerr != nil {
			return got, err
		}
	}
	return s.Store.ExtendLease(ctx, r.Claim(), now, lease)
}

// replaysAnything says it replayed a run in any status.
type replaysAnything struct{ *memstore.Store }

func (s replaysAnything) Replay(ctx context.Context, id string, now time.Time) (retry.Run, error) {
	r, err := s.Store.Replay(ctx, id, now)
	if errors.Is(err, retry.ErrNotReplayable) {
		r, err = s.Get(ctx, id)
		r.Status, r.NextRetryAt = retry.StatusRetrying, now
	}
	return r, err
}

// replayKeepsCount reports the retry count the run had before its replay.
type replayKeepsCount struct{ *memstore.Store }

func (s replayKeepsCount) Replay(ctx context.Context, id string, now time.Time) (retry.Run, error) {
	before, err := s.Get(ctx, id)
	if err != nil {
		return retry.Run{}, err
	}
	r, err := s.Store.Replay(ctx, id, now)
	r.RetryCount = before.RetryCount
	return r, err
}

// ignoresBudget records every failure as if it charged no budget.
type ignoresBudget struct{ *memstore.Store }

func (s ignoresBudget) RecordFailure(ctx context.Context, c retry.Claim, f retry.FailureRecord) (retry.Run, error) {
	f.Budget = retry.BudgetUse{}
	return s.Store.RecordFailure(ctx, c, f)
}

// successesUncounted counts no success in a budget's scope.
type successesUncounted struct{ *memstore.Store }

func (s successesUncounted) CompleteNode(ctx context.Context, c retry.Claim, ns retry.NodeSuccess) (retry.Run, error) {
	ns.Budget = retry.BudgetUse{}
	return s.Store.CompleteNode(ctx, c, ns)
}

// claimsNothing claims the due runs and returns none of them.
type claimsNothing struct{ *memstore.Store }

func (s claimsNothing) ClaimDue(ctx context.Context, worker string, dueBy, now time.Time, lease time.Duration, limit int) ([]retry.Run, error) {
	_, err := s.Store.ClaimDue(ctx, worker, dueBy, now, lease, limit)
	return nil, err
}

// noHistory keeps no attempt history.
type noHistory struct{ *memstore.Store }

func (s noHistory) Attempts(ctx context.Context, id string) ([]retry.Attempt, error) {
	_, err := s.Store.Attempts(ctx, id)
	return nil, err
}

// keepsEndedClaims keeps honouring the claim a run ran under after the
// write that ended, parked or retried it (as a store that forgot to clear
// the token would): writes under it succeed and change nothing.
type keepsEndedClaims struct {
	*memstore.Store
	mu    sync.Mutex
	ended map[string]bool // tokens of claims a write gave up
}

func newKeepsEndedClaims() *keepsEndedClaims {
	return &keepsEndedClaims{Store: memstore.New(), ended: map[string]bool{}}
}

func (s *keepsEndedClaims) note(c retry.Claim, r retry.Run, err error) (retry.Run, error) {
	if err == nil && r.ClaimToken == "" {
		s.mu.Lock()
		s.ended[c.Token] = true
		s.mu.Unlock()
	}
	return r, err
}

func (s *keepsEndedClaims) honoured(c retry.Claim) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended[c.Token]
}

func (s *keepsEndedClaims) CompleteNode(ctx context.Context, c retry.Claim, ns retry.NodeSuccess) (retry.Run, error) {
	if s.honoured(c) {
		return s.Get(ctx, c.RunID)
	}
	r, err := s.Store.CompleteNode(ctx, c, ns)
	return s.note(c, r, err)
}

func (s *keepsEndedClaims) RecordFailure(ctx context.Context, c retry.Claim, f retry.FailureRecord) (retry.Run, error) {
	if s.honoured(c) {
		return s.Get(ctx, c.RunID)
	}
	r, err := s.Store.RecordFailure(ctx, c, f)
	return s.note(c, r, err)
}

func (s *keepsEndedClaims) ExtendLease(ctx context.Context, c retry.Claim, now time.Time, lease time.Duration) (retry.Claim, error) {
	if s.honoured(c) {
		return c, nil
	}
	return s.Store.ExtendLease(ctx, c, now, lease)
}

func (s *keepsEndedClaims) Release(ctx context.Context, c retry.Claim, now time.Time) error {
	if s.honoured(c) {
		return nil
	}
	return s.Store.Release(ctx, c, now)
}

// cancelKeepsClaim reports a cancelled run with the claim it had.
type cancelKeepsClaim struct{ *memstore.Store }

func (s cancelKeepsClaim) Cancel(ctx context.Context, id, by string, now time.Time) (retry.Run, error) {
	before, err := s.Get(ctx, id)
	if err != nil {
		return retry.Run{}, err
	}
	r, err := s.Store.Cancel(ctx, id, by, now)
	r.ClaimToken, r.ClaimedBy, r.LeaseExpiresAt = before.ClaimToken, before.ClaimedBy, before.LeaseExpiresAt
	return r, err
}

// hidesCancel answers a write under a claim a cancel voided with a plain
// ErrLostClaim.
type hidesCancel struct{ *memstore.Store }

func (s hidesCancel) ExtendLease(ctx context.Context, c retry.Claim, now time.Time, lease time.Duration) (retry.Claim, error) {
	got, err := s.Store.ExtendLease(ctx, c, now, lease)
	if errors.Is(err, retry.ErrCancelled) {
		err = retry.ErrLostClaim
	}
	return got, err
}

// replayIgnoresFrom replays every run at its current node.
type replayIgnoresFrom struct{ *memstore.Store }

func (s replayIgnoresFrom) ReplayWith(ctx context.Context, id string, o retry.ReplayOptions, now time.Time) (retry.Run, error) {
	o.From = ""
	return s.Store.ReplayWith(ctx, id, o, now)
}

// snoozeRetries records a snooze as a failure retried after its delay: it
// counts a retry.
type snoozeRetries struct{ *memstore.Store }

func (s snoozeRetries) Snooze(ctx context.Context, c retry.Claim, sn retry.SnoozeRecord) (retry.Run, error) {
	return s.RecordFailure(ctx, c, retry.FailureRecord{NodeID: sn.NodeID, Message: sn.Message,
		Decision: retry.Decision{Retry: true, Delay: sn.Delay}, StartedAt: sn.StartedAt, FinishedAt: sn.FinishedAt})
}

// unlimitedIsZero keeps a run's limit of -1 but ends its first failure
// as if the limit were 0.
type unlimitedIsZero struct{ *memstore.Store }

func (s unlimitedIsZero) RecordFailure(ctx context.Context, c retry.Claim, f retry.FailureRecord) (retry.Run, error) {
	if r, err := s.Get(ctx, c.RunID); err == nil && r.MaxRetries == retry.Unlimited {
		f.Decision = retry.Decision{Exhausted: true, Rule: "max_retries"}
	}
	return s.Store.RecordFailure(ctx, c, f)
}
