// Package storetest is the conformance suite for [retry.Store]
// implementations (and [retry.Inspector], when the store offers it). Every
// store the module ships runs it, and so should yours:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Backend {
//			s := mystore.Open(...) // fresh, empty and migrated for every call
//			return storetest.Backend{Store: s}
//		})
//	}
//
// Run it under the race detector: several checks call the store from many
// goroutines at once.
//
// # Time
//
// The suite drives time through the now arguments only, around a fixed
// base far from the real clock (September 2001): it never sleeps, and the
// wall clock decides nothing. A lease expires because a later call passes a
// later now.
//
// # Contract coverage
//
// Each sentence of the contract in retry/store.go, and the checks that
// cover it:
//
//   - Create: at the start node, in progress (Create/Unclaimed); claimed
//     with a lease (Create/Claimed) or claimable at once (Create/Unclaimed);
//     a taken id refused (Create/DuplicateID); a generated id
//     (Create/GeneratedID); retry disabled (Create/DisableRetry)
//   - BatchCreator (skipped for a store without it): CreateMany creates as
//     Create does, in order (CreateMany/AsCreate, CreateMany/Many), and
//     writes nothing when an id is taken (CreateMany/DuplicateID), repeated
//     (CreateMany/RepeatedID) or a run invalid (CreateMany/Invalid),
//     naming the least such id or the run's index
//   - Get and Attempts: ErrNotFound (Get/NotFound); history in attempt
//     order (CompleteNode/Next, CompleteNode/ResetsRetryCount,
//     Replay/AfterRetries)
//   - claimable when retrying and due, waiting and due, or in progress
//     without a live lease: ClaimRun/NotClaimable, ClaimDue/NewAndWaiting,
//     Lease/ExpiryMakesClaimable, Park/WaitsUntilWakeAt; two claimers never
//     get the same run, each claim a new token: ClaimRun/NewTokenEachClaim,
//     Concurrency/ClaimDueAcrossHandles, Concurrency/ClaimRunOneWinner
//   - ClaimRun: ErrNotFound (ClaimRun/NotFound), ErrNotClaimable
//     (ClaimRun/NotClaimable), the claimed run as stored (every claim)
//   - ClaimDue: earliest due first, up to limit (ClaimDue/EarliestFirst,
//     Time/DueOrderAcrossDigits), possibly none (ClaimDue/Empty), due by an
//     earlier time than now (ClaimDue/DueByBeforeNow), each run as stored
//     (ClaimDue/ReturnsTheStoredRun); dueBy after now refused
//     (Invalid/Arguments)
//   - ExtendLease and Release: Lease/Extend, Lease/ExtendAfterExpiry,
//     Lease/Release, Lease/NotFound
//   - every write is conditional on the token and a live lease, and a lost
//     claim changes nothing: Lease/EveryWriteEveryHolder (each of the five
//     writes under a live, expired, stale and released claim),
//     Lease/EveryStatusReleases (under the claim a completed, parked,
//     retrying or failed run gave up), Lease/StaleTokenChangesNothing,
//     Lease/ExpiredClaimWritesNothing, Concurrency/Writes
//   - CompleteNode: the output stored and the claim kept (CompleteNode/Next),
//     completing (CompleteNode/Last), parking (Park/WaitsUntilWakeAt),
//     RetryCount reset (CompleteNode/ResetsRetryCount)
//   - RecordFailure: each status it decides (RecordFailure/Outcomes,
//     RecordFailure/MaxRetriesBoundary, RecordFailure/MaxRetriesZero,
//     RecordFailure/MaxRetriesUnlimited), the
//     retry's fields (RecordFailure/Retry), a zero delay keeps the claim
//     (RecordFailure/ZeroDelay*), the message truncated and free text
//     stored (RecordFailure/Truncation, RecordFailure/UnstorableText)
//   - Snooze: waiting at the same node until its wake time, RetryCount,
//     LastDelay and the last error kept, SnoozeCount counted, the claim
//     released, an OutcomeSnoozed attempt (Snooze/KeepsRetryCount);
//     SnoozeCount reset when the node completes
//     (Snooze/CountsUntilTheNodeCompletes); NodeStartedAt set by a node's
//     first failure or snooze, kept, cleared by a completion or a replay
//     (Snooze/NodeStartedAt); bad arguments refused (Snooze/Invalid)
//   - ListWakeups: retrying and waiting runs in id order, paged
//     (ListWakeups/Paged)
//   - Close: later calls return ErrClosed (Invalid/Closed)
//   - text and times every store keeps alike: Invalid/Arguments, Time/*
//   - Inspector: Inspector/CountByStatus, Inspector/RetryHistogram,
//     Inspector/TopErrors, Inspector/RetryStats, Inspector/ListRuns;
//     Replay takes the two failed statuses and refuses the others,
//     changing nothing (Replay/EveryStatus, Inspector/Replay), gives the
//     retry budget back and keeps the history (Replay/AfterRetries)
//   - Operator: Cancel takes the three statuses of a run that has not
//     ended, whoever holds it, and refuses the others, changing nothing
//     (Cancel/EveryStatus); every write under a claim it voided returns
//     ErrCancelled and ErrLostClaim and changes nothing, a claim lost
//     otherwise only ErrLostClaim (Cancel/HolderLearns); a cancelled run
//     is replayable (Cancel/Replayable); ReplayWith restarts at a node the
//     run reached, moving that node's and later outputs into the history
//     with who replayed and the override, which the run keeps
//     (ReplayWith/FromNode), refuses a node it never reached
//     (ReplayWith/NotReached); ListRuns' node and failure-window filters
//     (Inspector/ListRunsFailureWindow)
//   - retry budgets (FailureRecord.Budget, NodeSuccess.Budget): a retry
//     over the budget deferred to its slot with the rule that deferred it,
//     other classes untouched, room again after the window
//     (Budget/DefersOverTheLimit); a deferred zero delay releases the
//     claim (Budget/DeferredZeroDelayReleases); successes counted in the
//     scope raise the limit (Budget/AttemptsRaiseTheLimit); a pause holds
//     the class (Budget/PauseUntil); a lost claim charges nothing
//     (Budget/LostClaimChargesNothing); exact across handles written at
//     once (Budget/ExactAcrossHandles); a bad budget refused
//     (Budget/Invalid); BudgetInspector's counts where implemented
//
// The claim, status and replay checks, and those that could pass
// vacuously or crash on a short result, are also run, in this package's
// tests, against the in-memory store (storage/memstore) broken in the way
// each exists to catch, and must fail there (the table in broken_test.go).
//
// # Watchdog
//
// Every call of the store runs under [Watchdog], and every call gets a
// context that ends 5 × Watchdog after its check began: a store that hangs
// fails the check, naming the call, instead of hanging the test binary. A
// store that returns less than a check expects (fewer attempts, fewer
// runs) fails the check with a message naming what was missing; a check
// the store makes panic fails alone, and the others still run.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/internal/conformance"
	"github.com/journeyretry/journeyretry/retry"
)

