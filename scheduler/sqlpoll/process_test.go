package sqlpoll_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/journeyretry/journeyretry/scheduler/sqlpoll"
	"github.com/journeyretry/journeyretry/storage/pgtest"
)

// These tests run the test binary again as consumer processes
// (TestHelperProcess), as separate programs on one database would.
const (
	envMode = "SQLPOLL_HELPER_MODE" // drain or churn
	envDSN  = "SQLPOLL_HELPER_DSN"
	envOut  = "SQLPOLL_HELPER_OUT"
	envFor  = "SQLPOLL_HELPER_FOR"
)

// helperLease is the consumers' lease: an entry a killed consumer held is
// handed out again this long after it was claimed.
const helperLease = 2 * time.Second

func TestHelperProcess(t *testing.T) {
	switch os.Getenv(envMode) {
	case "drain":
		drain(t)
	case "churn":
		churn(t)
	default:
		t.Skip("run by the multi-process tests")
	}
}

// drain claims batches of 100 and acknowledges them until the table is
// empty, writing each delivered id to its output file (flushed before the
// Ack, so an id acknowledged is an id recorded).
func drain(t *testing.T) {
	ctx := context.Background()
	s, err := sqlpoll.New(ctx, openDB(t, os.Getenv(envDSN)), sqlpoll.Config{Lease: helperLease})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(os.Getenv(envOut), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for {
		ds, err := s.Claim(ctx, time.Now(), 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			if n, err := s.Len(ctx); err != nil || n == 0 {
				return
			}
			time.Sleep(100 * time.Millisecond) // leased to a consumer that died
			continue
		}
		for _, d := range ds {
			fmt.Fprintln(w, d.ID)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if err := s.Ack(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// churnResult is what a churn process reports.
type churnResult struct {
	Claimed, Locked, Other int
	FirstOther             string
}

// churn schedules, claims and acknowledges entries of its own for the
// configured time, counting the errors that say the database is locked.
func churn(t *testing.T) {
	ctx := context.Background()
	s, err := sqlpoll.New(ctx, openDB(t, os.Getenv(envDSN)), sqlpoll.Config{})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := time.ParseDuration(os.Getenv(envFor))
	var r churnResult
	count := func(err error) {
		switch {
		case err == nil:
		case strings.Contains(err.Error(), "locked") || strings.Contains(err.Error(), "SQLITE_BUSY"):
			r.Locked++
		default:
			r.Other++
			r.FirstOther = err.Error()
		}
	}
	me := strconv.Itoa(os.Getpid())
	for i, end := 0, time.Now().Add(d); time.Now().Before(end); i++ {
		for j := range 10 {
			count(s.Schedule(ctx, fmt.Sprintf("%s-%d-%d", me, i, j), time.Now()))
		}
		ds, err := s.Claim(ctx, time.Now(), 10)
		count(err)
		for _, d := range ds {
			count(s.Ack(ctx, d))
		}
		r.Claimed += len(ds)
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		t.Fatal(err)
	}
}

// helper returns the command of one consumer process.
func helper(t *testing.T, mode, dsn, out string, extra ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envMode+"="+mode, envDSN+"="+dsn, envOut+"="+out)
	cmd.Env = append(cmd.Env, extra...)
	cmd.Stderr = os.Stderr
	return cmd
}

// fill inserts n entries due in the past, in one transaction.
func fill(t *testing.T, db *bun.DB, n int) {
	t.Helper()
	tx, err := db.DB.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for i := 0; i < n; i += 1000 {
		var b strings.Builder
		b.WriteString("INSERT INTO journeyretry_wakeups (id, due_ms, next_ms, token) VALUES ")
		for j := i; j < min(i+1000, n); j++ {
			if j > i {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "('e%06d', %d, %d, '')", j, 1_000_000+j, 1_000_000+j)
		}
		if _, err := tx.ExecContext(t.Context(), b.String()); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// deliveries counts the ids the consumers recorded in the files.
func deliveries(t *testing.T, files []string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for id := range strings.FieldsSeq(string(b)) {
			seen[id]++
		}
	}
	return seen
}

// TestFourProcessesDrain: 4 processes on one PostgreSQL database drain
// 50,000 due entries in batches, each entry delivered exactly once; in a
// second round one of them is killed with SIGKILL midway, and every entry
// is still delivered (the killed one's leased batch again, after the
// lease).
func TestFourProcessesDrain(t *testing.T) {
	const n, procs = 50_000, 4
	for _, kill := range []bool{false, true} {
		t.Run(fmt.Sprintf("kill=%v", kill), func(t *testing.T) {
			dsn := pgtest.DSN(t)
			fill(t, openDB(t, dsn), n)
			dir := t.TempDir()
			var files []string
			var cmds []*exec.Cmd
			for i := range procs {
				files = append(files, filepath.Join(dir, fmt.Sprintf("c%d.txt", i)))
				cmd := helper(t, "drain", dsn, files[i])
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
				cmds = append(cmds, cmd)
			}
			if kill {
				// Kill the first consumer once a fifth of the entries went out.
				for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
					if len(deliveries(t, files)) >= n/5 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("a fifth of the entries not delivered within 2 minutes")
					}
				}
				cmds[0].Process.Signal(syscall.SIGKILL)
			}
			for i, cmd := range cmds {
				err := cmd.Wait()
				if (err != nil) != (kill && i == 0) {
					t.Fatalf("consumer %d: %v", i, err)
				}
			}
			seen := deliveries(t, files)
			if len(seen) != n {
				t.Fatalf("%d distinct entries delivered; want %d", len(seen), n)
			}
			twice := 0
			for id, c := range seen {
				if c > 1 {
					twice++
					if !kill {
						t.Fatalf("%s delivered %d times; want once", id, c)
					}
				}
			}
			per := make([]int, procs)
			for i, f := range files {
				per[i] = len(deliveries(t, []string{f}))
			}
			t.Logf("deliveries per process %v; %d entries delivered twice (the killed consumer's last batch)", per, twice)
			for i, c := range per {
				if c == 0 && !(kill && i == 0) {
					t.Errorf("consumer %d got nothing: the claims were not shared", i)
				}
			}
		})
	}
}

// TestTwoProcessesOneSQLiteFile: two processes schedule, claim and
// acknowledge on one SQLite file for a minute, as fast as they can, and
// neither ever sees "database is locked".
func TestTwoProcessesOneSQLiteFile(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "shared.db")
	openDB(t, dsn) // migrated once, before the processes start
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for range 2 {
		cmd := helper(t, "churn", dsn, "", envFor+"=1m")
		out := &strings.Builder{}
		cmd.Stdout = out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("process %d: %v\n%s", i, err, outs[i])
		}
		var r churnResult
		if err := json.NewDecoder(strings.NewReader(outs[i].String())).Decode(&r); err != nil {
			t.Fatalf("process %d: %v: %q", i, err, outs[i])
		}
		t.Logf("process %d: %+v", i, r)
		if r.Locked != 0 || r.Other != 0 || r.Claimed == 0 {
			t.Errorf("process %d: %d claimed, %d 'database is locked' errors, %d others (%s); want 0 errors", i, r.Claimed, r.Locked, r.Other, r.FirstOther)
		}
	}
}
