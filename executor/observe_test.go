package executor_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
)

// TestLogObserver: one record per attempt outcome, at the level its
// outcome deserves, with run id, journey, node, attempt, class and
// decision; nothing below the logger's level.
func TestLogObserver(t *testing.T) {
	var buf bytes.Buffer
	o := executor.LogObserver{Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	base := executor.AttemptEvent{RunID: "r1", JourneyID: "j", NodeID: "n", NodeAttempt: 2, Duration: time.Millisecond}
	ok := base
	ok.Status = retry.StatusCompleted
	retrying := base
	retrying.Err, retrying.Class, retrying.Status = errors.New("503"), retry.ClassServiceUnavailable, retry.StatusRetrying
	retrying.Decision = retry.Decision{Retry: true, Delay: time.Second, Strategy: "short", Rule: "class:service_unavailable"}
	exhausted := retrying
	exhausted.Status, exhausted.Decision = retry.StatusFailedMaxRetries, retry.Decision{Exhausted: true, Rule: "max_retries"}
	shadow := retrying
	shadow.Status, shadow.Shadow = retry.StatusFailed, true

	o.Attempt(ok) // debug: below the level
	o.Attempt(retrying)
	o.Attempt(exhausted)
	o.Attempt(shadow)
	o.LostClaim(retrying)
	o.Swept(3) // not an attempt outcome

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []struct{ level, outcome, decision string }{
		{"INFO", "retrying", "retry"}, {"WARN", "failed_max_retries", "exhausted"}, {"WARN", "failed", "shadow"}, {"WARN", "lost_claim", "retry"},
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
		if rec["level"] != w.level || rec["outcome"] != w.outcome || rec["decision"] != w.decision ||
			rec["run"] != "r1" || rec["journey"] != "j" || rec["node"] != "n" || rec["attempt"] != 2.0 ||
			rec["class"] != "service_unavailable" {
			t.Errorf("record %d: %s, want level %s outcome %s decision %s", i, l, w.level, w.outcome, w.decision)
		}
	}

	// At debug, a success is a record too, without failure fields.
	buf.Reset()
	o.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o.Attempt(ok)
	if s := buf.String(); !strings.Contains(s, "level=DEBUG") || !strings.Contains(s, "outcome=succeeded") || strings.Contains(s, "class=") {
		t.Errorf("success record %q", s)
	}
}

// TestObservers: every observer hears every event, in order.
func TestObservers(t *testing.T) {
	a, b := &recordingObserver{}, &recordingObserver{}
	o := executor.Observers(a, b)
	o.Attempt(executor.AttemptEvent{RunID: "r"})
	o.Swept(2)
	o.LostClaim(executor.AttemptEvent{RunID: "l"})
	o.Woke(executor.WakeEvent{RunID: "w"})
	o.BackendError("op", errors.New("x"))
	for _, r := range []*recordingObserver{a, b} {
		if len(r.events) != 1 || len(r.swept) != 1 || len(r.lost) != 1 {
			t.Errorf("observer heard %+v", r)
		}
	}
}
