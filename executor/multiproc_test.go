package executor_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
	"github.com/journeyretry/journeyretry/storage"
	"github.com/journeyretry/journeyretry/storage/pgtest"
)

const (
	mpEnvDSN   = "JRETRY_MP_DSN"
	mpEnvLog   = "JRETRY_MP_LOG"
	mpEnvLease = "JRETRY_MP_LEASE"
	mpRuns     = 300
	mpWorkers  = 4 // processes
)

// mpPolicy retries every failure, half of them at once (under the claim
// the store keeps) and half after 10 ms.
var mpPolicy = retry.PolicyFunc(func(f retry.Failure) retry.Decision {
	d := time.Duration(0)
	if f.RetryCount%2 == 1 {
		d = 10 * time.Millisecond
	}
	return retry.Decision{Retry: true, Delay: d, Strategy: "mp", Rule: "default"}
})

// TestPostgresWorkers runs 4 worker processes on a PostgreSQL database of
// its own, with leases of 1 s and 5 s, without and with SIGKILLs (three,
// at set fractions of the runs ended, so they land mid-work), and
// checks what they did from outside: PostgreSQL detected no deadlock in
// that database (pg_stat_database.deadlocks, before and after), every run
// ended, and the handlers' own execution log, compared with the attempt
// history, shows no execution that started under an expired claim, none
// that overlapped another worker's execution of the same run, and none by
// a process that was not killed that the store did not record, unless
// that process reported the claim lost (LeaseLost: the lease ran out
// while the node or its write ran, as when the disk stalls a commit for
// longer than the half lease a node starts with; its result is refused
// and another worker runs the node again, at least once as documented).
func TestPostgresWorkers(t *testing.T) {
	base := os.Getenv(pgtest.EnvURL)
	if base == "" {
		t.Skipf("%s is not set: skipping the PostgreSQL test", pgtest.EnvURL)
	}
	if testing.Short() {
		t.Skip("multi-process test skipped in -short mode")
	}
	for _, lease := range []time.Duration{time.Second, 5 * time.Second} {
		for _, kill := range []bool{false, true} {
			t.Run(fmt.Sprintf("lease=%s/kill=%v", lease, kill), func(t *testing.T) { mpRound(t, base, lease, kill) })
		}
	}
}

