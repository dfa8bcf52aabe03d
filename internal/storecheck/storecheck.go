// Package storecheck holds what every store the module ships checks of its
// arguments before it touches its data, and the text rules of
// [retry.Store] (see the comment above [retry.StorableText]): the Bun store
// and the in-memory store refuse the same input, with the same one-line
// errors wrapping [retry.ErrInvalidArgument], and keep text alike.
package storecheck

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/journeyretry/journeyretry/retry"
)

// Storable is s as every store keeps free text: NUL bytes and invalid
// UTF-8 (which PostgreSQL's text rejects) become U+FFFD.
func Storable(s string) string {
	if retry.StorableText(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// Truncate makes msg storable and cuts it to [retry.MaxErrorMessageLen]
// bytes at a UTF-8 boundary.
func Truncate(msg string) string {
	msg = Storable(msg)
	if len(msg) <= retry.MaxErrorMessageLen {
		return msg
	}
	cut := retry.MaxErrorMessageLen
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut]
}

// CheckIDs rejects identifiers no database stores alike: fields holds name,
// value pairs, and a value must be valid UTF-8 without NUL. The error wraps
// [retry.ErrInvalidArgument] and names the field.
func CheckIDs(fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if v := fields[i+1]; !retry.StorableText(v) {
			return fmt.Errorf("%s %s holds a NUL byte or invalid UTF-8: %w", fields[i], retry.QuoteID(v), retry.ErrInvalidArgument)
		}
	}
	return nil
}

// CheckJSON rejects what a run's context cannot hold on every database:
// text that is not JSON, and the escape \u0000, which PostgreSQL's jsonb
// refuses. The error wraps [retry.ErrInvalidArgument] and names what.
func CheckJSON(what string, b []byte) error {
	if !json.Valid(b) {
		return fmt.Errorf("%s is not valid JSON: %w", what, retry.ErrInvalidArgument)
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' { // in valid JSON a backslash starts an escape
			continue
		}
		if i+5 < len(b) && b[i+1] == 'u' && string(b[i+2:i+6]) == "0000" {
			return fmt.Errorf("%s holds \\u0000, which PostgreSQL's jsonb cannot store: %w", what, retry.ErrInvalidArgument)
		}
		i++ // the escaped character
	}
	return nil
}

// Invalid returns an error wrapping [retry.ErrInvalidArgument].
func Invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), retry.ErrInvalidArgument)
}

// RunID validates a run id argument.
func RunID(id string) error {
	if id == "" {
		return Invalid("empty run id")
	}
	return CheckIDs("run id", id)
}

// Lease validates the arguments every claiming call shares.
func Lease(now time.Time, lease time.Duration) error {
	switch {
	case now.IsZero():
		return Invalid("zero time")
	case lease < time.Millisecond:
		return Invalid("lease %v: want at least 1ms", lease)
	}
	return nil
}

// Claim validates the claim a write is made under.
func Claim(c retry.Claim, now time.Time) error {
	if err := RunID(c.RunID); err != nil {
		return err
	}
	switch {
	case c.Token == "":
		return Invalid("run %s: empty claim token", retry.QuoteID(c.RunID))
	case now.IsZero():
		return Invalid("run %s: zero time", retry.QuoteID(c.RunID))
	}
	return CheckIDs("claim token", c.Token)
}

// NewRun validates the arguments of [retry.Runs.Create].
func NewRun(nr retry.NewRun, now time.Time) error {
	switch {
	case nr.JourneyID == "":
		return Invalid("empty journey id")
	case nr.StartNodeID == "":
		return Invalid("empty start node id")
	case nr.MaxRetries < retry.Unlimited || nr.MaxRetries > math.MaxInt32:
		return Invalid("max retries %d: want -1 (unlimited) to %d", nr.MaxRetries, math.MaxInt32)
	case nr.JourneyVersion < 0 || nr.JourneyVersion > math.MaxInt32: // an INTEGER column on every dialect
		return Invalid("journey version %d: want 0 to %d", nr.JourneyVersion, math.MaxInt32)
	case nr.Lease < 0:
		return Invalid("lease %v is negative", nr.Lease)
	case now.IsZero():
		return Invalid("zero time")
	}
	if err := CheckIDs("run id", nr.ID, "journey id", nr.JourneyID, "start node id", nr.StartNodeID, "worker", nr.Worker); err != nil {
		return err
	}
	if len(nr.Input) > 0 {
		return CheckJSON("input", nr.Input)
	}
	return nil
}

