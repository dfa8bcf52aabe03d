package report

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// WriteText prints the summary for people: the same numbers as its JSON.
func WriteText(w io.Writer, s Summary) {
	d := s.Database
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "Runs by status (%d runs):\n", d.Runs)
	for _, st := range retry.Statuses {
		fmt.Fprintf(tw, "  %s\t%6d\n", st, d.ByStatus[st])
	}
	tw.Flush()

	fmt.Fprintf(w, "Attempts per run (%d attempts", d.Attempts)
	if d.Runs > 0 {
		fmt.Fprintf(w, ", %.2f per run", float64(d.Attempts)/float64(d.Runs))
	}
	fmt.Fprintln(w, "):")
	for _, k := range sortedKeys(d.AttemptsPerRun) {
		fmt.Fprintf(tw, "  %2d attempts\t%6d runs\n", k, d.AttemptsPerRun[k])
	}
	tw.Flush()

	fmt.Fprintf(w, "Retries by strategy (%d retries):\n", d.Retries)
	writeCounts(tw, d.RetriesByStrategy)
	fmt.Fprintln(w, "Retries by error class:")
	writeCounts(tw, d.RetriesByClass)
	if d.Replays > 0 {
		fmt.Fprintf(w, "Operator replays: %d\n", d.Replays)
	}
	if d.Snoozes > 0 {
		fmt.Fprintf(w, "Snoozes (a node asked to run later; no retry counted): %d\n", d.Snoozes)
	}
	if sh := d.ShadowDecisions; sh.Decisions > 0 {
		fmt.Fprintf(w, "Shadow decisions (recorded, not acted on): %d failures, %d would have been retried\n", sh.Decisions, sh.WouldRetry)
		fmt.Fprintln(w, "Would retry by strategy:")
		writeCounts(tw, sh.WouldRetryByStrategy)
		fmt.Fprintln(w, "Would retry by error class:")
		writeCounts(tw, sh.WouldRetryByClass)
	}

	fmt.Fprintln(w, "Top errors:")
	if len(d.TopErrors) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	for _, e := range d.TopErrors {
		fmt.Fprintf(w, "  %5d  %-22s %s\n", e.Count, e.Class, e.Message)
	}
	if p := s.Process; p != nil {
		fmt.Fprintf(w, "Sweeper took over: %d runs overdue by more than %s (missed wake-ups, expired leases, or a backlog)\n",
			p.SweeperCaught, time.Duration(p.SweepGraceMs)*time.Millisecond)
		fmt.Fprintf(w, "Wall time: %s\n", (time.Duration(p.WallTimeMs) * time.Millisecond).Round(10*time.Millisecond))
	}
}

// writeCounts prints a count table, largest first, or "(none)".
func writeCounts[K ~string](tw *tabwriter.Writer, m map[K]int) {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	if len(keys) == 0 {
		fmt.Fprintln(tw, "  (none)")
	}
	for _, k := range keys {
		fmt.Fprintf(tw, "  %s\t%6d\n", k, m[k])
	}
	tw.Flush()
}

func sortedKeys(m map[int]int) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}
