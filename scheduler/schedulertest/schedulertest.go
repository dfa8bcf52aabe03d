// Package schedulertest is the conformance suite for [retry.Scheduler]
// implementations. Every backend the module ships runs it, and so should
// yours:
//
//	func TestConformance(t *testing.T) {
//		schedulertest.Run(t, func(t *testing.T) schedulertest.Backend {
//			s := mybackend.New(...) // fresh and empty for every call
//			return schedulertest.Backend{Scheduler: s, Lease: mybackend.Lease}
//		})
//	}
//
// Run it under the race detector: several checks call the scheduler from
// many goroutines at once.
//
// # Time
//
// The suite drives time through the now argument of Claim, using times on
// whole milliseconds around a fixed base far from the real clock (September
// 2001), so the wall clock never decides an outcome. The one exception is
// Ready: a backend signals it by its own clock, so the Ready checks schedule
// entries due at that clock's now ([Backend.Now]) and wait, under a
// watchdog, for the signal.
//
// # Contract coverage
//
// Each sentence of the contract in retry/scheduler.go, and the checks that
// cover it:
//
//   - safe for concurrent use: ConcurrentSchedule, ConcurrentClaim,
//     ReadyUnderConcurrency, CloseDuringClaims
//   - due entries wait while consumers are busy (back-pressure):
//     LimitLeavesTheRestWaiting
//   - an unacknowledged delivery is handed out again after the lease:
//     RedeliveredAfterLease, SharedVanishedConsumer
//   - Schedule inserts: NeverEarly, OneEntryPerID; replaces the due time:
//     RescheduleLater, RescheduleEarlier; and the outstanding delivery:
//     RescheduleDelivered, StaleAckRemovesNothing
//   - BatchScheduler (skipped for a scheduler without it): ScheduleMany
//     schedules each id as Schedule would (ScheduleMany), and none when an
//     id is invalid (ScheduleManyInvalid)
//   - Cancel removes: CancelPreventsHandOut, CancelDelivered; an absent id
//     is not an error: CancelAbsent
//   - Claim hands out up to limit (every Claim), due at or before now, never
//     after (every Claim, NeverEarly), earliest first (DueOrderAcrossPages,
//     Thousands), each leased (OnceWhileUnacked)
//   - Ack removes (OnceThenAcked) unless rescheduled since
//     (StaleAckRemovesNothing)
//   - Ready signals when the time came (ReadyWhenDueNow,
//     ReadyWhenTimeComes), for an earlier entry (ReadyWhenEarlierScheduled),
//     when a lease ran out (ReadyWhenLeaseRunsOut), over the whole life
//     (ReadyKeepsComing), under concurrent Schedule and Claim
//     (ReadyUnderConcurrency), across processes (SharedReady); it is closed
//     by Close (CloseStopsEverything)
//   - Close: later calls return ErrClosed (CloseStopsEverything), nothing
//     handed out after it returns (CloseDuringClaims)
//   - SharedScheduler: entries seen by every handle (SharedSeesEntries,
//     SharedConcurrentClaim); Restore inserts only when absent
//     (RestoreOnlyWhenAbsent)
//   - LossReporter: Lost is closed by Close (LostClosedByClose)
//   - bad input changes nothing (the module's rule): BadInputChangesNothing
//
// DurableScheduler's Durable and LossReporter's signal on a loss are
// promises about the world outside the process (a restart, a flushed
// server), which a backend's own tests check (scheduler/redis kills and
// flushes a real server); the suite cannot stage them for every backend.
//
// The Ready, Restore, Lost and ScheduleMany checks, and Thousands's
// bound on a Claim loop, are also run, in this package's tests, against
// the memory scheduler broken in the way each exists to catch, and must
// fail there (broken_test.go).
//
// # Watchdog
//
// Every wait (a Ready signal, Close, a group of goroutines) is bounded by
// [Watchdog], a Claim loop that should run dry by the number of entries it
// may hand out, and every call gets a context that ends 5 × Watchdog after
// its check began: a backend that hangs fails the check instead of hanging
// the test binary.
package schedulertest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/internal/conformance"
	"github.com/journeyretry/journeyretry/retry"
)

