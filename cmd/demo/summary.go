package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage"
)

// topErrorsLimit is how many (class, message) pairs the summary lists.
const topErrorsLimit = 5

// Summary is what the demo and the stats command report. The fields under
// "database" are read from the store and hold for any database; the demo
// adds what only the running process knows (sweeper catches, wall time).
// The JSON keys are the interface for scripts.
type Summary struct {
	Database DatabaseSummary `json:"database"`
	// Process is set by the demo run only.
	Process *ProcessSummary `json:"process,omitempty"`
}

// DatabaseSummary is computed from the store: the same numbers whichever
// process asks.
type DatabaseSummary struct {
	// Runs is the number of runs.
	Runs int `json:"runs"`
	// ByStatus counts runs in each status; every status is present.
	ByStatus map[retry.Status]int `json:"byStatus"`
	// Attempts counts node executions (replays excluded).
	Attempts int `json:"attempts"`
	// AttemptsPerRun maps a number of attempts to the runs that took that
	// many.
	AttemptsPerRun map[int]int `json:"attemptsPerRun"`
	// Retries counts failed attempts after which the run was retrying.
	Retries int `json:"retries"`
	// RetriesByStrategy and RetriesByClass split Retries by the strategy
	// that chose the delay and by the error's class.
	RetriesByStrategy map[string]int      `json:"retriesByStrategy"`
	RetriesByClass    map[retry.Class]int `json:"retriesByClass"`
	// Replays counts operator replays (runs retry).
	Replays int `json:"replays"`
	// TopErrors are the most frequent (class, message) pairs among failed
	// attempts.
	TopErrors []TopError `json:"topErrors"`
	// ShadowDecisions are the decisions recorded in shadow mode.
	ShadowDecisions ShadowSummary `json:"shadowDecisions"`
}

// TopError is one row of DatabaseSummary.TopErrors.
type TopError struct {
	Class   retry.Class `json:"class"`
	Message string      `json:"message"`
	Count   int         `json:"count"`
}

// ProcessSummary is what only the demo process knows.
type ProcessSummary struct {
	Store     string `json:"store"`
	Scheduler string `json:"scheduler"`
	Mode      string `json:"mode"`
	Seed      uint64 `json:"seed"`
	// Created and Resumed count the runs this invocation created and the
	// unfinished runs it found and resumed.
	Created int `json:"created"`
	Resumed int `json:"resumed"`
	// SweeperCaught counts runs the sweeper took over because they were
	// overdue by more than SweepGraceMs: a wake-up the scheduler missed, an
	// expired lease, or a backlog (more due runs than workers), which the
	// count alone cannot tell apart.
	SweeperCaught int64 `json:"sweeperCaught"`
	SweepGraceMs  int64 `json:"sweepGraceMs"`
	// WallTimeMs is the time from start to the last run finishing.
	WallTimeMs int64 `json:"wallTimeMs"`
}

// summarize reads the database summary through the store's Inspector: each
// number is an aggregate the database computes, so the summary costs a few
// queries however many runs the database holds.
func summarize(ctx context.Context, s *storage.Store) (DatabaseSummary, error) {
	sum := DatabaseSummary{TopErrors: []TopError{}}
	var err error
	if sum.ByStatus, err = s.CountByStatus(ctx); err != nil {
		return sum, fmt.Errorf("count runs: %w", err)
	}
	sum.Runs = total(sum.ByStatus)
	st, err := s.RetryStats(ctx)
	if err != nil {
		return sum, fmt.Errorf("retry stats: %w", err)
	}
	sum.AttemptsPerRun, sum.RetriesByStrategy, sum.RetriesByClass, sum.Replays =
		st.AttemptsPerRun, st.RetriesByStrategy, st.RetriesByClass, st.Replays
	for n, runs := range st.AttemptsPerRun {
		sum.Attempts += n * runs
	}
	for _, n := range st.RetriesByStrategy {
		sum.Retries += n
	}
	top, err := s.TopErrors(ctx, time.UnixMilli(0), time.Now().Add(24*time.Hour), topErrorsLimit)
	if err != nil {
		return sum, fmt.Errorf("top errors: %w", err)
	}
	for _, e := range top {
		sum.TopErrors = append(sum.TopErrors, TopError{Class: e.Class, Message: e.Message, Count: e.Count})
	}
	sum.ShadowDecisions = ShadowSummary{Decisions: st.ShadowDecisions,
		WouldRetryByStrategy: st.ShadowRetriesByStrategy, WouldRetryByClass: st.ShadowRetriesByClass}
	for _, n := range st.ShadowRetriesByStrategy {
		sum.ShadowDecisions.WouldRetry += n
	}
	return sum, nil
}

// ShadowSummary counts the decisions recorded in shadow mode: what the
// policy would have done with failures that were not retried, which is
// what an operator runs shadow mode to see.
type ShadowSummary struct {
	// Decisions counts the failures recorded with a shadow decision.
	Decisions int `json:"decisions"`
	// WouldRetry counts those the policy would have retried, split by
	// the strategy that would have chosen the delay and by class.
	WouldRetry           int                 `json:"wouldRetry"`
	WouldRetryByStrategy map[string]int      `json:"wouldRetryByStrategy"`
	WouldRetryByClass    map[retry.Class]int `json:"wouldRetryByClass"`
}

// listPage is the page size of run listings.
const listPage = 500

// eachPage calls fn with every run in status st ("" for all), in id order,
// a page at a time.
func eachPage(ctx context.Context, s retry.Inspector, st retry.Status, fn func([]retry.Run) error) error {
	after := ""
	for {
		page, err := s.ListRuns(ctx, retry.RunFilter{Status: st, AfterID: after, Limit: listPage})
		if err != nil {
			return fmt.Errorf("list runs: %w", err)
		}
		if len(page) > 0 {
			if err := fn(page); err != nil {
				return err
			}
		}
		if len(page) < listPage {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

// total counts the runs.
func total(byStatus map[retry.Status]int) int {
	n := 0
	for _, c := range byStatus {
		n += c
	}
	return n
}

// unfinished counts the runs not in a terminal status.
func unfinished(byStatus map[retry.Status]int) int {
	n := 0
	for st, c := range byStatus {
		if !st.Terminal() {
			n += c
		}
	}
	return n
}

// writeSummary prints the summary for people.
func writeSummary(w io.Writer, s Summary) {
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

// oneLine keeps a message on one line for tables.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
