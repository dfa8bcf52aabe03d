package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/journeyretry/journeyretry/report"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/retrytest"
	"github.com/journeyretry/journeyretry/storage"
	"github.com/journeyretry/journeyretry/storage/pgtest"
)

// backends runs fn on SQLite, and on PostgreSQL (a fresh schema) when
// RETRY_TEST_POSTGRES_URL is set.
func backends(t *testing.T, fn func(t *testing.T, dir, store string)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		fn(t, dir, filepath.Join(dir, "data", "journeys.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, t.TempDir(), pgtest.DSN(t))
	})
}

// openDB opens the store the binary wrote, for direct SQL.
func openDB(t *testing.T, dsn string) *storage.Store {
	t.Helper()
	s, err := storage.Open(t.Context(), storage.Config{DSN: dsn})
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// querySQL runs a query whose rows are (key, count) and returns them.
func querySQL(t *testing.T, db *bun.DB, q string) map[string]int {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	m := map[string]int{}
	for rows.Next() {
		var k *string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if k == nil {
			k = new(string)
		}
		m[*k] += n
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return m
}

// jsonSummary is the demo's --json output as a script reads it.
type jsonSummary struct {
	Database struct {
		Runs              int                  `json:"runs"`
		ByStatus          map[string]int       `json:"byStatus"`
		Attempts          int                  `json:"attempts"`
		AttemptsPerRun    map[string]int       `json:"attemptsPerRun"`
		Retries           int                  `json:"retries"`
		RetriesByStrategy map[string]int       `json:"retriesByStrategy"`
		RetriesByClass    map[string]int       `json:"retriesByClass"`
		Replays           int                  `json:"replays"`
		TopErrors         []report.TopError    `json:"topErrors"`
		ShadowDecisions   report.ShadowSummary `json:"shadowDecisions"`
	} `json:"database"`
	Process *report.ProcessSummary `json:"process"`
}

// nonZero drops zero counts, which a GROUP BY cannot return.
func nonZero(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// stringKeys converts a count map's keys to strings.
func stringKeys[K ~string](m map[K]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[string(k)] = v
	}
	return out
}

func sameCounts(t *testing.T, what string, got, want map[string]int) {
	t.Helper()
	got, want = nonZero(got), nonZero(want)
	if fmt.Sprint(got) != fmt.Sprint(want) { // fmt sorts map keys
		t.Errorf("%s: summary %v, database %v", what, got, want)
	}
}

// checkSummary compares every number of the summary that the database
// holds with a direct SQL query of it.
func checkSummary(t *testing.T, dsn string, s jsonSummary) {
	t.Helper()
	db := openDB(t, dsn).DB()
	d := s.Database
	byStatus := querySQL(t, db, `SELECT status, count(*) FROM journey_runs GROUP BY status`)
	sameCounts(t, "runs by status", d.ByStatus, byStatus)
	total := 0
	for _, n := range byStatus {
		total += n
	}
	if d.Runs != total {
		t.Errorf("runs: summary %d, database %d", d.Runs, total)
	}
	attempts := querySQL(t, db, `SELECT 'all', count(*) FROM journey_run_attempts WHERE outcome <> 'replayed'`)
	if d.Attempts != attempts["all"] {
		t.Errorf("attempts: summary %d, database %d", d.Attempts, attempts["all"])
	}
	perRun := querySQL(t, db, `SELECT CAST(n AS TEXT), count(*) FROM (
		SELECT r.id, count(a.run_id) AS n FROM journey_runs r
		LEFT JOIN journey_run_attempts a ON a.run_id = r.id AND a.outcome <> 'replayed'
		GROUP BY r.id) per_run GROUP BY n`)
	sameCounts(t, "attempts per run", d.AttemptsPerRun, perRun)
	const retried = `FROM journey_run_attempts WHERE outcome = 'failed' AND status_after = 'retrying'`
	retries := querySQL(t, db, `SELECT 'all', count(*) `+retried)
	if d.Retries != retries["all"] {
		t.Errorf("retries: summary %d, database %d", d.Retries, retries["all"])
	}
	sameCounts(t, "retries by strategy", d.RetriesByStrategy, querySQL(t, db, `SELECT decision_strategy, count(*) `+retried+` GROUP BY decision_strategy`))
	sameCounts(t, "retries by class", d.RetriesByClass, querySQL(t, db, `SELECT error_class, count(*) `+retried+` GROUP BY error_class`))
	replays := querySQL(t, db, `SELECT 'all', count(*) FROM journey_run_attempts WHERE outcome = 'replayed'`)
	if d.Replays != replays["all"] {
		t.Errorf("replays: summary %d, database %d", d.Replays, replays["all"])
	}

	const shadow = `FROM journey_run_attempts WHERE outcome = 'failed' AND shadow`
	sh := d.ShadowDecisions
	if n := querySQL(t, db, `SELECT 'all', count(*) `+shadow)["all"]; sh.Decisions != n {
		t.Errorf("shadow decisions: summary %d, database %d", sh.Decisions, n)
	}
	if n := querySQL(t, db, `SELECT 'all', count(*) `+shadow+` AND decision_retry`)["all"]; sh.WouldRetry != n {
		t.Errorf("shadow would-retry decisions: summary %d, database %d", sh.WouldRetry, n)
	}
	sameCounts(t, "shadow would retry by strategy", sh.WouldRetryByStrategy, querySQL(t, db, `SELECT decision_strategy, count(*) `+shadow+` AND decision_retry GROUP BY decision_strategy`))
	sameCounts(t, "shadow would retry by class", stringKeys(sh.WouldRetryByClass), querySQL(t, db, `SELECT error_class, count(*) `+shadow+` AND decision_retry GROUP BY error_class`))

	// Top errors: each listed pair has its database count, and the listed
	// counts are the largest ones.
	errs := querySQL(t, db, `SELECT error_class || ' ' || error_message, count(*) FROM journey_run_attempts WHERE outcome = 'failed' GROUP BY error_class, error_message`)
	var counts []int
	for _, n := range errs {
		counts = append(counts, n)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(counts)))
	if want := min(len(counts), report.TopErrorsLimit); len(d.TopErrors) != want {
		t.Errorf("top errors: %d listed, want %d", len(d.TopErrors), want)
	}
	for i, e := range d.TopErrors {
		if n := errs[string(e.Class)+" "+e.Message]; n != e.Count || i < len(counts) && counts[i] != e.Count {
			t.Errorf("top error %d (%s %q): summary %d, database %d (rank %d count %d)", i, e.Class, e.Message, e.Count, n, i, counts[min(i, len(counts)-1)])
		}
	}
}

// TestDemoSummaryMatchesDatabase runs the demo as a user would and checks
// its --json summary against the database.
func TestDemoSummaryMatchesDatabase(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, dir, store string) {
		r := runDemo(t, dir, nil, append(fastArgs(store, 60), "--json")...)
		if r.code != 0 {
			t.Fatalf("demo: status %d\n%s", r.code, r.stderr)
		}
		var s jsonSummary
		if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
			t.Fatalf("demo --json: %v\n%s", err, r.stdout)
		}
		if s.Database.Runs != 60 || s.Process == nil || s.Process.Created != 60 {
			t.Errorf("runs %d, process %+v: want 60 created", s.Database.Runs, s.Process)
		}
		if s.Database.Retries == 0 || len(s.Database.TopErrors) == 0 {
			t.Errorf("no retries or errors with the default fault rates: %+v", s.Database)
		}
		for st, n := range s.Database.ByStatus {
			if n > 0 && !retry.Status(st).Terminal() {
				t.Errorf("%d runs left %s", n, st)
			}
		}
		checkSummary(t, store, s)

		// stats --json reads the same numbers back from the database.
		st := runDemo(t, dir, nil, "stats", "--json", "--store", store)
		var s2 jsonSummary
		if err := json.Unmarshal([]byte(st.stdout), &s2); err != nil || st.code != 0 {
			t.Fatalf("stats --json: status %d, %v\n%s%s", st.code, err, st.stdout, st.stderr)
		}
		if a, b := mustJSON(t, s.Database), mustJSON(t, s2.Database); a != b {
			t.Errorf("stats differs from the demo's summary:\n%s\n%s", b, a)
		}

		// The human summary prints the same numbers as --json.
		human := runDemo(t, dir, nil, "stats", "--store", store)
		if human.code != 0 {
			t.Fatalf("stats: status %d\n%s", human.code, human.stderr)
		}
		checkHumanSummary(t, human.stdout, s)

		// Run again on the finished database, the demo says how to get
		// new runs there.
		hint := "remove " + store
		if storage.IsPostgres(store) {
			hint = "use a fresh database or schema"
		}
		again := runDemo(t, dir, nil, fastArgs(store, 60)...)
		if want := "nothing to resume (pass a larger --runs, or " + hint + ", for new runs)"; again.code != 0 || !strings.Contains(again.stdout, want) {
			t.Errorf("demo again: status %d, want %q in:\n%s%s", again.code, want, again.stdout, again.stderr)
		}
	})
}

