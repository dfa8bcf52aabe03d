package storage_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage"
	"github.com/journeyretry/journeyretry/storage/pgtest"
)

// The benchmarks set each store path beside the bare engine, measured on
// the same database through the same driver (Store.DB): run them with
//
//	go test -run '^$' -bench . ./storage/
//
// and compare the pairs (raw, store) of one run. PostgreSQL runs when
// RETRY_TEST_POSTGRES_URL is set.

var benchBase = time.Unix(1_000_000_000, 0).UTC()

// benchDBs lists the databases to benchmark on.
func benchDBs(b *testing.B) map[string]func(b *testing.B) *storage.Store {
	dbs := map[string]func(b *testing.B) *storage.Store{
		"sqlite": func(b *testing.B) *storage.Store { return openBench(b, sqliteFileB(b)) },
	}
	if os.Getenv(pgtest.EnvURL) != "" {
		dbs["postgres"] = func(b *testing.B) *storage.Store { return openBench(b, pgtest.DSN(b)) }
	}
	return dbs
}

func sqliteFileB(b *testing.B) string { return b.TempDir() + "/bench.db" }

func openBench(b *testing.B, dsn string) *storage.Store {
	b.Helper()
	s, err := storage.Open(context.Background(), storage.Config{DSN: dsn})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	return s
}

// seed inserts n runs r0..r(n-1) in one transaction, claimed under token
// "t<i>" with a lease of a day when claimed, else due at benchBase.
func seed(b *testing.B, s *storage.Store, n int, claimed bool) {
	b.Helper()
	ctx := context.Background()
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	lease := benchBase.Add(24 * time.Hour).UnixMilli()
	for i := range n {
		var token, leaseAt any
		due := benchBase.UnixMilli()
		if claimed {
			token, leaseAt, due = fmt.Sprint("t", i), lease, lease
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO journey_runs (id, journey_id, status, current_node_id,
	journey_version, context, claim_token, claimed_by, lease_expires_at, due_at, created_at, updated_at)
VALUES (?, 'j', 'in_progress', 'a', 1, '{}', ?, 'w', ?, ?, '2001-09-09 01:46:40.000', '2001-09-09 01:46:40.000')`,
			fmt.Sprint("r", i), token, leaseAt, due); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRecordFailure compares RecordFailure (attempt row, run update,
// claim check, one transaction) with a bare single-row UPDATE transaction,
// for one caller and for 16 concurrent callers (where group commit shares
// transactions); store+budget is RecordFailure charged to a retry budget
// (its state read and written, the attempt counted, in the same
// transaction).
func BenchmarkRecordFailure(b *testing.B) {
	for name, open := range benchDBs(b) {
		for _, callers := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/callers=%d/raw", name, callers), func(b *testing.B) {
				s := open(b)
				seed(b, s, 1000, true)
				ctx := context.Background()
				var next atomic.Int64
				parallel(b, callers, func() error {
					i := next.Add(1)
					tx, err := s.DB().BeginTx(ctx, nil)
					if err != nil {
						return err
					}
					if _, err := tx.ExecContext(ctx, `UPDATE journey_runs SET retry_count = retry_count + 1 WHERE id = ?`,
						fmt.Sprint("r", i%1000)); err != nil {
						tx.Rollback()
						return err
					}
					return tx.Commit()
				})
			})
			for _, budgeted := range []bool{false, true} {
				variant := "store"
				var u retry.BudgetUse
				if budgeted { // a floor no retry reaches: the cost of the budget, not of deferring
					variant, u = "store+budget", retry.BudgetUse{Key: "network_blip", Scope: "*", Budget: retry.Budget{MinRetries: 1 << 30}}
				}
				b.Run(fmt.Sprintf("%s/callers=%d/%s", name, callers, variant), func(b *testing.B) {
					s := open(b)
					seed(b, s, b.N+callers, true)
					ctx := context.Background()
					var next atomic.Int64
					now := benchBase.Add(time.Second)
					parallel(b, callers, func() error {
						i := next.Add(1) - 1
						c := retry.Claim{RunID: fmt.Sprint("r", i), Token: fmt.Sprint("t", i)}
						_, err := s.RecordFailure(ctx, c, retry.FailureRecord{NodeID: "a", Class: retry.ClassNetworkBlip,
							Message: "connection reset by peer", StartedAt: now, FinishedAt: now, Budget: u,
							Decision: retry.Decision{Retry: true, Delay: time.Second, Strategy: "short", Rule: "class:network_blip"}})
						return err
					})
				})
			}
		}
	}
}

// BenchmarkClaimDue compares ClaimDue of batches of 100 with a bare
// UPDATE ... RETURNING of 100 due rows. Each round claims at a now one
// lease later than the last, so the same 10,000 rows come due again.
func BenchmarkClaimDue(b *testing.B) {
	const rows, batch = 10_000, 100
	lease := time.Minute
	for name, open := range benchDBs(b) {
		b.Run(name+"/raw", func(b *testing.B) {
			s := open(b)
			seed(b, s, rows, false)
			ctx := context.Background()
			lock := ""
			if name == "postgres" {
				lock = " FOR UPDATE SKIP LOCKED"
			}
			var i int64
			claimLoop(b, batch, func() (int, error) {
				i++
				now := benchBase.Add(time.Duration(i) * lease)
				tx, err := s.DB().BeginTx(ctx, nil)
				if err != nil {
					return 0, err
				}
				defer tx.Rollback()
				r, err := tx.QueryContext(ctx, `UPDATE journey_runs SET claim_token = ?, lease_expires_at = ?, due_at = ?
WHERE id IN (SELECT id FROM journey_runs WHERE due_at <= ? ORDER BY due_at LIMIT ?`+lock+`) RETURNING id`,
					fmt.Sprint("t", i), now.Add(lease).UnixMilli(), now.Add(lease).UnixMilli(), now.UnixMilli(), batch)
				if err != nil {
					return 0, err
				}
				n := 0
				for r.Next() {
					var id string
					if err := r.Scan(&id); err != nil {
						return 0, err
					}
					n++
				}
				if err := r.Err(); err != nil {
					return 0, err
				}
				return n, tx.Commit()
			})
		})
		b.Run(name+"/store", func(b *testing.B) {
			s := open(b)
			seed(b, s, rows, false)
			ctx := context.Background()
			var i int64
			claimLoop(b, batch, func() (int, error) {
				i++
				now := benchBase.Add(time.Duration(i) * lease)
				runs, err := s.ClaimDue(ctx, "w", now, now, lease, batch)
				return len(runs), err
			})
		})
	}
}

// claimLoop runs claim b.N times, checks each claimed a full batch and
// reports claimed rows per second.
func claimLoop(b *testing.B, batch int, claim func() (int, error)) {
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		n, err := claim()
		if err != nil {
			b.Fatal(err)
		}
		if n != batch {
			b.Fatalf("claimed %d rows; want %d", n, batch)
		}
	}
	b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "rows/s")
}

// parallel runs op b.N times over callers goroutines and reports ops/s.
func parallel(b *testing.B, callers int, op func() error) {
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	b.ResetTimer()
	start := time.Now()
	for range callers {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				if err := op(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}
