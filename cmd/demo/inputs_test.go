package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/config"
	"github.com/journeyretry/journeyretry/report"
	"github.com/journeyretry/journeyretry/retry"
)

// demoWithMaxRetries runs a demo of 30 runs with --max-retries limit in a
// temporary directory, checks that the store kept that limit for every
// run, and returns the directory and the database.
func demoWithMaxRetries(t *testing.T, limit string) (dir, store string) {
	t.Helper()
	dir = t.TempDir()
	store = filepath.Join(dir, "limit.db")
	if r := runDemo(t, dir, nil, append(fastArgs(store, 30), "--max-retries", limit)...); r.code != 0 {
		t.Fatalf("demo: status %d\n%s", r.code, r.stderr)
	}
	limits := querySQL(t, openDB(t, store).DB(), `SELECT CAST(max_retries AS TEXT), COUNT(*) FROM journey_runs GROUP BY max_retries`)
	if len(limits) != 1 || limits[limit] != 30 {
		t.Errorf("max_retries in the store: %v; want %s for all 30 runs", limits, limit)
	}
	return dir, store
}

// TestMaxRetriesZero: --max-retries 0 means no retry: the store keeps 0,
// runs list and runs show say 0, and no failure was retried.
func TestMaxRetriesZero(t *testing.T) {
	t.Parallel()
	dir, store := demoWithMaxRetries(t, "0")
	retried := querySQL(t, openDB(t, store).DB(), `SELECT outcome, COUNT(*) FROM journey_run_attempts WHERE decision_retry GROUP BY outcome`)
	if len(retried) != 0 {
		t.Errorf("attempts retried with --max-retries 0: %v", retried)
	}
	r := runDemo(t, dir, nil, "runs", "list", "--store", store, "--json")
	var runs []runView
	if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil || r.code != 0 {
		t.Fatalf("runs list: status %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	var failed string
	for _, v := range runs {
		if v.MaxRetries != 0 || v.RetryCount != 0 {
			t.Errorf("run %s: retry %d of %d, want 0 of 0", v.ID, v.RetryCount, v.MaxRetries)
		}
		if v.Status == retry.StatusFailedMaxRetries || v.Status == retry.StatusFailed {
			failed = v.ID
		}
	}
	if failed == "" {
		t.Fatal("no run failed: the default fault rates should fail some")
	}
	if r := runDemo(t, dir, nil, "runs", "show", failed, "--store", store); r.code != 0 || strings.Contains(r.stdout, " of 3)") {
		t.Errorf("runs show %s: status %d\n%s%s", failed, r.code, r.stdout, r.stderr)
	}
}

// TestMaxRetriesUnlimited: --max-retries -1 keeps -1 in the store's
// max_retries, and runs list, runs show and explain say "unlimited"
// (explain also shows retry.maxElapsedMs).
func TestMaxRetriesUnlimited(t *testing.T) {
	t.Parallel()
	dir, store := demoWithMaxRetries(t, "-1")
	exhausted := querySQL(t, openDB(t, store).DB(), `SELECT status, COUNT(*) FROM journey_runs WHERE status = 'failed_max_retries' GROUP BY status`)
	if len(exhausted) != 0 {
		t.Errorf("runs exhausted under unlimited retries: %v", exhausted)
	}
	r := runDemo(t, dir, nil, "runs", "list", "--store", store)
	if r.code != 0 || strings.Count(r.stdout, "/unlimited") != 30 {
		t.Errorf("runs list: status %d; want every run's retries out of unlimited\n%s%s", r.code, r.stdout, r.stderr)
	}
	var id string
	for line := range strings.SplitSeq(r.stdout, "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] != "-" && f[0] != "ID" {
			id, _ = strconv.Unquote(f[0])
			break
		}
	}
	if id == "" {
		t.Fatal("no run stopped at a node: the default fault rates should fail some for good")
	}
	if r := runDemo(t, dir, nil, "runs", "show", id, "--store", store); r.code != 0 || !strings.Contains(r.stdout, " of unlimited)") {
		t.Errorf("runs show %s: status %d\n%s%s", id, r.code, r.stdout, r.stderr)
	}
	if r := runDemo(t, dir, []string{"JRETRY_RETRY_MAX_ELAPSED_MS=3600000"}, "explain", "--class", "rate_limit", "--max-retries", "-1"); r.code != 0 ||
		!strings.Contains(r.stdout, "rule class:rate_limit), unlimited retries, none starting later than 1h0m0s after the node's first attempt") ||
		strings.Contains(r.stdout, "beyond maxRetries") {
		t.Errorf("explain with --max-retries -1: status %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestShortLeaseRefused: a lease under the executor's minimum is a usage
// error, and nothing is created.
func TestShortLeaseRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := filepath.Join(dir, "data", "lease.db")
	for _, args := range [][]string{{"--lease", "1ms"}, {"worker", "--lease", "99ms"}, {"worker", "--lease", "50ms"}} {
		r := runDemo(t, dir, nil, append(args, "--store", store)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "want at least 100ms") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: status %d, %q", args, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Dir(store)); !os.IsNotExist(err) {
		t.Errorf("data folder after refused leases: %v", err)
	}
}

// TestBadWorkerNameRefused: a worker name holding NUL, invalid UTF-8 or a
// control character, from a file or the environment (no flag sets it), is
// a one-line usage error before anything is created; a file's invalid
// UTF-8 is never silently replaced.
func TestBadWorkerNameRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := filepath.Join(dir, "data", "names.db")
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"file NUL", nil, []string{"--config", writeTemp(t, `{"executor": {"worker": "a\u0000b"}}`)}, `worker: "a\x00b"`},
		{"file invalid UTF-8", nil, []string{"--config", writeTemp(t, "{\"executor\": {\"worker\": \"a\xffb\"}}")}, "not valid UTF-8"},
		{"environment invalid UTF-8", []string{"JRETRY_EXECUTOR_WORKER=a\xffb"}, nil, `worker: "a\xffb"`},
		{"environment escape", []string{"JRETRY_EXECUTOR_WORKER=w\x1b[31m"}, nil, `worker: "w\x1b[31m"`},
		{"file newline", nil, []string{"--config", writeTemp(t, `{"executor": {"worker": "w\nforged line"}}`)}, `worker: "w\nforged line"`},
	}
	for _, tt := range tests {
		for _, cmd := range [][]string{{}, {"worker"}} {
			r := runDemo(t, dir, tt.env, slices.Concat(cmd, tt.args, []string{"--store", store})...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("%s %v: status %d, %q; want status 2, one line with %q", tt.name, cmd, r.code, r.stderr, tt.want)
			}
		}
	}
	if _, err := os.Stat(filepath.Dir(store)); !os.IsNotExist(err) {
		t.Errorf("data folder after refused worker names: %v", err)
	}
}

