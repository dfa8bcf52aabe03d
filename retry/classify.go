package retry

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Class names the kind of failure an error represents. Policies route on it
// (rate limits back off for minutes, network blips retry at once) and the
// attempt history stores it for error-pattern analysis, so a Class is a small
// stable string, never prose.
//
// Users may define classes of their own: any value that passes
// [ValidateClassName] works with [WithClass]; a configuration that routes on
// a custom class declares it so that a typo is caught by validation.
type Class string

// The built-in classes: the design's "Retry Strategies" scenarios,
// plus ClassTimeout and ClassUnknown.
const (
	ClassNetworkBlip           Class = "network_blip"
	ClassDatabaseLock          Class = "database_lock"
	ClassDatabaseConnection    Class = "database_connection"
	ClassServiceUnavailable    Class = "service_unavailable"
	ClassResourceContention    Class = "resource_contention"
	ClassRateLimit             Class = "rate_limit"
	ClassDownstreamMaintenance Class = "downstream_maintenance"
	ClassComplexRecovery       Class = "complex_recovery"
	ClassValidation            Class = "validation"
	ClassMissingJourney        Class = "missing_journey"
	ClassMalformedNode         Class = "malformed_node"
	// ClassTimeout: the node ran past its deadline (its context's deadline
	// was exceeded).
	ClassTimeout Class = "timeout"
	// ClassUnknown: the error carries no class.
	ClassUnknown Class = "unknown"
)

// BuiltinClasses lists the built-in classes in the design's order.
var BuiltinClasses = []Class{
	ClassNetworkBlip, ClassDatabaseLock, ClassDatabaseConnection,
	ClassServiceUnavailable, ClassResourceContention, ClassRateLimit,
	ClassDownstreamMaintenance, ClassComplexRecovery, ClassValidation,
	ClassMissingJourney, ClassMalformedNode, ClassTimeout, ClassUnknown,
}

// Builtin reports whether c is one of [BuiltinClasses].
func (c Class) Builtin() bool {
	for _, b := range BuiltinClasses {
		if c == b {
			return true
		}
	}
	return false
}

func (c Class) String() string { return string(c) }

// maxClassLen bounds a class name: it is stored in every attempt row.
const maxClassLen = 64

// ValidateClassName reports whether s may name a class: 1 to 64 characters
// of lowercase ASCII letters, digits and underscores, starting with a letter.
// The error wraps [ErrInvalidArgument] and quotes s.
func ValidateClassName(s string) error {
	if s == "" || len(s) > maxClassLen || s[0] < 'a' || s[0] > 'z' {
		return fmt.Errorf("%w: class name %q: want 1-%d of [a-z0-9_], starting with a letter", ErrInvalidArgument, s, maxClassLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return fmt.Errorf("%w: class name %q: want 1-%d of [a-z0-9_], starting with a letter", ErrInvalidArgument, s, maxClassLen)
		}
	}
	return nil
}

// classError tags an error with a Class.
type classError struct {
	err   error
	class Class
}

func (e *classError) Error() string { return e.err.Error() }
func (e *classError) Unwrap() error { return e.err }

// permanentError marks an error as never worth retrying.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// retryAfterError carries a delay the failing upstream asked for.
type retryAfterError struct {
	err   error
	delay time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// snoozeError asks for the node to run again after a delay.
type snoozeError struct {
	err   error
	delay time.Duration
}

func (e *snoozeError) Error() string { return e.err.Error() }
func (e *snoozeError) Unwrap() error { return e.err }

// WithClass tags err with class c. The tag survives further wrapping with
// fmt.Errorf("...: %w", err); the outermost tag wins when there are several.
// WithClass(nil, c) is nil.
func WithClass(err error, c Class) error {
	if err == nil {
		return nil
	}
	return &classError{err: err, class: c}
}

// Permanent marks err as permanent: no policy retries it, whatever its class
// (bad patient data will not become good by waiting). Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// RetryAfter records that the upstream asked to be retried after d (an HTTP
// Retry-After on a rate limit). Policies honour it over their computed delay,
// capped by their max delay. A negative d counts as zero.
// RetryAfter(nil, d) is nil.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, delay: max(d, 0)}
}

// Snooze asks for the node to run again after d without counting a retry
// or a failure: a handler that finds its input not ready yet (a lab
// result not in, a slot not open) returns it so that the run waits,
// StatusWaiting, at the same node, whatever the policy and the retry
// limit. The store records an OutcomeSnoozed attempt with err's text as
// the reason. Snoozes of one node are bounded (executor.Config.MaxSnoozes);
// past the bound the node fails as its retries would run out. A negative d
// counts as zero.
//
// Unlike the other markers, Snooze(nil, d) is not nil, since a snooze is
// never a success: its reason is then "snoozed for d".
func Snooze(err error, d time.Duration) error {
	d = max(d, 0)
	if err == nil {
		err = fmt.Errorf("snoozed for %s", d)
	}
	return &snoozeError{err: err, delay: d}
}

// RequestedSnooze returns the delay err asked for with [Snooze].
func RequestedSnooze(err error) (time.Duration, bool) {
	if se, ok := errors.AsType[*snoozeError](err); ok {
		return se.delay, true
	}
	return 0, false
}

// ClassOf returns the class err carries: the outermost [WithClass] tag, else
// [ClassTimeout] if err is or wraps context.DeadlineExceeded, else
// [ClassUnknown]. ClassOf(nil) is ClassUnknown.
func ClassOf(err error) Class {
	if ce, ok := errors.AsType[*classError](err); ok {
		return ce.class
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ClassTimeout
	}
	return ClassUnknown
}

// IsPermanent reports whether err was marked with [Permanent].
func IsPermanent(err error) bool {
	_, ok := errors.AsType[*permanentError](err)
	return ok
}

// RequestedDelay returns the delay err asked for with [RetryAfter].
func RequestedDelay(err error) (time.Duration, bool) {
	if re, ok := errors.AsType[*retryAfterError](err); ok {
		return re.delay, true
	}
	return 0, false
}
