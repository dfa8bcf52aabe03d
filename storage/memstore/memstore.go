// Package memstore is an in-memory [retry.Store] and [retry.Inspector]:
// the second reference store beside the Bun store of package storage, as
// hashicorp/raft keeps an InmemStore beside its real ones.
//
// It exists for two reasons. It passes storage/storetest, which shows that
// the suite describes the contract of retry.Store and not one database's
// behaviour; and it is a fast, dependency-free fake for unit tests of
// handlers and journeys (package retrytest builds on it). It keeps nothing
// durable: a process that uses it in production loses every run when it
// exits.
//
// Times are kept as the Bun store keeps them, UTC cut to the millisecond,
// and text by the same rules (see [retry.StorableText]), so a test that
// passes on it passes on the real store.
package memstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/journeyretry/journeyretry/internal/storecheck"
	"github.com/journeyretry/journeyretry/retry"
)

// Store is one handle on an in-memory run store, safe for concurrent use.
// Create it with [New]; [Store.Handle] opens another handle on the same
// runs, as a second process would open the same database.
type Store struct {
	data *data

	mu     sync.Mutex // guards closed
	closed bool
}

// data is what the handles of one store share.
type data struct {
	mu      sync.Mutex
	runs    map[string]*row
	budgets budgets
}

// row is one run and its history.
type row struct {
	run retry.Run
	// due is when the run is next claimable (the Bun store's due_at):
	// its creation or release, its retry or wake-up time, or the end of
	// its lease. Zero once it has ended.
	due      time.Time
	attempts []retry.Attempt
}

var (
	_ retry.Store           = (*Store)(nil)
	_ retry.Inspector       = (*Store)(nil)
	_ retry.BatchCreator    = (*Store)(nil)
	_ retry.BudgetInspector = (*Store)(nil)
)

// New returns an empty store.
func New() *Store {
	return &Store{data: &data{runs: map[string]*row{}}}
}

// Handle returns another handle on the same runs. Closing one handle does
// not close the others.
func (s *Store) Handle() *Store { return &Store{data: s.data} }

// Close closes this handle; later calls, Close included, wrap
// [retry.ErrClosed].
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("close store: %w", retry.ErrClosed)
	}
	s.closed = true
	return nil
}

// lock checks that the handle is open and ctx live, and locks the runs.
// The caller unlocks s.data.mu when it gets nil.
func (s *Store) lock(ctx context.Context, op string) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("%s: %w", op, retry.ErrClosed)
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", op, ctx.Err())
	}
	s.data.mu.Lock()
	return nil
}

// ms is t as the store keeps it: UTC, cut to the millisecond; the zero
// time stays zero.
func ms(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMilli(t.UnixMilli()).UTC()
}

func newToken() string { return rand.Text() }

// copyRun returns r with its own copy of the context, so that no caller
// shares memory with the store.
func copyRun(r retry.Run) retry.Run {
	r.Context.Input = slices.Clone(r.Context.Input)
	if r.Context.Outputs != nil {
		out := make(map[string]json.RawMessage, len(r.Context.Outputs))
		for k, v := range r.Context.Outputs {
			out[k] = slices.Clone(v)
		}
		r.Context.Outputs = out
	}
	r.Override = copyOverride(r.Override)
	return r
}

// copyOverride returns o with its own copy of MaxRetries.
func copyOverride(o retry.PolicyOverride) retry.PolicyOverride {
	if o.MaxRetries != nil {
		n := *o.MaxRetries
		o.MaxRetries = &n
	}
	return o
}

// copyAttempts returns as with their own copies of the operator acts.
func copyAttempts(as []retry.Attempt) []retry.Attempt {
	as = slices.Clone(as)
	for i, a := range as {
		if a.Act != nil {
			act := *a.Act
			act.Override, act.Moved = copyOverride(act.Override), maps.Clone(act.Moved)
			as[i].Act = &act
		}
	}
	return as
}

