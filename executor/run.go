package executor

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// execute runs a claimed run node after node until it completes, ends, is
// parked, loses its claim, or the executor stops. It returns the run as last
// written (or as claimed, when nothing could be written).
//
// No node starts on less than half a lease, by the executor's own clock: a
// claim the store handed back that late (run, the claim the caller got) is
// released unused and the run handed to the scheduler, and a claim kept from
// the previous node or attempt is extended first. The lease renewal during
// a node keeps the rest of it live.
//
// Cancelling ctx stops a node, never a store write: a result already
// computed is written (or found lost) rather than left half way, so the
// worker always knows what the store holds.
func (e *Executor) execute(ctx context.Context, sl *slot, run retry.Run) retry.Run {
	e.stats.inFlight.Add(1)
	defer e.stats.inFlight.Add(-1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(e.hardCtx, cancel)
	defer stop()

	claim := run.Claim()
	j := e.journey(run.JourneyID, run.JourneyVersion)
	for fresh := true; ; fresh = false {
		var n *Node
		if j != nil {
			n = j.byID[run.CurrentNodeID]
		}
		if n == nil {
			return e.endMissing(ctx, run, claim, j == nil)
		}
		var ok bool
		if claim, ok = e.halfLease(ctx, sl, run, claim, n, fresh); !ok {
			return run
		}
		started := e.now()
		out, renewed, err := e.runNode(ctx, run, claim, n)
		claim = renewed
		if errors.Is(err, retry.ErrLostClaim) {
			e.lostClaim(LeaseLost{Step: step(run, n), Duration: e.now().Sub(started), Err: err})
			return run
		}
		if err != nil && ctx.Err() != nil {
			// Stopped (shutdown grace period over, or the caller gave
			// up): the node result is unknown; hand the run back.
			e.releaseClaim(claim)
			return run
		}
		if d, ok := retry.RequestedSnooze(err); ok && !retry.Exceeds(run.SnoozeCount, e.cfg.MaxSnoozes) {
			return e.snooze(ctx, sl, run, claim, n, err, d, started)
		}
		if err != nil {
			next, retryNow := e.fail(ctx, sl, run, claim, j, n, err, started)
			run = next
			if !retryNow {
				return run
			}
			claim = run.Claim()
			continue
		}
		s := retry.NodeSuccess{NodeID: n.ID, Output: out, NextNodeID: n.next(out), StartedAt: started, Budget: e.cfg.Budget.use("", n.Type)}
		s.FinishedAt = e.now()
		if n.Type == NodeTypeDelay {
			s.WakeAt = s.FinishedAt.Add(n.delay)
		}
		if s.NextNodeID == "" || n.Type == NodeTypeDelay { // the run ends or waits
			sl.claimAhead()
		}
		written, scheduled, err := e.completeNode(context.WithoutCancel(ctx), claim, s)
		if errors.Is(err, retry.ErrInvalidArgument) {
			// The store refuses the output (not JSON, or JSON it cannot
			// hold): the handler's fault, and running it again would
			// loop. The node fails for good; an operator can replay it.
			err = retry.Permanent(retry.WithClass(fmt.Errorf("node %s: output not stored: %w", n.ID, err), retry.ClassMalformedNode))
			run, _ = e.fail(ctx, sl, run, claim, j, n, err, started)
			return run
		}
		ev := AttemptRecorded{Step: step(run, n), Duration: s.FinishedAt.Sub(started), Status: written.Status}
		if err != nil {
			e.writeFailed(ev.Step, ev.Duration, "complete node", err)
			return run
		}
		e.stats.succeeded.Add(1)
		e.emit(ev)
		if written.Status == retry.StatusCompleted {
			e.emit(RunCompleted{ev})
		}
		run = written
		if run.Status == retry.StatusWaiting {
			if !scheduled { // else its wake-up was committed with the wait
				e.schedule(ctx, sl, run.ID, run.WakeAt)
			}
			return run
		}
		if run.Status != retry.StatusInProgress {
			return run
		}
		if e.stopped() || ctx.Err() != nil {
			e.releaseClaim(claim)
			return run
		}
	}
}

// halfLease makes sure claim has at least half a lease left before node n
// runs: a fresh claim that has not is released (counted in Stats.ShortClaims)
// and the run scheduled at once, so that a later claim, with a whole lease,
// runs it; a kept one is extended, and released the same way when the
// extension itself comes back with less than half a lease left (the
// store answered late: the lease runs from the time it was asked for). ok
// is false when the node must not run.
func (e *Executor) halfLease(ctx context.Context, sl *slot, run retry.Run, claim retry.Claim, n *Node, fresh bool) (retry.Claim, bool) {
	if e.leftHalf(claim) {
		return claim, true
	}
	if !fresh {
		c, err := e.store.ExtendLease(context.WithoutCancel(ctx), claim, e.now(), e.cfg.Lease)
		if err != nil {
			e.writeFailed(step(run, n), 0, "extend lease", err)
			return claim, false
		}
		if e.leftHalf(c) {
			return c, true
		}
		claim = c
	}
	e.stats.short.Add(1)
	e.releaseClaim(claim)
	if !e.stopped() {
		e.schedule(ctx, sl, run.ID, e.now())
	}
	return claim, false
}

// leftHalf reports whether claim has at least half a lease left by the
// executor's clock.
func (e *Executor) leftHalf(claim retry.Claim) bool {
	return claim.LeaseExpiresAt.Sub(e.now()) >= e.cfg.Lease/2
}

// runNode executes one node under its timeout, renewing the lease while it
// runs. It returns the (renewed) claim; a lost lease is retry.ErrLostClaim.
//
// The handler runs in a goroutine of its own, so that one that ignores its
// context is not waited for; this goroutine waits for it and renews the
// lease in between, one renewal at a time.
func (e *Executor) runNode(ctx context.Context, run retry.Run, claim retry.Claim, n *Node) (json.RawMessage, retry.Claim, error) {
	e.stats.attempts.Add(1)
	if n.Type == NodeTypeDelay {
		return nil, claim, nil
	}
	e.mu.RLock()
	h := e.handlers[n.Type]
	e.mu.RUnlock()
	timeout := n.Timeout
	if timeout == 0 {
		timeout = e.cfg.NodeTimeout
	}
	nctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	run.LeaseExpiresAt = claim.LeaseExpiresAt // as extended before the node
	in := NodeInput{
		Run: run, Node: *n, Config: n.Config, Context: run.Context,
		IdempotencyKey: run.IdempotencyKey(),
		Attempt:        run.RetryCount + 1, RunAttempt: run.AttemptCount + 1,
	}
	type result struct {
		out json.RawMessage
		err error
	}
	// The first renewal is timed now, not once the handler has started:
	// by then it may have moved the clock.
	renew := time.NewTimer(e.renewIn(claim))
	defer renew.Stop()
	ch := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				ch <- result{err: fmt.Errorf("node %s panicked: %v", n.ID, p)}
			}
		}()
		out, err := h.Execute(nctx, in)
		ch <- result{out, err}
	}()
	var (
		r        result
		returned = true
		lost     error // the renewal's ErrLostClaim (and ErrCancelled, for a cancelled run)
	)