// Watchdog bounds every wait of the suite.
const Watchdog = 10 * time.Second

// Factory returns a fresh backend. Run calls it once per check, so each
// check starts from an empty scheduler; release whatever else it holds with
// t.Cleanup. The suite closes every scheduler it is given, possibly a
// second time after a check closed it: a repeated Close may return nil or
// an error wrapping [retry.ErrClosed].
type Factory func(t *testing.T) Backend

// Backend is one fresh scheduler under test and what the suite may assume
// about it. Checks for a capability the backend does not declare are
// skipped with a message, never failed.
type Backend struct {
	// Scheduler is the handle under test: the first consumer.
	Scheduler retry.Scheduler

	// Lease is the backend's delivery lease: a delivery that is not
	// acknowledged is handed out again by a Claim whose now is at least
	// the delivering Claim's now plus Lease, and not before. Zero skips
	// the redelivery checks.
	Lease time.Duration

	// Open, when set, declares a shared backend (several processes on one
	// Redis or database): it returns another handle on the same entries,
	// as a second process would open it, to act as a second consumer.
	// Nil skips the checks across handles. The suite closes what Open
	// returns.
	Open func(t *testing.T) retry.Scheduler

	// Now is the clock the backend signals Ready by; default time.Now.
	Now func() time.Time
}

// base is the suite's time origin: far from the real clock, so only the now
// arguments decide what is due.
var base = time.Unix(1_000_000_000, 0).UTC()

// at returns base plus d.
func at(d time.Duration) time.Time { return base.Add(d) }

// check is one conformance check.
type check struct {
	name string
	run  func(h *harness)
}

// groups are the suite's checks, one group per behaviour area.
var groups = [][]check{
	dueChecks, onceChecks, rescheduleChecks, cancelChecks, leaseChecks,
	loadChecks, readyChecks, closeChecks, invalidChecks, sharedChecks, batchChecks,
}

// Run runs every conformance check against fresh backends from newBackend,
// each as a subtest. A check that a backend makes panic fails; it does not
// stop the others.
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
	// can run a check against a broken backend and see it fail. test is
	// the real test, which Backend.Open is given.
	t       testing.TB
	test    *testing.T
	ctx     context.Context
	backend Backend
	s       retry.Scheduler
	// wait bounds each wait for a Ready signal: Watchdog, shorter in the
	// suite's own tests of broken backends, which time out by design.
	wait time.Duration
}

func newHarness(t *testing.T, newBackend Factory) *harness {
	return harnessOn(t, t, newBackend(t))
}

// harnessOn returns a harness reporting to tb on backend b of test t.
func harnessOn(tb testing.TB, t *testing.T, b Backend) *harness {
	if b.Scheduler == nil {
		t.Fatal("factory returned a Backend without a Scheduler")
	}
	if b.Now == nil {
		b.Now = time.Now
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*Watchdog)
	t.Cleanup(cancel)
	h := &harness{t: tb, test: t, ctx: ctx, backend: b, s: b.Scheduler, wait: Watchdog}
	h.closeOnCleanup(b.Scheduler)
	return h
}

// closeOnCleanup closes s when the check ends, unless the check did.
func (h *harness) closeOnCleanup(s retry.Scheduler) {
	h.t.Cleanup(func() {
		if err := h.closeWithin(s); err != nil && !errors.Is(err, retry.ErrClosed) {
			h.t.Errorf("Close: %v", err)
		}
	})
}

// open returns a second handle on the backend, or skips the check.
func (h *harness) open() retry.Scheduler {
	h.t.Helper()
	if h.backend.Open == nil {
		h.t.Skip("backend is not shared (Backend.Open is nil): no second consumer to check")
	}
	s := h.backend.Open(h.test)
	if s == nil {
		h.t.Fatal("Backend.Open returned nil")
	}
	h.closeOnCleanup(s)
	return s
}

// lease returns the backend's lease, or skips the check.
func (h *harness) lease() time.Duration {
	h.t.Helper()
	if h.backend.Lease <= 0 {
		h.t.Skip("backend declares no lease (Backend.Lease is zero): redelivery not checked")
	}
	return h.backend.Lease
}