// TestShadowModeSummary: in shadow mode nothing is retried, and the
// summary shows the decisions the policy would have made, as the database
// holds them.
func TestShadowModeSummary(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, dir, store string) {
		r := runDemo(t, dir, nil, append(fastArgs(store, 60), "--mode", "shadow", "--json")...)
		if r.code != 0 {
			t.Fatalf("demo: status %d\n%s", r.code, r.stderr)
		}
		var s jsonSummary
		if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
			t.Fatalf("demo --json: %v\n%s", err, r.stdout)
		}
		if sh := s.Database.ShadowDecisions; s.Database.Retries != 0 || sh.Decisions == 0 || sh.WouldRetry == 0 || len(sh.WouldRetryByStrategy) == 0 {
			t.Errorf("shadow mode: %d retries, shadow decisions %+v", s.Database.Retries, sh)
		}
		checkSummary(t, store, s)
		human := runDemo(t, dir, nil, "stats", "--store", store)
		if human.code != 0 {
			t.Fatalf("stats: status %d\n%s", human.code, human.stderr)
		}
		checkHumanSummary(t, human.stdout, s)
	})
}

// checkHumanSummary checks that the people's summary out shows every count
// of the --json summary s, each on its line.
func checkHumanSummary(t *testing.T, out string, s jsonSummary) {
	t.Helper()
	d := s.Database
	want := []string{
		fmt.Sprintf(`Runs by status \(%d runs\):`, d.Runs),
		fmt.Sprintf(`Attempts per run \(%d attempts`, d.Attempts),
		fmt.Sprintf(`Retries by strategy \(%d retries\):`, d.Retries),
	}
	for st, n := range d.ByStatus {
		want = append(want, fmt.Sprintf(`(?m)^  %s +%d$`, regexp.QuoteMeta(st), n))
	}
	for k, n := range d.AttemptsPerRun {
		want = append(want, fmt.Sprintf(`(?m)^ +%s attempts +%d runs$`, k, n))
	}
	for k, n := range d.RetriesByStrategy {
		want = append(want, fmt.Sprintf(`(?m)^  %s +%d$`, regexp.QuoteMeta(k), n))
	}
	for k, n := range d.RetriesByClass {
		want = append(want, fmt.Sprintf(`(?m)^  %s +%d$`, regexp.QuoteMeta(k), n))
	}
	for _, e := range d.TopErrors {
		want = append(want, fmt.Sprintf(`(?m)^ +%d  %s +%s$`, e.Count, regexp.QuoteMeta(string(e.Class)), regexp.QuoteMeta(e.Message)))
	}
	if sh := d.ShadowDecisions; sh.Decisions > 0 {
		want = append(want, regexp.QuoteMeta(fmt.Sprintf("Shadow decisions (recorded, not acted on): %d failures, %d would have been retried", sh.Decisions, sh.WouldRetry)))
		for k, n := range sh.WouldRetryByStrategy {
			want = append(want, fmt.Sprintf(`(?m)^  %s +%d$`, regexp.QuoteMeta(k), n))
		}
		for k, n := range sh.WouldRetryByClass {
			want = append(want, fmt.Sprintf(`(?m)^  %s +%d$`, regexp.QuoteMeta(string(k)), n))
		}
	}
	for _, re := range want {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("the human summary lacks %s:\n%s", re, out)
		}
	}
}

