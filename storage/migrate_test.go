package storage_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage"
	"github.com/journeyretry/journeyretry/storage/pgtest"
)

// dialects lists the databases the store's own tests run on.
var dialects = map[string]func(t *testing.T) string{
	"sqlite":   sqliteFile,
	"postgres": func(t *testing.T) string { return pgtest.DSN(t) },
}

// openRaw opens a store without migrating it.
func openRaw(t *testing.T, dsn string) *storage.Store {
	t.Helper()
	s, err := storage.Open(t.Context(), storage.Config{DSN: dsn})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// loadLegacy creates the legacy table and rows of testdata/legacy.sql.
func loadLegacy(t *testing.T, s *storage.Store, pg bool) {
	t.Helper()
	b, err := os.ReadFile("testdata/legacy.sql")
	if err != nil {
		t.Fatal(err)
	}
	script := string(b)
	if pg { // PostgreSQL has no DATETIME; the legacy text goes in TEXT
		script = strings.ReplaceAll(script, "DATETIME", "TEXT")
	}
	for _, stmt := range strings.Split(script, ";") {
		if strings.TrimSpace(stripComments(stmt)) == "" {
			continue
		}
		if _, err := s.DB().ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("legacy.sql: %v", err)
		}
	}
}

// migratedLegacy opens a fresh database of the dialect name, loads the
// legacy fixture into it and migrates it.
func migratedLegacy(t *testing.T, name string, newDSN func(t *testing.T) string) *storage.Store {
	t.Helper()
	s := openRaw(t, newDSN(t))
	loadLegacy(t, s, name == "postgres")
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func stripComments(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func columns(t *testing.T, s *storage.Store, table string) []string {
	t.Helper()
	var cols []string
	q := `SELECT name FROM pragma_table_info('` + table + `')`
	if s.DB().Dialect().Name().String() == "pg" {
		q = `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '` + table + `'`
	}
	if err := s.DB().NewRaw(q).Scan(t.Context(), &cols); err != nil {
		t.Fatal(err)
	}
	slices.Sort(cols)
	return cols
}

func TestMigrateLegacy(t *testing.T) {
	for name, newDSN := range dialects {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			s := migratedLegacy(t, name, newDSN)
			if err := s.Migrate(ctx); err != nil { // the second run is a no-op
				t.Fatalf("Migrate again: %v", err)
			}
			var applied int
			if err := s.DB().NewRaw(`SELECT COUNT(*) FROM journeyretry_migrations`).Scan(ctx, &applied); err != nil {
				t.Fatal(err)
			}
			if applied != 9 {
				t.Fatalf("%d migrations recorded after migrating twice; want 9", applied)
			}
			want := map[string]struct {
				journey, node string
				status        retry.Status
				created       time.Time
				updated       time.Time
				patient       string
			}{
				"legacy-1": {"onboarding", "send_email", retry.StatusInProgress, time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), time.Date(2024, 5, 1, 10, 5, 0, 0, time.UTC), "p-1"},
				"legacy-2": {"onboarding", "", retry.StatusCompleted, time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC), time.Date(2024, 5, 1, 11, 30, 0, 0, time.UTC), "p-2"},
				"legacy-3": {"reminders", "call_api", retry.StatusFailed, time.Date(2024, 5, 2, 9, 15, 0, 0, time.UTC), time.Date(2024, 5, 2, 9, 15, 7, 0, time.UTC), ""},
			}
			for id, w := range want {
				r, err := s.Get(ctx, id)
				if err != nil {
					t.Fatalf("Get(%s): %v", id, err)
				}
				if r.JourneyID != w.journey || r.CurrentNodeID != w.node || r.Status != w.status || !r.CreatedAt.Equal(w.created) || !r.UpdatedAt.Equal(w.updated) ||
					r.RetryCount != 0 || r.MaxRetries != 3 || !r.RetryEnabled || r.LastErrorMessage != "" || !r.NextRetryAt.IsZero() {
					t.Fatalf("legacy row %s after migration: %+v; want %+v with retry_count 0, max_retries 3, retry_enabled", id, r, w)
				}
				var patient *string
				if err := s.DB().NewRaw(`SELECT patient_ref FROM journey_runs WHERE id = ?`, id).Scan(ctx, &patient); err != nil {
					t.Fatal(err)
				}
				if got := deref(patient); got != w.patient {
					t.Fatalf("%s: patient_ref %q after migration; want %q untouched", id, got, w.patient)
				}
			}
			// The defaults are in the rows themselves, not supplied when
			// reading: every legacy row holds them.
			var withDefaults int
			if err := s.DB().NewRaw(`SELECT COUNT(*) FROM journey_runs WHERE retry_count = 0 AND max_retries = 3
	AND retry_enabled = true AND last_error_message IS NULL AND next_retry_at IS NULL`).Scan(ctx, &withDefaults); err != nil {
				t.Fatal(err)
			}
			if withDefaults != len(want) {
				t.Fatalf("%d of %d legacy rows hold the retry columns' defaults", withDefaults, len(want))
			}
			// The proposal's two indexes, both partial (the first since
			// migration 13).
			for ix, def := range map[string]string{"idx_journey_runs_next_retry_at": "(next_retry_at) WHERE", "idx_journey_runs_retrying": "'retrying'"} {
				q := `SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?`
				if name == "postgres" {
					q = `SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ?`
				}
				var got string
				if err := s.DB().NewRaw(q, ix).Scan(ctx, &got); err != nil || !strings.Contains(got, def) {
					t.Fatalf("index %s: %q, %v; want it to exist, on %s", ix, got, err, def)
				}
			}
			// The legacy run left in flight stays the legacy system's
			// until the cutover adopts it: then it is claimable at once.
			now := time.Now()
			if runs, err := s.ClaimDue(ctx, "w", now, now, time.Minute, 10); err != nil || len(runs) != 0 {
				t.Fatalf("ClaimDue after migration, before adoption = %v, %v; want nothing", runs, err)
			}
			if a, err := s.AdoptLegacy(ctx, time.Now(), onboarding); err != nil || a.Adopted != 1 {
				t.Fatalf("AdoptLegacy = %+v, %v; want 1", a, err)
			}
			runs, err := s.ClaimDue(ctx, "w", now, now, time.Minute, 10)
			if err != nil || len(runs) != 1 || runs[0].ID != "legacy-1" || runs[0].CurrentNodeID != "send_email" || runs[0].JourneyVersion != 3 {
				t.Fatalf("ClaimDue after adoption = %+v, %v; want legacy-1 at send_email, version 3", runs, err)
			}
			// A fresh database ends with the same schema, but for patient_ref.
			fresh := open(t, newDSN(t))
			got := slices.DeleteFunc(columns(t, s, "journey_runs"), func(c string) bool { return c == "patient_ref" })
			if want := columns(t, fresh, "journey_runs"); !slices.Equal(got, want) {
				t.Fatalf("migrated legacy columns %v; fresh %v", got, want)
			}
		})
	}
}

