package sqlpoll

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/journeyretry/journeyretry/storage"
	"github.com/journeyretry/journeyretry/storage/pgtest"
)

// The benchmarks run on a SQLite file and, with RETRY_TEST_POSTGRES_URL
// set, on PostgreSQL, each on the store's database as the engine opens it.
//
//	go test -run '^$' -bench . -benchtime 2s -count 3 ./scheduler/sqlpoll/
func dialects(b *testing.B, f func(b *testing.B, db *bun.DB)) {
	b.Run("sqlite", func(b *testing.B) { f(b, benchDB(b, filepath.Join(b.TempDir(), "b.db"))) })
	b.Run("postgres", func(b *testing.B) { f(b, benchDB(b, pgtest.DSN(b))) })
}

func benchDB(b testing.TB, dsn string) *bun.DB {
	st, err := storage.Open(context.Background(), storage.Config{DSN: dsn})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := Migrate(context.Background(), st.DB()); err != nil {
		b.Fatal(err)
	}
	return st.DB()
}

// fillSQL inserts n entries with ids e0..e(n-1): the first due ones due at
// 1..due ms, the rest far in the future (year 2286).
func fillSQL(b *testing.B, db *bun.DB, n, due int) {
	b.Helper()
	q := `WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ?)
INSERT INTO ` + Table + ` (id, due_ms, next_ms, token)
SELECT 'e' || i, CASE WHEN i < ? THEN i + 1 ELSE 9999999999999 END, CASE WHEN i < ? THEN i + 1 ELSE 9999999999999 END, '' FROM s`
	if db.Dialect().Name() == dialect.PG {
		q = `INSERT INTO ` + Table + ` (id, due_ms, next_ms, token)
SELECT 'e' || i, CASE WHEN i < ? THEN i + 1 ELSE 9999999999999 END, CASE WHEN i < ? THEN i + 1 ELSE 9999999999999 END, '' FROM generate_series(?, ?) AS i`
		// In chunks: one statement for a million rows outlasts the
		// driver's read timeout on a busy machine.
		for lo := 0; lo < n; lo += 50_000 {
			if _, err := db.ExecContext(context.Background(), q, due, due, lo, min(lo+50_000, n)-1); err != nil {
				b.Fatal(err)
			}
		}
		_, err := db.ExecContext(context.Background(), `ANALYZE `+Table)
		if err != nil {
			b.Fatal(err)
		}
		return
	}
	if _, err := db.ExecContext(context.Background(), q, n, due, due); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(context.Background(), `ANALYZE`); err != nil {
		b.Fatal(err)
	}
}

// step is the time between two claims of the claim benchmarks: more than
// the lease, so that what one claim took is due again at the next, and
// the table never runs dry.
const step = LeaseDefault + time.Millisecond