// TestRunIDsQuoted: run ids (a legacy one may hold anything the store
// accepts) are printed quoted in tables and messages, and cut to 200 bytes
// in errors, so no row or error line is split or recoloured; an empty or
// unstorable id is a usage error.
func TestRunIDsQuoted(t *testing.T) {
	t.Parallel()
	dir, store := migratedDB(t, "ids.db")
	ids := []string{"two\nlines", "\x1b[31mred", "tab\there"}
	db := openDB(t, store).DB()
	for _, id := range ids {
		if _, err := db.ExecContext(t.Context(), `INSERT INTO journey_runs (id, journey_id, status, current_node_id) VALUES (?, 'j', 'completed', NULL)`, id); err != nil {
			t.Fatal(err)
		}
	}
	r := runDemo(t, dir, nil, "runs", "list", "--store", store)
	if r.code != 0 || strings.Count(r.stdout, "\n") != 1+len(ids) || strings.ContainsAny(r.stdout, "\x1b\t") {
		t.Errorf("runs list: status %d\n%q", r.code, r.stdout)
	}
	for _, id := range ids {
		if !strings.Contains(r.stdout, strconv.Quote(id)) {
			t.Errorf("runs list does not quote %q:\n%s", id, r.stdout)
		}
		s := runDemo(t, dir, nil, "runs", "show", id, "--store", store)
		if first, _, _ := strings.Cut(s.stdout, "\n"); s.code != 0 || !strings.HasPrefix(first, "run "+strconv.Quote(id)+" ") {
			t.Errorf("runs show %q: status %d\n%q", id, s.code, s.stdout)
		}
	}
	long := strings.Repeat("x", 5000) + "\n"
	for _, cmd := range []string{"show", "retry"} {
		r := runDemo(t, dir, nil, "runs", cmd, long, "--store", store)
		if r.code != exitFailure || strings.Count(r.stderr, "\n") != 1 || len(r.stderr) > 300 || !strings.Contains(r.stderr, `xxx"...: run not found`) {
			t.Errorf("runs %s of a long missing id: status %d, %d bytes: %.400q", cmd, r.code, len(r.stderr), r.stderr)
		}
		for _, bad := range []string{"", "a\xffb"} {
			r := runDemo(t, dir, nil, "runs", cmd, bad, "--store", store)
			if r.code != exitUsage || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("runs %s %q: status %d, %q; want 2", cmd, bad, r.code, r.stderr)
			}
		}
	}
}