// Watchdog bounds every check.
const Watchdog = 30 * time.Second

// Factory returns a fresh backend. Run calls it once per check, so each
// check starts from an empty store; release whatever else it holds with
// t.Cleanup. The suite closes every store it is given.
type Factory func(t *testing.T) Backend

// Backend is one fresh store under test.
type Backend struct {
	// Store is the handle under test: empty, and ready for use (migrated).
	Store retry.Store
	// Open, when set, returns another handle on the same database, as a
	// second process would open it. The suite then runs claimers across
	// handles and checks that no run is handed out twice. Nil skips those
	// checks with a message. The suite closes what Open returns.
	Open func(t *testing.T) retry.Store
}

// base is the suite's time origin, on a whole millisecond.
var base = time.Unix(1_000_000_000, 0).UTC()

// at returns base plus d.
func at(d time.Duration) time.Time { return base.Add(d) }

// lease is the lease the checks claim with.
const lease = time.Minute

type check struct {
	name string
	run  func(h *harness)
}

// groups are the suite's checks, one group per behaviour area.
var groups = [][]check{
	createChecks, batchChecks, claimChecks, leaseChecks, holderChecks, recordChecks, snoozeChecks, parkChecks,
	wakeupChecks, inspectorChecks, replayChecks, dashboardChecks, operatorChecks, concurrencyChecks, timeChecks, invalidChecks, idChecks,
	budgetChecks,
}

// Run runs every conformance check against fresh backends from newBackend,
// each as a subtest.
func Run(t *testing.T, newBackend Factory) {
	t.Helper()
	conformance.Run(t, allChecks(), func(t *testing.T) *harness { return newHarness(t, newBackend) })
}

// allChecks returns every check of groups, in order.
func allChecks() []conformance.Check[*harness] {
	return conformance.Flatten(groups, func(c check) (string, func(*harness)) { return c.name, c.run })
}

// harness wraps one backend with helpers that fail the check on an error.
type harness struct {
	// t is the check's test; a testing.TB, so that the suite's own tests
	// can run a check against a broken store and see it fail. test is the
	// real test, which Backend.Open is given.
	t       testing.TB
	test    *testing.T
	ctx     context.Context
	backend Backend
	// s is the store under test, every call of it under the watchdog.
	s *watched
}