// Create inserts a run; see [retry.Runs].
func (s *Store) Create(ctx context.Context, nr retry.NewRun, now time.Time) (retry.Run, error) {
	r, err := newRow(nr, now)
	if err != nil {
		return retry.Run{}, fmt.Errorf("create run: %w", err)
	}
	if err := s.lock(ctx, "create run"); err != nil {
		return retry.Run{}, err
	}
	defer s.data.mu.Unlock()
	if _, taken := s.data.runs[r.run.ID]; taken {
		return retry.Run{}, fmt.Errorf("create run: %w: %s", retry.ErrDuplicateRun, retry.QuoteID(r.run.ID))
	}
	s.data.runs[r.run.ID] = r
	return copyRun(r.run), nil
}

// CreateMany inserts runs all or nothing; see [retry.BatchCreator].
func (s *Store) CreateMany(ctx context.Context, nrs []retry.NewRun, now time.Time) ([]retry.Run, error) {
	rows := make([]*row, len(nrs))
	for i, nr := range nrs {
		r, err := newRow(nr, now)
		if err != nil {
			return nil, fmt.Errorf("create runs: run %d: %w", i, err)
		}
		rows[i] = r
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.run.ID
	}
	slices.Sort(ids)
	for i := 1; i < len(ids); i++ {
		if ids[i] == ids[i-1] {
			return nil, fmt.Errorf("create runs: %w: %s given twice", retry.ErrDuplicateRun, retry.QuoteID(ids[i]))
		}
	}
	if err := s.lock(ctx, "create runs"); err != nil {
		return nil, err
	}
	defer s.data.mu.Unlock()
	for _, id := range ids {
		if _, taken := s.data.runs[id]; taken {
			return nil, fmt.Errorf("create runs: %w: %s", retry.ErrDuplicateRun, retry.QuoteID(id))
		}
	}
	if len(rows) == 0 {
		return nil, nil
	}
	out := make([]retry.Run, len(rows))
	for i, r := range rows {
		s.data.runs[r.run.ID] = r
		out[i] = copyRun(r.run)
	}
	return out, nil
}

// newRow checks nr and returns the row Create inserts for it at now.
func newRow(nr retry.NewRun, now time.Time) (*row, error) {
	if err := storecheck.NewRun(nr, now); err != nil {
		return nil, err
	}
	id := nr.ID
	if id == "" {
		id = uuid.Must(uuid.NewV7()).String()
	}
	now = ms(now)
	r := &row{due: now, run: retry.Run{
		ID: id, JourneyID: nr.JourneyID, JourneyVersion: nr.JourneyVersion, Status: retry.StatusInProgress,
		CurrentNodeID: nr.StartNodeID, Context: retry.RunContext{Input: slices.Clone(nr.Input)},
		MaxRetries: nr.MaxRetries, RetryEnabled: !nr.DisableRetry, CreatedAt: now, UpdatedAt: now,
	}}
	if nr.Lease > 0 {
		r.due = ms(now.Add(nr.Lease))
		r.run.ClaimToken, r.run.ClaimedBy, r.run.LeaseExpiresAt = newToken(), nr.Worker, r.due
	}
	return r, nil
}

// Get returns the run, or an error wrapping [retry.ErrNotFound].
func (s *Store) Get(ctx context.Context, id string) (retry.Run, error) {
	if err := storecheck.RunID(id); err != nil {
		return retry.Run{}, fmt.Errorf("get run: %w", err)
	}
	if err := s.lock(ctx, "get run"); err != nil {
		return retry.Run{}, err
	}
	defer s.data.mu.Unlock()
	r, ok := s.data.runs[id]
	if !ok {
		return retry.Run{}, fmt.Errorf("get run %s: %w", retry.QuoteID(id), retry.ErrNotFound)
	}
	return copyRun(r.run), nil
}

// Attempts returns the run's attempt history in attempt order.
func (s *Store) Attempts(ctx context.Context, runID string) ([]retry.Attempt, error) {
	if err := storecheck.RunID(runID); err != nil {
		return nil, fmt.Errorf("attempts: %w", err)
	}
	if err := s.lock(ctx, "attempts"); err != nil {
		return nil, err
	}
	defer s.data.mu.Unlock()
	r, ok := s.data.runs[runID]
	if !ok {
		return nil, fmt.Errorf("attempts of %s: %w", retry.QuoteID(runID), retry.ErrNotFound)
	}
	return copyAttempts(r.attempts), nil
}

