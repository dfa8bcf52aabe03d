package retry

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxErrorMessageLen is the longest error message a store keeps, in bytes. A
// longer message is truncated (at a UTF-8 boundary), never rejected: a
// failure is always recorded.
const MaxErrorMessageLen = 4096

// Text a store keeps, the same on every database (PostgreSQL's text holds
// neither NUL nor invalid UTF-8):
//   - identifiers (run, journey, node and worker ids, claim tokens) must be
//     valid UTF-8 without NUL; any other wraps ErrInvalidArgument;
//   - free text a failure brings (message, class, strategy, rule) is never
//     rejected: NUL and invalid UTF-8 are stored as U+FFFD;
//   - JSON (a run's input, a node's output) must be valid and must not
//     hold the escape \u0000 (ErrInvalidArgument): PostgreSQL's jsonb
//     cannot store it, and a run whose context cannot be written would
//     never finish.

// StorableText reports whether s is text every store keeps as it is: valid
// UTF-8 without NUL. Stores check identifiers with it, and the executor
// checks journey and node ids when they are registered.
func StorableText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// Runs creates and reads runs.
type Runs interface {
	// Create inserts a run at nr.StartNodeID, StatusInProgress, and returns
	// it. With nr.Lease > 0 the run is claimed by nr.Worker until now +
	// Lease; otherwise it is unclaimed and immediately claimable. An id
	// already taken wraps ErrDuplicateRun.
	Create(ctx context.Context, nr NewRun, now time.Time) (Run, error)
	// Get returns the run, or an error wrapping ErrNotFound.
	Get(ctx context.Context, id string) (Run, error)
	// Attempts returns the run's attempt history in attempt order, or an
	// error wrapping ErrNotFound when the run does not exist.
	Attempts(ctx context.Context, runID string) ([]Attempt, error)
}

// BatchCreator is an optional [Store] capability: many runs created in one
// transaction, so that a batch job's thousands of starts cost a round trip
// and a commit per batch, not per run. The executor finds it with a type
// assertion (Executor.StartMany) and creates the runs one at a time on a
// store without it.
type BatchCreator interface {
	// CreateMany creates each of nrs as [Runs.Create] would, all at now,
	// in one transaction, and returns them in the order of nrs (nil for
	// none). It writes all or nothing: a NewRun Create would refuse wraps
	// ErrInvalidArgument naming its index; an id that nrs holds twice, or
	// that the store already holds, wraps ErrDuplicateRun naming it (the
	// least in byte order of those nrs repeats if any, else of those the
	// store holds). Either way no run of nrs is written, and the existing
	// runs are untouched. The caller bounds len(nrs): one transaction
	// holds them all.
	CreateMany(ctx context.Context, nrs []NewRun, now time.Time) ([]Run, error)
}

// Claimer hands out exclusive claims. A run is claimable at now when it is
// StatusRetrying with NextRetryAt <= now, StatusWaiting with WakeAt <= now,
// or StatusInProgress with no lease or a lease that expired at or before now
// (a crashed worker, a legacy in-flight row). Two claimers never receive the
// same run: each claim carries a new token.
type Claimer interface {
	// ClaimRun claims one run: ErrNotFound if it does not exist,
	// ErrNotClaimable if it is not claimable at now. The claimed run is
	// StatusInProgress with its token and a lease until now + lease.
	ClaimRun(ctx context.Context, id, worker string, now time.Time, lease time.Duration) (Run, error)
	// ClaimDue claims up to limit runs that were claimable at dueBy,
	// earliest due first, and returns them (possibly none), each StatusInProgress
	// with a lease until now + lease. dueBy is at or before now
	// (ErrInvalidArgument otherwise): a consumer of due work passes now, and
	// a sweeper passes an earlier time, so that work the scheduler is about
	// to deliver on time is left to it and only what it missed is swept.
	ClaimDue(ctx context.Context, worker string, dueBy, now time.Time, lease time.Duration, limit int) ([]Run, error)
	// ExtendLease moves the lease to now + lease and returns the renewed
	// claim, or ErrLostClaim if c is no longer held at now.
	ExtendLease(ctx context.Context, c Claim, now time.Time, lease time.Duration) (Claim, error)
	// Release gives the claim up: the run stays where it is and is claimable
	// at once. ErrLostClaim if c is no longer held at now.
	Release(ctx context.Context, c Claim, now time.Time) error
}