// TestAdoptLegacyAtCutover: a legacy writer still running after the
// migration inserts in-flight rows without a due time; neither they nor the
// rows it left before are claimable until the cutover's AdoptLegacy, which
// adopts them all, and a second AdoptLegacy (or Migrate) changes nothing.
func TestAdoptLegacyAtCutover(t *testing.T) {
	for name, newDSN := range dialects {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			s := migratedLegacy(t, name, newDSN)
			if _, err := s.DB().ExecContext(ctx, `INSERT INTO journey_runs (id, journey_id, status, current_node_id, created_at, updated_at)
VALUES ('late', 'onboarding', 'in_progress', 'send_email', '2024-06-01 08:00:00', '2024-06-01 08:00:00')`); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			if _, err := s.ClaimRun(ctx, "late", "w", now, time.Minute); !errors.Is(err, retry.ErrNotClaimable) {
				t.Fatalf("ClaimRun of a late legacy row before the cutover: %v; want ErrNotClaimable", err)
			}
			if a, err := s.AdoptLegacy(ctx, time.Now(), onboarding); err != nil || a.Adopted != 2 {
				t.Fatalf("AdoptLegacy = %+v, %v; want 2", a, err)
			}
			runs, err := s.ClaimDue(ctx, "w", now, now, time.Minute, 10)
			ids := make([]string, len(runs))
			for i, r := range runs {
				ids[i] = r.ID
			}
			slices.Sort(ids)
			if err != nil || !slices.Equal(ids, []string{"late", "legacy-1"}) {
				t.Fatalf("ClaimDue after the cutover = %v, %v; want late and legacy-1", ids, err)
			}
			// With claimed, completed and failed rows, adopting or
			// migrating again is a no-op.
			before := dump(t, s)
			if a, err := s.AdoptLegacy(ctx, time.Now(), onboarding); err != nil || a != (storage.LegacyAdoption{}) {
				t.Fatalf("AdoptLegacy again = %+v, %v; want 0", a, err)
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("Migrate again: %v", err)
			}
			if after := dump(t, s); !slices.Equal(after, before) {
				t.Fatalf("AdoptLegacy or Migrate changed rows:\n%v\nwant\n%v", after, before)
			}
		})
	}
}

