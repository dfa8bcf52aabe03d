package retry

import "fmt"

// Status is the lifecycle state of a run, stored in journey_runs.status.
//
// The first five values are the design's, spelled exactly as the
// legacy table stores them. Two are added: [StatusWaiting], so that a run
// parked on a delay node is never mistaken for a run that is retrying, and
// [StatusCancelled], so that a run an operator stopped is never mistaken
// for one that failed (a schema downgrade maps it to StatusFailed, which
// the legacy system knows).
type Status string

const (
	// StatusInProgress: the run is executing, or due to execute (a new run
	// not yet claimed, or a run whose worker's lease expired).
	StatusInProgress Status = "in_progress"
	// StatusCompleted: every node completed. Terminal.
	StatusCompleted Status = "completed"
	// StatusFailed: ended by an error that is not retried: a permanent error,
	// a policy that does not retry it, rollout mode off or shadow, or a run
	// with retries disabled. Terminal (but see manual replay).
	StatusFailed Status = "failed"
	// StatusRetrying: a node failed and a retry is scheduled at NextRetryAt.
	StatusRetrying Status = "retrying"
	// StatusFailedMaxRetries: ended because the node's retries ran out.
	// Terminal (but see manual replay).
	StatusFailedMaxRetries Status = "failed_max_retries"
	// StatusWaiting: parked on a delay node until WakeAt.
	StatusWaiting Status = "waiting"
	// StatusCancelled: an operator cancelled the run ([Operator.Cancel])
	// while it was in progress, waiting or retrying. Terminal (but see
	// manual replay): no node of it runs afterwards.
	StatusCancelled Status = "cancelled"
)

// Statuses lists every valid status, in lifecycle order. Reports use it to
// print every status, including those with no runs.
var Statuses = []Status{
	StatusInProgress, StatusWaiting, StatusRetrying,
	StatusCompleted, StatusFailed, StatusFailedMaxRetries, StatusCancelled,
}

// LegacyStatuses are the statuses the pre-retry schema knew. A schema
// downgrade is refused while any row holds another status.
var LegacyStatuses = []Status{StatusInProgress, StatusCompleted, StatusFailed}

// ParseStatus returns the Status spelled s. Anything else, including a
// different case or surrounding spaces, is an error wrapping
// [ErrInvalidStatus]: a store that finds such a value in a row reports it
// rather than guessing.
func ParseStatus(s string) (Status, error) {
	switch st := Status(s); st {
	case StatusInProgress, StatusCompleted, StatusFailed,
		StatusRetrying, StatusFailedMaxRetries, StatusWaiting, StatusCancelled:
		return st, nil
	}
	return "", fmt.Errorf("%w: %q", ErrInvalidStatus, s)
}

// Valid reports whether s is one of the defined statuses.
func (s Status) Valid() bool {
	_, err := ParseStatus(string(s))
	return err == nil
}

// Terminal reports whether a run in status s has ended and will not run
// again unless an operator replays it.
func (s Status) Terminal() bool {
	return s == StatusCompleted || s.Replayable()
}

// Replayable reports whether a run in status s may be replayed by an
// operator: runs that ended in failure, and cancelled runs (a cancel made
// by mistake is undone by a replay).
func (s Status) Replayable() bool {
	return s == StatusFailed || s == StatusFailedMaxRetries || s == StatusCancelled
}

// Cancellable reports whether a run in status s may be cancelled: any run
// that has not ended.
func (s Status) Cancellable() bool {
	return s == StatusInProgress || s == StatusWaiting || s == StatusRetrying
}

func (s Status) String() string { return string(s) }