// Recorder writes the result of an attempt under a claim. Each call is one
// transaction, conditional on the claim's token and live lease; a lost claim
// gets ErrLostClaim and changes nothing. Each appends one [Attempt].
type Recorder interface {
	// CompleteNode stores s.Output in the context under s.NodeID, moves the
	// run to s.NextNodeID, resets RetryCount and SnoozeCount to 0 and
	// NodeStartedAt to the zero time, and:
	//   - with s.NextNodeID empty, completes the run (StatusCompleted);
	//   - with s.WakeAt set, parks it StatusWaiting until s.WakeAt;
	//   - otherwise keeps the claim for the next node.
	// Parking and completing release the claim. With s.Budget.Scope set,
	// the attempt counts in that scope of the retry budgets. It returns the
	// run as written.
	CompleteNode(ctx context.Context, c Claim, s NodeSuccess) (Run, error)
	// RecordFailure stores the error (message truncated to
	// MaxErrorMessageLen) and its time, sets NodeStartedAt to f.StartedAt
	// (f.FinishedAt when zero) unless it is set, and decides the run's
	// status:
	//   - StatusFailed when f.Shadow, !f.Decision.Retry without Exhausted,
	//     or the run's RetryEnabled is false;
	//   - StatusFailedMaxRetries when f.Decision.Exhausted, or when a retry
	//     is asked but RetryCount already equals MaxRetries (never when
	//     MaxRetries is [Unlimited]);
	//   - otherwise a retry: RetryCount+1, NextRetryAt = f.FinishedAt +
	//     f.Decision.Delay, LastDelay = f.Decision.Delay, and the attempt
	//     records StatusRetrying. With a Delay above zero the run is
	//     StatusRetrying, due at NextRetryAt, and the claim is released.
	//     With a zero Delay the claim is kept, as CompleteNode keeps it for
	//     the next node, so that the next attempt needs no second claim:
	//     the run stays StatusInProgress under the same token, worker and
	//     lease. The lease is not moved (the holder extends it with
	//     ExtendLease as it would during a node), and the run is claimable
	//     by others only once that lease expires.
	// A failure that ends the run releases the claim. With f.Budget.Key
	// set, the failure is charged to that retry budget in the same
	// transaction (see [BudgetState]): a retry over the budget, or during
	// its pause, is deferred, its delay (and NextRetryAt) moved to the
	// budget's next slot and its attempt recorded with that delay and the
	// rule that deferred it; a deferred retry always releases the claim.
	// It returns the run as written.
	RecordFailure(ctx context.Context, c Claim, f FailureRecord) (Run, error)
	// Snooze parks the run StatusWaiting at its current node until
	// s.FinishedAt + s.Delay (WakeAt) and releases the claim, as a delay
	// node does, without a failure: RetryCount, LastDelay and the last
	// error stay as they were, SnoozeCount goes up by 1, and the appended
	// attempt is OutcomeSnoozed (the delay in its Decision, s.Message its
	// error message, StatusWaiting). It returns the run as written.
	Snooze(ctx context.Context, c Claim, s SnoozeRecord) (Run, error)
}

// Wakeup is a run waiting for a time: what a scheduler needs to wake it.
type Wakeup struct {
	RunID  string
	Status Status // StatusRetrying or StatusWaiting
	At     time.Time
}

// WakeupLister lets a scheduler be rebuilt from the store.
type WakeupLister interface {
	// ListWakeups returns up to limit StatusRetrying and StatusWaiting runs
	// with ids greater than afterID, in id order. Pass the last id of one
	// page as afterID of the next; an empty page is the end.
	ListWakeups(ctx context.Context, afterID string, limit int) ([]Wakeup, error)
}

// Store is what the executor needs of a run store. Implementations must be
// safe for concurrent use and must pass storage/storetest.
type Store interface {
	Runs
	Claimer
	Recorder
	WakeupLister
	// Close releases the store's resources; later calls return ErrClosed.
	Close() error
}

// RunFilter selects runs for [Inspector.ListRuns].
type RunFilter struct {
	// Status, when set, keeps runs in that status.
	Status Status
	// AfterID pages: runs with ids greater than AfterID, in id order.
	AfterID string
	// Limit bounds the page; 0 means 100.
	Limit int
	// JourneyID, when set, keeps runs of that journey.
	JourneyID string
	// ErrorClass, when set, keeps runs whose last error has that class
	// (the dashboard's dead-letter filter).
	ErrorClass Class
	// NodeID, when set, keeps runs whose current node it is (where a
	// failed run failed).
	NodeID string
	// FailedSince and FailedUntil, when set, keep runs whose last failure
	// (LastErrorAt) is in [FailedSince, FailedUntil): bulk replay's time
	// window. A run that never failed is outside every window.
	FailedSince, FailedUntil time.Time
}

