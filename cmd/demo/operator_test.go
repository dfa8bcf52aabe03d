package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage"
	"github.com/journeyretry/journeyretry/storage/pgtest"
)

// operatorDSNs name a fresh database per test: a SQLite file, and a
// PostgreSQL schema when RETRY_TEST_POSTGRES_URL is set.
var operatorDSNs = map[string]func(t *testing.T) string{
	"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "runs.db") },
	"postgres": func(t *testing.T) string { return pgtest.DSN(t) },
}

// operatorStore opens and migrates the store at dsn for a test to fill
// and read.
func operatorStore(t *testing.T, dsn string) *storage.Store {
	t.Helper()
	s := openDB(t, dsn)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// deadRun is a run to create for a test: it completes the nodes before
// node, then fails there with class at failedAt, ending status.
type deadRun struct {
	id, journey, node string
	class             retry.Class
	status            retry.Status // failed, failed_max_retries or retrying
	failedAt          time.Time
}

func (d deadRun) create(t *testing.T, s *storage.Store) {
	t.Helper()
	ctx := t.Context()
	start := d.failedAt.Add(-time.Minute)
	r, err := s.Create(ctx, retry.NewRun{ID: d.id, JourneyID: d.journey, StartNodeID: "a", MaxRetries: 3, Worker: "w", Lease: time.Hour}, start)
	if err != nil {
		t.Fatal(err)
	}
	for _, next := range []string{"b", "c"} {
		if r.CurrentNodeID == d.node {
			break
		}
		node := r.CurrentNodeID
		if r, err = s.CompleteNode(ctx, r.Claim(), retry.NodeSuccess{NodeID: node, Output: json.RawMessage(`{"node":"` + node + `"}`),
			NextNodeID: next, FinishedAt: start}); err != nil {
			t.Fatal(err)
		}
	}
	dec := map[retry.Status]retry.Decision{
		retry.StatusFailed:           {Strategy: "none", Rule: "nonretryable:0"},
		retry.StatusFailedMaxRetries: {Strategy: "long", Rule: "max_retries", Exhausted: true},
		retry.StatusRetrying:         {Retry: true, Delay: time.Hour, Strategy: "long", Rule: "class:rate_limit"},
	}[d.status]
	got, err := s.RecordFailure(ctx, r.Claim(), retry.FailureRecord{NodeID: d.node, Class: d.class, Message: "boom " + d.id,
		Decision: dec, StartedAt: start, FinishedAt: d.failedAt})
	if err != nil || got.Status != d.status {
		t.Fatalf("create %s: %s, %v; want %s", d.id, got.Status, err, d.status)
	}
}

// snapshot is every run of s with the length of its history.
func snapshot(t *testing.T, s *storage.Store) map[string]string {
	t.Helper()
	runs, err := s.ListRuns(t.Context(), retry.RunFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range runs {
		out[r.ID] = fmt.Sprintf("%s at %s, %d/%d retries, %d attempts, override %+v, updated %s", r.Status, r.CurrentNodeID,
			r.RetryCount, r.MaxRetries, r.AttemptCount, r.Override, r.UpdatedAt)
	}
	return out
}

// TestRunsRetryBulk: a bulk replay by status, class and failure window
// prints with --dry-run exactly the runs the filters keep and changes
// nothing; without --confirm, or with a count the filters no longer
// keep, it replays nothing; with the count it replays exactly those runs,
// with the override asked, and leaves every other run as it was.
func TestRunsRetryBulk(t *testing.T) {
	t.Parallel()
	for name, newDSN := range operatorDSNs {
		t.Run(name, func(t *testing.T) {
			dsn := newDSN(t)
			s := operatorStore(t, dsn)
			now := time.Now()
			for _, d := range []deadRun{
				{"m1", "j", "b", retry.ClassRateLimit, retry.StatusFailedMaxRetries, now.Add(-10 * time.Minute)},
				{"m2", "j", "c", retry.ClassRateLimit, retry.StatusFailedMaxRetries, now.Add(-20 * time.Minute)},
				{"m3", "j", "b", retry.ClassRateLimit, retry.StatusFailedMaxRetries, now.Add(-3 * time.Hour)}, // too old
				{"m4", "j", "b", retry.ClassNetworkBlip, retry.StatusFailedMaxRetries, now.Add(-10 * time.Minute)},
				{"m5", "j", "b", retry.ClassRateLimit, retry.StatusFailed, now.Add(-10 * time.Minute)},
				{"m6", "other", "a", retry.ClassRateLimit, retry.StatusFailedMaxRetries, now.Add(-5 * time.Minute)},
				{"m7", "j", "b", retry.ClassRateLimit, retry.StatusRetrying, now.Add(-10 * time.Minute)},
			} {
				d.create(t, s)
			}
			filters := []string{"runs", "retry", "--store", dsn, "--status", "failed_max_retries", "--class", "rate_limit", "--since", "1h"}
			before := snapshot(t, s)
			dir := t.TempDir()
			r := runDemo(t, dir, nil, append(filters, "--dry-run")...)
			if r.code != 0 || !strings.Contains(r.stdout, "would replay 3 runs") {
				t.Fatalf("--dry-run: status %d, stdout %q, stderr %q; want 3 runs", r.code, r.stdout, r.stderr)
			}
			for _, id := range []string{"m1", "m2", "m3", "m4", "m5", "m6", "m7"} {
				listed := strings.Contains(r.stdout, `"`+id+`"`)
				if want := slices.Contains([]string{"m1", "m2", "m6"}, id); listed != want {
					t.Errorf("--dry-run lists %s: %v; want %v:\n%s", id, listed, want, r.stdout)
				}
			}
			if after := snapshot(t, s); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("--dry-run changed the store:\nbefore %v\nafter  %v", before, after)
			}
			narrow := runDemo(t, dir, nil, append(filters, "--journey", "j", "--node", "c", "--dry-run")...)
			if narrow.code != 0 || !strings.Contains(narrow.stdout, `"m2"`) || !strings.Contains(narrow.stdout, "would replay 1 runs") {
				t.Fatalf("--journey j --node c --dry-run: status %d, stdout %q; want m2 alone", narrow.code, narrow.stdout)
			}
			if r := runDemo(t, dir, nil, filters...); r.code != exitUsage || !strings.Contains(r.stderr, "--confirm") {
				t.Fatalf("without --dry-run or --confirm: status %d, stderr %q; want a usage error naming --confirm", r.code, r.stderr)
			}
			if r := runDemo(t, dir, nil, append(filters, "--confirm", "2")...); r.code != exitFailure || !strings.Contains(r.stderr, "keep 3 runs, not 2: nothing replayed") {
				t.Fatalf("--confirm 2: status %d, stderr %q; want a refusal, 3 runs matching", r.code, r.stderr)
			}
			if after := snapshot(t, s); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("a refused bulk replay changed the store:\nbefore %v\nafter  %v", before, after)
			}
			r = runDemo(t, dir, nil, append(filters, "--confirm", "3", "--strategy", "long", "--max-retries", "5", "--by", "ops")...)
			if r.code != 0 || !strings.Contains(r.stdout, "replayed 3 runs (strategy long, max retries 5)") {
				t.Fatalf("--confirm 3: status %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
			after := snapshot(t, s)
			for id, was := range before {
				replayed := slices.Contains([]string{"m1", "m2", "m6"}, id)
				if !replayed {
					if after[id] != was {
						t.Errorf("%s changed: %s; was %s", id, after[id], was)
					}
					continue
				}
				run, err := s.Get(t.Context(), id)
				if err != nil {
					t.Fatal(err)
				}
				as, err := s.Attempts(t.Context(), id)
				if err != nil {
					t.Fatal(err)
				}
				last := as[len(as)-1]
				if run.Status != retry.StatusRetrying || run.RetryCount != 0 || run.MaxRetries != 5 || run.Override.Strategy != "long" ||
					last.Outcome != retry.OutcomeReplayed || last.Act == nil || last.Act.By != "ops" {
					t.Errorf("%s after the bulk replay: %s; last attempt %+v; want retrying, 0/5 retries, strategy long, replayed by ops", id, after[id], last)
				}
			}
		})
	}
}

// TestRunsCancelAndRetryFrom: runs cancel ends a run and refuses an ended
// one; runs retry --from replays from a node the run reached, moving the
// later outputs aside, with the limit and strategy asked, shown by runs
// show, and refuses a node it never reached and a strategy the
// configuration lacks.
func TestRunsCancelAndRetryFrom(t *testing.T) {
	t.Parallel()
	for name, newDSN := range operatorDSNs {
		t.Run(name, func(t *testing.T) {
			dsn := newDSN(t)
			s := operatorStore(t, dsn)
			ctx := t.Context()
			if _, err := s.Create(ctx, retry.NewRun{ID: "c1", JourneyID: "j", StartNodeID: "a", MaxRetries: 3}, time.Now()); err != nil {
				t.Fatal(err)
			}
			deadRun{"r1", "j", "c", retry.ClassValidation, retry.StatusFailed, time.Now()}.create(t, s)
			dir := t.TempDir()
			if r := runDemo(t, dir, nil, "runs", "cancel", "c1", "--store", dsn, "--by", "ops"); r.code != 0 || !strings.Contains(r.stdout, `run "c1" cancelled at node a by ops`) {
				t.Fatalf("runs cancel: status %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
			if run, err := s.Get(ctx, "c1"); err != nil || run.Status != retry.StatusCancelled {
				t.Fatalf("after runs cancel: %s, %v; want cancelled", run.Status, err)
			}
			if r := runDemo(t, dir, nil, "runs", "cancel", "c1", "--store", dsn); r.code != exitFailure || !strings.Contains(r.stderr, "is cancelled: run not cancellable") {
				t.Fatalf("runs cancel of a cancelled run: status %d, stderr %q", r.code, r.stderr)
			}
			if r := runDemo(t, dir, nil, "runs", "cancel", "nope", "--store", dsn); r.code != exitFailure || !strings.Contains(r.stderr, "not found") {
				t.Fatalf("runs cancel of a missing run: status %d, stderr %q", r.code, r.stderr)
			}
			for _, bad := range [][]string{{"--from", "z"}, {"--strategy", "nope"}, {"--max-retries", "-2"}, {"--dry-run"}} {
				r := runDemo(t, dir, nil, append([]string{"runs", "retry", "r1", "--store", dsn}, bad...)...)
				if r.code != exitUsage {
					t.Errorf("runs retry r1 %v: status %d, stderr %q; want %d", bad, r.code, r.stderr, exitUsage)
				}
			}
			r := runDemo(t, dir, nil, "runs", "retry", "r1", "--store", dsn, "--from", "b", "--max-retries", "7", "--strategy", "long", "--by", "alice")
			if r.code != 0 || !strings.Contains(r.stdout, "replayed from node b (strategy long, max retries 7)") {
				t.Fatalf("runs retry --from b: status %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
			run, err := s.Get(ctx, "r1")
			if err != nil || run.CurrentNodeID != "b" || run.MaxRetries != 7 || run.Override.Strategy != "long" || len(run.Context.Outputs) != 1 {
				t.Fatalf("after runs retry --from b: %+v, %v; want at b, 7 retries, strategy long, a's output alone", run, err)
			}
			if r := runDemo(t, dir, nil, "runs", "show", "r1", "--store", dsn); !strings.Contains(r.stdout, "by alice from b (strategy long, max retries 7); moved aside: b") {
				t.Fatalf("runs show: %q; want the replay by alice with what it moved aside", r.stdout)
			}
			if r := runDemo(t, dir, nil, "runs", "retry", "c1", "--store", dsn); r.code != 0 || !strings.Contains(r.stdout, "replayed from node a") {
				t.Fatalf("runs retry of the cancelled run: status %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
		})
	}
}

// TestHelpListsOperatorCommands: demo --help and demo help list cancel,
// replay from a node and bulk replay.
func TestHelpListsOperatorCommands(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"help"}} {
		r := runDemo(t, t.TempDir(), nil, args...)
		for _, want := range []string{"demo runs cancel ID", "demo runs retry ID [--from NODE] [--max-retries N] [--strategy S]",
			"demo runs retry [--status S] [--class C] [--node N] [--journey J]", "(--dry-run | --confirm N)"} {
			if r.code != 0 || !strings.Contains(r.stdout, want) {
				t.Errorf("demo %v: status %d; stdout lacks %q:\n%s", args, r.code, want, r.stdout)
			}
		}
	}
}
