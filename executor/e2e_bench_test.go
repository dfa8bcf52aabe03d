package executor_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/internal/combine"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/retrytest"
	"github.com/journeyretry/journeyretry/scheduler/memory"
	"github.com/journeyretry/journeyretry/storage"
	"github.com/journeyretry/journeyretry/storage/pgtest"
)

// BenchmarkEndToEnd is the attempt path's benchmark: one-node runs whose
// node fails twice and then succeeds (zero delay), started by workers
// goroutines (the pool's size), on SQLite and on PostgreSQL. Beside each,
// raw is the bare engine's single-row transaction rate (BEGIN; UPDATE one
// row; COMMIT) at the same number of clients through the same store's
// connection pool, measured in the same run. Both report CPU per attempt
// (per transaction for raw): this process's (getrusage) plus, on
// PostgreSQL, the server backends of this benchmark's connections
// (/proc/<pid>/stat, found by application_name). executor+budget is the
// executor with retry budgets on (a floor no retry reaches, so that it
// measures what the budgets cost each attempt, not what they defer),
// beside executor in the same run.
//
//	RETRY_TEST_POSTGRES_URL=... go test -run '^$' -bench EndToEnd -benchtime 1x ./executor/
func BenchmarkEndToEnd(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		for _, workers := range []int{2, 64} {
			b.Run(fmt.Sprintf("%s/workers=%d", engine, workers), func(b *testing.B) {
				app := "jrbench_" + strings.ToLower(rand.Text()[:8])
				dsn := ""
				if engine == "postgres" {
					dsn = pgtest.DSN(b) + "&application_name=" + app
				}
				store := openBenchStore(b, dsn)
				cpu := func() time.Duration { return retrytest.ProcessCPU() + serverCPU(b, store, engine, app) }
				b.Run("raw", func(b *testing.B) { benchRaw(b, store, workers, cpu) })
				b.Run("executor", func(b *testing.B) { benchExecutor(b, store, workers, cpu, executor.BudgetConfig{}) })
				b.Run("executor+budget", func(b *testing.B) {
					benchExecutor(b, store, workers, cpu, executor.BudgetConfig{Enabled: true, MinRetries: 1 << 30})
				})
			})
		}
	}
}

func openBenchStore(b *testing.B, dsn string) *storage.Store {
	if dsn == "" {
		return openStore(b, "")
	}
	s, err := storage.Open(context.Background(), storage.Config{DSN: dsn})
	must(b, err)
	must(b, s.Migrate(context.Background()))
	return s
}

// benchRaw: clients goroutines, each committing single-row transactions
// on a row of its own for two seconds.
func benchRaw(b *testing.B, store *storage.Store, clients int, cpu func() time.Duration) {
	ctx := context.Background()
	db := store.DB()
	for i := range clients {
		_, err := db.ExecContext(ctx, `INSERT INTO journey_runs (id, journey_id, status, retry_count) VALUES (?, 'raw', 'completed', 0) ON CONFLICT (id) DO NOTHING`, fmt.Sprint("raw-", i))
		must(b, err)
	}
	var n atomic.Int64
	c0, start := cpu(), time.Now()
	end := start.Add(2 * time.Second)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			id := fmt.Sprint("raw-", i)
			for time.Now().Before(end) {
				tx, err := db.BeginTx(ctx, nil)
				if err == nil {
					_, err = tx.ExecContext(ctx, `UPDATE journey_runs SET retry_count = retry_count + 1 WHERE id = ?`, id)
					err = combine.Errors(err, tx.Commit())
				}
				if err != nil {
					b.Error(err)
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	el, used := time.Since(start), cpu()-c0
	b.ReportMetric(float64(n.Load())/el.Seconds(), "tx/s")
	b.ReportMetric(float64(used.Microseconds())/1000/float64(n.Load()), "cpu-ms/tx")
	b.ReportMetric(0, "ns/op")
}

// benchExecutor: runs of the workload, started by workers goroutines, each
// executing its run in line (three attempts), under budget.
func benchExecutor(b *testing.B, store *storage.Store, workers int, cpu func() time.Duration, budget executor.BudgetConfig) {
	runs := 1000 * workers / 2
	runs = min(max(runs, 1500), 6000)
	sched, err := memory.New(memory.Config{})
	must(b, err)
	ex, err := executor.New(executor.Config{Workers: workers, Mode: executor.ModeFull, SweepSpec: "@every 1h", Budget: budget}, store, sched, retryAfter(0))
	must(b, err)
	defer ex.Close()
	blip := retry.WithClass(errors.New("connection reset"), retry.ClassNetworkBlip)
	must(b, ex.Handle("flaky", failing(blip, 2)))
	must(b, ex.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "flaky"}}}))
	ctx := context.Background()
	prefix := "e" + rand.Text()[:6] // the two executors, and each -count, share the store
	if budget.Enabled {
		prefix = "b" + rand.Text()[:6]
	}
	var total, used time.Duration
	for i := range b.N {
		var next atomic.Int64
		var wg sync.WaitGroup
		c0, start := cpu(), time.Now()
		for range workers {
			wg.Go(func() {
				for n := next.Add(1); n <= int64(runs); n = next.Add(1) {
					run, err := startSync(ex, ctx, "j", nil, executor.WithRunID(fmt.Sprintf("%s%d-%06d", prefix, i, n)))
					if err != nil || run.Status != retry.StatusCompleted {
						b.Errorf("run: %v %s", err, run.Status)
						return
					}
				}
			})
		}
		wg.Wait()
		total += time.Since(start)
		used += cpu() - c0
	}
	attempts := float64(3 * runs * b.N)
	b.ReportMetric(attempts/total.Seconds(), "attempts/s")
	b.ReportMetric(float64(used.Microseconds())/1000/attempts, "cpu-ms/attempt")
	b.ReportMetric(0, "ns/op")
}

// serverCPU is the CPU time of the PostgreSQL backends serving
// connections named app (0 on SQLite, which runs in this process): their
// utime and stime in /proc, in clock ticks of 10 ms.
func serverCPU(b *testing.B, store *storage.Store, engine, app string) time.Duration {
	if engine != "postgres" {
		return 0
	}
	rows, err := store.DB().QueryContext(context.Background(), `SELECT pid FROM pg_stat_activity WHERE application_name = ?`, app)
	must(b, err)
	defer rows.Close()
	var ticks int64
	for rows.Next() {
		var pid int
		must(b, rows.Scan(&pid))
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // ended meanwhile
		}
		// Fields after the command name (which is in parentheses): utime
		// and stime are the 14th and 15th of the line.
		fs := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
		u, _ := strconv.ParseInt(fs[11], 10, 64)
		s, _ := strconv.ParseInt(fs[12], 10, 64)
		ticks += u + s
	}
	must(b, rows.Err())
	return time.Duration(ticks) * 10 * time.Millisecond
}