// claimable reports whether r may be claimed by a claimer of what was due
// at dueBy.
func (r *row) claimable(dueBy time.Time) bool {
	switch r.run.Status {
	case retry.StatusInProgress, retry.StatusRetrying, retry.StatusWaiting:
		return !r.due.IsZero() && !r.due.After(ms(dueBy))
	}
	return false
}

// claim claims r for worker at now.
func (r *row) claim(worker string, now time.Time, lease time.Duration) {
	until := ms(now.Add(lease))
	r.run.Status, r.run.ClaimToken, r.run.ClaimedBy, r.run.LeaseExpiresAt = retry.StatusInProgress, newToken(), worker, until
	r.due, r.run.UpdatedAt = until, ms(now)
}

// release gives r's claim up.
func (r *row) release() {
	r.run.ClaimToken, r.run.ClaimedBy, r.run.LeaseExpiresAt = "", "", time.Time{}
}

// refused tells why an operation on run id conditional on its status did
// nothing. The caller holds s.data.mu.
func (s *Store) refused(id string, sentinel error) error {
	r, ok := s.data.runs[id]
	if !ok {
		return fmt.Errorf("run %s: %w", retry.QuoteID(id), retry.ErrNotFound)
	}
	return fmt.Errorf("run %s is %s: %w", retry.QuoteID(id), r.run.Status, sentinel)
}

// ClaimRun claims run id; see [retry.Claimer].
func (s *Store) ClaimRun(ctx context.Context, id, worker string, now time.Time, lease time.Duration) (retry.Run, error) {
	if err := cmp.Or(storecheck.RunID(id), storecheck.CheckIDs("worker", worker)); err != nil {
		return retry.Run{}, fmt.Errorf("claim run: %w", err)
	}
	if err := storecheck.Lease(now, lease); err != nil {
		return retry.Run{}, fmt.Errorf("claim run %s: %w", retry.QuoteID(id), err)
	}
	if err := s.lock(ctx, "claim run"); err != nil {
		return retry.Run{}, err
	}
	defer s.data.mu.Unlock()
	r, ok := s.data.runs[id]
	if !ok || !r.claimable(now) {
		return retry.Run{}, fmt.Errorf("claim run: %w", s.refused(id, retry.ErrNotClaimable))
	}
	r.claim(worker, now, lease)
	return copyRun(r.run), nil
}

// ClaimDue claims up to limit runs claimable at dueBy, earliest due first
// (ties in id order); see [retry.Claimer].
func (s *Store) ClaimDue(ctx context.Context, worker string, dueBy, now time.Time, lease time.Duration, limit int) ([]retry.Run, error) {
	if err := storecheck.ClaimDue(worker, dueBy, now, lease, limit); err != nil {
		return nil, fmt.Errorf("claim due: %w", err)
	}
	if err := s.lock(ctx, "claim due"); err != nil {
		return nil, err
	}
	defer s.data.mu.Unlock()
	var due []*row
	for _, r := range s.data.runs {
		if r.claimable(dueBy) {
			due = append(due, r)
		}
	}
	slices.SortFunc(due, func(a, b *row) int { return cmp.Or(a.due.Compare(b.due), cmp.Compare(a.run.ID, b.run.ID)) })
	var out []retry.Run
	for _, r := range due[:min(limit, len(due))] {
		r.claim(worker, now, lease)
		out = append(out, copyRun(r.run))
	}
	return out, nil
}

// held returns the run c is a live claim on at now, or why not: the run
// does not exist, or the claim is no longer held. The caller holds
// s.data.mu.
func (s *Store) held(c retry.Claim, now time.Time) (*row, error) {
	r, ok := s.data.runs[c.RunID]
	switch {
	case !ok:
		return nil, fmt.Errorf("run %s: %w", retry.QuoteID(c.RunID), retry.ErrNotFound)
	case r.run.ClaimToken == "" || r.run.ClaimToken != c.Token || !r.run.LeaseExpiresAt.After(ms(now)):
		return nil, storecheck.Lost(c.RunID, r.run.Status)
	}
	return r, nil
}