// onboarding is the registry the legacy tests adopt with: the legacy rows'
// journey at version 3.
var onboarding = map[string]int{"onboarding": 3}

// TestAdoptLegacyEndsWhatNoWorkerResumes: the cutover pins the registry's
// version in every row of the journey, adopted or finished, and ends, once, failed with the reason
// in the history and no claim, each row no worker can resume: no current
// node, an empty one, one holding NUL or invalid UTF-8 (SQLite stores
// them; a run id too), or a journey the registry lacks. A version below 1
// is refused.
func TestAdoptLegacyEndsWhatNoWorkerResumes(t *testing.T) {
	for name, newDSN := range dialects {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			s := migratedLegacy(t, name, newDSN) // legacy-1: onboarding at send_email
			type end struct {
				journey string
				node    any // current_node_id; nil is NULL
				class   retry.Class
			}
			ends := map[string]end{
				"no-node":    {"onboarding", nil, retry.ClassMalformedNode},
				"empty-node": {"onboarding", "", retry.ClassMalformedNode},
				"other":      {"billing", "charge", retry.ClassMissingJourney},
			}
			if name == "sqlite" { // PostgreSQL's text holds neither
				ends["nul-node"] = end{"onboarding", "send\x00email", retry.ClassMalformedNode}
				ends["bad-utf8-node"] = end{"onboarding", "send\xffemail", retry.ClassMalformedNode}
				ends["bad-\xffid"] = end{"onboarding", "send_email", retry.ClassValidation}
			}
			// bun inlines arguments, and would refuse the NUL and the bad
			// byte: on SQLite the driver binds them.
			exec, query := s.DB().ExecContext, s.DB().QueryRowContext
			if name == "sqlite" {
				exec, query = s.DB().DB.ExecContext, s.DB().DB.QueryRowContext
			}
			for id, e := range ends {
				if _, err := exec(ctx, `INSERT INTO journey_runs (id, journey_id, status, current_node_id, created_at, updated_at)
VALUES (?, ?, 'in_progress', ?, '2024-06-01 08:00:00', '2024-06-01 08:00:00')`, id, e.journey, e.node); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := exec(ctx, `INSERT INTO journey_runs (id, journey_id, status, current_node_id, created_at, updated_at)
VALUES ('done-failed', 'onboarding', 'failed', 'send_email', '2024-06-01 08:00:00', '2024-06-01 08:00:00')`); err != nil {
				t.Fatal(err)
			}
			if _, err := s.AdoptLegacy(ctx, time.Now(), map[string]int{"onboarding": 0}); !errors.Is(err, retry.ErrInvalidArgument) {
				t.Fatalf("AdoptLegacy with version 0: %v; want ErrInvalidArgument", err)
			}
			a, err := s.AdoptLegacy(ctx, time.Now(), onboarding)
			if want := (storage.LegacyAdoption{Adopted: 1, Malformed: len(ends) - 1, Unregistered: 1}); err != nil || a != want {
				t.Fatalf("AdoptLegacy = %+v, %v; want %+v", a, err, want)
			}
			now := time.Now()
			runs, err := s.ClaimDue(ctx, "w", now, now, time.Minute, 10)
			if err != nil || len(runs) != 1 || runs[0].ID != "legacy-1" || runs[0].JourneyVersion != 3 {
				t.Fatalf("ClaimDue after adoption = %+v, %v; want legacy-1 alone, version 3", runs, err)
			}
			for id, e := range ends {
				var status, class, msg string
				var claim sql.NullString
				var attempts int
				var recorded int
				var attemptClass, attemptMsg, attemptNode string
				if err := query(ctx, `SELECT r.status, r.last_error_class, r.last_error_message, r.claim_token, r.attempt_count,
	COUNT(a.number), MAX(a.error_class), MAX(a.error_message), MAX(a.node_id)
FROM journey_runs r LEFT JOIN journey_run_attempts a ON a.run_id = r.id WHERE r.id = ?
GROUP BY r.status, r.last_error_class, r.last_error_message, r.claim_token, r.attempt_count`, id).Scan(
					&status, &class, &msg, &claim, &attempts, &recorded, &attemptClass, &attemptMsg, &attemptNode); err != nil {
					t.Fatalf("%q: %v", id, err)
				}
				if status != string(retry.StatusFailed) || class != string(e.class) || msg == "" || claim.Valid || attempts != 1 {
					t.Errorf("%q: %s, class %s, %q, claim %v, %d attempts; want failed once, class %s, unclaimed", id, status, class, msg, claim, attempts, e.class)
				}
				if recorded != 1 || attemptClass != string(e.class) || attemptMsg != msg || !utf8.ValidString(attemptNode) {
					t.Errorf("%q: %d attempts, class %s, %q at node %q; want one, class %s, saying %q", id, recorded, attemptClass, attemptMsg, attemptNode, e.class, msg)
				}
			}
			// A finished legacy row of the journey is pinned too, so a
			// replay runs it under that version; one of a journey the
			// registry lacks keeps none.
			for id, want := range map[string]int{"done-failed": 3, "legacy-3": 0} {
				if r, err := s.Get(ctx, id); err != nil || r.JourneyVersion != want || !r.Status.Terminal() {
					t.Errorf("%s after adoption: %s, version %d, %v; want finished, version %d", id, r.Status, r.JourneyVersion, err, want)
				}
			}
			if r, err := s.Replay(ctx, "done-failed", time.Now()); err != nil || r.JourneyVersion != 3 || r.CurrentNodeID != "send_email" {
				t.Errorf("Replay of a finished legacy row = %+v, %v; want it at send_email, version 3", r, err)
			}
			if a, err := s.AdoptLegacy(ctx, time.Now(), onboarding); err != nil || a != (storage.LegacyAdoption{}) {
				t.Fatalf("AdoptLegacy again = %+v, %v; want nothing", a, err)
			}
		})
	}
}