// ClaimDue validates the arguments of [retry.Claimer.ClaimDue].
func ClaimDue(worker string, dueBy, now time.Time, lease time.Duration, limit int) error {
	if err := cmp.Or(Lease(now, lease), CheckIDs("worker", worker)); err != nil {
		return err
	}
	switch {
	case limit < 1:
		return Invalid("limit %d below 1", limit)
	case dueBy.IsZero() || dueBy.After(now):
		return Invalid("due-by time %v: want at or before now %v", dueBy, now)
	}
	return nil
}

// Success validates the arguments of [retry.Recorder.CompleteNode] and
// returns the output to store: JSON null when there is none.
func Success(c retry.Claim, ns retry.NodeSuccess) (json.RawMessage, error) {
	if err := Claim(c, ns.FinishedAt); err != nil {
		return nil, err
	}
	if ns.NodeID == "" {
		return nil, Invalid("run %s: empty node id", retry.QuoteID(c.RunID))
	}
	if err := CheckIDs("node id", ns.NodeID, "next node id", ns.NextNodeID); err != nil {
		return nil, fmt.Errorf("run %s: %w", retry.QuoteID(c.RunID), err)
	}
	if err := Budget(ns.Budget); err != nil {
		return nil, fmt.Errorf("run %s: %w", c.RunID, err)
	}
	if len(ns.Output) == 0 {
		return json.RawMessage("null"), nil
	}
	if err := CheckJSON("output", ns.Output); err != nil {
		return nil, fmt.Errorf("node %s of %s: %w", retry.QuoteID(ns.NodeID), retry.QuoteID(c.RunID), err)
	}
	return ns.Output, nil
}

// Failure validates the arguments of [retry.Recorder.RecordFailure] and
// returns f with its free text as it is stored (never rejected: made
// storable, the message truncated, an empty class ClassUnknown).
func Failure(c retry.Claim, f retry.FailureRecord) (retry.FailureRecord, error) {
	if err := Claim(c, f.FinishedAt); err != nil {
		return f, err
	}
	switch {
	case f.NodeID == "":
		return f, Invalid("run %s: empty node id", retry.QuoteID(c.RunID))
	case f.Decision.Delay < 0:
		return f, Invalid("run %s: delay %v is negative", retry.QuoteID(c.RunID), f.Decision.Delay)
	}
	if err := CheckIDs("node id", f.NodeID); err != nil {
		return f, fmt.Errorf("run %s: %w", retry.QuoteID(c.RunID), err)
	}
	if err := Budget(f.Budget); err != nil {
		return f, fmt.Errorf("run %s: %w", c.RunID, err)
	}
	f.Message = Truncate(f.Message)
	f.Decision.Strategy, f.Decision.Rule = Storable(f.Decision.Strategy), Storable(f.Decision.Rule)
	f.Class = cmp.Or(retry.Class(Storable(string(f.Class))), retry.ClassUnknown)
	return f, nil
}

// Budget validates a [retry.BudgetUse]: its key and scope are
// identifiers, its budget in range.
func Budget(u retry.BudgetUse) error {
	if err := CheckIDs("budget key", u.Key, "budget scope", u.Scope); err != nil {
		return err
	}
	if err := u.Budget.Validate(); err != nil {
		return fmt.Errorf("budget.%w", err)
	}
	return nil
}

// Snooze validates the arguments of [retry.Recorder.Snooze] and returns s
// with its message as it is stored (made storable and truncated).
func Snooze(c retry.Claim, s retry.SnoozeRecord) (retry.SnoozeRecord, error) {
	if err := Claim(c, s.FinishedAt); err != nil {
		return s, err
	}
	switch {
	case s.NodeID == "":
		return s, Invalid("run %s: empty node id", c.RunID)
	case s.Delay < 0:
		return s, Invalid("run %s: snooze delay %v is negative", c.RunID, s.Delay)
	}
	if err := CheckIDs("node id", s.NodeID); err != nil {
		return s, fmt.Errorf("run %s: %w", c.RunID, err)
	}
	s.Message = Truncate(s.Message)
	return s, nil
}