// ExtendLease moves c's lease to now + lease; see [retry.Claimer].
func (s *Store) ExtendLease(ctx context.Context, c retry.Claim, now time.Time, lease time.Duration) (retry.Claim, error) {
	if err := storecheck.Claim(c, now); err != nil {
		return retry.Claim{}, fmt.Errorf("extend lease: %w", err)
	}
	if err := storecheck.Lease(now, lease); err != nil {
		return retry.Claim{}, fmt.Errorf("extend lease of %s: %w", retry.QuoteID(c.RunID), err)
	}
	if err := s.lock(ctx, "extend lease"); err != nil {
		return retry.Claim{}, err
	}
	defer s.data.mu.Unlock()
	r, err := s.held(c, now)
	if err != nil {
		return retry.Claim{}, fmt.Errorf("extend lease: %w", err)
	}
	until := ms(now.Add(lease))
	r.run.LeaseExpiresAt, r.due, r.run.UpdatedAt = until, until, ms(now)
	c.LeaseExpiresAt = until
	return c, nil
}

// Release gives c up, leaving the run claimable at once; see
// [retry.Claimer].
func (s *Store) Release(ctx context.Context, c retry.Claim, now time.Time) error {
	if err := storecheck.Claim(c, now); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	if err := s.lock(ctx, "release"); err != nil {
		return err
	}
	defer s.data.mu.Unlock()
	r, err := s.held(c, now)
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	r.release()
	r.due, r.run.UpdatedAt = ms(now), ms(now)
	return nil
}

// appendAttempt appends a to r's history with the numbers, worker and
// token taken from the run as it is before the write.
func (r *row) appendAttempt(a retry.Attempt) {
	a.RunID, a.Number, a.NodeAttempt = r.run.ID, r.run.AttemptCount+1, r.run.RetryCount+1
	a.Worker, a.ClaimToken = r.run.ClaimedBy, r.run.ClaimToken
	a.StartedAt, a.FinishedAt = ms(a.StartedAt), ms(a.FinishedAt)
	a.Decision.Delay = a.Decision.Delay.Truncate(time.Millisecond)
	r.attempts = append(r.attempts, a)
	r.run.AttemptCount++
}

// CompleteNode records a completed node under c; see [retry.Recorder].
func (s *Store) CompleteNode(ctx context.Context, c retry.Claim, ns retry.NodeSuccess) (retry.Run, error) {
	output, err := storecheck.Success(c, ns)
	if err != nil {
		return retry.Run{}, fmt.Errorf("complete node: %w", err)
	}
	output = slices.Clone(output)
	now := ms(ns.FinishedAt)
	if err := s.lock(ctx, "complete node"); err != nil {
		return retry.Run{}, err
	}
	defer s.data.mu.Unlock()
	r, err := s.held(c, now)
	if err != nil {
		return retry.Run{}, fmt.Errorf("complete node: %w", err)
	}
	status := retry.StatusInProgress
	switch {
	case ns.NextNodeID == "":
		status = retry.StatusCompleted
	case !ns.WakeAt.IsZero():
		status = retry.StatusWaiting
	}
	r.appendAttempt(retry.Attempt{NodeID: ns.NodeID, StartedAt: ns.StartedAt, FinishedAt: now,
		Outcome: retry.OutcomeSucceeded, Status: status})
	s.data.countAttempt(ns.Budget, now)
	if r.run.Context.Outputs == nil {
		r.run.Context.Outputs = map[string]json.RawMessage{}
	}
	r.run.Context.Outputs[ns.NodeID] = output
	r.run.Status, r.run.CurrentNodeID, r.run.RetryCount, r.run.LastDelay, r.run.UpdatedAt = status, ns.NextNodeID, 0, 0, now
	r.run.SnoozeCount, r.run.NodeStartedAt = 0, time.Time{}
	switch status {
	case retry.StatusCompleted:
		r.due = time.Time{}
		r.release()
	case retry.StatusWaiting:
		r.run.WakeAt = ms(ns.WakeAt)
		r.due = r.run.WakeAt
		r.release()
	}
	return copyRun(r.run), nil
}

// failedStatus is the status a failure leaves r in: the run's
// RetryEnabled and MaxRetries bound whatever the decision asks.
func (r *row) failedStatus(f retry.FailureRecord) retry.Status {
	switch d := f.Decision; {
	case f.Shadow || (!d.Retry && !d.Exhausted), !r.run.RetryEnabled:
		return retry.StatusFailed
	case d.Exhausted, retry.Exceeds(r.run.RetryCount, r.run.MaxRetries):
		return retry.StatusFailedMaxRetries
	}
	return retry.StatusRetrying
}