// BenchmarkClaim claims batches of 100 from 10,000 due entries, through
// Claim and as the same statement run raw on the same pool (no lock, no
// sorting, no deliveries built). claimed/s is the figure to compare.
func BenchmarkClaim(b *testing.B) {
	dialects(b, func(b *testing.B, db *bun.DB) {
		fillSQL(b, db, 10_000, 10_000)
		s, err := New(context.Background(), db, Config{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		ctx := context.Background()
		now := time.UnixMilli(1_000_000)
		b.Run("raw", func(b *testing.B) {
			claimed := 0
			for b.Loop() {
				now = now.Add(step)
				rows, err := db.DB.QueryContext(ctx, s.q.claim, newToken(), now.Add(LeaseDefault).UnixMilli(), now.UnixMilli(), 100)
				if err != nil {
					b.Fatal(err)
				}
				for rows.Next() {
					var id string
					var due int64
					if err := rows.Scan(&id, &due); err != nil {
						b.Fatal(err)
					}
					claimed++
				}
				if err := rows.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(claimed)/b.Elapsed().Seconds(), "claimed/s")
		})
		b.Run("sqlpoll", func(b *testing.B) {
			claimed := 0
			for b.Loop() {
				now = now.Add(step)
				ds, err := s.Claim(ctx, now, 100)
				if err != nil {
					b.Fatal(err)
				}
				claimed += len(ds)
			}
			b.ReportMetric(float64(claimed)/b.Elapsed().Seconds(), "claimed/s")
		})
	})
}

// BenchmarkColdStart: 1,000,000 entries of which 10,000 are due; one op
// is a process's start: New on the database, then the first Claim of 100.
func BenchmarkColdStart(b *testing.B) {
	dialects(b, func(b *testing.B, db *bun.DB) {
		fillSQL(b, db, 1_000_000, 10_000)
		ctx := context.Background()
		now := time.UnixMilli(1_000_000)
		var worst time.Duration
		for b.Loop() {
			start := time.Now()
			now = now.Add(step)
			s, err := New(ctx, db, Config{})
			if err != nil {
				b.Fatal(err)
			}
			ds, err := s.Claim(ctx, now, 100)
			if err != nil || len(ds) != 100 {
				b.Fatalf("Claim = %d, %v; want 100", len(ds), err)
			}
			worst = max(worst, time.Since(start))
			b.StopTimer()
			s.Close()
			b.StartTimer()
		}
		b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
	})
}

// BenchmarkLateness measures how late Ready and Claim hand out an entry
// due 50 ms after it was scheduled, at the default poll interval: 200
// entries, one at a time; p50-ms and p99-ms are the figures. "same": the
// consumer's scheduler scheduled it; "process" (PostgreSQL): another
// process did (TestTickProcess), heard through
// LISTEN/NOTIFY.
func BenchmarkLateness(b *testing.B) {
	dialects(b, func(b *testing.B, db *bun.DB) {
		b.Run("same", func(b *testing.B) {
			s, err := New(context.Background(), db, Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			lateness(b, s, func(i int) {
				if err := s.Schedule(context.Background(), "l"+strconv.Itoa(i), time.Now().Add(50*time.Millisecond)); err != nil {
					b.Fatal(err)
				}
			})
		})
		if db.Dialect().Name() != dialect.PG {
			return
		}
		b.Run("process", func(b *testing.B) {
			s, err := New(context.Background(), db, Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			// The other process schedules one entry every 100 ms; the
			// consumer takes them as they come.
			var rows []string
			_ = db.NewRaw(`SELECT current_schema()`).Scan(context.Background(), &rows)
			cmd := exec.Command(os.Args[0], "-test.run=^TestTickProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), "SQLPOLL_HELPER_MODE=tick", "SQLPOLL_HELPER_DSN="+pgDSN(b, rows[0]))
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			lateness(b, s, nil)
		})
	})
}

// pgDSN is RETRY_TEST_POSTGRES_URL on schema.
func pgDSN(b *testing.B, schema string) string {
	base := os.Getenv(pgtest.EnvURL)
	sep := "?"
	if slices.Contains([]byte(base), '?') {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

// lateness claims 200 entries as Ready signals them, each after schedule
// (when not nil) scheduled it, and reports the percentiles of their
// lateness.
func lateness(b *testing.B, s *Scheduler, schedule func(i int)) {
	ctx := context.Background()
	var late []time.Duration
	for b.Loop() {
		late = late[:0]
		for i := 0; len(late) < 200; i++ {
			if schedule != nil {
				schedule(i)
			}
			got := false
			for !got {
				select {
				case <-s.Ready():
				case <-time.After(10 * time.Second):
					b.Fatal("no entry within 10s")
				}
				now := time.Now()
				ds, err := s.Claim(ctx, now, 10)
				if err != nil {
					b.Fatal(err)
				}
				for _, d := range ds {
					late = append(late, now.Sub(d.At))
					if err := s.Ack(ctx, d); err != nil {
						b.Fatal(err)
					}
					got = true
				}
			}
		}
	}
	slices.Sort(late)
	b.ReportMetric(float64(late[len(late)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(late[len(late)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// tick is the other process of BenchmarkLateness: it schedules an entry
// due in 50 ms every 100 ms until killed.
func tick(t *testing.T) {
	ctx := context.Background()
	st, err := storage.Open(ctx, storage.Config{DSN: os.Getenv("SQLPOLL_HELPER_DSN")})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(ctx, st.DB(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if err := s.Schedule(ctx, fmt.Sprintf("t%d", i), time.Now().Add(50*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestTickProcess is the other process of BenchmarkLateness.
func TestTickProcess(t *testing.T) {
	if os.Getenv("SQLPOLL_HELPER_MODE") != "tick" {
		t.Skip("run by BenchmarkLateness")
	}
	tick(t)
}
