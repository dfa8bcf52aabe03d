package retry

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors returned by stores and schedulers. Callers check them with
// errors.Is; backends wrap them with context (fmt.Errorf("claim run %s: %w",
// id, ErrNotFound)) and never return a bare driver error where one of these
// applies.
var (
	// ErrNotFound: no run with that id.
	ErrNotFound = errors.New("run not found")

	// ErrLostClaim: a write under a claim found that the claim is no longer
	// held: the token does not match (another worker claimed the run), or
	// the lease expired. The write changed nothing; the worker must abandon
	// the run without touching it again.
	ErrLostClaim = errors.New("claim lost")

	// ErrNotClaimable: the run exists but cannot be claimed now: it is
	// terminal, claimed under a live lease, or not yet due.
	ErrNotClaimable = errors.New("run not claimable")

	// ErrNotReplayable: a manual replay was asked of a run that has not ended
	// in failure or been cancelled.
	ErrNotReplayable = errors.New("run not replayable")

	// ErrNotCancellable: a cancel was asked of a run that has already
	// ended (completed, failed or cancelled). Nothing changed.
	ErrNotCancellable = errors.New("run not cancellable")

	// ErrCancelled: an operator cancelled the run. A write under a claim
	// the cancel voided returns it together with [ErrLostClaim] (the claim
	// is gone), so that code that abandons a lost run does the right thing
	// and code that wants to tell a cancel apart can: the executor cancels
	// the node's context when its lease renewal gets it.
	ErrCancelled = errors.New("run cancelled")

	// ErrInvalidStatus: a status string that is not one of [Statuses], from
	// user input or found in a stored row.
	ErrInvalidStatus = errors.New("invalid status")

	// ErrInvalidArgument: a caller passed a value the operation cannot
	// accept (an empty id, a negative limit, a zero lease). Nothing changed.
	ErrInvalidArgument = errors.New("invalid argument")

	// ErrDuplicateRun: Create was given a run id the store already holds.
	// Nothing changed; the existing run is untouched. A caller that
	// creates runs with ids of its own (idempotent starts) checks it.
	ErrDuplicateRun = errors.New("run id already taken")

	// ErrClosed: the store or scheduler was closed.
	ErrClosed = errors.New("closed")
)

// FieldError is a configuration field's invalid value: its message starts
// with the field's key ("lease: -1s: want at least 1ms"), as package
// config expects, and it matches [ErrInvalidArgument] with errors.Is
// without repeating that sentinel's text.
type FieldError struct {
	// Field is the key, dotted below its section ("strategies.short.jitter").
	Field string
	// Err says what is wrong with the value.
	Err error
}

// InvalidField returns a *FieldError for field, its message formatted as
// fmt.Errorf does (%w included).
func InvalidField(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *FieldError) Unwrap() error { return e.Err }

// Is reports whether target is ErrInvalidArgument.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidArgument }

// FormatErrors formats combined errors one a line, as errors.Join does,
// so that one error reads as itself: the ErrorFormat of the module's
// github.com/hashicorp/go-multierror errors (whose default puts a count
// and bullets around even a single error).
func FormatErrors(errs []error) string {
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "\n")
}