wait:
	for {
		select {
		case r = <-ch:
			break wait
		case <-nctx.Done(): // a handler that ignores its context is not waited for
			r.err, returned = nctx.Err(), false
			break wait
		case <-renew.C:
		}
		c, err := e.store.ExtendLease(context.WithoutCancel(nctx), claim, e.now(), e.cfg.Lease)
		next := e.cfg.Lease / 10 // a failed write is tried again soon
		switch {
		case err == nil:
			claim = c
			next = e.renewIn(c)
		case errors.Is(err, retry.ErrLostClaim):
			lost = err
			cancel()
		default:
			e.backendError("extend lease", err, "run", run.ID)
		}
		renew.Reset(next)
	}
	switch {
	case lost != nil:
		return nil, claim, fmt.Errorf("node %s: %w", n.ID, lost)
	case ctx.Err() != nil && !(returned && r.err == nil):
		// Stopped: the node did not finish. A success that came back
		// just as ctx ended is kept (below), so the node is not run again.
		return nil, claim, cmpErr(r.err, ctx.Err())
	case r.err != nil && errors.Is(nctx.Err(), context.DeadlineExceeded):
		return nil, claim, retry.WithClass(fmt.Errorf("node %s: timed out after %s: %w", n.ID, timeout, r.err), retry.ClassTimeout)
	case r.err == nil && len(r.out) == 0:
		r.out = json.RawMessage("null")
	}
	return r.out, claim, r.err
}

// renewIn is how long to wait before renewing c: until a third of the
// lease has passed since it was last set, at once if more has (a claim
// taken by a slow write, a node started late), so that a loaded machine
// still renews with two thirds of the lease to spare.
func (e *Executor) renewIn(c retry.Claim) time.Duration {
	d := c.LeaseExpiresAt.Sub(e.now()) - 2*e.cfg.Lease/3
	return min(max(d, 0), e.cfg.Lease/3)
}