// dump returns every row of journey_runs and journey_run_attempts, and the
// recorded migrations, as text.
func dump(t *testing.T, s *storage.Store) []string {
	t.Helper()
	var out []string
	for _, q := range []string{
		`SELECT * FROM journey_runs ORDER BY id`,
		`SELECT * FROM journey_run_attempts ORDER BY run_id, number`,
		`SELECT name FROM journeyretry_migrations ORDER BY name`,
	} {
		rows, err := s.DB().QueryContext(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals, dest := make([]any, len(cols)), make([]any, len(cols))
			for i := range dest {
				dest[i] = &vals[i]
			}
			if err := rows.Scan(dest...); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(vals...))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return out
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func TestMigrateDown(t *testing.T) {
	for name, newDSN := range dialects {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			s := migratedLegacy(t, name, newDSN)
			now := time.Now()
			r, err := s.Create(ctx, retry.NewRun{ID: "new", JourneyID: "j", StartNodeID: "a", MaxRetries: 3, Worker: "w", Lease: time.Minute}, now)
			if err != nil {
				t.Fatal(err)
			}
			f := retry.FailureRecord{NodeID: "a", Message: "boom", FinishedAt: now, Decision: retry.Decision{Retry: true, Delay: time.Hour}}
			if _, err := s.RecordFailure(ctx, r.Claim(), f); err != nil {
				t.Fatal(err)
			}
			// A cancelled run does not block the downgrade: it becomes failed.
			if _, err := s.Create(ctx, retry.NewRun{ID: "cancelled", JourneyID: "j", StartNodeID: "a", MaxRetries: 3}, now); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Cancel(ctx, "cancelled", "ops", now); err != nil {
				t.Fatal(err)
			}
			before := columns(t, s, "journey_runs")
			err = s.MigrateDown(ctx)
			if !errors.Is(err, storage.ErrDowngradeBlocked) || !strings.Contains(err.Error(), `1 "retrying"`) {
				t.Fatalf("MigrateDown with a retrying run: %v; want ErrDowngradeBlocked naming it", err)
			}
			if got := columns(t, s, "journey_runs"); !slices.Equal(got, before) {
				t.Fatalf("a refused MigrateDown changed the columns: %v; want %v", got, before)
			}
			// End the run the legacy schema would not understand.
			r, err = s.ClaimRun(ctx, "new", "w", now.Add(time.Hour), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			f.Decision, f.FinishedAt = retry.Decision{}, now.Add(time.Hour)
			if _, err := s.RecordFailure(ctx, r.Claim(), f); err != nil {
				t.Fatal(err)
			}
			if err := s.MigrateDown(ctx); err != nil {
				t.Fatalf("MigrateDown: %v", err)
			}
			want := []string{"created_at", "current_node_id", "id", "journey_id", "patient_ref", "status", "updated_at"}
			if got := columns(t, s, "journey_runs"); !slices.Equal(got, want) {
				t.Fatalf("columns after MigrateDown %v; want the legacy ones %v", got, want)
			}
			if got := columns(t, s, "journey_run_attempts"); len(got) != 0 {
				t.Fatalf("journey_run_attempts still has columns %v", got)
			}
			var n int
			if err := s.DB().NewRaw(`SELECT COUNT(*) FROM journey_runs WHERE patient_ref IN ('p-1', 'p-2')`).Scan(ctx, &n); err != nil || n != 2 {
				t.Fatalf("legacy rows after MigrateDown: %d, %v; want 2", n, err)
			}
			var st string
			if err := s.DB().NewRaw(`SELECT status FROM journey_runs WHERE id = 'cancelled'`).Scan(ctx, &st); err != nil || st != "failed" {
				t.Fatalf("the cancelled run after MigrateDown: status %q, %v; want failed", st, err)
			}
			// And up again.
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("Migrate after MigrateDown: %v", err)
			}
			if got, err := s.Get(ctx, "legacy-3"); err != nil || got.MaxRetries != 3 {
				t.Fatalf("Get after migrating up again: %+v, %v", got, err)
			}
		})
	}
}