// TestReadCommandsChangeNothing: stats, runs list and runs show leave the
// SQLite file as it was, whether it lacks the schema (they say to migrate)
// or holds it. (An empty file is a SQLite database without tables.)
func TestReadCommandsChangeNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bare, migrated := filepath.Join(dir, "bare.db"), filepath.Join(dir, "migrated.db")
	if err := os.WriteFile(bare, nil, 0o644); err != nil { // an empty SQLite database
		t.Fatal(err)
	}
	if r := runDemo(t, dir, nil, fastArgs(migrated, 5)...); r.code != 0 {
		t.Fatalf("demo: %d %s", r.code, r.stderr)
	}
	for _, db := range []string{bare, migrated} {
		before, err := os.ReadFile(db)
		if err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"stats"}, {"runs", "list"}, {"runs", "show", "patient-000001"}} {
			runDemo(t, dir, nil, append(args, "--store", db)...)
			after, err := os.ReadFile(db)
			if err != nil || !bytes.Equal(after, before) {
				t.Errorf("%v changed %s", args, filepath.Base(db))
			}
			if _, err := os.Stat(db + "-wal"); err == nil && db == bare {
				t.Errorf("%v switched %s to WAL", args, filepath.Base(db))
			}
		}
	}
}

// TestMemoryStoreToRead: the commands that read an existing database say
// that :memory: is one, new and empty in each process: a usage error.
func TestMemoryStoreToRead(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, args := range [][]string{{"stats"}, {"runs", "list"}, {"runs", "show", "r1"}, {"runs", "retry", "r1"}, {"serve"}} {
		r := runDemo(t, dir, nil, append(args, "--store", ":memory:")...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "store :memory: is a SQLite database in memory") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: status %d, %q; want 2, a line saying :memory: is in memory", args, r.code, r.stderr)
		}
	}
}

// TestProgressNotATerminal: with stderr a pipe the demo writes no
// carriage-return frames, only a plain progress line every 5 s: the demo
// lasts longer than that (every clinic call meets a maintenance window,
// retried up to 7 times, 0.5 s to 2 s apart).
func TestProgressNotATerminal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := runBin(t, dir, nil, append(fastArgs(filepath.Join(dir, "p.db"), 40),
		"--fault-maintenance", "1", "--max-retries", "7", "--log-level", "error")...)
	plain := regexp.MustCompile(`^journeys: \d+ of 40 finished$`)
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if r.code != 0 || strings.Contains(r.stderr, "\r") || strings.Contains(r.stdout, "\r") || !plain.MatchString(lines[0]) {
		t.Errorf("status %d, stderr:\n%q\nwant plain progress lines, no carriage returns (stdout:\n%q)", r.code, r.stderr, r.stdout)
	}
	for _, l := range lines {
		if !plain.MatchString(l) {
			t.Errorf("stderr line %q; want only progress lines", l)
		}
	}
}

