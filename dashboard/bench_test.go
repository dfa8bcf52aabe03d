package dashboard_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/dashboard"
	"github.com/journeyretry/journeyretry/retrytest"
	"github.com/journeyretry/journeyretry/storage"
)

// benchRuns is the size of the benchmark's store.
const benchRuns = 1_000_000

// benchDB returns a SQLite store of benchRuns runs (10 % failed, 10 %
// failed_max_retries, 10 % retrying, the rest completed; three journeys;
// five error classes) and two attempts each, finished over the 30 days
// before now, filled by SQL in one statement per table. The file is kept
// in the temporary directory (JRETRY_BENCH_DIR to choose) and reused.
func benchDB(b *testing.B, now time.Time) *storage.Store {
	b.Helper()
	dir := os.Getenv("JRETRY_BENCH_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, "journeyretry-dashboard-bench-v1.db")
	ctx := context.Background()
	_, statErr := os.Stat(path)
	s, err := storage.Open(ctx, storage.Config{DSN: path})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	if statErr == nil {
		return s
	}
	end := now.UnixMilli()
	const span = int64(30 * 24 * time.Hour / time.Millisecond)
	start := time.Now()
	for _, q := range []string{
		`WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?)
INSERT INTO journey_runs (id, journey_id, status, current_node_id, retry_count, max_retries, last_error_message,
  last_error_timestamp, retry_enabled, journey_version, context, last_error_class, last_delay_ms, attempt_count)
SELECT printf('run-%07d', i), 'journey-' || (i % 3),
  CASE i % 10 WHEN 0 THEN 'failed' WHEN 1 THEN 'failed_max_retries' WHEN 2 THEN 'retrying' ELSE 'completed' END,
  'call_clinic', CASE WHEN i % 10 = 1 THEN 3 ELSE i % 3 END, 3,
  CASE WHEN i % 10 < 3 THEN 'clinic api: 503 Service Unavailable' END,
  CASE WHEN i % 10 < 3 THEN ? - (i * 7919) % ? END, true, 1, '{"input":{}}',
  CASE WHEN i % 10 < 3 THEN (CASE i % 5 WHEN 0 THEN 'network_blip' WHEN 1 THEN 'rate_limit' WHEN 2 THEN 'database_lock' WHEN 3 THEN 'validation' ELSE 'service_unavailable' END) END,
  0, 2
FROM seq`,
		`WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?)
INSERT INTO journey_run_attempts (run_id, number, node_id, node_attempt, worker, claim_token, started_at, finished_at,
  outcome, error_class, error_message, decision_retry, decision_delay_ms, decision_strategy, decision_rule,
  decision_exhausted, shadow, status_after)
SELECT printf('run-%07d', i), k, 'call_clinic', k, 'bench', 't', f - 5, f, CASE k WHEN 1 THEN 'failed' ELSE 'succeeded' END,
  CASE k WHEN 1 THEN (CASE i % 5 WHEN 0 THEN 'network_blip' WHEN 1 THEN 'rate_limit' WHEN 2 THEN 'database_lock' WHEN 3 THEN 'validation' ELSE 'service_unavailable' END) END,
  CASE k WHEN 1 THEN 'clinic api: ' || (i % 7) || ' failed' END, k = 1, CASE k WHEN 1 THEN 1000 ELSE 0 END,
  CASE k WHEN 1 THEN 'short' END, 'default', false, false, CASE k WHEN 1 THEN 'retrying' ELSE 'completed' END
FROM (SELECT i, k, ? - (i * 7919) % ? + (k - 1) * 1100 AS f FROM seq, (SELECT 1 AS k UNION ALL SELECT 2) n)`,
	} {
		args := []any{benchRuns, end, span}
		if _, err := s.DB().ExecContext(ctx, q, args...); err != nil {
			os.Remove(path)
			b.Fatalf("fill: %v", err)
		}
	}
	b.Logf("filled %d runs in %s", benchRuns, time.Since(start).Round(time.Second))
	return s
}

// BenchmarkPages times each dashboard page on a store of 1,000,000 runs
// (target: under 200 ms a page), and reports its CPU time.
func BenchmarkPages(b *testing.B) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s := benchDB(b, now)
	h, err := dashboard.New(dashboard.Config{Store: s, Replay: true, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range []struct{ name, path string }{
		{"overview-1h", "/"},
		{"overview-24h", "/?window=24h"},
		{"overview-7d", "/?window=7d"},
		{"dead-first", "/dead?status=failed_max_retries"},
		{"dead-middle", "/dead?status=failed&after=run-0500000"},
		{"dead-filtered", "/dead?status=failed&journey=journey-1&class=validation"},
		{"run", "/runs/run-0000010"},
	} {
		b.Run(p.name, func(b *testing.B) {
			cpu := retrytest.ProcessCPU()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p.path, nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", p.path, rec.Code, rec.Body.String())
				}
				io.Copy(io.Discard, rec.Body)
			}
			// The page's CPU time, which other processes' load sways far
			// less than its wall time: a page is one goroutine's work.
			b.ReportMetric(float64((retrytest.ProcessCPU()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}
