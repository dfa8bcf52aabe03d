package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/engine"
	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage"
	"github.com/journeyretry/journeyretry/storage/pgtest"
)

// killChildEnv, when set, makes TestSQLPollWakeupInTx the child: it runs
// one run on the engine at that DSN and SIGKILLs itself the moment the run
// is parked; killStatusEnv says how: "retrying" (its only node fails),
// "waiting" (its first node is a delay) or "snoozed" (its only node
// snoozes, leaving the run waiting).
const (
	killChildEnv  = "ENGINE_TEST_KILL_CHILD_DSN"
	killStatusEnv = "ENGINE_TEST_KILL_CHILD_STATUS"
)

// killAt SIGKILLs the process when an attempt leaves its run in status:
// the executor tells the Observer of the recorded attempt right after the
// store recorded it, before anything else it does.
func killAt(status retry.Status) executor.ObserverFunc {
	return func(ev executor.Event) {
		if a, ok := ev.(executor.AttemptRecorded); ok && a.Status == status {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
}

// TestSQLPollWakeupInTx: with the sqlpoll scheduler on the store's
// database, a retry's wake-up is committed with the failure, and a delay
// node's with the wait, and a snooze's with the snooze. A process killed
// right after any of them is recorded
// leaves the run parked and its wake-up entry in the table, due when the
// run is, with no sweep or rebuild to restore it.
func TestSQLPollWakeupInTx(t *testing.T) {
	if dsn := os.Getenv(killChildEnv); dsn != "" {
		runKilledChild(t, dsn, os.Getenv(killStatusEnv))
		return
	}
	for _, how := range []string{"retrying", "waiting", "snoozed"} {
		t.Run("sqlite/"+how, func(t *testing.T) {
			t.Parallel()
			checkWakeupAfterKill(t, filepath.Join(t.TempDir(), "runs.db"), how)
		})
		t.Run("postgres/"+how, func(t *testing.T) {
			t.Parallel()
			checkWakeupAfterKill(t, pgtest.DSN(t), how)
		})
	}
}

// parkedStatus is the status a run parked as how (see killStatusEnv) is in.
func parkedStatus(how string) retry.Status {
	if how == "snoozed" {
		return retry.StatusWaiting
	}
	return retry.Status(how)
}

func runKilledChild(t *testing.T, dsn string, how string) {
	cfg := engine.DefaultConfig()
	cfg.Store.DSN = dsn
	cfg.Scheduler.Backend = engine.SchedulerSQLPoll
	cfg.Executor.Observer = killAt(parkedStatus(how))
	cfg.Executor.Mode = executor.ModeFull
	eng, err := engine.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if err := eng.Handle("call", executor.HandlerFunc(func(context.Context, executor.NodeInput) (json.RawMessage, error) {
		if how == "snoozed" {
			return nil, retry.Snooze(nil, time.Hour)
		}
		return nil, retry.WithClass(errors.New("connection reset"), retry.ClassNetworkBlip)
	})); err != nil {
		t.Fatal(err)
	}
	j := executor.Journey{ID: "j", Start: "call", Nodes: []executor.Node{{ID: "call", Type: "call"}}}
	if how == "waiting" {
		j.Start = "wait"
		j.Nodes = append(j.Nodes, executor.Node{ID: "wait", Type: executor.NodeTypeDelay,
			Config: json.RawMessage(`{"delay":"1h"}`), Next: "call"})
	}
	if err := eng.RegisterJourney(j); err != nil {
		t.Fatal(err)
	}
	go eng.Run(t.Context())
	if _, err := eng.StartRun(t.Context(), "j", nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Second) // the Observer kills the process long before
	t.Fatal("the run was never parked")
}

func checkWakeupAfterKill(t *testing.T, dsn string, how string) {
	status := parkedStatus(how)
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestSQLPollWakeupInTx$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+dsn, killStatusEnv+"="+how)
	out, err := cmd.CombinedOutput()
	if ee, ok := errors.AsType[*exec.ExitError](err); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child: %v, want killed by SIGKILL\n%s", err, out)
	}
	st, err := storage.Open(t.Context(), storage.Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	runs, err := st.ListRuns(t.Context(), retry.RunFilter{})
	if err != nil || len(runs) != 1 || runs[0].Status != status || (how == "snoozed") != (runs[0].SnoozeCount == 1) {
		t.Fatalf("runs %+v, %v; want one run, %s (%s)", runs, err, status, how)
	}
	var due int64
	if err := st.DB().QueryRowContext(t.Context(), `SELECT due_ms FROM journeyretry_wakeups WHERE id = ?`, runs[0].ID).Scan(&due); err != nil {
		t.Fatalf("the retrying run's wake-up entry: %v", err)
	}
	if want, _ := runs[0].DueAt(); due != want.UnixMilli() {
		t.Fatalf("wake-up due at %d; the run is due at %d", due, want.UnixMilli())
	}
}

// TestSQLPollOwnDatabase: with scheduler.sqlpollDsn the wake-up table is
// in that database, not the store's, and a retry still wakes its run.
func TestSQLPollOwnDatabase(t *testing.T) {
	dir := t.TempDir()
	cfg := engine.DefaultConfig()
	cfg.Store.DSN = filepath.Join(dir, "runs.db")
	cfg.Scheduler = engine.SchedulerConfig{Backend: engine.SchedulerSQLPoll, SQLPollDSN: filepath.Join(dir, "wakeups.db")}
	cfg.Executor.Mode = executor.ModeFull
	eng, err := engine.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if run, atts := startLockedOnce(t, eng); run.Status != retry.StatusCompleted || len(atts) != 2 {
		t.Fatalf("run %s after %d attempts, want completed after 2", run.Status, len(atts))
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]int{"runs.db": 0, "wakeups.db": 1} {
		st, err := storage.Open(t.Context(), storage.Config{DSN: filepath.Join(dir, file)})
		if err != nil {
			t.Fatal(err)
		}
		var n int
		err = st.DB().QueryRowContext(t.Context(), `SELECT count(*) FROM sqlite_master WHERE name = 'journeyretry_wakeups'`).Scan(&n)
		st.Close()
		if err != nil || n != want {
			t.Errorf("%s holds %d wake-up tables (%v), want %d", file, n, err, want)
		}
	}
}