// TestETA: the bar estimates nothing before 5 % of the runs are done or
// 2 s have passed.
func TestETA(t *testing.T) {
	for _, tc := range []struct {
		elapsed   time.Duration
		done, all int
		want      string
	}{
		{100 * time.Millisecond, 2, 300, ""},
		{1900 * time.Millisecond, 14, 300, ""},
		{time.Second, 15, 300, " (about 19s left)"},
		{2 * time.Second, 3, 300, " (about 3m18s left)"},
		{5 * time.Second, 0, 300, ""},
		{5 * time.Second, 300, 300, ""},
	} {
		if got := eta(tc.elapsed, tc.done, tc.all); got != tc.want {
			t.Errorf("eta(%s, %d, %d) = %q, want %q", tc.elapsed, tc.done, tc.all, got, tc.want)
		}
	}
}

// TestTwoDemosOnAFreshFile: two demos started on one fresh file, the
// second while the first is still creating its runs, both creating the
// same run ids: the one that finds its ids taken stops with a message
// saying another demo is running, not "run id already taken: invalid
// argument". The runs are many (50 batches of creation), so that the two
// are still creating when they meet whatever the machine's load; the one
// that carries on is killed.
func TestTwoDemosOnAFreshFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := filepath.Join(dir, "two.db")
	args := []string{"--store", store, "--runs", "50000", "--lease", "2s"}
	type ended struct {
		i      int
		err    error
		stderr string
	}
	done := make(chan ended, 2)
	start := func(i int) {
		cmd := demoCmd(t.Context(), dir, nil, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waited := make(chan struct{})
		t.Cleanup(func() { cmd.Process.Kill(); <-waited })
		go func() {
			defer close(waited)
			err := cmd.Wait()
			done <- ended{i, err, stderr.String()}
		}()
	}
	start(0)
	waitFor(t, store, 30*time.Second, func(c map[retry.Status]int) bool { return report.Total(c) >= 1 })
	start(1)
	select {
	case e := <-done:
		ee, ok := errors.AsType[*exec.ExitError](e.err)
		if !ok || ee.ExitCode() != exitFailure || !strings.Contains(e.stderr, "another demo is running on this database") ||
			strings.Contains(e.stderr, "invalid argument") {
			t.Errorf("demo %d ended first: %v\n%s", e.i, e.err, e.stderr)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("neither demo stopped within 2 minutes: they never met on a run id")
	}
}

// TestErrorPrefixOnce: an error is one line, "demo: " once, with no layer
// repeating the prefix of the one below it (stats used to say "retry
// stats: retry stats: ..."); usage errors exit 2, runtime failures 1.
func TestErrorPrefixOnce(t *testing.T) {
	t.Parallel()
	dir, store := migratedDB(t, "broken.db")
	s := openDB(t, store)
	if _, err := s.DB().ExecContext(t.Context(), `DROP TABLE journey_run_attempts`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"stats", "--store", store}, exitFailure},
		{[]string{"runs", "show", "nope", "--store", store}, exitFailure},
		{[]string{"stats", "--store", filepath.Join(dir, "missing.db")}, exitFailure},
		{[]string{"runs", "retry", "x", "--store", dir}, exitFailure},
		{[]string{"--store", "postgres://nobody@127.0.0.1:1/x"}, exitFailure},
		{[]string{"--runs", "0"}, exitUsage},
		{[]string{"--bogus"}, exitUsage},
		{[]string{"frob"}, exitUsage},
		{[]string{"runs", "frob"}, exitUsage},
		{[]string{"runs", "show"}, exitUsage},
		{[]string{"runs", "show", ""}, exitUsage},
		{[]string{"runs", "list", "--status", "bad", "--store", store}, exitUsage},
		{[]string{"migrate", "extra"}, exitUsage},
		{[]string{"worker", "--lease", "1ms"}, exitUsage},
	} {
		r := runDemo(t, dir, nil, tc.args...)
		parts := strings.Split(r.stderr, ": ")
		for i := 1; i < len(parts); i++ {
			if parts[i] == parts[i-1] {
				t.Errorf("%v: %q repeated in %q", tc.args, parts[i], r.stderr)
			}
		}
		if r.code != tc.code || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "demo: ") {
			t.Errorf("%v: status %d, %q; want %d, one line starting demo: ", tc.args, r.code, r.stderr, tc.code)
		}
	}
}

