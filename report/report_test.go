package report

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

var update = flag.Bool("update", false, "rewrite testdata/summary.json from the current types")

// fakeInspector answers with fixed aggregates.
type fakeInspector struct {
	retry.Inspector // methods Summarize must not call panic
	counts          map[retry.Status]int
	stats           retry.RetryStats
	top             []retry.ErrorCount
	until           time.Time
}

func (f *fakeInspector) CountByStatus(context.Context) (map[retry.Status]int, error) {
	return f.counts, nil
}

func (f *fakeInspector) RetryStats(context.Context) (retry.RetryStats, error) { return f.stats, nil }

func (f *fakeInspector) TopErrors(_ context.Context, _, until time.Time, limit int) ([]retry.ErrorCount, error) {
	f.until = until
	return f.top[:min(limit, len(f.top))], nil
}

func sample() *fakeInspector {
	counts := map[retry.Status]int{}
	for i, st := range retry.Statuses {
		counts[st] = i + 1
	}
	return &fakeInspector{
		counts: counts,
		stats: retry.RetryStats{
			AttemptsPerRun:          map[int]int{0: 1, 1: 10, 3: 10},
			RetriesByStrategy:       map[string]int{"immediate": 4, "long": 2},
			RetriesByClass:          map[retry.Class]int{retry.ClassNetworkBlip: 6},
			Replays:                 2,
			Snoozes:                 5,
			ShadowDecisions:         3,
			ShadowRetriesByStrategy: map[string]int{"immediate": 2},
			ShadowRetriesByClass:    map[retry.Class]int{retry.ClassNetworkBlip: 2},
		},
		top: []retry.ErrorCount{{Class: retry.ClassNetworkBlip, Message: "reset", Count: 6}},
	}
}

// TestSummarize: the totals are the sums of their splits, and top errors
// reach past now.
func TestSummarize(t *testing.T) {
	in := sample()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d, err := Summarize(t.Context(), in, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := Total(in.counts); d.Runs != want {
		t.Errorf("runs %d, want %d", d.Runs, want)
	}
	if d.Attempts != 40 || d.Retries != 6 || d.Replays != 2 || d.Snoozes != 5 || d.ShadowDecisions.WouldRetry != 2 || d.ShadowDecisions.Decisions != 3 {
		t.Errorf("attempts %d retries %d replays %d snoozes %d shadow %+v", d.Attempts, d.Retries, d.Replays, d.Snoozes, d.ShadowDecisions)
	}
	if len(d.TopErrors) != 1 || d.TopErrors[0] != (TopError{Class: retry.ClassNetworkBlip, Message: "reset", Count: 6}) {
		t.Errorf("top errors %+v", d.TopErrors)
	}
	if !in.until.After(now) {
		t.Errorf("top errors until %v, not after now %v", in.until, now)
	}
}

// TestJSONCompatible pins the summary's JSON for scripts: every key (and
// its JSON kind) in testdata/summary.json must still be produced. Keys may
// be added; a key removed or renamed fails here. Run with -update only
// when adding keys, and check the diff removes nothing.
func TestJSONCompatible(t *testing.T) {
	d, err := Summarize(t.Context(), sample(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sum := Summary{Database: d, Process: &ProcessSummary{Store: "s", Scheduler: "memory", Mode: "enabled", Seed: 1,
		Created: 1, Resumed: 1, SweeperCaught: 1, SweepGraceMs: 1, WallTimeMs: 1}}
	got, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "summary.json")
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	gotPaths, wantPaths := paths(t, got), paths(t, want)
	var missing []string
	for p, kind := range wantPaths {
		if gotPaths[p] != kind {
			missing = append(missing, fmt.Sprintf("%s (%s, now %q)", p, kind, gotPaths[p]))
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("summary JSON lost %s", m)
	}
}

// paths flattens a JSON document to its key paths and their JSON kinds.
func paths(t *testing.T, doc []byte) map[string]string {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var walk func(p string, v any)
	walk = func(p string, v any) {
		switch v := v.(type) {
		case map[string]any:
			out[p] = "object"
			for k, e := range v {
				walk(p+"."+k, e)
			}
		case []any:
			out[p] = "array"
			for _, e := range v {
				walk(p+"[]", e)
			}
		case float64:
			out[p] = "number"
		case string:
			out[p] = "string"
		case bool:
			out[p] = "bool"
		default:
			out[p] = "null"
		}
	}
	walk("", v)
	return out
}
