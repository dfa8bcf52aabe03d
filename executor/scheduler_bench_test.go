package executor_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
	redisched "github.com/journeyretry/journeyretry/scheduler/redis"
)

// BenchmarkThroughputThroughScheduler: BenchmarkThroughput's workload (a
// one-node journey failing twice, then succeeding) with a 10 ms retry
// delay, so that every retry goes through the scheduler and Run's loop,
// on SQLite, with 2 and 64 workers: the memory scheduler and the Redis one
// (RETRY_TEST_REDIS_URL) in turn within each iteration, the first of the
// two alternating, so that both see the same machine. Attempts per second
// of each, and the ratio of their sums.
func BenchmarkThroughputThroughScheduler(b *testing.B) {
	const runs = 5000
	if os.Getenv("RETRY_TEST_REDIS_URL") == "" {
		b.Skip("RETRY_TEST_REDIS_URL is unset: no Redis to benchmark against")
	}
	for _, workers := range []int{2, 64} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			total := map[string]time.Duration{}
			round := 0
			for i := range b.N {
				order := []string{"memory", "redis"}
				if i%2 == 1 {
					order[0], order[1] = order[1], order[0]
				}
				for _, backend := range order {
					round++
					total[backend] += throughputThrough(b, openBenchScheduler(b, backend), workers, runs, round)
				}
			}
			mem := float64(3*runs*b.N) / total["memory"].Seconds()
			red := float64(3*runs*b.N) / total["redis"].Seconds()
			b.ReportMetric(mem, "memory-attempts/s")
			b.ReportMetric(red, "redis-attempts/s")
			b.ReportMetric(red/mem, "redis/memory")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func openBenchScheduler(b *testing.B, backend string) retry.Scheduler {
	b.Helper()
	if backend == "memory" {
		s, err := memory.New(memory.Config{})
		must(b, err)
		b.Cleanup(func() { s.Close() })
		return s
	}
	u := os.Getenv("RETRY_TEST_REDIS_URL")
	prefix := "jrbench-" + rand.Text()[:12]
	s, err := redisched.Open(context.Background(), redisched.Conn{URL: u}, redisched.Config{Prefix: prefix})
	must(b, err)
	b.Cleanup(func() {
		opts, _ := goredis.ParseURL(u)
		rdb := goredis.NewClient(opts)
		defer rdb.Close()
		ctx := context.Background()
		if keys, err := rdb.Keys(ctx, "{"+prefix+"}:*").Result(); err == nil && len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	// Registered last, so run first: a scheduler left open would write its
	// generation again after the keys are gone.
	b.Cleanup(func() { s.Close() })
	return s
}

// throughputThrough runs the workload once and returns how long it took.
func throughputThrough(b *testing.B, sched retry.Scheduler, workers, runs, round int) time.Duration {
	b.Helper()
	ex, err := executor.New(executor.Config{Workers: workers, Mode: executor.ModeFull, SweepSpec: "@every 1h", SweepGrace: time.Hour},
		openStore(b, ""), sched, retryAfter(10*time.Millisecond))
	must(b, err)
	blip := retry.WithClass(errors.New("connection reset"), retry.ClassNetworkBlip)
	var done sync.WaitGroup
	done.Add(runs)
	flaky := failing(blip, 2)
	must(b, ex.Handle("flaky", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		out, err := flaky(ctx, in)
		if err == nil {
			done.Done()
		}
		return out, err
	})))
	must(b, ex.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "flaky"}}}))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- ex.Run(ctx) }()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for n := next.Add(1); n <= int64(runs); n = next.Add(1) {
				if _, err := ex.StartRun(context.Background(), "j", nil, executor.WithRunID(fmt.Sprintf("%d-%06d", round, n))); err != nil {
					b.Errorf("run: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	done.Wait()
	elapsed := time.Since(start)
	cancel()
	must(b, <-errc)
	return elapsed
}
