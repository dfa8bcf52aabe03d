package storage_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/journeyretry/journeyretry/dashboard"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage"
)

// queryLog records the queries of a bun.DB.
type queryLog struct {
	mu      sync.Mutex
	queries []string
}

func (l *queryLog) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (l *queryLog) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !slices.Contains(l.queries, e.Query) {
		l.queries = append(l.queries, e.Query)
	}
}

// explain returns SQLite's plan of q, one line per step.
func explain(t *testing.T, s *storage.Store, q string) []string {
	t.Helper()
	rows, err := s.DB().QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q)
	if err != nil {
		t.Fatalf("explain %s: %v", q, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

// tableStep matches a plan step that reads a table of the store.
var tableStep = regexp.MustCompile(`^(SCAN|SEARCH) (journey_runs|journey_run_attempts)\b`)

// TestDashboardPlans drives every page of the dashboard over a SQLite
// store, records every query the store ran for them, and checks SQLite's
// plan of each: no step scans a table without an index, and the counts
// (by status, by retry count) and the error patterns read index entries
// only, never a row. Claims still walk their due-time index, which the
// count indexes must not displace.
func TestDashboardPlans(t *testing.T) {
	s := open(t, sqliteFile(t))
	ctx := t.Context()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	if _, err := s.Create(ctx, retry.NewRun{ID: "r1", JourneyID: "j", JourneyVersion: 1, StartNodeID: "a", MaxRetries: 3,
		Worker: "w", Lease: time.Minute}, now); err != nil {
		t.Fatal(err)
	}
	log := &queryLog{}
	storage.ReadDB(s).AddQueryHook(log)
	h, err := dashboard.New(dashboard.Config{Store: s, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/?window=15m", "/?window=24h", "/?window=7d", "/dead", "/dead?status=failed&after=r0",
		"/dead?status=failed_max_retries&journey=j", "/dead?status=failed&class=validation", "/dead?status=failed&journey=j&class=validation",
		"/runs/r1"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
	}
	if len(log.queries) < 8 {
		t.Fatalf("recorded %d queries: %q; the hook missed the dashboard's reads", len(log.queries), log.queries)
	}
	for _, q := range log.queries {
		plan := explain(t, s, q)
		t.Logf("%s\n  %s", q, strings.Join(plan, "\n  "))
		countOnly := strings.Contains(q, "COUNT(*)") && strings.Contains(q, "FROM journey_runs") ||
			strings.Contains(q, "error_message") && strings.Contains(q, "GROUP BY")
		for _, step := range plan {
			if !tableStep.MatchString(step) {
				continue
			}
			if !strings.Contains(step, " INDEX ") {
				t.Errorf("%s: plan step %q reads the table without an index", q, step)
			}
			if countOnly && !strings.Contains(step, "COVERING INDEX") {
				t.Errorf("%s: plan step %q reads rows; want index entries only", q, step)
			}
		}
	}
	// The SQLite claim's choice of runs (claim.go).
	claim := explain(t, s, `SELECT id FROM journey_runs WHERE due_at <= 0 AND status IN ('in_progress', 'retrying', 'waiting') ORDER BY due_at LIMIT 10`)
	if !strings.Contains(strings.Join(claim, "; "), "idx_journey_runs_due_at") {
		t.Errorf("the claim's plan %q does not walk idx_journey_runs_due_at", claim)
	}
}

// TestUnknownStatusCondition: the condition that counts the runs of an
// unknown status (and its partial index) names every status there is, so
// no valid run is counted as unknown.
func TestUnknownStatusCondition(t *testing.T) {
	var named []retry.Status
	for _, m := range regexp.MustCompile(`'([a-z_]+)'`).FindAllStringSubmatch(storage.UnknownStatus, -1) {
		named = append(named, retry.Status(m[1]))
	}
	slices.Sort(named)
	all := slices.Sorted(slices.Values(retry.Statuses))
	if !slices.Equal(named, all) {
		t.Fatalf("the unknown-status condition names %v; retry.Statuses is %v: a new status needs a migration that redefines idx_journey_runs_unknown_status", named, all)
	}
}

// TestWritesBuildNoTemporaryTable: on SQLite, writing a run's status
// builds no temporary table (OpenEphemeral) for the partial indexes'
// conditions, which SQLite tests on every write of a row: one per NOT IN
// list of more than two values, each mapping and unmapping page-cache
// memory.
func TestWritesBuildNoTemporaryTable(t *testing.T) {
	s := open(t, sqliteFile(t))
	for _, q := range []string{
		`INSERT INTO journey_runs (id, journey_id, status) VALUES ('r', 'j', 'in_progress')`,
		`UPDATE journey_runs SET status = 'completed' WHERE id = 'r'`,
	} {
		rows, err := s.DB().QueryContext(t.Context(), "EXPLAIN "+q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var addr, p1, p2, p3 int
			var op string
			var p4, p5, comment any
			if err := rows.Scan(&addr, &op, &p1, &p2, &p3, &p4, &p5, &comment); err != nil {
				t.Fatal(err)
			}
			if op == "OpenEphemeral" {
				t.Errorf("%s: step %d builds a temporary table", q, addr)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
}
