package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
)

// allFlags are the demo's: everything.
var allFlags = [][]flagBinding{storeFlags, runtimeFlags, policyFlags, demoFlags}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("demo", "[flags]\n\nRuns patient journeys (register -> send reminder SMS -> wait -> call the clinic's API\n-> branch on the answer -> record the outcome) whose handlers fail like real ones\n(network blips, database locks, rate limits with Retry-After, maintenance windows,\ninvalid patient data), then prints a summary. Interrupted and started again on the\nsame database, it resumes the unfinished runs.\n\nSubcommands (see demo help):\n"+strings.SplitN(overview, "\n", 2)[1], allFlags...)
	c.jsonFlag()
	if err := c.parseNoArgs(args); err != nil {
		return err
	}
	cfg := c.cfg
	// Everything is validated: from here on the demo writes.
	info := stdout
	if c.jsonOut {
		info = stderr // stdout is the JSON document alone
	}
	fmt.Fprintf(info, "journeyretry demo: %d patient journeys (%s)\n", cfg.Demo.Runs, journeyID)
	fmt.Fprintf(info, "  store:     %s\n", storeLabel(cfg.Store.DSN))
	fmt.Fprintf(info, "  scheduler: %s    rollout mode: %s    workers: %d    lease: %s    sweeper: %s (grace %s)\n",
		cfg.Scheduler.Backend, cfg.Executor.Mode, cfg.Executor.Workers, cfg.Executor.Lease, cfg.Executor.SweepSpec, cfg.Executor.SweepGrace)
	fr := cfg.Demo.Faults
	fmt.Fprintf(info, "  faults (seed %d): network blips %s, database locks %s, rate limits %s (with Retry-After),\n", cfg.Demo.Seed,
		percent(fr.NetworkBlip), percent(fr.DatabaseLock), percent(fr.RateLimit))
	fmt.Fprintf(info, "    maintenance windows %s of clinic calls, invalid patient data %s\n", percent(fr.Maintenance), percent(fr.BadPatient))
	fmt.Fprintf(info, "  delays scaled down for the demo: long backoff %s-%s instead of minutes\n",
		time.Duration(cfg.Retry.Strategies.Long.BaseDelayMs/2)*time.Millisecond, time.Duration(cfg.Retry.Strategies.Long.MaxDelayMs)*time.Millisecond)

	start := time.Now()
	ex, s, err := openExecutor(ctx, cfg) // ex owns s: Run closes it
	if err != nil {
		return err
	}
	counts, err := s.CountByStatus(ctx)
	if err != nil {
		ex.Close()
		return fmt.Errorf("count runs: %w", err)
	}
	resumed := unfinished(counts)
	created, err := createDemoRuns(ctx, s, ex, cfg.faults(), cfg.Demo.Runs, counts)
	if err != nil {
		ex.Close()
		return err
	}
	switch {
	case resumed > 0:
		fmt.Fprintf(info, "resumed %d unfinished runs from an earlier demo on this database; created %d new runs\n", resumed, created)
	case created == 0:
		fmt.Fprintf(info, "every run in this database has finished; nothing to resume (pass a larger --runs, or remove %s, for new runs)\n", sqlitePath(cfg.Store.DSN))
	default:
		fmt.Fprintf(info, "created %d runs\n", created)
	}

	// The executor runs until every run has finished; its context is not
	// the signal's, so that an interrupt is a graceful shutdown.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	done := make(chan error, 1)
	go func() { done <- ex.Run(runCtx) }()

	waitErr := waitFinished(ctx, s, stderr)
	wall := time.Since(start)
	readCtx := context.WithoutCancel(ctx)
	var d DatabaseSummary
	if waitErr == nil {
		d, waitErr = summarize(readCtx, s) // before Run closes the store
	} else if errors.Is(waitErr, errInterrupted) {
		counts, _ := s.CountByStatus(readCtx)
		waitErr = fmt.Errorf("%w: %d runs unfinished; run the demo again on the same database to resume them", errInterrupted, unfinished(counts))
	}
	stopRun()
	if runErr := <-done; runErr != nil && waitErr == nil {
		waitErr = fmt.Errorf("executor: %w", runErr)
	}
	if waitErr != nil {
		return waitErr
	}

	sum := Summary{Database: d, Process: &ProcessSummary{
		Store: storeLabel(cfg.Store.DSN), Scheduler: cfg.Scheduler.Backend, Mode: string(cfg.Executor.Mode),
		Seed: cfg.Demo.Seed, Created: created, Resumed: resumed,
		SweeperCaught: ex.Stats().SweeperCaught, WallTimeMs: wall.Milliseconds(),
	}}
	if c.jsonOut {
		return writeJSON(stdout, sum)
	}
	fmt.Fprintln(stdout)
	writeSummary(stdout, sum)
	return nil
}

// demoRunID is the id of the demo's run number i: fixed, so that a demo
// interrupted while creating runs creates only the missing ones when it
// starts again.
func demoRunID(i int) string { return fmt.Sprintf("patient-%06d", i) }

// createDemoRuns creates the demo's runs 1..cfg.Demo.Runs that the database
// does not hold yet, unclaimed and due now, and returns how many it created.
func createDemoRuns(ctx context.Context, s retry.Runs, ex *executor.Executor, f faults, runs int, counts map[retry.Status]int) (int, error) {
	existing := 0
	for _, n := range counts {
		existing += n
	}
	created := 0
	for i := 1; i <= runs; i++ {
		id := demoRunID(i)
		if existing > 0 {
			if _, err := s.Get(ctx, id); err == nil {
				continue
			} else if !errors.Is(err, retry.ErrNotFound) {
				return created, fmt.Errorf("look up run %s: %w", id, err)
			}
		}
		if err := startRun(ctx, ex, f, id, i); err != nil {
			return created, err
		}
		created++
	}
	return created, nil
}

// progressEvery is how often the demo polls the store for progress.
const progressEvery = 100 * time.Millisecond

// waitFinished shows a progress bar on w until every run in the store has
// reached a terminal status, or ctx ends (errInterrupted).
func waitFinished(ctx context.Context, s retry.Inspector, w io.Writer) error {
	var bar *progressbar.ProgressBar
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for {
		counts, err := s.CountByStatus(ctx)
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("count runs: %w", err)
		}
		total, left := 0, unfinished(counts)
		for _, n := range counts {
			total += n
		}
		if err == nil {
			if bar == nil {
				bar = progressbar.NewOptions(total,
					progressbar.OptionSetWriter(w),
					progressbar.OptionSetDescription("journeys"),
					progressbar.OptionShowCount(),
					progressbar.OptionSetWidth(30),
					progressbar.OptionThrottle(progressEvery),
					progressbar.OptionClearOnFinish(),
					progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
				)
			}
			bar.ChangeMax(total)
			bar.Set(total - left)
			if left == 0 {
				bar.Finish()
				return nil
			}
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(w)
			return errInterrupted
		case <-tick.C:
		}
	}
}
