package retry

import (
	"encoding/json"
	"time"
)

// Run is one execution of a journey: a row of journey_runs.
//
// Times are UTC with millisecond precision as stored; a zero time means the
// column is NULL.
type Run struct {
	ID        string
	JourneyID string
	// JourneyVersion pins the definition the run started with, so a run
	// resumes on the definition it began, not on a newer one. A legacy row
	// (from before the retry schema) has none, 0, which no definition has,
	// until the cutover's adoption (storage's Store.AdoptLegacy) writes the
	// latest registered version of its journey into it.
	JourneyVersion int
	Status         Status
	// CurrentNodeID is the node the run executes next (or is executing, or
	// retrying). Empty once the run completed.
	CurrentNodeID string
	// Context is the run's input and the outputs of its completed nodes, so a
	// run resumed after a restart still has what its next node reads.
	Context RunContext

	// RetryCount counts the retries of the current node. It returns to 0
	// when a node completes, so MaxRetries bounds the retries of each node,
	// not of the whole run; the attempt history keeps every attempt.
	RetryCount int
	// MaxRetries is the most retries a node of this run may have, or
	// [Unlimited] (-1). The store enforces it whatever a policy asks for.
	MaxRetries int
	// RetryEnabled false means every failure ends the run StatusFailed.
	RetryEnabled bool
	// SnoozeCount counts the snoozes of the current node ([Snooze]): like
	// RetryCount it returns to 0 when a node completes (or the run is
	// replayed), but no policy or retry limit reads it; the executor bounds
	// it (executor.Config.MaxSnoozes).
	SnoozeCount int
	// NodeStartedAt is when the first recorded attempt of the current node
	// began (a failure or a snooze; the zero time until one is recorded),
	// kept across its retries and snoozes and cleared when a node
	// completes or the run is replayed: a policy's limit on the time a
	// node may take across its retries ([Failure].Elapsed) counts from it.
	NodeStartedAt time.Time
	// Override is what the operator's last replay changed in how the
	// run's failures are decided ([ReplayOptions]); zero for none. It lasts
	// until the run ends or is replayed again.
	Override PolicyOverride

	LastErrorMessage string
	LastErrorClass   Class
	LastErrorAt      time.Time
	// LastDelay is the delay of the retry now pending or last taken: the
	// previous delay that decorrelated jitter grows from.
	LastDelay time.Duration
	// NextRetryAt is when a StatusRetrying run is due.
	NextRetryAt time.Time
	// WakeAt is when a StatusWaiting run is due.
	WakeAt time.Time

	// AttemptCount is the number of attempts recorded for the run, all nodes
	// together: the next attempt is number AttemptCount+1.
	AttemptCount int

	// ClaimToken, ClaimedBy and LeaseExpiresAt describe the claim held on
	// the run, if any. A claim is live while LeaseExpiresAt is after now.
	ClaimToken     string
	ClaimedBy      string
	LeaseExpiresAt time.Time

	CreatedAt time.Time
	UpdatedAt time.Time
}

// DueAt returns when a waiting or retrying run is due to be woken, and false
// for a run in any other status.
func (r *Run) DueAt() (time.Time, bool) {
	switch r.Status {
	case StatusRetrying:
		return r.NextRetryAt, true
	case StatusWaiting:
		return r.WakeAt, true
	}
	return time.Time{}, false
}

// Claim returns the claim the run carries, as a store returned it from a
// claiming call. Writes under the claim pass it back.
func (r *Run) Claim() Claim {
	return Claim{RunID: r.ID, Token: r.ClaimToken, Worker: r.ClaimedBy, LeaseExpiresAt: r.LeaseExpiresAt}
}

// IdempotencyKey identifies the current node's side effect across retries:
// it is the same for every attempt of one node in one run, so an upstream can
// deduplicate a request that a retry sends again.
func (r *Run) IdempotencyKey() string { return r.ID + "/" + r.CurrentNodeID }

// RunContext is the data a run carries from node to node. It is stored as
// JSON, so its values are raw JSON documents.
type RunContext struct {
	// Input is the data the run started with (the patient record, say).
	Input json.RawMessage `json:"input,omitempty"`
	// Outputs maps each completed node's id to its output.
	Outputs map[string]json.RawMessage `json:"outputs,omitempty"`
}

// Claim is a worker's exclusive right to write to a run until
// LeaseExpiresAt. Every write under a claim is conditional on Token (and on
// the lease being live), so a worker that lost its claim changes nothing.
type Claim struct {
	RunID          string
	Token          string
	Worker         string
	LeaseExpiresAt time.Time
}

// NewRun describes a run to create.
type NewRun struct {
	// ID is the run's id; the store generates one when empty.
	ID             string
	JourneyID      string
	JourneyVersion int
	// StartNodeID is the first node to execute.
	StartNodeID string
	Input       json.RawMessage
	// MaxRetries bounds the retries of each node (the design's default is
	// 3; the caller passes its configured value): 0 means none, [Unlimited]
	// no bound.
	MaxRetries int
	// DisableRetry creates the run with retry_enabled false.
	DisableRetry bool
	// Worker and Lease, when Lease > 0, create the run claimed by Worker so
	// it starts at once; otherwise it is created unclaimed and due now, for
	// any worker to pick up.
	Worker string
	Lease  time.Duration
}