// fail records a node failure and the decision on it, then tells the
// scheduler. With a zero delay the store keeps the claim (the run stays in
// progress) and fail reports retryNow: the caller retries at once under it,
// after the failure is committed, with no second claim.
//
// The policy decides with the node's elapsed time (Failure.Elapsed) from
// the start of its first attempt, this one when it is the first recorded.
// A snooze past MaxSnoozes is not the policy's to decide: the node is
// exhausted by rule "max_snoozes".
func (e *Executor) fail(ctx context.Context, sl *slot, run retry.Run, claim retry.Claim, j *Journey, n *Node, err error, started time.Time) (retry.Run, bool) {
	f := retry.NewFailure(err, run.RetryCount, run.LastDelay)
	rec := retry.FailureRecord{NodeID: n.ID, Class: f.Class, Message: f.Message, StartedAt: started, FinishedAt: e.now()}
	f.Elapsed = rec.FinishedAt.Sub(cmp.Or(run.NodeStartedAt, started))
	if _, snoozed := retry.RequestedSnooze(err); snoozed {
		rec.Decision = retry.Decision{Strategy: "none", Rule: RuleMaxSnoozes, Exhausted: true}
	} else {
		rec.Decision, rec.Shadow = e.decide(e.runPolicy(run, j, n), f)
	}
	if !rec.Shadow {
		rec.Budget = e.cfg.Budget.use(f.Class, n.Type)
		if e.cfg.Budget.PauseOnRetryAfter && f.HasRetryAfter {
			rec.Budget.PauseUntil = rec.FinishedAt.Add(f.RetryAfter)
		}
	}
	if rec.Shadow || !rec.Decision.Retry || rec.Decision.Delay > 0 { // the run ends or parks
		sl.claimAhead()
	}
	written, scheduled, werr := e.recordFailure(context.WithoutCancel(ctx), claim, rec)
	if werr != nil {
		e.writeFailed(step(run, n), rec.FinishedAt.Sub(rec.StartedAt), "record failure", werr)
		return run, false
	}
	ev := failureEvent(step(run, n), rec, err, written.Status)
	deferred := rec.Budget.Key != "" && written.Status == retry.StatusRetrying && written.LastDelay > rec.Decision.Delay.Truncate(time.Millisecond)
	if deferred { // the event says what the store recorded
		ev.Decision.Delay, ev.Decision.Rule = written.LastDelay, retry.BudgetRule(rec.Budget.Key)
		e.stats.deferred.Add(1)
	}
	e.recorded(ev)
	switch written.Status {
	case retry.StatusRetrying:
		e.stats.retries.Add(1)
		if !scheduled { // else its wake-up was committed with the failure
			e.schedule(ctx, sl, written.ID, written.NextRetryAt)
		}
		if deferred {
			e.emit(BudgetDeferred{ev, ev.Decision.Rule, written.NextRetryAt})
		}
		e.emit(RetryScheduled{ev, written.NextRetryAt})
	case retry.StatusInProgress: // a zero delay: retried at once under the kept claim
		e.stats.retries.Add(1)
		e.emit(RetryScheduled{ev, rec.FinishedAt})
		if e.stopped() || ctx.Err() != nil {
			e.releaseClaim(written.Claim())
			return written, false
		}
		e.stats.immediate.Add(1)
		return written, true
	}
	return written, false
}

// RuleMaxSnoozes is the rule of the decision that ends a node whose
// snoozes ran out (Config.MaxSnoozes).
const RuleMaxSnoozes = "max_snoozes"

// snooze records that node n asked, with err, to run again after d, and
// tells the scheduler: the run waits at the same node, its retry count
// unchanged, as a delay node's run waits.
func (e *Executor) snooze(ctx context.Context, sl *slot, run retry.Run, claim retry.Claim, n *Node, err error, d time.Duration, started time.Time) retry.Run {
	rec := retry.SnoozeRecord{NodeID: n.ID, Message: err.Error(), Delay: d, StartedAt: started, FinishedAt: e.now()}
	ev := AttemptRecorded{Step: step(run, n), Duration: rec.FinishedAt.Sub(started), Err: err, Snoozed: true,
		Decision: retry.Decision{Delay: d}}
	var (
		written   retry.Run
		scheduled bool
		werr      error
	)
	sl.claimAhead() // the run waits
	if e.txStore == nil {
		written, werr = e.store.Snooze(context.WithoutCancel(ctx), claim, rec)
	} else {
		written, werr = e.txStore.SnoozeTx(context.WithoutCancel(ctx), claim, rec, e.scheduleIn(retry.StatusWaiting, &scheduled))
	}
	if werr != nil {
		e.writeFailed(ev.Step, ev.Duration, "snooze", werr)
		return run
	}
	e.stats.snoozed.Add(1)
	ev.Status = written.Status
	e.emit(ev)
	if !scheduled { // else its wake-up was committed with the snooze
		e.schedule(ctx, sl, written.ID, written.WakeAt)
	}
	e.emit(NodeSnoozed{AttemptRecorded: ev, At: written.WakeAt})
	return written
}

