package retrytest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// get reads run id or fails the test.
func get(t testing.TB, runs retry.Runs, id string) retry.Run {
	t.Helper()
	run, err := runs.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("get run %s: %v", id, err)
	}
	return run
}

// RequireStatus fails the test unless run id is in status want, and
// returns the run.
func RequireStatus(t testing.TB, runs retry.Runs, id string, want retry.Status) retry.Run {
	t.Helper()
	run := get(t, runs, id)
	if run.Status != want {
		t.Fatalf("run %s is %s at node %q (last error %q); want %s", id, run.Status, run.CurrentNodeID, run.LastErrorMessage, want)
	}
	return run
}

// Expect describes one attempt for [RequireAttempts]; an empty field
// matches anything.
type Expect struct {
	Node    string
	Outcome retry.Outcome
	Class   retry.Class
}

func (e Expect) matches(a retry.Attempt) bool {
	return (e.Node == "" || e.Node == a.NodeID) && (e.Outcome == "" || e.Outcome == a.Outcome) &&
		(e.Class == "" || e.Class == a.ErrorClass)
}

// RequireAttempts fails the test unless run id's history is exactly the
// attempts want describes, in order, and returns the history.
func RequireAttempts(t testing.TB, runs retry.Runs, id string, want ...Expect) []retry.Attempt {
	t.Helper()
	as, err := runs.Attempts(context.Background(), id)
	if err != nil {
		t.Fatalf("attempts of %s: %v", id, err)
	}
	ok := len(as) == len(want)
	for i := 0; ok && i < len(as); i++ {
		ok = want[i].matches(as[i])
	}
	if !ok {
		t.Fatalf("run %s has attempts\n%s\nwant\n%s", id, showAttempts(as), showExpects(want))
	}
	return as
}

func showAttempts(as []retry.Attempt) string {
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "  %d. %s %s", a.Number, a.NodeID, a.Outcome)
		if a.ErrorClass != "" {
			fmt.Fprintf(&b, " %s %q", a.ErrorClass, a.ErrorMessage)
		}
		b.WriteString("\n")
	}
	return strings.TrimSuffix(cmpOr(b.String(), "  (none)"), "\n")
}

func showExpects(es []Expect) string {
	var b strings.Builder
	for i, e := range es {
		fmt.Fprintf(&b, "  %d. %s %s %s\n", i+1, cmpOr(e.Node, "(any node)"), cmpOr(string(e.Outcome), "(any outcome)"), e.Class)
	}
	return strings.TrimSuffix(cmpOr(b.String(), "  (none)"), "\n")
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// RequireScheduledWithin fails the test unless run id waits (a retry or a
// delay node) for a time in [from, from+d], and returns that time. The
// store is asked, not the scheduler: the store is the source of truth.
func RequireScheduledWithin(t testing.TB, runs retry.Runs, id string, from time.Time, d time.Duration) time.Time {
	t.Helper()
	run := get(t, runs, id)
	at, waiting := run.DueAt()
	switch {
	case !waiting:
		t.Fatalf("run %s is %s, waiting for nothing; want it due within %v of %v", id, run.Status, d, from)
	case at.Before(from) || at.After(from.Add(d)):
		t.Fatalf("run %s is due at %v (%v after %v); want within %v", id, at, at.Sub(from), from, d)
	}
	return at
}