// RecordFailure records a failed attempt and its decision under c; see
// [retry.Recorder].
func (s *Store) RecordFailure(ctx context.Context, c retry.Claim, f retry.FailureRecord) (retry.Run, error) {
	// The failure's free text is stored, never rejected.
	f, err := storecheck.Failure(c, f)
	if err != nil {
		return retry.Run{}, fmt.Errorf("record failure: %w", err)
	}
	now := ms(f.FinishedAt)
	if err := s.lock(ctx, "record failure"); err != nil {
		return retry.Run{}, err
	}
	defer s.data.mu.Unlock()
	r, err := s.held(c, now)
	if err != nil {
		return retry.Run{}, fmt.Errorf("record failure: %w", err)
	}
	status := r.failedStatus(f)
	if u := f.Budget; u.Key != "" {
		s.data.countAttempt(u, now)
		f.Decision = s.data.budgetState(u.Key).Apply(u, now, status == retry.StatusRetrying, f.Decision,
			func() int64 { return s.data.windowAttempts(u.Scope, u.Budget, now) })
	}
	r.appendAttempt(retry.Attempt{NodeID: f.NodeID, StartedAt: f.StartedAt, FinishedAt: now, Outcome: retry.OutcomeFailed,
		ErrorClass: f.Class, ErrorMessage: f.Message, Decision: f.Decision, Shadow: f.Shadow, Status: status})
	r.due = time.Time{}
	if status == retry.StatusRetrying {
		r.run.RetryCount++
		r.run.NextRetryAt = ms(now.Add(f.Decision.Delay))
		r.run.LastDelay = f.Decision.Delay.Truncate(time.Millisecond)
		r.due = r.run.NextRetryAt
	}
	r.run.Status, r.run.LastErrorMessage, r.run.LastErrorClass = status, f.Message, f.Class
	r.run.LastErrorAt, r.run.UpdatedAt = now, now
	r.startNode(f.StartedAt, now)
	if status == retry.StatusRetrying && f.Decision.Delay == 0 {
		// Retried at once: the claim is kept, due when its lease ends.
		r.run.Status, r.due = retry.StatusInProgress, r.run.LeaseExpiresAt
	} else {
		r.release()
	}
	return copyRun(r.run), nil
}

// startNode records when the current node's first attempt began, unless
// an earlier attempt of it did.
func (r *row) startNode(started, finished time.Time) {
	if r.run.NodeStartedAt.IsZero() {
		r.run.NodeStartedAt = ms(storecheck.NodeStart(started, finished))
	}
}

// Snooze parks the run until its node runs again, without a failure,
// under c; see [retry.Recorder].
func (s *Store) Snooze(ctx context.Context, c retry.Claim, sn retry.SnoozeRecord) (retry.Run, error) {
	sn, err := storecheck.Snooze(c, sn)
	if err != nil {
		return retry.Run{}, fmt.Errorf("snooze: %w", err)
	}
	now := ms(sn.FinishedAt)
	if err := s.lock(ctx, "snooze"); err != nil {
		return retry.Run{}, err
	}
	defer s.data.mu.Unlock()
	r, err := s.held(c, now)
	if err != nil {
		return retry.Run{}, fmt.Errorf("snooze: %w", err)
	}
	r.appendAttempt(retry.Attempt{NodeID: sn.NodeID, StartedAt: sn.StartedAt, FinishedAt: now, Outcome: retry.OutcomeSnoozed,
		ErrorMessage: sn.Message, Decision: retry.Decision{Delay: sn.Delay}, Status: retry.StatusWaiting})
	r.startNode(sn.StartedAt, now)
	r.run.Status, r.run.WakeAt, r.run.UpdatedAt = retry.StatusWaiting, ms(now.Add(sn.Delay)), now
	r.run.SnoozeCount++
	r.due = r.run.WakeAt
	r.release()
	return copyRun(r.run), nil
}