// recordFailure records rec under claim. With the store and the scheduler
// on one database, a retry (which waits: a zero delay keeps the claim) is
// scheduled in the same transaction (scheduled reports it), so no crash
// between the two writes can leave the run retrying with no wake-up.
func (e *Executor) recordFailure(ctx context.Context, claim retry.Claim, rec retry.FailureRecord) (written retry.Run, scheduled bool, err error) {
	if e.txStore == nil {
		written, err = e.store.RecordFailure(ctx, claim, rec)
		return written, false, err
	}
	written, err = e.txStore.RecordFailureTx(ctx, claim, rec, e.scheduleIn(retry.StatusRetrying, &scheduled))
	return written, scheduled && err == nil, err
}

// completeNode records s under claim. With the store and the scheduler on
// one database, a delay node's wait is scheduled in the same transaction
// (scheduled reports it), as recordFailure does for a retry.
func (e *Executor) completeNode(ctx context.Context, claim retry.Claim, s retry.NodeSuccess) (written retry.Run, scheduled bool, err error) {
	if e.txStore == nil {
		written, err = e.store.CompleteNode(ctx, claim, s)
		return written, false, err
	}
	written, err = e.txStore.CompleteNodeTx(ctx, claim, s, e.scheduleIn(retry.StatusWaiting, &scheduled))
	return written, scheduled && err == nil, err
}

// scheduleIn is the TxFunc that schedules the written run's wake-up in the
// store's transaction when the write left it in status, and sets
// *scheduled to say whether it did. The store may run it more than once;
// the last run is the one committed.
func (e *Executor) scheduleIn(status retry.Status, scheduled *bool) retry.TxFunc {
	return func(ctx context.Context, tx *sql.Tx, w retry.Run) error {
		*scheduled = w.Status == status
		if !*scheduled {
			return nil
		}
		at, _ := w.DueAt()
		return e.txSched.ScheduleTx(ctx, tx, w.ID, at)
	}
}

// policyFor is the policy of node n of j (nil n: of j).
func (e *Executor) policyFor(j *Journey, n *Node) retry.Policy {
	switch {
	case n != nil && n.Policy != nil:
		return n.Policy
	case j.Policy != nil:
		return j.Policy
	}
	return e.pol
}

// runPolicy is the policy that decides run's failures at node n of j: the
// node's (see policyFor) under the run's override, when it carries one
// and the policy takes it ([retry.Overridable]). A policy that cannot
// take it decides as usual, logged: the store still enforces the run's
// MaxRetries.
func (e *Executor) runPolicy(run retry.Run, j *Journey, n *Node) retry.Policy {
	p := e.policyFor(j, n)
	if run.Override.IsZero() {
		return p
	}
	if o, ok := p.(retry.Overridable); ok {
		op, err := o.Override(run.Override)
		if err == nil {
			return op
		}
		e.cfg.Logger.Warn("policy override not applied", "run", run.ID, "node", n.ID, "err", err)
		return p
	}
	e.cfg.Logger.Warn("policy override not applied: the policy does not implement retry.Overridable", "run", run.ID, "node", n.ID)
	return p
}

// decide applies the rollout mode to the policy's decision.
func (e *Executor) decide(p retry.Policy, f retry.Failure) (retry.Decision, bool) {
	switch e.cfg.Mode {
	case ModeShadow:
		return p.Decide(f), true
	case ModeSelective:
		if el, ok := p.(retry.Eligibility); ok {
			if yes, _ := el.Eligible(f); yes {
				return p.Decide(f), false
			}
		}
		return retry.Decision{Strategy: "none", Rule: "mode:selective"}, false
	case ModeFull:
		return p.Decide(f), false
	}
	return retry.Decision{Strategy: "none", Rule: "mode:off"}, false
}