// Keeps reports whether f's conditions keep r (the page bounds AfterID and
// Limit aside): for stores that filter in memory.
func (f RunFilter) Keeps(r Run) bool {
	return (f.Status == "" || r.Status == f.Status) && (f.JourneyID == "" || r.JourneyID == f.JourneyID) &&
		(f.ErrorClass == "" || r.LastErrorClass == f.ErrorClass) && (f.NodeID == "" || r.CurrentNodeID == f.NodeID) &&
		(f.FailedSince.IsZero() || (!r.LastErrorAt.IsZero() && !r.LastErrorAt.Before(f.FailedSince))) &&
		(f.FailedUntil.IsZero() || (!r.LastErrorAt.IsZero() && r.LastErrorAt.Before(f.FailedUntil)))
}

// ErrorCount is one row of [Inspector.TopErrors].
type ErrorCount struct {
	Class   Class
	Message string
	Count   int
}

// RetryStats is what [Inspector.RetryStats] reads from the attempt history.
// Its maps are never nil. The totals are sums: the attempts are the sum of
// n times AttemptsPerRun[n], the retries the sum of RetriesByStrategy (or of
// RetriesByClass).
type RetryStats struct {
	// AttemptsPerRun maps a number of attempts (node executions; replays
	// are not attempts) to the number of runs that took that many. A run
	// with no attempt yet counts under 0, so the values sum to the runs.
	AttemptsPerRun map[int]int
	// RetriesByStrategy and RetriesByClass count the retries by the
	// strategy that chose the delay ("" when none was recorded) and by the
	// error's class. A retry is a failed attempt recorded StatusRetrying
	// (the run was due again, or, with a zero delay, kept its claim for the
	// next attempt): a retry that happened. A shadow decision to retry, or
	// one the store refused (MaxRetries reached, retry disabled), ended the
	// run instead and is not one.
	RetriesByStrategy map[string]int
	RetriesByClass    map[Class]int
	// Replays counts operator replays ([Inspector.Replay]).
	Replays int
	// Snoozes counts the snoozed attempts ([OutcomeSnoozed]): node
	// executions (in AttemptsPerRun) that were neither a failure nor a
	// retry.
	Snoozes int
	// ShadowDecisions counts the failures recorded with a shadow decision
	// (FailureRecord.Shadow: rollout mode shadow), which ended their runs;
	// ShadowRetriesByStrategy and ShadowRetriesByClass count those the
	// policy would have retried: what enabling retries would change, which
	// is what shadow mode is run to see.
	ShadowDecisions         int
	ShadowRetriesByStrategy map[string]int
	ShadowRetriesByClass    map[Class]int
}

// Inspector is what operators and reports read. Stores implement it beside
// [Store]; it is separate because the executor never needs it.
type Inspector interface {
	// CountByStatus returns the number of runs in each status; every status
	// in Statuses is present, with 0 where there are none.
	CountByStatus(ctx context.Context) (map[Status]int, error)
	// RetryHistogram maps a retry count to the number of non-terminal runs
	// whose current node has that many retries.
	RetryHistogram(ctx context.Context) (map[int]int, error)
	// TopErrors returns the most frequent (class, message) pairs among failed
	// attempts finished in [since, until), most frequent first, at most
	// limit rows.
	TopErrors(ctx context.Context, since, until time.Time, limit int) ([]ErrorCount, error)
	// RetryStats aggregates the whole attempt history in the store, however
	// many runs it holds (a report must not read run by run). It has no
	// time window: a window would cut runs' histories, and AttemptsPerRun
	// would no longer count whole runs. TopErrors answers "what fails
	// lately".
	RetryStats(ctx context.Context) (RetryStats, error)
	// ListRuns returns runs matching f.
	ListRuns(ctx context.Context, f RunFilter) ([]Run, error)
	// Replay restarts a replayable run ([Status.Replayable]) at its
	// current node: RetryCount 0, StatusRetrying due at now, an
	// OutcomeReplayed attempt appended. ErrNotReplayable for any other
	// status; ErrNotFound if it does not exist. A store that implements
	// [Operator] replays as ReplayWith with no options.
	Replay(ctx context.Context, id string, now time.Time) (Run, error)
}

