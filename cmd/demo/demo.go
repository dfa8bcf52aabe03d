package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/journeyretry/journeyretry/report"
	"github.com/journeyretry/journeyretry/retry"
)

// allFlags are the demo's: everything.
var allFlags = [][]flagBinding{storeFlags, runtimeFlags, modeFlags, retryLimitFlags, delayFlags, ruleFlags,
	runsFlags, seedFlags, patientFlags, nodeFaultFlags, logFlags, metricsFlags}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand(ctx, "demo", "[flags]\n\nRuns patient journeys (register -> send reminder SMS -> wait -> call the clinic's API\n-> branch on the answer -> record the outcome) whose handlers fail like real ones\n(network blips, database locks, rate limits with Retry-After, maintenance windows,\ninvalid patient data), then prints a summary. Interrupted and started again on the\nsame database, it resumes the unfinished runs.\n\nSubcommands (see demo help):\n"+strings.SplitN(overview, "\n", 2)[1], allFlags...)
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
	writeBanner(info, cfg)

	obs, err := newObservability(cfg, stderr)
	if err != nil {
		return err
	}
	start := time.Now()
	ex, err := openEngine(ctx, cfg, obs)
	if err != nil {
		return err
	}
	stop, err := obs.serveMetrics(ctx, cfg.Metrics.Listen, info)
	if err != nil {
		ex.Close()
		return err
	}
	defer stop()
	s := ex.Store()
	counts, err := s.CountByStatus(ctx)
	if err != nil {
		ex.Close()
		return fmt.Errorf("count runs: %w", err)
	}
	resumed := report.Unfinished(counts)
	created, err := createRuns(ctx, ex.Executor, cfg.faults(), cfg.Demo.Runs, true, s)
	if err != nil {
		ex.Close()
		if errors.Is(err, errInterrupted) {
			return fmt.Errorf("%w; run the demo again on the same database to resume them", err)
		}
		return err
	}
	switch {
	case resumed > 0:
		fmt.Fprintf(info, "resumed %d unfinished runs from an earlier demo on this database; created %d new runs\n", resumed, created)
	case created == 0:
		fmt.Fprintf(info, "every run in this database has finished; nothing to resume (pass a larger --runs, or %s, for new runs)\n", freshHint(cfg.Store.DSN))
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
	var d report.DatabaseSummary
	if waitErr == nil {
		d, waitErr = report.Summarize(readCtx, s, time.Now())
	}
	stopRun()
	if runErr := <-done; runErr != nil && waitErr == nil {
		waitErr = fmt.Errorf("executor: %w", runErr)
	}
	if errors.Is(waitErr, errInterrupted) {
		// Counted once the executor has stopped: the nodes in flight
		// finished (or were handed back) meanwhile.
		counts, _ := s.CountByStatus(readCtx)
		waitErr = fmt.Errorf("%w: %d runs unfinished; run the demo again on the same database to resume them", errInterrupted, report.Unfinished(counts))
	}
	if closeErr := ex.Close(); closeErr != nil && waitErr == nil {
		waitErr = closeErr
	}
	if waitErr != nil {
		return waitErr
	}

	ec := cfg.executorConfig()
	sum := report.Summary{Database: d, Process: &report.ProcessSummary{
		Store: storeLabel(cfg.Store.DSN), Scheduler: cfg.Scheduler.Backend, Mode: string(ec.Mode),
		Seed: cfg.Demo.Seed, Created: created, Resumed: resumed,
		SweeperCaught: ex.Stats().SweeperCaught, SweepGraceMs: ec.SweepGrace.Milliseconds(), WallTimeMs: wall.Milliseconds(),
	}}
	if c.jsonOut {
		return writeJSON(stdout, sum)
	}
	fmt.Fprintln(stdout)
	report.WriteText(stdout, sum)
	return nil
}