// endMissing ends a run whose definition (or current node) is gone: failed,
// class missing_journey or malformed_node, never retried.
func (e *Executor) endMissing(ctx context.Context, run retry.Run, claim retry.Claim, noJourney bool) retry.Run {
	rec := retry.FailureRecord{NodeID: run.CurrentNodeID, Class: retry.ClassMalformedNode,
		Message:  fmt.Sprintf("journey %s version %d has no node %s", retry.QuoteID(run.JourneyID), run.JourneyVersion, retry.QuoteID(run.CurrentNodeID)),
		Decision: retry.Decision{Strategy: "none", Rule: "malformed_node"}}
	if noJourney {
		rec.Class = retry.ClassMissingJourney
		rec.Message = fmt.Sprintf("journey %s version %d is not registered", retry.QuoteID(run.JourneyID), run.JourneyVersion)
		rec.Decision.Rule = "missing_journey"
	}
	rec.StartedAt = e.now()
	rec.FinishedAt = rec.StartedAt
	cause := retry.Permanent(retry.WithClass(errors.New(rec.Message), rec.Class))
	at := step(run, nil)
	written, err := e.store.RecordFailure(context.WithoutCancel(ctx), claim, rec)
	if err != nil {
		e.writeFailed(at, 0, "record failure", err)
		return run
	}
	e.recorded(failureEvent(at, rec, cause, written.Status))
	return written
}

// step names the attempt of run at node n (nil: a node this process does
// not know, of no type).
func step(run retry.Run, n *Node) Step {
	s := Step{RunID: run.ID, JourneyID: run.JourneyID, NodeID: run.CurrentNodeID, NodeAttempt: run.RetryCount + 1}
	if n != nil {
		s.NodeType = n.Type
	}
	return s
}

// failureEvent describes the failed attempt rec at s, caused by err, which
// left the run in status.
func failureEvent(s Step, rec retry.FailureRecord, err error, status retry.Status) AttemptRecorded {
	return AttemptRecorded{Step: s, Duration: rec.FinishedAt.Sub(rec.StartedAt), Err: err,
		Class: rec.Class, Decision: rec.Decision, Shadow: rec.Shadow, Status: status}
}

// recorded counts a failure the store recorded and emits it, with the
// shadow decision and the end of the run it made, if any. A retry is
// emitted by the caller once it is scheduled.
func (e *Executor) recorded(ev AttemptRecorded) {
	e.stats.failed.Add(1)
	e.emit(ev)
	if ev.Shadow {
		e.emit(ShadowDecision{ev})
	}
	switch ev.Status {
	case retry.StatusFailedMaxRetries:
		e.emit(RetriesExhausted{ev})
	case retry.StatusFailed:
		e.emit(RunFailed{ev})
	}
}

// schedule tells the scheduler that run id, which the execution in slot sl
// leaves parked, is due at at. It frees sl first: no node of the run runs
// any more, and a networked scheduler's round trip need not hold a worker.
func (e *Executor) schedule(ctx context.Context, sl *slot, id string, at time.Time) {
	sl.free()
	if err := e.sched.Schedule(ctx, id, at); err != nil {
		// The store holds the due time: Rebuild and the sweeper catch it.
		e.backendError("schedule", err, "run", id)
	}
}

// writeFailed handles a failed write of the attempt at s, which ran for d,
// under a claim: a lost claim is abandoned and reported; anything else
// leaves the run to the sweeper once the lease expires.
func (e *Executor) writeFailed(s Step, d time.Duration, what string, err error) {
	if errors.Is(err, retry.ErrLostClaim) {
		e.lostClaim(LeaseLost{Step: s, Duration: d, Err: err})
		return
	}
	e.backendError(what, err, "run", s.RunID)
}

// lostClaim counts an attempt the store did not record because its claim
// was lost (ev.Err, wrapping retry.ErrLostClaim), and emits it. A claim
// an operator's cancel voided (retry.ErrCancelled) is counted apart,
// logged and emitted as a RunCancelled: nothing was lost that the operator
// did not ask for.
func (e *Executor) lostClaim(ev LeaseLost) {
	if errors.Is(ev.Err, retry.ErrCancelled) {
		e.stats.cancelled.Add(1)
		e.cfg.Logger.Info("run cancelled by an operator: node stopped, its result not recorded", "run", ev.RunID, "node", ev.NodeID)
		e.emit(RunCancelled{Step: ev.Step, Duration: ev.Duration})
		e.waiters.wake(ev.RunID)
		return
	}
	e.stats.lost.Add(1)
	e.emit(ev)
}

// releaseClaim gives a claim back at shutdown so another worker resumes the
// run at once; its error joins Run's.
func (e *Executor) releaseClaim(c retry.Claim) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.store.Release(ctx, c, e.now()); err != nil && !errors.Is(err, retry.ErrLostClaim) {
		e.addErr(fmt.Errorf("release %s: %w", retry.QuoteID(c.RunID), err))
	}
}
