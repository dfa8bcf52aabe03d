// Package report computes the summary operators read: runs by status,
// attempts per run, retries by strategy and class, replays, top errors and
// shadow decisions. It reads through [retry.Inspector] only, so any store
// that implements it (the Bun store, an in-memory one) can be reported on,
// and the CLI, the dashboard and the metrics read the same numbers.
//
// The JSON of [Summary] is an interface for scripts: fields may be added
// (a new status, say), none removed or renamed. testdata/summary.json pins
// the keys a script may rely on.
package report

import (
	"context"
	"fmt"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// TopErrorsLimit is how many (class, message) pairs [Summarize] lists.
const TopErrorsLimit = 5

// Summary is what the demo and the stats command report. The fields under
// "database" are read from the store and hold for any database; a process
// that ran the executor adds what only it knows (sweeper catches, wall
// time).
type Summary struct {
	Database DatabaseSummary `json:"database"`
	// Process is set by a process that ran the work (the demo run) only.
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
	// Replays counts operator replays.
	Replays int `json:"replays"`
	// Snoozes counts the attempts that snoozed (retry.Snooze): neither
	// failures nor retries.
	Snoozes int `json:"snoozes"`
	// TopErrors are the most frequent (class, message) pairs among failed
	// attempts, at most TopErrorsLimit.
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

// ProcessSummary is what only the process that ran the work knows.
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

// Summarize reads the database summary through in. Each number is an
// aggregate the store computes, so the summary costs a few queries however
// many runs the store holds. Top errors cover the whole history up to now
// (and a day past it, for attempts stamped by a clock ahead of this one).
func Summarize(ctx context.Context, in retry.Inspector, now time.Time) (DatabaseSummary, error) {
	sum := DatabaseSummary{TopErrors: []TopError{}}
	var err error
	if sum.ByStatus, err = in.CountByStatus(ctx); err != nil {
		return sum, fmt.Errorf("summary: %w", err)
	}
	sum.Runs = Total(sum.ByStatus)
	st, err := in.RetryStats(ctx)
	if err != nil {
		return sum, fmt.Errorf("summary: %w", err)
	}
	sum.AttemptsPerRun, sum.RetriesByStrategy, sum.RetriesByClass, sum.Replays, sum.Snoozes =
		st.AttemptsPerRun, st.RetriesByStrategy, st.RetriesByClass, st.Replays, st.Snoozes
	for n, runs := range st.AttemptsPerRun {
		sum.Attempts += n * runs
	}
	for _, n := range st.RetriesByStrategy {
		sum.Retries += n
	}
	top, err := in.TopErrors(ctx, time.UnixMilli(0), now.Add(24*time.Hour), TopErrorsLimit)
	if err != nil {
		return sum, fmt.Errorf("summary: %w", err)
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

// Total counts the runs of a CountByStatus result.
func Total(byStatus map[retry.Status]int) int {
	n := 0
	for _, c := range byStatus {
		n += c
	}
	return n
}

// Unfinished counts the runs not in a terminal status.
func Unfinished(byStatus map[retry.Status]int) int {
	n := 0
	for st, c := range byStatus {
		if !st.Terminal() {
			n += c
		}
	}
	return n
}