func (h *harness) schedule(s retry.Scheduler, id string, t time.Time) {
	h.t.Helper()
	var err error
	h.within("Schedule", func() { err = s.Schedule(h.ctx, id, t) })
	if err != nil {
		h.t.Fatalf("Schedule(%q, %v): %v", id, t, err)
	}
}

func (h *harness) cancel(s retry.Scheduler, id string) {
	h.t.Helper()
	var err error
	h.within("Cancel", func() { err = s.Cancel(h.ctx, id) })
	if err != nil {
		h.t.Fatalf("Cancel(%q): %v", id, err)
	}
}

func (h *harness) claim(s retry.Scheduler, now time.Time, limit int) []retry.Delivery {
	h.t.Helper()
	var (
		ds  []retry.Delivery
		err error
	)
	h.within("Claim", func() { ds, err = s.Claim(h.ctx, now, limit) })
	if err != nil {
		h.t.Fatalf("Claim(%v, %d): %v", now, limit, err)
	}
	if len(ds) > limit {
		h.t.Fatalf("Claim(%v, %d) returned %d deliveries, more than the limit", now, limit, len(ds))
	}
	for _, d := range ds {
		if d.At.After(now) {
			h.t.Fatalf("Claim(%v) handed out %q due at %v: after now", now, d.ID, d.At)
		}
		if d.Token == "" {
			h.t.Fatalf("Claim handed out %q with an empty token", d.ID)
		}
	}
	return ds
}

func (h *harness) ack(s retry.Scheduler, d retry.Delivery) {
	h.t.Helper()
	var err error
	h.within("Ack", func() { err = s.Ack(h.ctx, d) })
	if err != nil {
		h.t.Fatalf("Ack(%q): %v", d.ID, err)
	}
}

// claimAll claims at now in pages of limit until a page comes back empty,
// acknowledging each delivery, and returns the deliveries in order. It
// fails once more than most came out: a loop that should run dry does not
// spin. (A bound in time would fail a slow, correct backend: thousands of
// round trips on a loaded machine.)
func (h *harness) claimAll(s retry.Scheduler, now time.Time, limit, most int) []retry.Delivery {
	h.t.Helper()
	var all []retry.Delivery
	for {
		ds := h.claim(s, now, limit)
		if len(ds) == 0 {
			return all
		}
		for _, d := range ds {
			h.ack(s, d)
		}
		all = append(all, ds...)
		if len(all) > most {
			h.t.Fatalf("Claim(%v) still handed out entries after %d, more than were due (first: %v)", now, len(all), ids(all[:min(len(all), 5)]))
		}
	}
}

// expectNone fails if Claim at now hands anything out.
func (h *harness) expectNone(s retry.Scheduler, now time.Time, why string) {
	h.t.Helper()
	if ds := h.claim(s, now, 100); len(ds) > 0 {
		h.t.Fatalf("Claim(%v) handed out %v; want nothing: %s", now, ids(ds), why)
	}
}

// expectOne fails unless Claim at now hands out exactly id, due at due, and
// returns the delivery.
func (h *harness) expectOne(s retry.Scheduler, now time.Time, id string, due time.Time) retry.Delivery {
	h.t.Helper()
	ds := h.claim(s, now, 100)
	if len(ds) != 1 || ds[0].ID != id {
		h.t.Fatalf("Claim(%v) handed out %v; want [%s]", now, ids(ds), id)
	}
	if !ds[0].At.Equal(due) {
		h.t.Fatalf("delivery of %q has At %v; want %v", id, ds[0].At, due)
	}
	return ds[0]
}

// within runs f, a call of the backend, under the watchdog: a backend that
// blocks (ignoring its context, say) fails the check instead of hanging
// the test binary. f must not call t.Fatal: it runs on another goroutine.
func (h *harness) within(what string, f func()) {
	h.t.Helper()
	if !conformance.Within(h.t, what, Watchdog, f) {
		h.t.FailNow()
	}
}

// closeWithin closes s under the watchdog.
func (h *harness) closeWithin(s retry.Scheduler) error {
	h.t.Helper()
	var err error
	h.within("Close", func() { err = s.Close() })
	return err
}

func ids(ds []retry.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}
