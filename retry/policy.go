package retry

import (
	"strconv"
	"time"
)

// Failure is what a [Policy] decides from: one failed attempt of one node,
// with everything the decision needs taken from the persisted run, so the
// same failure gets the same decision in any process.
type Failure struct {
	// Err is the node's error. Rules match its message and errors.Is
	// targets; it may be nil for a failure read back from the store.
	Err error
	// Message is the error's text (Err.Error() when Err is set). Rules on
	// the message read this, so a policy can be replayed from stored rows.
	Message string
	// Class is the error's class ([ClassOf]).
	Class Class
	// Permanent is true when the error was marked [Permanent].
	Permanent bool
	// RetryAfter is the delay the error asked for, when HasRetryAfter.
	RetryAfter    time.Duration
	HasRetryAfter bool
	// RetryCount is the number of retries of this node already made: 0 for
	// the first failure, so the decision is about retry number RetryCount+1.
	RetryCount int
	// PrevDelay is the delay that preceded the failed attempt (0 for the
	// node's first attempt). Decorrelated jitter grows from it.
	PrevDelay time.Duration
	// Elapsed is the time from the start of the node's first attempt
	// ([Run].NodeStartedAt) to the end of this one, across its retries and
	// snoozes: what a limit on a node's total time compares. The executor
	// sets it; NewFailure leaves it 0.
	Elapsed time.Duration
}

// NewFailure classifies err ([ClassOf], [IsPermanent], [RequestedDelay]) into
// a Failure for the node's retry number retryCount.
func NewFailure(err error, retryCount int, prevDelay time.Duration) Failure {
	f := Failure{Err: err, Class: ClassOf(err), Permanent: IsPermanent(err), RetryCount: retryCount, PrevDelay: prevDelay}
	if err != nil {
		f.Message = err.Error()
	}
	f.RetryAfter, f.HasRetryAfter = RequestedDelay(err)
	return f
}

// Decision is a policy's answer for one failure. Every field is small and
// stable because the decision is stored with the attempt and read back by
// operators and reports.
type Decision struct {
	// Retry is true when the node should run again after Delay.
	Retry bool
	// Delay is the wait before the retry; zero when Retry is false.
	Delay time.Duration
	// Strategy names the strategy that applied ("immediate", "short",
	// "long", "none", "exponential", or a user's own).
	Strategy string
	// Rule names what chose the strategy or the outcome, for example
	// "class:rate_limit", "nonretryable:0", "permanent", "max_retries",
	// "retry_after", "default".
	Rule string
	// Exhausted is true when Retry is false because the retries ran out,
	// rather than because the error is not worth retrying: the run ends
	// [StatusFailedMaxRetries] instead of [StatusFailed].
	Exhausted bool
}

// Policy decides whether and when a failed node is retried.
//
// Implementations must be stateless apart from their configuration and safe
// for concurrent use: a decision depends only on the Failure, so a run that
// resumes in another process gets the same treatment. Randomness (jitter) is
// allowed; everything else is a pure function.
type Policy interface {
	Decide(f Failure) Decision
}

// Limit is a [Policy] that bounds the retries of one node. The executor
// writes the bound into each new run (its MaxRetries), so that the limit
// the store enforces and shows is the one the policy decides with: 0 means
// no retry and [Unlimited] no bound, everywhere.
type Limit interface {
	Policy
	MaxRetries() int
}

// Unlimited is the retry limit that bounds nothing: a MaxRetries of -1
// (in a policy, its configuration and the store's max_retries column)
// retries a node for as long as its policy asks. It is explicit because
// 0 already means "no retry", and a huge number would be a limit someone
// has to pick and readers have to recognise.
const Unlimited = -1

// Exceeds reports whether retryCount retries have used up the limit
// maxRetries: never for [Unlimited] (or any negative limit).
func Exceeds(retryCount, maxRetries int) bool {
	return maxRetries >= 0 && retryCount >= maxRetries
}

// LimitText is the limit maxRetries as people read it: the number, or
// "unlimited".
func LimitText(maxRetries int) string {
	if maxRetries < 0 {
		return "unlimited"
	}
	return strconv.Itoa(maxRetries)
}

// PolicyFunc adapts a function to [Policy].
type PolicyFunc func(f Failure) Decision

// Decide calls p(f).
func (p PolicyFunc) Decide(f Failure) Decision { return p(f) }

// Eligibility is implemented by policies that carry retryable rules (the
// design's retryableErrors and nonRetryableErrors). The executor's
// selective rollout mode retries only the failures such a policy accepts;
// a policy without it accepts none in that mode.
type Eligibility interface {
	// Eligible reports whether f matches a retryable rule and no
	// non-retryable one, and names the rule that decided.
	Eligible(f Failure) (ok bool, rule string)
}

// Overridable is a [Policy] that can decide under a run's
// [PolicyOverride] (an operator's replay with another strategy or retry
// limit). The executor asks it for the policy of each failure of a run
// that carries an override; a policy without it decides as it always
// does (the store still enforces the run's MaxRetries).
type Overridable interface {
	Policy
	// Override returns the policy under o, or an error naming what it
	// cannot apply (an unknown strategy).
	Override(o PolicyOverride) (Policy, error)
}