func newHarness(t *testing.T, newBackend Factory) *harness {
	return harnessOn(t, t, newBackend(t))
}

// harnessOn returns a harness reporting to tb on backend b of test t.
func harnessOn(tb testing.TB, t *testing.T, b Backend) *harness {
	if b.Store == nil {
		t.Fatal("factory returned a Backend without a Store")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*Watchdog)
	t.Cleanup(cancel)
	h := &harness{t: tb, test: t, ctx: ctx, backend: b, s: watch(tb, b.Store)}
	h.closeOnCleanup(h.s)
	return h
}

func (h *harness) closeOnCleanup(s retry.Store) {
	h.t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, retry.ErrClosed) {
			h.t.Errorf("Close: %v", err)
		}
	})
}

// open returns another handle on the same database, or skips the check.
func (h *harness) open() retry.Store {
	h.t.Helper()
	if h.backend.Open == nil {
		h.t.Skip("backend is not shared (Backend.Open is nil): no second handle to check")
	}
	raw := h.backend.Open(h.test)
	if raw == nil {
		h.t.Fatal("Backend.Open returned nil")
	}
	s := watch(h.t, raw)
	h.closeOnCleanup(s)
	return s
}

// inspector returns the store's Inspector, or skips the check.
func (h *harness) inspector() retry.Inspector {
	h.t.Helper()
	if h.s.in == nil {
		h.t.Skip("store does not implement retry.Inspector")
	}
	return h.s
}

// operator returns the store's Operator, or skips the check.
func (h *harness) operator() retry.Operator {
	h.t.Helper()
	if _, ok := h.s.s.(retry.Operator); !ok {
		h.t.Skip("store does not implement retry.Operator")
	}
	return h.s
}

// newRun is a run description with the suite's defaults.
func newRun(id string) retry.NewRun {
	return retry.NewRun{ID: id, JourneyID: "journey", JourneyVersion: 2, StartNodeID: "a", MaxRetries: 3,
		Input: []byte(`{"patient":"p1"}`)}
}

func (h *harness) create(nr retry.NewRun, now time.Time) retry.Run {
	h.t.Helper()
	r, err := h.s.Create(h.ctx, nr, now)
	if err != nil {
		h.t.Fatalf("Create(%+v): %v", nr, err)
	}
	return r
}

func (h *harness) get(id string) retry.Run {
	h.t.Helper()
	r, err := h.s.Get(h.ctx, id)
	if err != nil {
		h.t.Fatalf("Get(%q): %v", id, err)
	}
	return r
}

func (h *harness) claimRun(id string, now time.Time) retry.Run {
	h.t.Helper()
	r, err := h.s.ClaimRun(h.ctx, id, "w1", now, lease)
	if err != nil {
		h.t.Fatalf("ClaimRun(%q, %v): %v", id, now, err)
	}
	if r.ClaimToken == "" || r.Status != retry.StatusInProgress || !r.LeaseExpiresAt.Equal(now.Add(lease)) {
		h.t.Fatalf("ClaimRun(%q) = status %s, token %q, lease %v; want in_progress, a token, lease %v",
			id, r.Status, r.ClaimToken, r.LeaseExpiresAt, now.Add(lease))
	}
	return r
}

// runInEveryStatus creates one run named for each status a run can reach
// by the Recorder's writes ("new" unclaimed and "claimed" in progress,
// "retrying" and "waiting" due in two hours, and the three ended ones),
// every write at node "a", by one second past at(0).
func (h *harness) runInEveryStatus() {
	h.t.Helper()
	h.create(newRun("new"), at(0))
	h.createClaimed("claimed", at(0))
	r := h.createClaimed("retrying", at(0))
	h.fail(r.Claim(), retryAfter("a", at(time.Second), 2*time.Hour))
	r = h.createClaimed("waiting", at(0))
	h.complete(r.Claim(), retry.NodeSuccess{NodeID: "a", NextNodeID: "b", WakeAt: at(2 * time.Hour), FinishedAt: at(time.Second)})
	r = h.createClaimed("completed", at(0))
	h.complete(r.Claim(), retry.NodeSuccess{NodeID: "a", FinishedAt: at(time.Second)})
	r = h.createClaimed("failed", at(0))
	h.fail(r.Claim(), retry.FailureRecord{NodeID: "a", FinishedAt: at(time.Second)})
	r = h.createClaimed("failed_max_retries", at(0))
	h.fail(r.Claim(), retry.FailureRecord{NodeID: "a", Decision: retry.Decision{Exhausted: true}, FinishedAt: at(time.Second)})
}

// createClaimed creates run id at now and claims it.
func (h *harness) createClaimed(id string, now time.Time) retry.Run {
	h.t.Helper()
	h.create(newRun(id), now)
	return h.claimRun(id, now)
}