// TestFinishedRunsCarryNoStaleTimes: a completed run's JSON has no
// nextRetryAt or wakeAt (every run passed a delay node, and some a retry).
func TestFinishedRunsCarryNoStaleTimes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := filepath.Join(dir, "stale.db")
	if r := runDemo(t, dir, nil, fastArgs(store, 20)...); r.code != 0 {
		t.Fatalf("demo: %d %s", r.code, r.stderr)
	}
	r := runDemo(t, dir, nil, "runs", "list", "--status", "completed", "--json", "--store", store)
	var runs []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil || len(runs) == 0 {
		t.Fatalf("runs list: %v\n%s", err, r.stdout)
	}
	for _, v := range runs {
		if v["nextRetryAt"] != nil || v["wakeAt"] != nil {
			t.Errorf("completed run %v: nextRetryAt %v, wakeAt %v", v["id"], v["nextRetryAt"], v["wakeAt"])
		}
	}
}

// TestInterruptCountsUnfinished: the interrupt message counts the runs the
// database holds unfinished once the demo has stopped.
func TestInterruptCountsUnfinished(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := filepath.Join(dir, "int.db")
	cmd := demoCmd(t.Context(), dir, nil, fastArgs(store, 400)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, store, 90*time.Second, func(c map[retry.Status]int) bool { return c[retry.StatusCompleted] >= 20 })
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	m := regexp.MustCompile(`demo: interrupted: (\d+) runs unfinished`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Skipf("the demo finished before the interrupt: %s", stderr.String())
	}
	if n, _ := strconv.Atoi(m[1]); n != report.Unfinished(countRuns(t, store)) {
		t.Errorf("said %d runs unfinished; the database holds %d", n, report.Unfinished(countRuns(t, store)))
	}
}

// TestConfigListsEveryKey: demo config lists every key of the
// configuration with its variable, value and a meaning.
func TestConfigListsEveryKey(t *testing.T) {
	t.Parallel()
	r := runDemo(t, t.TempDir(), nil, "config")
	if r.code != 0 {
		t.Fatalf("config: status %d %s", r.code, r.stderr)
	}
	cfg := defaultConfig()
	keys := config.New(&cfg, envPrefix).Keys()
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 1+len(keys) {
		t.Fatalf("config lists %d lines for %d keys", len(lines), len(keys))
	}
	paths := map[string]bool{}
	for i, k := range keys {
		paths[k.Path] = true
		f := strings.Fields(lines[1+i])
		if len(f) < 4 || f[0] != k.Path || f[1] != k.Env || keyMeaning(k.Path) == "" {
			t.Errorf("key %s (%s): line %q, meaning %q", k.Path, k.Env, lines[1+i], keyMeaning(k.Path))
		}
	}
	for path := range keyMeanings {
		if !paths[path] {
			t.Errorf("keyMeanings has %s, which is no key", path)
		}
	}
}

// TestUnknownVariableSuggests: an unknown JRETRY_ variable gets a "did
// you mean", as an unknown file key does.
func TestUnknownVariableSuggests(t *testing.T) {
	t.Parallel()
	r := runDemo(t, t.TempDir(), []string{"JRETRY_EXECUTOR_WORKRS=3"}, "stats", "--store", "x.db")
	if r.code != exitUsage || !strings.Contains(r.stderr, "JRETRY_EXECUTOR_WORKRS: names no setting (did you mean JRETRY_EXECUTOR_WORKERS?)") {
		t.Errorf("status %d, %q", r.code, r.stderr)
	}
}