func mustJSON(t *testing.T, v any) string { return string(mustMarshal(t, v)) }

// TestOperatorCommands: runs list, runs show and runs retry on a finished
// demo database.
func TestOperatorCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := filepath.Join(dir, "ops.db")
	args := append(fastArgs(store, 40), "--fault-bad-patient", "0.2")
	if r := runDemo(t, dir, nil, args...); r.code != 0 {
		t.Fatalf("demo: status %d\n%s", r.code, r.stderr)
	}
	r := runDemo(t, dir, nil, "runs", "list", "--store", store, "--status", "failed", "--json")
	var failed []runView
	if err := json.Unmarshal([]byte(r.stdout), &failed); err != nil || r.code != 0 {
		t.Fatalf("runs list: status %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if len(failed) == 0 {
		t.Fatal("no failed runs with 20% invalid patients")
	}
	id := failed[0].ID
	r = runDemo(t, dir, nil, "runs", "show", "--store", store, id, "--json") // flags before and after the id
	var d runDetail
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || r.code != 0 {
		t.Fatalf("runs show: status %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	last := d.Attempts[len(d.Attempts)-1]
	if d.Run.Status != retry.StatusFailed || last.Outcome != retry.OutcomeFailed || last.ErrorClass == "" || last.Strategy == "" || last.Worker == "" {
		t.Errorf("runs show %s: %+v", id, d)
	}
	if r := runDemo(t, dir, nil, "runs", "show", id, "--store", store); r.code != 0 || !strings.Contains(r.stdout, last.ErrorMessage) {
		t.Errorf("runs show (text): status %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runDemo(t, dir, nil, "runs", "retry", id, "--store", store)
	if r.code != 0 || !strings.Contains(r.stdout, "replayed") {
		t.Fatalf("runs retry: status %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runDemo(t, dir, nil, "runs", "retry", id, "--store", store); r.code != exitFailure || !strings.Contains(r.stderr, "is retrying: run not replayable") {
		t.Errorf("second runs retry: status %d, %s", r.code, r.stderr)
	}
	r = runDemo(t, dir, nil, "runs", "list", "--status", "completed", "--limit", "1", "--json", "--store", store)
	var done []runView
	if err := json.Unmarshal([]byte(r.stdout), &done); err != nil || len(done) != 1 {
		t.Fatalf("runs list completed: status %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if r := runDemo(t, dir, nil, "runs", "retry", done[0].ID, "--store", store); r.code != exitFailure || !strings.Contains(r.stderr, "is completed: run not replayable") {
		t.Errorf("runs retry of a completed run: status %d, %s", r.code, r.stderr)
	}
	// stats counts the replay, and not as an attempt.
	r = runDemo(t, dir, nil, "stats", "--json", "--store", store)
	var s jsonSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || r.code != 0 {
		t.Fatalf("stats --json: status %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if s.Database.Replays != 1 {
		t.Errorf("stats after one replay: %d replays", s.Database.Replays)
	}
	checkSummary(t, store, s)
	// runs list counts executions, as stats does: the replay apart.
	r = runDemo(t, dir, nil, "runs", "list", "--json", "--store", store)
	var all []runView
	if err := json.Unmarshal([]byte(r.stdout), &all); err != nil || r.code != 0 {
		t.Fatalf("runs list: status %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	listed := 0
	for _, v := range all {
		listed += v.AttemptCount
		if want := len(d.Attempts); v.ID == id && (v.AttemptCount != want || v.Replays != 1) {
			t.Errorf("runs list, replayed run: %d attempts, %d replays; want %d and 1", v.AttemptCount, v.Replays, want)
		}
	}
	if listed != s.Database.Attempts {
		t.Errorf("runs list counts %d attempts, stats %d", listed, s.Database.Attempts)
	}
	if r := runDemo(t, dir, nil, "runs", "list", "--store", store); !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(strconv.Quote(id)) + ` +retrying +\S+ +0/3 +` + strconv.Itoa(len(d.Attempts)) + ` +1 `).MatchString(r.stdout) {
		t.Errorf("runs list (text) does not show %s with %d attempts and 1 replay:\n%s", id, len(d.Attempts), r.stdout)
	}
	if r := runDemo(t, dir, nil, "runs", "show", "no-such-run", "--store", store); r.code != exitFailure || !strings.Contains(r.stderr, "not found") {
		t.Errorf("runs show unknown: status %d, %s", r.code, r.stderr)
	}
	if r := runDemo(t, dir, nil, "stats", "--store", filepath.Join(dir, "typo.db")); r.code != exitFailure || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("stats on a missing database: status %d, %s", r.code, r.stderr)
	}
}

// TestDemoResumesAfterKill: a demo killed with SIGKILL mid-run and started
// again on the same database resumes the unfinished runs and finishes them.
func TestDemoResumesAfterKill(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := filepath.Join(dir, "resume.db")
	args := fastArgs(store, 120)
	cmd := demoCmd(t.Context(), dir, nil, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, store, 20*time.Second, func(c map[retry.Status]int) bool { return c[retry.StatusCompleted] >= 10 })
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	counts := countRuns(t, store)
	left := report.Unfinished(counts)
	if left == 0 {
		t.Skip("the demo finished before it was killed")
	}
	r := runDemo(t, dir, nil, append(args, "--json")...)
	if r.code != 0 {
		t.Fatalf("demo again: status %d\n%s", r.code, r.stderr)
	}
	var s jsonSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatal(err)
	}
	if s.Process.Resumed != left || s.Database.Runs != 120 {
		t.Errorf("resumed %d of %d unfinished runs, %d runs in all (want 120); created %d", s.Process.Resumed, left, s.Database.Runs, s.Process.Created)
	}
	if !strings.Contains(r.stderr, fmt.Sprintf("resumed %d unfinished runs", left)) {
		t.Errorf("the demo does not say how many runs it resumed:\n%s", r.stderr)
	}
	if n := report.Unfinished(countRuns(t, store)); n != 0 {
		t.Errorf("%d runs unfinished after the second demo", n)
	}
}

// countRuns reads the run counts of the database.
func countRuns(t *testing.T, dsn string) map[retry.Status]int {
	t.Helper()
	s, err := storage.Open(t.Context(), storage.Config{DSN: dsn})
	if err != nil {
		return nil
	}
	defer s.Close()
	c, _ := s.CountByStatus(t.Context())
	return c
}

// waitFor polls the database's run counts until ok, or fails t.
func waitFor(t *testing.T, dsn string, within time.Duration, ok func(map[retry.Status]int) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if c := countRuns(t, dsn); c != nil && ok(c) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not reached within %s: runs %v", within, countRuns(t, dsn))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// worker is a running worker process.
type worker struct {
	cmd *exec.Cmd
	out retrytest.Buffer // its stdout and stderr
}

func startWorker(t *testing.T, dir, store string, extra ...string) *worker {
	t.Helper()
	w := &worker{}
	args := append([]string{"worker", "--store", store, "--lease", "2s", "--sweep", "@every 1s", "--workers", "4"}, extra...)
	w.cmd = demoCmd(t.Context(), dir, nil, args...)
	w.cmd.Stdout, w.cmd.Stderr = &w.out, &w.out
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if w.cmd.ProcessState == nil {
			w.cmd.Process.Kill()
			w.cmd.Wait()
		}
	})
	return w
}

// started waits until w has printed its banner, which it does once its
// scheduler is open, right before it runs, or fails t.
func (w *worker) started(t *testing.T, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); !strings.Contains(w.out.String(), "SIGINT or SIGTERM to stop"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("worker not started within %s:\n%s", within, w.out.String())
		}
	}
}

// id is the worker id the worker printed first.
func (w *worker) id() string {
	first, _, _ := strings.Cut(w.out.String(), "\n")
	id, _, _ := strings.Cut(strings.TrimPrefix(first, "worker "), ":")
	return id
}

// stop ends the worker with SIGTERM and checks it shut down gracefully.
func (w *worker) stop(t *testing.T) {
	t.Helper()
	w.cmd.Process.Signal(syscall.SIGTERM)
	if err := w.cmd.Wait(); err != nil {
		t.Errorf("worker after SIGTERM: %v\n%s", err, w.out.String())
	}
	if !strings.Contains(w.out.String(), "stopped gracefully") {
		t.Errorf("worker output:\n%s", w.out.String())
	}
}

// checkNoOverlap reads the attempt history and fails t if two attempts of
// one run by different workers overlap in time.
func checkNoOverlap(t *testing.T, dsn string) (workers map[string]int) {
	t.Helper()
	db := openDB(t, dsn).DB()
	rows, err := db.QueryContext(t.Context(), `SELECT run_id, worker, started_at, finished_at FROM journey_run_attempts
		WHERE outcome <> 'replayed' ORDER BY run_id, started_at`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	type span struct {
		worker     string
		start, end int64
	}
	byRun := map[string][]span{}
	workers = map[string]int{}
	for rows.Next() {
		var id, w string
		var sp span
		if err := rows.Scan(&id, &w, &sp.start, &sp.end); err != nil {
			t.Fatal(err)
		}
		sp.worker = w
		byRun[id] = append(byRun[id], sp)
		workers[w]++
	}
	for id, spans := range byRun {
		for i := range spans {
			for j := i + 1; j < len(spans); j++ {
				a, b := spans[i], spans[j]
				if a.worker != b.worker && a.start < b.end && b.start < a.end {
					t.Errorf("run %s: %s ran [%d, %d] while %s ran [%d, %d]", id, a.worker, a.start, a.end, b.worker, b.start, b.end)
				}
			}
		}
	}
	return workers
}

// TestTwoWorkersShareAStore: start, then two worker processes on one
// PostgreSQL store, each with its own in-memory scheduler, finish every
// run and never run one run at the same time; then one worker is killed
// with SIGKILL mid-run and the other finishes everything.
func TestTwoWorkersShareAStore(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	start := func(n int) {
		if r := runDemo(t, dir, nil, "start", "--store", dsn, "--runs", strconv.Itoa(n)); r.code != 0 {
			t.Fatalf("start: status %d\n%s", r.code, r.stderr)
		}
	}

	// Round 1: both workers run to the end.
	start(80)
	a, b := startWorker(t, dir, dsn), startWorker(t, dir, dsn)
	waitFor(t, dsn, 60*time.Second, func(c map[retry.Status]int) bool { return report.Unfinished(c) == 0 })
	a.stop(t)
	b.stop(t)
	workers := checkNoOverlap(t, dsn)
	if len(workers) != 2 {
		t.Errorf("attempts by worker: %v, want both workers", workers)
	}
	// Each worker names itself as the attempt history does.
	for _, w := range []*worker{a, b} {
		if id := w.id(); workers[id] == 0 {
			t.Errorf("worker says it is %q; the attempts name %v", id, workers)
		}
	}

	// Round 2: one worker is killed mid-run; the other finishes its runs
	// once their leases expire.
	start(80)
	a, b = startWorker(t, dir, dsn), startWorker(t, dir, dsn)
	waitFor(t, dsn, 30*time.Second, func(c map[retry.Status]int) bool { return c[retry.StatusCompleted] >= 80+10 })
	a.cmd.Process.Signal(syscall.SIGKILL)
	a.cmd.Wait()
	if n := report.Unfinished(countRuns(t, dsn)); n == 0 {
		t.Fatal("every run had finished when the worker was killed: the round shows nothing")
	} else {
		t.Logf("worker killed with %d runs unfinished", n)
	}
	waitFor(t, dsn, 60*time.Second, func(c map[retry.Status]int) bool { return report.Unfinished(c) == 0 })
	b.stop(t)
	checkNoOverlap(t, dsn)
	if c := countRuns(t, dsn); c[retry.StatusCompleted]+c[retry.StatusFailed]+c[retry.StatusFailedMaxRetries] != 160 {
		t.Errorf("runs %v, want 160 finished", c)
	}
}

// TestMigrateLegacyDatabase: migrate upgrades a database of the legacy
// schema in place; its runs are then listed and counted like any other.
func TestMigrateLegacyDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "legacy.db")
	s := openDB(t, path) // Open does not migrate
	for _, stmt := range []string{
		`CREATE TABLE journey_runs (id TEXT PRIMARY KEY, journey_id TEXT NOT NULL, status TEXT NOT NULL,
			current_node_id TEXT, created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
			updated_at DATETIME DEFAULT CURRENT_TIMESTAMP, patient_ref TEXT)`,
		`INSERT INTO journey_runs (id, journey_id, status, current_node_id, created_at, updated_at, patient_ref) VALUES
			('legacy-1', 'onboarding', 'in_progress', 'send_email', '2024-05-01 10:00:00', '2024-05-01 10:05:00', 'p-1'),
			('legacy-2', 'onboarding', 'completed', NULL, '2024-05-01 11:00:00', '2024-05-01 11:30:00', 'p-2'),
			('legacy-3', 'reminders', 'failed', 'call_api', '2024-05-02 09:15:00', '2024-05-02 09:15:07', NULL)`,
	} {
		if _, err := s.DB().ExecContext(t.Context(), stmt); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if r := runDemo(t, dir, nil, "stats", "--store", path); r.code != exitFailure || !strings.Contains(r.stderr, "run the demo, or demo migrate, first") {
		t.Errorf("stats before migrate: status %d, %s", r.code, r.stderr)
	}
	for _, want := range []string{"migrated sqlite " + path, "schema already up to date"} { // the second run changes nothing
		if r := runDemo(t, dir, nil, "migrate", "--store", path); r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Fatalf("migrate: status %d, want %q\n%s%s", r.code, want, r.stdout, r.stderr)
		}
	}
	r := runDemo(t, dir, nil, "runs", "list", "--store", path, "--json")
	var runs []runView
	if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil || r.code != 0 {
		t.Fatalf("runs list: status %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	got := fmt.Sprint(runs[0].ID, runs[0].Status, runs[0].MaxRetries, runs[0].RetryEnabled, runs[2].Status, len(runs))
	if want := fmt.Sprint("legacy-1", retry.StatusInProgress, 3, true, retry.StatusFailed, 3); got != want {
		t.Errorf("legacy runs after migrate: %s, want %s", got, want)
	}
	refs := querySQL(t, openDB(t, path).DB(), `SELECT patient_ref, count(*) FROM journey_runs GROUP BY patient_ref`)
	if refs["p-1"] != 1 || refs["p-2"] != 1 {
		t.Errorf("legacy column patient_ref: %v", refs)
	}
	// The cutover takes the legacy run left in flight, once: it is of a
	// journey the demo does not run, so it ends there (TestLegacyCutover
	// adopts runs of the demo's journey).
	r = runDemo(t, dir, nil, "migrate", "--adopt-legacy", "--store", path)
	for _, want := range []string{"adopted 0 legacy runs", "ended 1 legacy runs of journeys the demo does not run"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Fatalf("migrate --adopt-legacy: status %d, want %q\n%s%s", r.code, want, r.stdout, r.stderr)
		}
	}
	if r := runDemo(t, dir, nil, "migrate", "--adopt-legacy", "--store", path); r.code != 0 || strings.Contains(r.stdout, "ended") {
		t.Fatalf("migrate --adopt-legacy again: status %d, want nothing ended\n%s%s", r.code, r.stdout, r.stderr)
	}
	s = openDB(t, path)
	now := time.Now()
	if runs, err := s.ClaimDue(t.Context(), "w", now, now, time.Minute, 10); err != nil || len(runs) != 0 {
		t.Errorf("ClaimDue after the cutover = %v, %v; want nothing", runs, err)
	}
	if run, err := s.Get(t.Context(), "legacy-1"); err != nil || run.Status != retry.StatusFailed || run.LastErrorClass != retry.ClassMissingJourney {
		t.Errorf("legacy-1 after the cutover: %s, class %s, %v; want failed, missing_journey", run.Status, run.LastErrorClass, err)
	}
}

// TestReadCommandsNeedAMigratedDatabase: the read commands on a database
// that exists but was never migrated say to migrate, on either dialect,
// instead of quoting the database's missing table.
func TestReadCommandsNeedAMigratedDatabase(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, dir, store string) {
		if p := sqlitePath(store); p != "" {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, nil, 0o644); err != nil { // an empty SQLite database
				t.Fatal(err)
			}
		}
		pending := regexp.MustCompile(`no retry schema, \d+ migrations pending \(run the demo, or demo migrate, first\)`)
		for _, args := range [][]string{{"stats"}, {"runs", "list"}, {"runs", "show", "patient-000001"}, {"runs", "retry", "patient-000001"}} {
			r := runDemo(t, dir, nil, append(args, "--store", store)...)
			if r.code != exitFailure || !pending.MatchString(r.stderr) ||
				strings.Contains(r.stderr, "does not exist") || strings.Contains(r.stderr, "no such table") {
				t.Errorf("%v: status %d, %s", args, r.code, r.stderr)
			}
		}
	})
}