// NodeStart is when an attempt that began at started and finished at
// finished started its node, for a run whose current node has not yet
// recorded one: started, or finished when started is not known.
func NodeStart(started, finished time.Time) time.Time {
	return cmp.Or(started, finished)
}

// Filter validates a [retry.RunFilter] and returns its limit (0 means 100).
func Filter(f retry.RunFilter) (int, error) {
	switch {
	case f.Limit < 0:
		return 0, Invalid("limit %d is negative", f.Limit)
	case f.Status != "" && !f.Status.Valid():
		return 0, fmt.Errorf("%w: %q", retry.ErrInvalidStatus, f.Status)
	case !f.FailedSince.IsZero() && !f.FailedUntil.IsZero() && !f.FailedUntil.After(f.FailedSince):
		return 0, Invalid("failure window [%s, %s) is empty", f.FailedSince, f.FailedUntil)
	}
	return cmp.Or(f.Limit, 100), nil
}

// NewStats returns empty [retry.RetryStats], its maps made.
func NewStats() retry.RetryStats {
	return retry.RetryStats{AttemptsPerRun: map[int]int{}, RetriesByStrategy: map[string]int{}, RetriesByClass: map[retry.Class]int{},
		ShadowRetriesByStrategy: map[string]int{}, ShadowRetriesByClass: map[retry.Class]int{}}
}

// Cancel validates the arguments of [retry.Operator.Cancel].
func Cancel(id, by string, now time.Time) error {
	if err := RunID(id); err != nil {
		return err
	}
	if now.IsZero() {
		return Invalid("cancel %s: zero time", retry.QuoteID(id))
	}
	return CheckIDs("by", by)
}

// Replay validates the arguments of [retry.Operator.ReplayWith].
func Replay(id string, o retry.ReplayOptions, now time.Time) error {
	if err := RunID(id); err != nil {
		return err
	}
	switch {
	case now.IsZero():
		return Invalid("replay %s: zero time", retry.QuoteID(id))
	case o.Override.MaxRetries != nil && (*o.Override.MaxRetries < retry.Unlimited || *o.Override.MaxRetries > math.MaxInt32):
		return Invalid("replay %s: max retries %d: want %d (unlimited) or more", retry.QuoteID(id), *o.Override.MaxRetries, retry.Unlimited)
	}
	return CheckIDs("by", o.By, "from node", o.From, "strategy", o.Override.Strategy)
}

// ReplayFrom is what a replay with o does to run r's context: the node it
// restarts at (o.From, or the current node), the context it leaves and
// the outputs it moves aside (nil when none). lastSuccess maps each node
// to the number of its last succeeded attempt: the outputs moved are
// From's and those of the nodes that completed after it. From must be the
// current node or hold an output (an error wrapping
// [retry.ErrInvalidArgument] otherwise).
func ReplayFrom(r retry.Run, o retry.ReplayOptions, lastSuccess map[string]int) (string, retry.RunContext, map[string]json.RawMessage, error) {
	if o.From == "" || o.From == r.CurrentNodeID {
		return r.CurrentNodeID, r.Context, nil, nil
	}
	if _, ok := r.Context.Outputs[o.From]; !ok {
		return "", retry.RunContext{}, nil, Invalid("replay %s from node %s: the run never reached it (its current node is %s)", retry.QuoteID(r.ID), retry.QuoteID(o.From), retry.QuoteID(r.CurrentNodeID))
	}
	from := lastSuccess[o.From]
	kept := retry.RunContext{Input: r.Context.Input, Outputs: map[string]json.RawMessage{}}
	moved := map[string]json.RawMessage{}
	for node, out := range r.Context.Outputs {
		if node == o.From || (lastSuccess[node] > from) {
			moved[node] = out
		} else {
			kept.Outputs[node] = out
		}
	}
	return o.From, kept, moved, nil
}

// Lost is the error of a write under a claim on run id, now in status,
// that is no longer held: it wraps [retry.ErrLostClaim], and
// [retry.ErrCancelled] too when an operator cancelled the run.
func Lost(id string, status retry.Status) error {
	if status == retry.StatusCancelled {
		return fmt.Errorf("run %s: %w: %w", retry.QuoteID(id), retry.ErrCancelled, retry.ErrLostClaim)
	}
	return fmt.Errorf("run %s: %w", retry.QuoteID(id), retry.ErrLostClaim)
}