// ListWakeups pages through the retrying and waiting runs in id order; see
// [retry.WakeupLister].
func (s *Store) ListWakeups(ctx context.Context, afterID string, limit int) ([]retry.Wakeup, error) {
	if limit < 1 {
		return nil, fmt.Errorf("list wakeups: %w", storecheck.Invalid("limit %d below 1", limit))
	}
	if err := s.lock(ctx, "list wakeups"); err != nil {
		return nil, err
	}
	defer s.data.mu.Unlock()
	var out []retry.Wakeup
	for _, r := range s.sorted(afterID) {
		if len(out) == limit {
			break
		}
		if at, ok := r.run.DueAt(); ok {
			out = append(out, retry.Wakeup{RunID: r.run.ID, Status: r.run.Status, At: at})
		}
	}
	return out, nil
}

// sorted returns the runs with ids after afterID, in id order. The caller
// holds s.data.mu.
func (s *Store) sorted(afterID string) []*row {
	var out []*row
	for _, id := range slices.Sorted(maps.Keys(s.data.runs)) {
		if id > afterID {
			out = append(out, s.data.runs[id])
		}
	}
	return out
}

// CountByStatus counts the runs in each status; see [retry.Inspector].
func (s *Store) CountByStatus(ctx context.Context) (map[retry.Status]int, error) {
	if err := s.lock(ctx, "count by status"); err != nil {
		return nil, err
	}
	defer s.data.mu.Unlock()
	counts := make(map[retry.Status]int, len(retry.Statuses))
	for _, st := range retry.Statuses {
		counts[st] = 0
	}
	for _, r := range s.data.runs {
		counts[r.run.Status]++
	}
	return counts, nil
}

// RetryHistogram maps retry counts to the number of runs not yet ended
// with that count; see [retry.Inspector].
func (s *Store) RetryHistogram(ctx context.Context) (map[int]int, error) {
	if err := s.lock(ctx, "retry histogram"); err != nil {
		return nil, err
	}
	defer s.data.mu.Unlock()
	hist := map[int]int{}
	for _, r := range s.data.runs {
		if !r.run.Status.Terminal() {
			hist[r.run.RetryCount]++
		}
	}
	return hist, nil
}

// TopErrors returns the most frequent (class, message) pairs among failed
// attempts finished in [since, until); see [retry.Inspector].
func (s *Store) TopErrors(ctx context.Context, since, until time.Time, limit int) ([]retry.ErrorCount, error) {
	if limit < 1 {
		return nil, fmt.Errorf("top errors: %w", storecheck.Invalid("limit %d below 1", limit))
	}
	if err := s.lock(ctx, "top errors"); err != nil {
		return nil, err
	}
	defer s.data.mu.Unlock()
	type key struct {
		class retry.Class
		msg   string
	}
	n := map[key]int{}
	since, until = ms(since), ms(until)
	for _, r := range s.data.runs {
		for _, a := range r.attempts {
			if a.Outcome == retry.OutcomeFailed && !a.FinishedAt.Before(since) && a.FinishedAt.Before(until) {
				n[key{a.ErrorClass, a.ErrorMessage}]++
			}
		}
	}
	var out []retry.ErrorCount
	for k, c := range n {
		out = append(out, retry.ErrorCount{Class: k.class, Message: k.msg, Count: c})
	}
	slices.SortFunc(out, func(a, b retry.ErrorCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Class, b.Class), cmp.Compare(a.Message, b.Message))
	})
	return out[:min(limit, len(out))], nil
}

// RetryStats aggregates the whole attempt history; see [retry.Inspector].
func (s *Store) RetryStats(ctx context.Context) (retry.RetryStats, error) {
	if err := s.lock(ctx, "retry stats"); err != nil {
		return retry.RetryStats{}, err
	}
	defer s.data.mu.Unlock()
	st := storecheck.NewStats()
	for _, r := range s.data.runs {
		executions := 0
		for _, a := range r.attempts {
			switch {
			case a.Outcome == retry.OutcomeReplayed:
				st.Replays++
				continue
			case a.Outcome == retry.OutcomeSnoozed:
				st.Snoozes++
			case a.Outcome == retry.OutcomeFailed && a.Shadow:
				st.ShadowDecisions++
				if a.Decision.Retry {
					st.ShadowRetriesByStrategy[a.Decision.Strategy]++
					st.ShadowRetriesByClass[a.ErrorClass]++
				}
			case a.Outcome == retry.OutcomeFailed && a.Status == retry.StatusRetrying:
				st.RetriesByStrategy[a.Decision.Strategy]++
				st.RetriesByClass[a.ErrorClass]++
			}
			executions++
		}
		st.AttemptsPerRun[executions]++
	}
	return st, nil
}