func (h *harness) fail(c retry.Claim, f retry.FailureRecord) retry.Run {
	h.t.Helper()
	r, err := h.s.RecordFailure(h.ctx, c, f)
	if err != nil {
		h.t.Fatalf("RecordFailure(%s): %v", c.RunID, err)
	}
	return r
}

func (h *harness) complete(c retry.Claim, s retry.NodeSuccess) retry.Run {
	h.t.Helper()
	r, err := h.s.CompleteNode(h.ctx, c, s)
	if err != nil {
		h.t.Fatalf("CompleteNode(%s, %s): %v", c.RunID, s.NodeID, err)
	}
	return r
}

func (h *harness) attempts(id string) []retry.Attempt {
	h.t.Helper()
	as, err := h.s.Attempts(h.ctx, id)
	if err != nil {
		h.t.Fatalf("Attempts(%q): %v", id, err)
	}
	return as
}

// attemptsN returns run id's history, failing the check, with the history
// shown, unless it holds exactly n attempts: a check never indexes past
// what the store returned.
func (h *harness) attemptsN(id string, n int) []retry.Attempt {
	h.t.Helper()
	as := h.attempts(id)
	if len(as) != n {
		h.t.Fatalf("Attempts(%q) returned %d attempts; want %d: %+v", id, len(as), n, as)
	}
	return as
}

// retryAfter is a failure whose decision retries after d.
func retryAfter(node string, now time.Time, d time.Duration) retry.FailureRecord {
	return retry.FailureRecord{NodeID: node, Class: retry.ClassNetworkBlip, Message: "connection reset",
		Decision:  retry.Decision{Retry: true, Delay: d, Strategy: "short", Rule: "class:network_blip"},
		StartedAt: now.Add(-time.Second), FinishedAt: now}
}

// expectErr fails unless err wraps target.
func (h *harness) expectErr(what string, err, target error) {
	h.t.Helper()
	if !errors.Is(err, target) {
		h.t.Fatalf("%s: error %v; want one wrapping %v", what, err, target)
	}
}

// unchanged fails unless run id and its history are as before.
func (h *harness) unchanged(what string, before retry.Run, beforeAttempts int) {
	h.t.Helper()
	after := h.get(before.ID)
	if !sameRun(before, after) {
		h.t.Fatalf("%s changed the run:\nbefore %+v\nafter  %+v", what, before, after)
	}
	if n := len(h.attempts(before.ID)); n != beforeAttempts {
		h.t.Fatalf("%s changed the history: %d attempts; want %d", what, n, beforeAttempts)
	}
}

// sameRun compares runs field by field, times with Equal and the context
// by its JSON meaning.
func sameRun(a, b retry.Run) bool {
	ta := []time.Time{a.LastErrorAt, a.NextRetryAt, a.WakeAt, a.LeaseExpiresAt, a.CreatedAt, a.UpdatedAt, a.NodeStartedAt}
	tb := []time.Time{b.LastErrorAt, b.NextRetryAt, b.WakeAt, b.LeaseExpiresAt, b.CreatedAt, b.UpdatedAt, b.NodeStartedAt}
	for i := range ta {
		if !ta[i].Equal(tb[i]) {
			return false
		}
	}
	if !sameContext(a.Context, b.Context) {
		return false
	}
	a.Context, b.Context = retry.RunContext{}, retry.RunContext{}
	a.LastErrorAt, a.NextRetryAt, a.WakeAt, a.LeaseExpiresAt, a.CreatedAt, a.UpdatedAt = b.LastErrorAt, b.NextRetryAt, b.WakeAt, b.LeaseExpiresAt, b.CreatedAt, b.UpdatedAt
	a.NodeStartedAt = b.NodeStartedAt
	return reflect.DeepEqual(a, b)
}

// sameContext compares run contexts by the JSON meaning of their documents:
// a store may reformat JSON (PostgreSQL's jsonb does).
func sameContext(a, b retry.RunContext) bool {
	if !jsonEqual(a.Input, b.Input) || len(a.Outputs) != len(b.Outputs) {
		return false
	}
	for k, v := range a.Outputs {
		w, ok := b.Outputs[k]
		if !ok || !jsonEqual(v, w) {
			return false
		}
	}
	return true
}

// jsonEqual compares two JSON documents by meaning; empty equals null.
func jsonEqual(a, b []byte) bool {
	var x, y any
	if len(a) > 0 && json.Unmarshal(a, &x) != nil {
		return false
	}
	if len(b) > 0 && json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// show renders a run context for a failure message.
func show(c retry.RunContext) string {
	b, err := json.Marshal(c)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
