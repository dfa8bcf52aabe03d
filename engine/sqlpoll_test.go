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

// killChildEnv, when set, makes TestSQLPollWakeupInFailureTx the child:
// it runs one failing run on the engine at that DSN and SIGKILLs itself
// the moment the failure is recorded.
const killChildEnv = "ENGINE_TEST_KILL_CHILD_DSN"

// killAtRetry SIGKILLs the process when a failure leaves its run
// retrying: the executor tells the Observer right after the store
// recorded it, before anything else it does.
type killAtRetry struct{ executor.NopObserver }

func (killAtRetry) Attempt(ev executor.AttemptEvent) {
	if ev.Status == retry.StatusRetrying {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
}

// TestSQLPollWakeupInFailureTx: with the sqlpoll scheduler on the store's
// database, a retry's wake-up is committed with the failure. A process
// killed right after the failure is recorded leaves the run retrying and
// its wake-up entry in the table, due when the run is, with no sweep or
// rebuild to restore it.
func TestSQLPollWakeupInFailureTx(t *testing.T) {
	if dsn := os.Getenv(killChildEnv); dsn != "" {
		runKilledChild(t, dsn)
		return
	}
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		checkWakeupAfterKill(t, filepath.Join(t.TempDir(), "runs.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		checkWakeupAfterKill(t, pgtest.DSN(t))
	})
}

func runKilledChild(t *testing.T, dsn string) {
	cfg := engine.DefaultConfig()
	cfg.Store.DSN = dsn
	cfg.Scheduler.Backend = engine.SchedulerSQLPoll
	cfg.Executor.Observer = killAtRetry{}
	cfg.Executor.Mode = executor.ModeFull
	eng, err := engine.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if err := eng.Handle("call", executor.HandlerFunc(func(context.Context, executor.NodeInput) (json.RawMessage, error) {
		return nil, retry.WithClass(errors.New("connection reset"), retry.ClassNetworkBlip)
	})); err != nil {
		t.Fatal(err)
	}
	if err := eng.RegisterJourney(executor.Journey{ID: "j", Start: "call", Nodes: []executor.Node{{ID: "call", Type: "call"}}}); err != nil {
		t.Fatal(err)
	}
	go eng.Run(t.Context())
	if _, err := eng.StartRun(t.Context(), "j", nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Second) // the Observer kills the process long before
	t.Fatal("the run never failed")
}

func checkWakeupAfterKill(t *testing.T, dsn string) {
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestSQLPollWakeupInFailureTx$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+dsn)
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
	if err != nil || len(runs) != 1 || runs[0].Status != retry.StatusRetrying {
		t.Fatalf("runs %+v, %v; want one run, retrying", runs, err)
	}
	var due int64
	if err := st.DB().QueryRowContext(t.Context(), `SELECT due_ms FROM journeyretry_wakeups WHERE id = ?`, runs[0].ID).Scan(&due); err != nil {
		t.Fatalf("the retrying run's wake-up entry: %v", err)
	}
	if want := runs[0].NextRetryAt.UnixMilli(); due != want {
		t.Fatalf("wake-up due at %d; the run retries at %d", due, want)
	}
}
