package executor_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
)

// TestLogObserver: one record per attempt outcome, at the level its
// outcome deserves, with run id, journey, node, node type, attempt, class
// and decision; nothing below the logger's level, nothing for the events
// that are not an attempt's outcome; LogObserver's own source.
func TestLogObserver(t *testing.T) {
	var buf bytes.Buffer
	o := executor.LogObserver{Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	step := executor.Step{RunID: "r1", JourneyID: "j", NodeID: "n", NodeType: "call", NodeAttempt: 2}
	ok := executor.AttemptRecorded{Step: step, Duration: time.Millisecond, Status: retry.StatusCompleted}
	retrying := ok
	retrying.Err, retrying.Class, retrying.Status = errors.New("503"), retry.ClassServiceUnavailable, retry.StatusRetrying
	retrying.Decision = retry.Decision{Retry: true, Delay: time.Second, Strategy: "short", Rule: "class:service_unavailable"}
	immediate := retrying // a zero delay: the run stays in progress
	immediate.Status, immediate.Decision.Delay = retry.StatusInProgress, 0
	exhausted := retrying
	exhausted.Status, exhausted.Decision = retry.StatusFailedMaxRetries, retry.Decision{Exhausted: true, Rule: "max_retries"}
	refused := retrying // the store's limit, whatever the policy asked
	refused.Status = retry.StatusFailedMaxRetries
	shadow := retrying
	shadow.Status, shadow.Shadow = retry.StatusFailed, true
	snoozed := ok
	snoozed.Err, snoozed.Snoozed, snoozed.Status = retry.Snooze(nil, time.Minute), true, retry.StatusWaiting
	snoozed.Decision = retry.Decision{Delay: time.Minute}

	o.Observe(ok) // debug: below the level
	o.Observe(retrying)
	o.Observe(immediate)
	o.Observe(exhausted)
	o.Observe(refused)
	o.Observe(shadow)
	o.Observe(snoozed)
	o.Observe(executor.LeaseLost{Step: step, Err: retry.ErrLostClaim})
	o.Observe(executor.RetryScheduled{AttemptRecorded: retrying}) // not an attempt outcome
	o.Observe(executor.Swept{Caught: 3})

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []struct{ level, outcome, decision string }{
		{"INFO", "retrying", "retry"}, {"INFO", "retrying", "retry"}, {"WARN", "failed_max_retries", "exhausted"},
		{"WARN", "failed_max_retries", "exhausted"}, {"WARN", "failed", "shadow"}, {"INFO", "snoozed", "snooze"},
		{"WARN", "lost_claim", ""},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d records, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		w := want[i]
		if rec["level"] != w.level || rec["outcome"] != w.outcome || (rec["decision"] != nil && rec["decision"] != w.decision) ||
			(rec["decision"] == nil) != (w.decision == "") || rec["run"] != "r1" || rec["journey"] != "j" || rec["node"] != "n" ||
			rec["nodeType"] != "call" || rec["attempt"] != 2.0 || rec["err"] == nil {
			t.Errorf("record %d: %s, want level %s outcome %s decision %q", i, l, w.level, w.outcome, w.decision)
		}
	}

	// At debug, a success is a record too, without failure fields.
	buf.Reset()
	o.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o.Observe(ok)
	if s := buf.String(); !strings.Contains(s, "level=DEBUG") || !strings.Contains(s, "outcome=succeeded") || strings.Contains(s, "class=") {
		t.Errorf("success record %q", s)
	}

	// A handler that adds the source finds LogObserver's, every time.
	for range 2 {
		buf.Reset()
		o.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{AddSource: true}))
		o.Observe(retrying)
		var rec struct{ Source slog.Source }
		if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(rec.Source.Function, "executor.LogObserver.log") || !strings.HasSuffix(rec.Source.File, "observe.go") {
			t.Errorf("source %+v, want LogObserver.log in observe.go", rec.Source)
		}
	}
}

// TestObservers: every observer hears every event, in order.
func TestObservers(t *testing.T) {
	a, b := &recordingObserver{}, &recordingObserver{}
	o := executor.Observers(a, b)
	sent := []executor.Event{executor.AttemptRecorded{Step: executor.Step{RunID: "r"}}, executor.Swept{Caught: 2},
		executor.LeaseLost{Step: executor.Step{RunID: "l"}}, executor.Woke{RunID: "w"}, executor.BackendError{Op: "op"}}
	for _, ev := range sent {
		o.Observe(ev)
	}
	for _, r := range []*recordingObserver{a, b} {
		if got := r.all(); !slices.Equal(got, sent) {
			t.Errorf("observer heard %+v", got)
		}
	}
}