// mpDatabase creates a database of its own (pg_stat_database counts per
// database), dropped when t ends, and returns its URL and a connection to
// it for the statistics.
func mpDatabase(t *testing.T, base string) (string, *sql.DB) {
	t.Helper()
	admin := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(base)))
	t.Cleanup(func() { admin.Close() })
	name := "jr_mp_" + strings.ToLower(rand.Text())
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	u, err := url.Parse(base)
	must(t, err)
	u.Path = "/" + name
	db := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(u.String())))
	t.Cleanup(func() {
		db.Close()
		if _, err := admin.Exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return u.String(), db
}

// deadlocks reads pg_stat_database.deadlocks of the current database,
// flushing this backend's statistics first where the server can
// (pg_stat_force_next_flush, PostgreSQL 16 and later). The worker
// processes' backends flush theirs when they exit, which they have done
// by the time this is read after a round.
func deadlocks(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	_, _ = db.Exec("SELECT pg_stat_force_next_flush()") // absent before PostgreSQL 16
	_, _ = db.Exec("SELECT pg_stat_clear_snapshot()")
	var n int64
	must(t, db.QueryRow("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()").Scan(&n))
	return n
}

// mpExecution is one line of a handler's log.
type mpExecution struct {
	run, node, token, worker string
	attempt                  int
	lease, start, end        int64 // Unix ms; end 0 when the node never finished
}

func mpRound(t *testing.T, base string, lease time.Duration, kill bool) {
	dsn, db := mpDatabase(t, base)
	ctx := context.Background()
	store, err := storage.Open(ctx, storage.Config{DSN: dsn})
	must(t, err)
	must(t, store.Migrate(ctx))
	for i := range mpRuns {
		_, err := store.Create(ctx, retry.NewRun{ID: fmt.Sprintf("run-%04d", i), JourneyID: "mp", JourneyVersion: 1, StartNodeID: "a", MaxRetries: 3}, time.Now())
		must(t, err)
	}
	before := deadlocks(t, db)
	dir := t.TempDir()
	type child struct {
		cmd      *exec.Cmd
		log      string
		killedAt int64
		exited   chan error
		reaped   bool // its exit was read (and checked) already
	}
	var children []*child
	start := func() {
		c := &child{log: filepath.Join(dir, fmt.Sprintf("worker-%d.log", len(children))), exited: make(chan error, 1)}
		c.cmd = exec.Command(os.Args[0], "-test.run=^TestPostgresWorkerProcess$")
		c.cmd.Env = append(os.Environ(), mpEnvDSN+"="+dsn, mpEnvLog+"="+c.log, mpEnvLease+"="+lease.String())
		c.cmd.Stderr = os.Stderr
		must(t, c.cmd.Start())
		go func() { c.exited <- c.cmd.Wait() }()
		children = append(children, c)
	}
	for range mpWorkers {
		start()
	}
	deadline := time.After(90 * time.Second) // watchdog; a round takes seconds
	if kill {
		// Kill a worker mid-work, three times, and start another. Each
		// kill waits for another fifth of the runs to end, not for a
		// time: on a loaded machine the workers could be done first, and
		// the round would then kill nothing.
		landed := 0
		for k := range 3 {
			mpAwaitEnded(t, store, (k+1)*mpRuns/5+mrand.IntN(mpRuns/10), deadline)
			c := children[k]
			c.killedAt = time.Now().UnixMilli()
			err := c.cmd.Process.Signal(syscall.SIGKILL)
			if errors.Is(err, os.ErrProcessDone) {
				// It exited on its own: every run ended between the count
				// and the signal. It was not killed, so its exit must be
				// clean and all its executions recorded, as any other's.
				c.killedAt = 0
				must(t, <-c.exited)
				c.reaped = true
				continue
			}
			must(t, err)
			<-c.exited
			c.reaped = true
			landed++
			start()
		}
		if landed == 0 {
			t.Errorf("every worker exited before its kill: the round killed none mid-work")
		}
	}
	for _, c := range children {
		if c.reaped {
			continue
		}
		select {
		case err := <-c.exited: // a worker exits once every run has ended
			must(t, err)
		case <-deadline:
			for _, c := range children {
				c.cmd.Process.Kill()
			}
			counts, _ := store.CountByStatus(ctx)
			t.Fatalf("the workers did not finish: %v", counts)
		}
	}
	if n := deadlocks(t, db) - before; n != 0 {
		t.Errorf("PostgreSQL detected %d deadlocks in the workers' database", n)
	}

	// The handlers' log against the store's history.
	execs := map[string][]mpExecution{} // by run
	killed := map[string]int64{}        // worker -> kill time
	lost := map[string]bool{}           // run, node, attempt, worker of a LeaseLost
	for _, c := range children {
		es, ls := mpReadLog(t, c.log)
		for k := range ls {
			lost[k] = true
		}
		for _, e := range es {
			execs[e.run] = append(execs[e.run], e)
			if c.killedAt != 0 {
				killed[e.worker] = c.killedAt
			}
		}
	}
	total, unrecorded, reported := 0, 0, 0
	for i := range mpRuns {
		id := fmt.Sprintf("run-%04d", i)
		run, err := store.Get(ctx, id)
		must(t, err)
		if !run.Status.Terminal() {
			t.Errorf("run %s is %s", id, run.Status)
		}
		as, err := store.Attempts(ctx, id)
		must(t, err)
		recorded := map[string]bool{}
		for _, a := range as {
			recorded[fmt.Sprint(a.NodeID, a.NodeAttempt, a.ClaimToken)] = true
		}
		es := execs[id]
		logged := map[string]bool{}
		for _, e := range es {
			logged[fmt.Sprint(e.node, e.attempt, e.token)] = true
		}
		// The log is complete: every recorded attempt is in it. A handler
		// logs its start before it returns, and the executor records the
		// attempt only after that, so not even a kill in between explains
		// a recorded attempt missing from the log: one the executor
		// recorded without running the handler does (a run ended
		// missing_journey or malformed_node, as every run did while the
		// runs made here had no journey version), and so would a store
		// that recorded an attempt under another claim than the one the
		// handler ran under.
		for _, a := range as {
			if !logged[fmt.Sprint(a.NodeID, a.NodeAttempt, a.ClaimToken)] {
				t.Errorf("run %s: recorded attempt %d of node %s (token %s, worker %s, %s %s: %s) is not in the handlers' log",
					id, a.NodeAttempt, a.NodeID, a.ClaimToken, a.Worker, a.Outcome, a.ErrorClass, a.ErrorMessage)
			}
		}
		for j, e := range es {
			total++
			if e.start >= e.lease {
				t.Errorf("run %s node %s attempt %d started at %d under a claim that expired at %d", id, e.node, e.attempt, e.start, e.lease)
			}
			if !recorded[fmt.Sprint(e.node, e.attempt, e.token)] {
				unrecorded++
				switch {
				case killed[e.worker] != 0:
				case lost[mpLostKey(e.run, e.node, e.attempt, e.worker)]:
					reported++
				default:
					t.Errorf("execution %+v by a worker that was not killed is not in the history, nor reported lost", e)
				}
			}
			end := e.end
			if end == 0 {
				end = killed[e.worker]
			}
			for _, o := range es[j+1:] {
				oend := o.end
				if oend == 0 {
					oend = killed[o.worker]
				}
				if o.token != e.token && o.start < end && e.start < oend {
					t.Errorf("run %s: executions %+v and %+v overlap", id, e, o)
				}
			}
		}
	}
	t.Logf("%d executions, %d not recorded (in flight at a kill, or %d reported lost)", total, unrecorded, reported)
	must(t, store.Close())
}

// mpAwaitEnded polls store until at least n runs have ended, failing t at
// deadline.
func mpAwaitEnded(t *testing.T, store *storage.Store, n int, deadline <-chan time.Time) {
	t.Helper()
	for {
		counts, err := store.CountByStatus(t.Context())
		must(t, err)
		if counts[retry.StatusCompleted]+counts[retry.StatusFailed]+counts[retry.StatusFailedMaxRetries] >= n {
			return
		}
		select {
		case <-deadline:
			t.Fatalf("fewer than %d runs ended in time: %v", n, counts)
		case <-time.After(10 * time.Millisecond): // polling the workers' progress
		}
	}
}

// mpReadLog reads a worker's log: its executions, and the LeaseLost events
// it reported (by mpLostKey).
func mpReadLog(t *testing.T, path string) ([]mpExecution, map[string]bool) {
	t.Helper()
	lost := map[string]bool{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, lost
	}
	must(t, err)
	defer f.Close()
	var out []mpExecution
	index := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 8 {
			continue // a line cut by a kill
		}
		n := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
		key := strings.Join(fs[1:6], " ")
		switch fs[0] {
		case "start":
			index[key] = len(out)
			out = append(out, mpExecution{run: fs[1], node: fs[2], attempt: int(n(fs[3])), token: fs[4], worker: fs[5], lease: n(fs[6]), start: n(fs[7])})
		case "end":
			if i, ok := index[key]; ok {
				out[i].end = n(fs[7])
			}
		case "lost":
			lost[mpLostKey(fs[1], fs[2], int(n(fs[3])), fs[5])] = true
		}
	}
	must(t, sc.Err())
	return out, lost
}