// ListRuns returns a page of runs in id order; see [retry.Inspector].
func (s *Store) ListRuns(ctx context.Context, f retry.RunFilter) ([]retry.Run, error) {
	limit, err := storecheck.Filter(f)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	if err := s.lock(ctx, "list runs"); err != nil {
		return nil, err
	}
	defer s.data.mu.Unlock()
	var out []retry.Run
	for _, r := range s.sorted(f.AfterID) {
		if len(out) == limit {
			break
		}
		if f.Keeps(r.run) {
			out = append(out, copyRun(r.run))
		}
	}
	return out, nil
}

// Replay restarts a replayable run at its current node, due at now; see
// [retry.Inspector].
func (s *Store) Replay(ctx context.Context, id string, now time.Time) (retry.Run, error) {
	return s.ReplayWith(ctx, id, retry.ReplayOptions{}, now)
}

var _ retry.Operator = (*Store)(nil)

// ReplayWith restarts a replayable run at o.From (or its current node),
// due at now, under o.Override; see [retry.Operator].
func (s *Store) ReplayWith(ctx context.Context, id string, o retry.ReplayOptions, now time.Time) (retry.Run, error) {
	if err := storecheck.Replay(id, o, now); err != nil {
		return retry.Run{}, fmt.Errorf("replay: %w", err)
	}
	now = ms(now)
	if err := s.lock(ctx, "replay"); err != nil {
		return retry.Run{}, err
	}
	defer s.data.mu.Unlock()
	r, ok := s.data.runs[id]
	if !ok || !r.run.Status.Replayable() {
		return retry.Run{}, fmt.Errorf("replay: %w", s.refused(id, retry.ErrNotReplayable))
	}
	last := map[string]int{}
	for _, a := range r.attempts {
		if a.Outcome == retry.OutcomeSucceeded {
			last[a.NodeID] = a.Number
		}
	}
	node, kept, moved, err := storecheck.ReplayFrom(copyRun(r.run), o, last)
	if err != nil {
		return retry.Run{}, fmt.Errorf("replay: %w", err)
	}
	o.Override = copyOverride(o.Override)
	r.appendAttempt(retry.Attempt{NodeID: node, FinishedAt: now, Outcome: retry.OutcomeReplayed, Status: retry.StatusRetrying,
		Act: &retry.OperatorAct{By: o.By, From: o.From, Override: o.Override, Moved: moved}})
	r.run.Status, r.run.CurrentNodeID, r.run.Context = retry.StatusRetrying, node, kept
	r.run.RetryCount, r.run.NextRetryAt, r.run.LastDelay, r.run.UpdatedAt = 0, now, 0, now
	r.run.SnoozeCount, r.run.NodeStartedAt = 0, time.Time{}
	r.run.Override = copyOverride(o.Override)
	if o.Override.MaxRetries != nil {
		r.run.MaxRetries = *o.Override.MaxRetries
	}
	r.due = now
	r.release()
	return copyRun(r.run), nil
}

// Cancel ends a run that has not ended, whoever holds it; see
// [retry.Operator].
func (s *Store) Cancel(ctx context.Context, id, by string, now time.Time) (retry.Run, error) {
	if err := storecheck.Cancel(id, by, now); err != nil {
		return retry.Run{}, fmt.Errorf("cancel: %w", err)
	}
	now = ms(now)
	if err := s.lock(ctx, "cancel"); err != nil {
		return retry.Run{}, err
	}
	defer s.data.mu.Unlock()
	r, ok := s.data.runs[id]
	if !ok || !r.run.Status.Cancellable() {
		return retry.Run{}, fmt.Errorf("cancel: %w", s.refused(id, retry.ErrNotCancellable))
	}
	r.appendAttempt(retry.Attempt{NodeID: r.run.CurrentNodeID, FinishedAt: now, Outcome: retry.OutcomeCancelled,
		Status: retry.StatusCancelled, Act: &retry.OperatorAct{By: by}})
	r.run.Status, r.run.UpdatedAt, r.due = retry.StatusCancelled, now, time.Time{}
	r.release()
	return copyRun(r.run), nil
}