// TestInterruptWhileCreating: SIGINT while start or the demo creates runs
// is an interrupt (status 130) that says how many runs were created, each
// whole, and logs nothing else.
func TestInterruptWhileCreating(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "start", args: []string{"start"}, want: " (unclaimed and due now: workers pick them up)"},
		{name: "demo", want: "; run the demo again on the same database to resume them"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			store := filepath.Join(dir, "interrupted.db")
			cmd := demoCmd(t.Context(), dir, nil, append(tt.args, "--store", store, "--runs", "200000")...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, store, 30*time.Second, func(c map[retry.Status]int) bool { return report.Total(c) >= 100 })
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
			if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
				t.Errorf("status %d, want %d", code, exitInterrupted)
			}
			m := regexp.MustCompile(`^demo: interrupted while creating runs: (\d+) of 200000 created(.*)\n$`).FindStringSubmatch(stderr.String())
			if m == nil || m[2] != tt.want {
				t.Fatalf("stderr, want one line ending %q:\n%s", tt.want, stderr.String())
			}
			if n, _ := strconv.Atoi(m[1]); n != report.Total(countRuns(t, store)) {
				t.Errorf("said %d runs created, the database holds %d", n, report.Total(countRuns(t, store)))
			}
		})
	}
}

// TestErrorsSayItOnce: an error's context is not repeated by the layers it
// passes through.
func TestErrorsSayItOnce(t *testing.T) {
	t.Parallel()
	const unreachable = "postgres://postgres@127.0.0.1:1/none?sslmode=disable"
	tests := []struct {
		args []string
		once string
	}{
		{[]string{"stats", "--store", unreachable}, "open store: "},
		{[]string{"migrate", "--store", unreachable}, "open store: "},
		{[]string{"start", "--runs", "1", "--store", unreachable}, "open store: "},
	}
	for _, tt := range tests {
		r := runDemo(t, t.TempDir(), nil, tt.args...)
		if r.code != exitFailure || strings.Count(r.stderr, tt.once) != 1 {
			t.Errorf("%v: status %d, want %q once in %s", tt.args, r.code, tt.once, r.stderr)
		}
	}
}