// mpLostKey names a node attempt of a worker.
func mpLostKey(run, node string, attempt int, worker string) string {
	return fmt.Sprint(run, " ", node, " ", attempt, " ", worker)
}

// TestPostgresWorkerProcess is TestPostgresWorkers' worker process: it
// executes runs until every run of the database has ended. It is not a
// test of its own.
func TestPostgresWorkerProcess(t *testing.T) {
	dsn := os.Getenv(mpEnvDSN)
	if dsn == "" {
		t.Skip("TestPostgresWorkers' worker process")
	}
	lease, err := time.ParseDuration(os.Getenv(mpEnvLease))
	must(t, err)
	logf, err := os.OpenFile(os.Getenv(mpEnvLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	must(t, err)
	defer logf.Close()
	ctx := context.Background()
	store, err := storage.Open(ctx, storage.Config{DSN: dsn})
	must(t, err)
	sched, err := memory.New(memory.Config{Lease: time.Second})
	must(t, err)
	worker := fmt.Sprintf("w%d", os.Getpid())
	write := func(line string) {
		// One write per line, O_APPEND: lines of one process never mix.
		if _, err := logf.WriteString(line); err != nil {
			panic(err)
		}
	}
	lostLine := executor.ObserverFunc(func(ev executor.Event) {
		if l, ok := ev.(executor.LeaseLost); ok {
			write(fmt.Sprintf("lost %s %s %d - %s 0 %d\n", l.RunID, l.NodeID, l.NodeAttempt, worker, time.Now().UnixMilli()))
		}
	})
	ex, err := executor.New(executor.Config{Workers: 8, Lease: lease, SweepSpec: "@every 1s", SweepGrace: 100 * time.Millisecond,
		Mode: executor.ModeFull, ShutdownTimeout: time.Second, Worker: worker, Observer: lostLine}, store, sched, mpPolicy)
	must(t, err)
	logLine := func(what string, in executor.NodeInput) {
		write(fmt.Sprintf("%s %s %s %d %s %s %d %d\n", what, in.Run.ID, in.Node.ID, in.Attempt, in.Run.ClaimToken, worker,
			in.Run.LeaseExpiresAt.UnixMilli(), time.Now().UnixMilli()))
	}
	must(t, ex.Handle("work", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		logLine("start", in)
		h := fnv.New64a()
		fmt.Fprint(h, in.Run.ID, in.Node.ID, in.Attempt)
		x := h.Sum64()
		select {
		case <-time.After(time.Duration(x%10) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		logLine("end", in)
		if x%100 < 40 {
			return nil, retry.WithClass(errors.New("connection reset"), retry.ClassNetworkBlip)
		}
		return json.RawMessage(`{}`), nil
	})))
	must(t, ex.RegisterJourney(executor.Journey{ID: "mp", Start: "a", Nodes: []executor.Node{
		{ID: "a", Type: "work", Next: "b"}, {ID: "b", Type: "work"}}}))
	rctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- ex.Run(rctx) }()
	for {
		counts, err := store.CountByStatus(ctx)
		must(t, err)
		if counts[retry.StatusCompleted]+counts[retry.StatusFailed]+counts[retry.StatusFailedMaxRetries] == mpRuns {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling another process's progress
	}
	cancel()
	must(t, <-errc)
	must(t, ex.Close())
	must(t, store.Close())
	fmt.Printf("worker %s done: %+v\n", worker, ex.Stats())
}