// ReplayOptions are what an operator may ask of a replay beyond
// [Inspector.Replay].
type ReplayOptions struct {
	// By names who replays; it is kept in the history.
	By string
	// From, when set, is the node the run restarts at instead of its
	// current node. It must be one the run reached: its current node, or
	// a node whose output its context holds (ErrInvalidArgument
	// otherwise). The outputs of From and of every node completed after
	// it are moved out of the context into the replay's history row
	// ([OperatorAct].Moved), so those nodes run again.
	From string
	// Override applies to the rest of the run: Override.MaxRetries
	// becomes the run's MaxRetries, and both are kept in Run.Override. A
	// replay without one clears an earlier replay's.
	Override PolicyOverride
}

// Operator is an optional store capability: the operator's controls over
// single runs beyond [Inspector]. The demo's runs commands and the
// dashboard find it with a type assertion. Both methods append an attempt
// recording the act ([Attempt].Act) in the write that changes the run.
type Operator interface {
	// Cancel ends a StatusInProgress, StatusWaiting or StatusRetrying run
	// StatusCancelled at now, unclaimed and never due, whoever holds it:
	// every later write under a claim taken before the cancel returns an
	// error wrapping both ErrCancelled and ErrLostClaim and changes
	// nothing, so a worker running one of its nodes learns of it at its
	// next lease renewal, within a lease. ErrNotCancellable for a run that
	// has ended; ErrNotFound if it does not exist.
	Cancel(ctx context.Context, id, by string, now time.Time) (Run, error)
	// ReplayWith is [Inspector.Replay] with options: the run restarts at
	// o.From (or its current node) with RetryCount 0, StatusRetrying due
	// at now, under o.Override. ErrNotReplayable, ErrNotFound as Replay.
	ReplayWith(ctx context.Context, id string, o ReplayOptions, now time.Time) (Run, error)
}

// ActivityInspector is an optional [Inspector] capability: attempts over
// time and retry wake-up lateness, for dashboards. A store implements it
// when it can answer with bounded, indexed queries; a dashboard finds it
// with a type assertion and shows what it can without it.
type ActivityInspector interface {
	// Activity counts the attempts (replays excluded) finished in
	// [q.Since, q.Until), per q.Bucket, reading at most q.MaxAttempts of
	// the latest of them, and samples the lateness of the latest retries.
	// A window that is empty, a Bucket <= 0 or more than MaxBuckets
	// buckets wrap ErrInvalidArgument.
	Activity(ctx context.Context, q ActivityQuery) (Activity, error)
}

// MaxBuckets bounds the buckets of an [ActivityQuery].
const MaxBuckets = 1000

// ActivityQuery is the window of [ActivityInspector.Activity].
type ActivityQuery struct {
	Since, Until time.Time
	Bucket       time.Duration
	// MaxAttempts bounds the attempts read; 0 means 100,000.
	MaxAttempts int
	// LatenessSamples bounds the retries sampled; 0 means 2,000.
	LatenessSamples int
	// TopErrors, when > 0, asks for the window's error patterns, bounded
	// as the buckets are: at most TopErrors of the most frequent (class,
	// message) pairs among the failures of the attempts read.
	TopErrors int
}

// ActivityBucket counts the attempts that finished in [Start, Start+Bucket).
type ActivityBucket struct {
	Start time.Time
	// Attempts counts node executions; Failures those that failed; Retries
	// the failures after which the run was StatusRetrying.
	Attempts, Failures, Retries int
}

// Activity is the answer of [ActivityInspector.Activity].
type Activity struct {
	// Buckets cover the window in order, every bucket present (zeros
	// included).
	Buckets []ActivityBucket
	// Truncated is true when the window held at least MaxAttempts
	// attempts: the buckets (and TopErrors) count the latest MaxAttempts
	// only.
	Truncated bool
	// TopErrors are the pairs q.TopErrors asked for, most frequent first
	// (then by class and message, as [Inspector.TopErrors] orders them);
	// nil when it did not ask.
	TopErrors []ErrorCount
	// RetryLateness holds, for the latest retries that ran in the window,
	// how late each started: its start minus the failure's finish plus
	// the chosen delay (a missed wake-up the sweeper caught shows here).
	// Negative values (clock skew between workers) are kept.
	RetryLateness []time.Duration
}
