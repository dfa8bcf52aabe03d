package main

import (
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/report"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage/pgtest"
)

// TestSQLPollWorkers: three worker processes on one PostgreSQL database,
// all with --scheduler sqlpoll (wake-ups in the database, shared), two of
// them killed with SIGKILL mid-run and started again: every run ends in a
// terminal status, none retried beyond its limit, and no two attempts of
// one run overlap.
func TestSQLPollWorkers(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	const runs = 150
	if r := runDemo(t, dir, nil, "start", "--store", dsn, "--runs", strconv.Itoa(runs)); r.code != 0 {
		t.Fatalf("start: status %d\n%s", r.code, r.stderr)
	}
	sqlpoll := []string{"--scheduler", "sqlpoll"}
	ws := []*worker{startWorker(t, dir, dsn, sqlpoll...), startWorker(t, dir, dsn, sqlpoll...), startWorker(t, dir, dsn, sqlpoll...)}
	for i, at := range []int{runs / 5, runs / 2} {
		waitFor(t, dsn, 60*time.Second, func(c map[retry.Status]int) bool { return c[retry.StatusCompleted] >= at })
		ws[i].cmd.Process.Signal(syscall.SIGKILL)
		ws[i].cmd.Wait()
		t.Logf("worker %d killed with %d runs unfinished", i, report.Unfinished(countRuns(t, dsn)))
		ws[i] = startWorker(t, dir, dsn, sqlpoll...)
	}
	waitFor(t, dsn, 90*time.Second, func(c map[retry.Status]int) bool { return report.Unfinished(c) == 0 })
	for _, w := range ws {
		w.stop(t)
	}
	checkNoOverlap(t, dsn)
	db := openDB(t, dsn).DB()
	over := querySQL(t, db, `SELECT a.run_id || '/' || a.node_id, COUNT(*) FROM journey_run_attempts a
	JOIN journey_runs r ON r.id = a.run_id WHERE a.outcome = 'failed'
	GROUP BY a.run_id, a.node_id, r.max_retries HAVING COUNT(*) > r.max_retries + 1`)
	if len(over) > 0 {
		t.Errorf("nodes failed more often than their retry limit allows: %v", over)
	}
	c := countRuns(t, dsn)
	if c[retry.StatusCompleted]+c[retry.StatusFailed]+c[retry.StatusFailedMaxRetries] != runs {
		t.Errorf("runs %v, want %d finished", c, runs)
	}
}