// lookupMisses answers every Get with ErrNotFound: each run id looks free
// to createRuns, as to a demo whose look-up ran before another demo
// created the run.
type lookupMisses struct{ retry.Runs }

func (lookupMisses) Get(context.Context, string) (retry.Run, error) {
	return retry.Run{}, retry.ErrNotFound
}

// TestRunTakenSinceLookUp: a run id another demo took after createRuns
// looked it up stops createRuns with a message saying so, and the batch it
// was in is not created.
func TestRunTakenSinceLookUp(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig()
	cfg.Store.DSN = filepath.Join(t.TempDir(), "taken.db")
	eng, err := openEngine(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if err := eng.Store().Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Store().Create(t.Context(), retry.NewRun{ID: demoRunID(2), JourneyID: journeyID, StartNodeID: "x"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	n, err := createRuns(t.Context(), eng.Executor, cfg.faults(), 3, true, lookupMisses{eng.Store()})
	if n != 0 || !errors.Is(err, retry.ErrDuplicateRun) || !strings.Contains(err.Error(), strconv.Quote(demoRunID(2))) || !strings.Contains(err.Error(), "another demo is running on this database") {
		t.Fatalf("createRuns = %d, %v; want 0 and the taken id named, another demo said", n, err)
	}
	for _, i := range []int{1, 3} {
		if _, err := eng.Store().Get(t.Context(), demoRunID(i)); !errors.Is(err, retry.ErrNotFound) {
			t.Errorf("run %s: %v; want none created", demoRunID(i), err)
		}
	}
}

// TestRunsShowSnooze: a run whose node snoozed shows its snoozes beside
// its retry count, the snooze in its history (outcome, delay, reason),
// and, in --json, its snooze count; stats counts it apart from retries.
func TestRunsShowSnooze(t *testing.T) {
	t.Parallel()
	dir, path := migratedDB(t, "snooze.db")
	s := openDB(t, path)
	now := time.Now()
	run, err := s.Create(t.Context(), retry.NewRun{ID: "lab-1", JourneyID: "patient_onboarding", JourneyVersion: 1, StartNodeID: "labs",
		MaxRetries: 3, Worker: "w", Lease: time.Minute}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snooze(t.Context(), run.Claim(), retry.SnoozeRecord{NodeID: "labs", Message: "lab result not in",
		Delay: 10 * time.Minute, StartedAt: now, FinishedAt: now}); err != nil {
		t.Fatal(err)
	}
	r := runDemo(t, dir, nil, "runs", "show", "lab-1", "--store", path)
	if r.code != 0 || !strings.Contains(r.stdout, "status waiting  at node labs (retry 0 of 3, 1 snoozes)") ||
		!regexp.MustCompile(`snoozed\s+-\s+-\s+-\s+10m0s\s+waiting\s+lab result not in`).MatchString(r.stdout) {
		t.Errorf("runs show: status %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runDemo(t, dir, nil, "runs", "show", "lab-1", "--store", path, "--json")
	var d runDetail
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || d.Run.SnoozeCount != 1 || d.Run.RetryCount != 0 ||
		len(d.Attempts) != 1 || d.Attempts[0].Outcome != retry.OutcomeSnoozed || d.Attempts[0].DelayMs != 600000 {
		t.Errorf("runs show --json: %v\n%s", err, r.stdout)
	}
	if r := runDemo(t, dir, nil, "stats", "--store", path); r.code != 0 || !strings.Contains(r.stdout, "Snoozes (a node asked to run later; no retry counted): 1") {
		t.Errorf("stats: status %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// migratedDB migrates a new SQLite file named name with demo migrate, in a
// temporary directory, and returns the directory and the file.
func migratedDB(t *testing.T, name string) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, name)
	if r := runDemo(t, dir, nil, "migrate", "--store", path); r.code != 0 {
		t.Fatalf("migrate: %d %s", r.code, r.stderr)
	}
	return dir, path
}