// NodeSuccess records a completed node.
type NodeSuccess struct {
	NodeID string
	// Output is stored in the run's context under NodeID.
	Output json.RawMessage
	// NextNodeID is the node to run next; empty completes the run.
	NextNodeID string
	// WakeAt, when set, parks the run StatusWaiting until then (a delay
	// node): the claim is released and the run resumes at NextNodeID.
	WakeAt time.Time
	// Budget, when its Scope is set, counts the attempt in that scope of
	// the retry budgets (only Scope and Budget.Window are read).
	Budget BudgetUse
	// StartedAt is when the attempt began. FinishedAt is the write's now:
	// the claim's lease is checked against it.
	StartedAt  time.Time
	FinishedAt time.Time
}

// FailureRecord records a failed node attempt and the decision taken on it.
type FailureRecord struct {
	NodeID  string
	Class   Class
	Message string
	// Decision is the policy's decision. When Shadow is true it is stored
	// for operators to see, but not acted on: the run ends StatusFailed.
	Decision Decision
	Shadow   bool
	// Budget, when its Key is set, charges a retry to that budget: the
	// store counts the attempt in Budget.Scope, records Budget.PauseUntil,
	// and, when the failure leaves the run retrying, defers the retry past
	// Decision.Delay if the budget has no room ([BudgetState.Apply]); the
	// attempt then records the delay given and the rule that deferred it.
	Budget BudgetUse
	// StartedAt is when the attempt began. FinishedAt is the write's now:
	// the claim's lease is checked against it and the retry is due at
	// FinishedAt + Decision.Delay.
	StartedAt  time.Time
	FinishedAt time.Time
}

// SnoozeRecord records a node that asked to run again after Delay
// ([Snooze]) instead of completing or failing.
type SnoozeRecord struct {
	NodeID string
	// Message says why (the snooze error's text); stored as the attempt's
	// error message, never as the run's last error.
	Message string
	// Delay is the wait; the run is due at FinishedAt + Delay.
	Delay time.Duration
	// StartedAt is when the attempt began. FinishedAt is the write's now:
	// the claim's lease is checked against it.
	StartedAt  time.Time
	FinishedAt time.Time
}

// Outcome is what became of one attempt.
type Outcome string

const (
	// OutcomeSucceeded: the node completed.
	OutcomeSucceeded Outcome = "succeeded"
	// OutcomeFailed: the node failed; the stored decision says what followed.
	OutcomeFailed Outcome = "failed"
	// OutcomeReplayed: an operator replayed the ended run; not a node
	// execution.
	OutcomeReplayed Outcome = "replayed"
	// OutcomeSnoozed: the node asked to run again later ([Snooze]): no
	// failure and no retry; the attempt records the delay and the reason.
	OutcomeSnoozed Outcome = "snoozed"
	// OutcomeCancelled: an operator cancelled the run; not a node
	// execution. A node in flight at that moment is not recorded: its
	// result is never written.
	OutcomeCancelled Outcome = "cancelled"
)

// PolicyOverride changes, for one run, how its failures are decided: what
// an operator asks of a replay ([ReplayOptions]). The executor applies it
// through the policy's [Overridable]; the store enforces MaxRetries as it
// enforces every run's limit.
type PolicyOverride struct {
	// Strategy, when set, names the strategy that decides every failure
	// of the run (a policy's rules that refuse a retry still apply).
	Strategy string `json:"strategy,omitempty"`
	// MaxRetries, when not nil, replaces the retry limit of each node.
	MaxRetries *int `json:"maxRetries,omitempty"`
}

// IsZero reports whether o changes nothing.
func (o PolicyOverride) IsZero() bool { return o.Strategy == "" && o.MaxRetries == nil }

// OperatorAct is what an operator did, kept with the attempt that records
// it (OutcomeReplayed, OutcomeCancelled): who, from where and with what.
type OperatorAct struct {
	// By names who acted (an operator, a tool), as the caller said.
	By string `json:"by,omitempty"`
	// From is the node a replay restarted at.
	From string `json:"from,omitempty"`
	// Override is the replay's [PolicyOverride].
	Override PolicyOverride `json:"override,omitzero"`
	// Moved holds the outputs a replay from a node took out of the run's
	// context (that node's and those of the nodes completed after it), so
	// that the replay runs them again instead of reusing them, and nothing
	// they held is lost.
	Moved map[string]json.RawMessage `json:"moved,omitempty"`
}

// Attempt is one row of the attempt history: one execution of one node (or
// an operator's replay), successes and failures alike.
type Attempt struct {
	RunID string
	// Number counts the run's attempts from 1, all nodes together.
	Number int
	NodeID string
	// NodeAttempt counts the attempts of this node from 1 (the retry count
	// before it, plus one).
	NodeAttempt int
	// Worker and ClaimToken identify who ran it: two attempts of one run
	// whose [StartedAt, FinishedAt] overlap under different tokens would
	// mean two workers ran the run at once.
	Worker     string
	ClaimToken string
	StartedAt  time.Time
	FinishedAt time.Time
	Outcome    Outcome
	// ErrorClass and ErrorMessage are empty for a success.
	ErrorClass   Class
	ErrorMessage string
	// Decision is the policy's decision on a failure; Shadow marks one that
	// was recorded but not acted on.
	Decision Decision
	Shadow   bool
	// Act is the operator's act an OutcomeReplayed or OutcomeCancelled
	// attempt records; nil for a node execution (and for replays recorded
	// before operators' acts were kept).
	Act *OperatorAct
	// Status is the run's status after this attempt, except that a failure
	// retried at once under the same claim (a zero delay) records
	// StatusRetrying while the run stays StatusInProgress: the attempt says
	// what was decided, the run who holds it.
	Status Status
}