// writeBanner says what the demo is about to do, with the values it runs
// with (the library's defaults where the configuration leaves a zero).
func writeBanner(w io.Writer, cfg demoConfig) {
	ec := cfg.executorConfig()
	fmt.Fprintf(w, "journeyretry demo: %d patient journeys (%s)\n", cfg.Demo.Runs, journeyID)
	fmt.Fprintf(w, "  store:     %s\n", storeLabel(cfg.Store.DSN))
	fmt.Fprintf(w, "  scheduler: %s    rollout mode: %s    workers: %d    lease: %s    sweeper: %s (grace %s)\n",
		cfg.Scheduler.Backend, ec.Mode, ec.Workers, ec.Lease, ec.SweepSpec, ec.SweepGrace)
	fr := cfg.Demo.Faults
	fmt.Fprintf(w, "  faults (seed %d): network blips %s, database locks %s, rate limits %s (with Retry-After),\n", cfg.Demo.Seed,
		percent(fr.NetworkBlip), percent(fr.DatabaseLock), percent(fr.RateLimit))
	fmt.Fprintf(w, "    maintenance windows %s of clinic calls, invalid patient data %s\n", percent(fr.Maintenance), percent(fr.BadPatient))
	if long := cfg.Retry.Strategies.Long; delaysScaled(cfg.Retry) {
		// The long strategy's equal jitter waits from half its delay.
		fmt.Fprintf(w, "  delays scaled down for the demo: long backoff %s-%s instead of minutes\n",
			time.Duration(long.BaseDelayMs/2)*time.Millisecond, time.Duration(long.MaxDelayMs)*time.Millisecond)
	}
}

// demoRunID is the id of the demo's run number i: fixed, so that a demo
// interrupted while creating runs creates only the missing ones when it
// starts again.
func demoRunID(i int) string { return fmt.Sprintf("patient-%06d", i) }

// progressEvery is how often the demo polls the store for progress.
const progressEvery = 100 * time.Millisecond

// plainEvery is how often the demo prints a progress line when stderr is
// not a terminal (a log, a pipe), where a bar's carriage-return frames
// would pile up.
const plainEvery = 5 * time.Second

// waitFinished shows progress on w until every run in the store has
// reached a terminal status, or ctx ends (errInterrupted): a bar on a
// terminal, a plain line every plainEvery otherwise.
func waitFinished(ctx context.Context, s retry.Inspector, w io.Writer) error {
	var bar *progressbar.ProgressBar
	f, isFile := w.(*os.File)
	terminal := isFile && term.IsTerminal(int(f.Fd()))
	start, lastLine := time.Now(), time.Now()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for {
		counts, err := s.CountByStatus(ctx)
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("count runs: %w", err)
		}
		all, left := report.Total(counts), report.Unfinished(counts)
		switch {
		case err != nil:
		case !terminal:
			if left == 0 {
				return nil
			}
			if now := time.Now(); now.Sub(lastLine) >= plainEvery {
				fmt.Fprintf(w, "journeys: %d of %d finished\n", all-left, all)
				lastLine = now
			}
		default:
			if bar == nil {
				bar = progressbar.NewOptions(all,
					progressbar.OptionSetWriter(w),
					progressbar.OptionSetDescription("journeys"),
					progressbar.OptionShowCount(),
					progressbar.OptionSetWidth(30),
					progressbar.OptionSetPredictTime(false), // eta says it, once it means something
					progressbar.OptionThrottle(progressEvery),
					progressbar.OptionClearOnFinish(),
					progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
				)
			}
			bar.ChangeMax(all)
			bar.Describe("journeys" + eta(time.Since(start), all-left, all))
			bar.Set(all - left)
			if left == 0 {
				bar.Finish()
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if terminal {
				fmt.Fprintln(w)
			}
			return errInterrupted
		case <-tick.C:
		}
	}
}

// eta is the bar's estimate of the time left, after elapsed with done of
// all runs finished: nothing before 5 % of the runs are done or 2 s have
// passed, when a rate from a handful of runs would be noise.
func eta(elapsed time.Duration, done, all int) string {
	if done == 0 || done >= all || (done*20 < all && elapsed < 2*time.Second) {
		return ""
	}
	left := time.Duration(float64(elapsed) * float64(all-done) / float64(done))
	return fmt.Sprintf(" (about %s left)", left.Round(time.Second))
}
