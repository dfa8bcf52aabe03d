package report

import (
	"regexp"
	"strings"
	"testing"

	"github.com/journeyretry/journeyretry/retry"
)

// TestSummaryWording: the sweeper line says what the count is, overdue
// runs of any cause, and the shadow decisions and snoozes are shown when
// there are some.
func TestSummaryWording(t *testing.T) {
	shadow := ShadowSummary{Decisions: 5, WouldRetry: 4,
		WouldRetryByStrategy: map[string]int{"immediate": 3, "long": 1}, WouldRetryByClass: map[retry.Class]int{retry.ClassNetworkBlip: 4}}
	tests := []struct {
		name  string
		sum   Summary
		want  []string // regular expressions
		avoid []string
	}{
		{name: "sweeper", sum: Summary{Process: &ProcessSummary{SweeperCaught: 4726, SweepGraceMs: 1000}},
			want:  []string{regexp.QuoteMeta("Sweeper took over: 4726 runs overdue by more than 1s (missed wake-ups, expired leases, or a backlog)\n")},
			avoid: []string{"caught", "Shadow"}},
		{name: "shadow", sum: Summary{Database: DatabaseSummary{ShadowDecisions: shadow}},
			want: []string{regexp.QuoteMeta("Shadow decisions (recorded, not acted on): 5 failures, 4 would have been retried\n"),
				"Would retry by strategy:\n  immediate +3\n  long +1\n", "Would retry by error class:\n  network_blip +4\n"}},
		{name: "snoozes", sum: Summary{Database: DatabaseSummary{Snoozes: 7}},
			want: []string{regexp.QuoteMeta("Snoozes (a node asked to run later; no retry counted): 7\n")}},
		{name: "stats", sum: Summary{}, avoid: []string{"Sweeper", "Shadow", "Snoozes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			WriteText(&b, tt.sum)
			for _, re := range tt.want {
				if !regexp.MustCompile(re).MatchString(b.String()) {
					t.Errorf("no %q in:\n%s", re, b.String())
				}
			}
			for _, s := range tt.avoid {
				if strings.Contains(b.String(), s) {
					t.Errorf("%q in:\n%s", s, b.String())
				}
			}
		})
	}
}
