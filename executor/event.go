package executor

import (
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// Event is one transition the executor made, or one thing it met on the
// way (a sweep, a wake-up, a failed backend call). Every event is one of
// the types below; switch on the type. Events are values: an [Observer]
// or a [Hook] may keep them.
//
// One transition can produce several events, in this order: the attempt
// as the store recorded it ([AttemptRecorded]), then what it decided, a
// [ShadowDecision] first when the mode is shadow, then one of
// [RetryScheduled] (after a [BudgetDeferred] when a retry budget deferred
// it), [NodeSnoozed], [RetriesExhausted], [RunFailed] or [RunCompleted]. An
// event about a store write follows the write (a retry's, the scheduler
// call too), so what it reports is durable.
type Event interface {
	event()
}

// Step names the node attempt an event is about.
type Step struct {
	RunID, JourneyID, NodeID string
	// NodeType is the node's type (its handler's name, or
	// [NodeTypeDelay]). Metrics label by it rather than by node id: the
	// types are the handlers a process registered, a bounded set, where
	// the node ids grow with every journey. Empty when the run's journey
	// or node is not registered here.
	NodeType string
	// NodeAttempt numbers the node's attempts from 1.
	NodeAttempt int
}

// AttemptRecorded is a node attempt as the store recorded it: one per
// attempt outcome.
type AttemptRecorded struct {
	Step
	// Duration is the node's execution time.
	Duration time.Duration
	// Err is nil for a success; Class, Decision and Shadow describe a
	// failure as recorded. Snoozed marks a snooze ([retry.Snooze]): Err is
	// the snooze, Decision.Delay its delay, Status StatusWaiting.
	Err      error
	Snoozed  bool
	Class    retry.Class
	Decision retry.Decision
	Shadow   bool
	// Status is the run's status after the attempt: a zero-delay retry
	// leaves it in progress (the worker retries at once under its claim).
	Status retry.Status
}

// Outcome names the attempt's outcome as the store's attempt history does:
// "succeeded", "snoozed", or the run's status after the failure, a
// zero-delay retry (the run kept in progress) being "retrying" like any
// other.
func (a AttemptRecorded) Outcome() string {
	switch {
	case a.Err == nil:
		return "succeeded"
	case a.Snoozed:
		return string(retry.OutcomeSnoozed)
	case a.Status == retry.StatusInProgress:
		return string(retry.StatusRetrying)
	}
	return string(a.Status)
}

// RetryScheduled is a failure the store left to be retried, after the
// scheduler was told (or the wake-up was written with the failure):
// Decision.Strategy and Decision.Delay say how. A zero delay is retried at
// once under the worker's claim.
type RetryScheduled struct {
	AttemptRecorded
	// At is when the retry is due.
	At time.Time
}

// NodeSnoozed is a node that asked to run again later ([retry.Snooze]):
// the store parked its run waiting at the same node, its retry count
// unchanged, and the scheduler was told (or the wake-up was written with
// the snooze). The snooze past Config.MaxSnoozes is not one: it ends the
// node, a [RetriesExhausted] with rule "max_snoozes".
type NodeSnoozed struct {
	AttemptRecorded
	// At is when the node runs again.
	At time.Time
}

// RetriesExhausted is a failure the policy or the store would retry no
// more (Decision.Rule says which limit): the run ended failed_max_retries,
// a dead letter.
type RetriesExhausted struct{ AttemptRecorded }

// RunFailed is a failure that ended its run failed, not retried: a
// permanent error, a class the policy does not retry, a rollout mode that
// retries nothing (Decision.Rule names it), or a journey or node this
// process does not know.
type RunFailed struct{ AttemptRecorded }

// RunCompleted is the attempt that completed its run's last node.
type RunCompleted struct{ AttemptRecorded }

// ShadowDecision is a failure recorded in shadow mode: Decision is what
// the policy would have done, recorded and not acted on (the run ended
// failed, as a [RunFailed] after this event says).
type ShadowDecision struct{ AttemptRecorded }

// RunCancelled is a run an operator cancelled ([retry.Operator.Cancel])
// while this executor held it: the lease renewal, or the write after the
// node, learnt of it (retry.ErrCancelled); the node in flight (Step) had
// its context cancelled, nothing of it was recorded, and nothing of the
// run runs afterwards. A run cancelled while no executor holds it ends
// cancelled in the store with no event.
type RunCancelled struct {
	Step
	// Duration is how long the node had run when it was cancelled.
	Duration time.Duration
}

// BudgetDeferred is a retry the shared retry budget of its error class
// deferred rather than dropped: the failure was recorded, and the retry
// is due at At, after the budget's window, instead of when the policy
// asked. It is emitted only when Config.Budget is enabled.
type BudgetDeferred struct {
	AttemptRecorded
	// Rule names the budget that deferred the retry, as the attempt
	// history records it.
	Rule string
	// At is when the deferred retry is due.
	At time.Time
}

// LeaseLost is an attempt the store did not record: the run's lease had
// expired and another worker may have taken it over, so the store, by
// contract, kept nothing of it. The node may run twice (at-least-once): a
// steady rate of these means leases too short for the nodes, or workers
// too starved to renew them.
type LeaseLost struct {
	Step
	// Duration is the node's execution time, until the loss was found.
	Duration time.Duration
	// Err wraps retry.ErrLostClaim and says where the loss was found: by
	// the lease renewal while the node ran, or by a write after it.
	Err error
}

// RunRescued is a run a sweep claimed: a lease that expired (its worker
// died or stalled) or a wake-up the scheduler missed or never had (a
// deferred or replayed run); the store does not say which. Many of them in
// a system whose scheduler and workers are healthy point at one that is
// not.
type RunRescued struct {
	RunID, JourneyID string
	// NodeID and NodeType are the node the run resumes at; NodeType is
	// empty when the journey or the node is not registered here.
	NodeID, NodeType string
}

// Swept is one sweep and the runs it caught (each also a [RunRescued]).
type Swept struct {
	Caught int
}

// Woke is a scheduler delivery as this worker took it, before the run is
// claimed: FiredAt minus At is the wake-up's lateness.
type Woke struct {
	RunID string
	// At is the time the wake-up was due; FiredAt the time the worker
	// claimed it from the scheduler.
	At, FiredAt time.Time
}

// BackendError is a store or scheduler call that failed and was logged
// rather than returned (the store or the sweeper recovers the work).
type BackendError struct {
	// Op names the call, as in the log record.
	Op  string
	Err error
}

func (AttemptRecorded) event() {}
func (RunCancelled) event()    {}
func (LeaseLost) event()       {}
func (RunRescued) event()      {}
func (Swept) event()           {}
func (Woke) event()            {}
func (BackendError) event()    {}
