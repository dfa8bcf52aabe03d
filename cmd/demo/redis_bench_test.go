package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/journeyretry/journeyretry/report"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage"
	"github.com/journeyretry/journeyretry/storage/pgtest"
)

// oneSecondRetries is a configuration whose every retry waits exactly 1 s
// (every strategy 1,000 ms, no jitter) and whose only fault is a network
// blip on 30 % of the attempts.
const oneSecondRetries = `{"retry": {"baseDelayMs": 1000, "maxDelayMs": 1000, "jitter": "none", "jitterMs": 0,
  "strategies": {"immediate": {"baseDelayMs": 1000, "maxDelayMs": 1000, "jitter": "none"},
    "short": {"baseDelayMs": 1000, "maxDelayMs": 1000, "jitter": "none"},
    "long": {"baseDelayMs": 1000, "maxDelayMs": 1000, "jitter": "none"}}},
 "demo": {"faults": {"networkBlip": 0.3, "databaseLock": 0, "rateLimit": 0, "maintenance": 0, "badPatient": 0}}}`

// BenchmarkRetryLatenessThroughRedis: 4 `demo worker` processes on one
// PostgreSQL store share the Redis scheduler (a key prefix of their own on
// RETRY_TEST_REDIS_URL); `demo start` adds 20 runs every 300 ms, 300 in
// all, and tells the Redis scheduler of them, so that workers wake for
// them as they come; their failed attempts are retried after exactly 1 s. The lateness
// of each retry (its start minus the failure's finish plus the delay) is
// read from the store's attempt history (Activity's RetryLateness, whole
// milliseconds), as an operator would. A negative one, a retry started
// before it was due, fails the benchmark. Beside it, in the same run, the
// same workers each on a memory scheduler of its own (a retry wakes in the
// process that scheduled it), which no `demo start` can tell: their
// sweepers take the new runs, in bursts once a second that meet the 1 s
// retries of the burst before.
func BenchmarkRetryLatenessThroughRedis(b *testing.B) {
	u := os.Getenv("RETRY_TEST_REDIS_URL")
	if u == "" {
		b.Skip("RETRY_TEST_REDIS_URL is unset: no Redis for the redis scheduler")
	}
	for _, backend := range []string{"memory", "redis"} {
		b.Run(backend, func(b *testing.B) { retryLatenessWorkers(b, u, backend) })
	}
}

func retryLatenessWorkers(b *testing.B, u, backend string) {
	const rounds, perRound, procs = 15, 20, 4
	dir := b.TempDir()
	cfg := filepath.Join(dir, "one-second-retries.json")
	if err := os.WriteFile(cfg, []byte(oneSecondRetries), 0o600); err != nil {
		b.Fatal(err)
	}
	var late []time.Duration
	for range b.N {
		dsn := pgtest.DSN(b)
		prefix := "jrbench-" + rand.Text()[:12]
		b.Cleanup(func() { deleteRedisPrefix(b, u, prefix) })
		since := time.Now().Add(-time.Second)
		var workers []*exec.Cmd
		sched := []string{"--scheduler", backend}
		if backend == "redis" {
			sched = append(sched, "--redis", u, "--redis-prefix", prefix)
		}
		args := append([]string{"worker", "--config", cfg, "--store", dsn, "--workers", "16", "--sweep", "@every 1s", "--log-level", "error"}, sched...)
		for range procs {
			w := demoCmd(b.Context(), dir, nil, args...)
			w.Stderr = os.Stderr
			if err := w.Start(); err != nil {
				b.Fatal(err)
			}
			workers = append(workers, w)
		}
		for range rounds {
			if out, err := demoCmd(b.Context(), dir, nil, append([]string{"start", "--config", cfg, "--store", dsn, "--runs", fmt.Sprint(perRound)}, sched...)...).CombinedOutput(); err != nil {
				b.Fatalf("start: %v\n%s", err, out)
			}
			time.Sleep(300 * time.Millisecond)
		}
		store, err := storage.Open(b.Context(), storage.Config{DSN: dsn})
		if err != nil {
			b.Fatal(err)
		}
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
			c, err := store.CountByStatus(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			if report.Unfinished(c) == 0 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("runs %v after 2 minutes; want every one finished", c)
			}
		}
		for _, w := range workers {
			w.Process.Signal(syscall.SIGTERM)
			if err := w.Wait(); err != nil {
				b.Errorf("worker after SIGTERM: %v", err)
			}
		}
		act, err := store.Activity(b.Context(), retry.ActivityQuery{Since: since, Until: time.Now().Add(time.Second), Bucket: time.Minute, LatenessSamples: 100_000})
		store.Close()
		if err != nil {
			b.Fatal(err)
		}
		late = append(late, act.RetryLateness...)
	}
	if len(late) == 0 {
		b.Fatal("no retry ran: the workload shows nothing")
	}
	slices.Sort(late)
	if late[0] < 0 {
		b.Fatalf("a retry started %v before it was due", -late[0])
	}
	q := func(p float64) time.Duration { return late[int(p*float64(len(late)-1))] }
	b.ReportMetric(float64(len(late))/float64(b.N), "retries/op")
	b.ReportMetric(q(0.5).Seconds()*1000, "p50-ms")
	b.ReportMetric(q(0.99).Seconds()*1000, "p99-ms")
	b.ReportMetric(late[len(late)-1].Seconds()*1000, "max-ms")
	b.ReportMetric(late[0].Seconds()*1000, "min-ms")
	b.ReportMetric(0, "ns/op")
}

// deleteRedisPrefix deletes the keys of the redis scheduler's prefix.
func deleteRedisPrefix(b *testing.B, u, prefix string) {
	opts, err := goredis.ParseURL(u)
	if err != nil {
		b.Error(err)
		return
	}
	rdb := goredis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	if keys, err := rdb.Keys(ctx, "{"+prefix+"}:*").Result(); err == nil && len(keys) > 0 {
		rdb.Del(ctx, keys...)
	}
}