func TestInvalidStatusInRow(t *testing.T) {
	for name, newDSN := range dialects {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			s := open(t, newDSN(t))
			if _, err := s.DB().ExecContext(ctx, `INSERT INTO journey_runs (id, journey_id, status, current_node_id, due_at)
VALUES ('bad', 'j', 'Retrying', 'a', 0)`); err != nil {
				t.Fatal(err)
			}
			_, err := s.Get(ctx, "bad")
			if !errors.Is(err, retry.ErrInvalidStatus) || !strings.Contains(err.Error(), `"Retrying"`) {
				t.Fatalf("Get of a row with status Retrying: %v; want ErrInvalidStatus quoting it", err)
			}
			_, err = s.CountByStatus(ctx)
			if !errors.Is(err, retry.ErrInvalidStatus) {
				t.Fatalf("CountByStatus: %v; want ErrInvalidStatus", err)
			}
			_, err = s.ListRuns(ctx, retry.RunFilter{})
			if !errors.Is(err, retry.ErrInvalidStatus) {
				t.Fatalf("ListRuns: %v; want ErrInvalidStatus", err)
			}
			if runs, err := s.ClaimDue(ctx, "w", time.Now(), time.Now(), time.Minute, 10); err != nil || len(runs) != 0 {
				t.Fatalf("ClaimDue handed out %v, %v; want nothing", runs, err)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg   storage.Config
		field string
	}{
		{storage.Config{}, "dsn"},
		{storage.Config{DSN: "x.db", BusyTimeout: -time.Second}, "busy_timeout"},
		{storage.Config{DSN: "x.db", Synchronous: "sometimes"}, "synchronous"},
		{storage.Config{DSN: "x.db", ReadConns: -1}, "read_conns"},
		{storage.Config{DSN: "x.db", MaxBatch: -1}, "max_batch"},
		{storage.Config{DSN: "x.db", ReadConns: storage.ReadConnsLimit + 1}, "read_conns"},
		{storage.Config{DSN: "x.db", Writers: -1}, "writers"},
		{storage.Config{DSN: "x.db", Writers: storage.WritersLimit + 1}, "writers"},
		{storage.Config{DSN: "x.db", MaxBatch: 1 << 62}, "max_batch"},
		{storage.Config{DSN: "x.db", WriteTimeout: -time.Second}, "write_timeout"},
		{storage.Config{DSN: "mysql://x@localhost/db"}, "dsn"},
		{storage.Config{DSN: "sqlite://x.db"}, "dsn"},
		{storage.Config{DSN: "postgres://u@127.0.0.1:5432/db?sslmode=bogus"}, "dsn"},
	} {
		err := tc.cfg.Validate()
		fe, ok := errors.AsType[*retry.FieldError](err)
		if !ok || fe.Field != tc.field || !errors.Is(err, retry.ErrInvalidArgument) || !strings.HasPrefix(err.Error(), tc.field+":") {
			t.Errorf("Validate(%+v) = %v; want a retry.FieldError naming %s, wrapping ErrInvalidArgument", tc.cfg, err, tc.field)
		}
		if _, err := storage.Open(t.Context(), tc.cfg); err == nil {
			t.Errorf("Open(%+v) succeeded", tc.cfg)
		}
	}
	for _, dsn := range []string{"x.db", "file:///tmp/x.db?mode=ro", "POSTGRES://h/db", "postgresql://h/db", "dir/a://b.db"} {
		if err := (storage.Config{DSN: dsn}).Validate(); err != nil {
			t.Errorf("Validate of DSN %q: %v", dsn, err)
		}
	}
	for dsn, pg := range map[string]bool{"POSTGRES://h/db": true, "postgresql://h/db": true, "x.db": false, "file:x.db": false, ":memory:": false} {
		if got := storage.IsPostgres(dsn); got != pg {
			t.Errorf("IsPostgres(%q) = %v; want %v", dsn, got, pg)
		}
	}
	// A SQLite file that cannot be opened is named in the error.
	missing := filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")
	if _, err := storage.Open(t.Context(), storage.Config{DSN: missing}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Open of %s: %v; want an error naming the path", missing, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := storage.Open(ctx, storage.Config{DSN: "postgres://nobody@127.0.0.1:1/none?sslmode=disable"}); err == nil {
		t.Error("Open of an unreachable PostgreSQL succeeded")
	}
}

// TestPendingMigrations: a legacy database (no bookkeeping table yet) has
// every migration pending, a migrated one none, and asking writes nothing.
func TestPendingMigrations(t *testing.T) {
	for name, newDSN := range dialects {
		t.Run(name, func(t *testing.T) {
			s := openRaw(t, newDSN(t))
			loadLegacy(t, s, name == "postgres")
			for range 2 { // asking twice: the first call created nothing
				if n, err := s.PendingMigrations(t.Context()); err != nil || n != 9 {
					t.Fatalf("PendingMigrations before Migrate = %d, %v; want 9", n, err)
				}
			}
			if err := s.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			if n, err := s.PendingMigrations(t.Context()); err != nil || n != 0 {
				t.Fatalf("PendingMigrations after Migrate = %d, %v; want 0", n, err)
			}
		})
	}
}

// TestReplayCounts counts replays run by run, leaving out runs never
// replayed and ids that name no run.
func TestReplayCounts(t *testing.T) {
	s := openRaw(t, sqliteFile(t))
	ctx := t.Context()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, id := range []string{"twice", "never"} {
		r, err := s.Create(ctx, retry.NewRun{ID: id, JourneyID: "j", StartNodeID: "a", Worker: "w", Lease: time.Minute}, now)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RecordFailure(ctx, r.Claim(), retry.FailureRecord{NodeID: "a", Message: "bad", FinishedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if _, err := s.Replay(ctx, "twice", now); err != nil {
			t.Fatal(err)
		}
		r, err := s.ClaimRun(ctx, "twice", "w", now, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RecordFailure(ctx, r.Claim(), retry.FailureRecord{NodeID: "a", Message: "bad", FinishedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ReplayCounts(ctx, []string{"twice", "never", "nobody"})
	if err != nil || fmt.Sprint(got) != "map[twice:2]" {
		t.Fatalf("ReplayCounts = %v, %v; want map[twice:2]", got, err)
	}
	if got, err := s.ReplayCounts(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("ReplayCounts(nil) = %v, %v; want empty", got, err)
	}
}

// TestFailedMigrateChangesNothing: a journey_runs table the retry
// migration cannot extend (no status column to index) makes Migrate fail
// and leaves the database as it was: no bookkeeping table, no recorded
// migration, no added column.
func TestFailedMigrateChangesNothing(t *testing.T) {
	for name, newDSN := range dialects {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			s := openRaw(t, newDSN(t))
			if _, err := s.DB().ExecContext(ctx, `CREATE TABLE journey_runs (id TEXT PRIMARY KEY, payload TEXT)`); err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(ctx); err == nil {
				t.Fatal("Migrate over a conflicting journey_runs succeeded")
			}
			q := `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`
			if name == "postgres" {
				q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name`
			}
			var tables []string
			if err := s.DB().NewRaw(q).Scan(ctx, &tables); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tables, []string{"journey_runs"}) {
				t.Errorf("tables after a failed Migrate: %v; want journey_runs alone", tables)
			}
			if cols := columns(t, s, "journey_runs"); len(cols) != 2 {
				t.Errorf("journey_runs columns after a failed Migrate: %v", cols)
			}
			if n, err := s.PendingMigrations(ctx); err != nil || n != 9 {
				t.Errorf("PendingMigrations = %d, %v; want 9", n, err)
			}
		})
	}
}
