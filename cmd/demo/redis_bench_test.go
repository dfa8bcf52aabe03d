package main

import (
	"context"
	"crypto/rand"
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
// RETRY_TEST_REDIS_URL); the benchmark starts 300 runs, one every 15 ms,
// as `demo start --scheduler redis` does (its configuration, in this
// process), so that the workers hear of each run as it comes; their failed
// attempts are retried after exactly 1 s. The lateness of each retry (its
// start minus the failure's finish plus the delay) is read from the
// store's attempt history (Activity's RetryLateness, whole milliseconds),
// as an operator would. A negative one, a retry started before it was due,
// fails the benchmark.
//
// Beside it, in the same run: the same workers each on a memory scheduler
// of its own (a retry wakes in the process that scheduled it), which the
// starter cannot tell, so their sweepers take the new runs, in bursts once
// a second; and the Redis workers on a store whose DSN sets
// synchronous_commit=off, so that no commit (a retry's claim among them)
// waits for the disk's flush: what the wake-up path costs without the
// disk. Meanwhile a probe writes 8 KB and flushes it (fdatasync) every 5 ms
// in the benchmark's directory, and reports the flushes' p50, p99 and
// longest: the disk's share of a claim's commit.
func BenchmarkRetryLatenessThroughRedis(b *testing.B) {
	u := os.Getenv("RETRY_TEST_REDIS_URL")
	if u == "" {
		b.Skip("RETRY_TEST_REDIS_URL is unset: no Redis for the redis scheduler")
	}
	for _, v := range []struct{ name, backend, dsnParams string }{
		{"memory", "memory", ""},
		{"redis", "redis", ""},
		{"redis/synchronous_commit=off", "redis", "synchronous_commit=off"},
	} {
		b.Run(v.name, func(b *testing.B) { retryLatenessWorkers(b, u, v.backend, v.dsnParams) })
	}
}

func retryLatenessWorkers(b *testing.B, u, backend, dsnParams string) {
	const runs, every, procs = 300, 15 * time.Millisecond, 4
	dir := b.TempDir()
	cfg := filepath.Join(dir, "one-second-retries.json")
	if err := os.WriteFile(cfg, []byte(oneSecondRetries), 0o600); err != nil {
		b.Fatal(err)
	}
	var late, flushes []time.Duration
	for range b.N {
		dsn := pgtest.DSN(b)
		if dsnParams != "" {
			dsn += "&" + dsnParams
		}
		prefix := "jrbench-" + rand.Text()[:12]
		b.Cleanup(func() { deleteRedisPrefix(b, u, prefix) })
		since := time.Now().Add(-time.Second)
		stopProbe := probeFlushes(b, dir, &flushes)
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
		startRunsEvenly(b, append([]string{"--config", cfg, "--store", dsn}, sched...), runs, every)
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
		stopProbe()
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
	b.ReportMetric(float64(len(late))/float64(b.N), "retries/op")
	reportQuantiles(b, late, "")
	b.ReportMetric(late[0].Seconds()*1000, "min-ms")
	reportQuantiles(b, flushes, "flush-")
	b.ReportMetric(0, "ns/op")
}

// reportQuantiles reports the p50, p99 and maximum of ds in milliseconds,
// their units prefixed by prefix.
func reportQuantiles(b *testing.B, ds []time.Duration, prefix string) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	q := func(p float64) float64 { return ds[int(p*float64(len(ds)-1))].Seconds() * 1000 }
	b.ReportMetric(q(0.5), prefix+"p50-ms")
	b.ReportMetric(q(0.99), prefix+"p99-ms")
	b.ReportMetric(q(1), prefix+"max-ms")
}

// probeFlushes writes 8 KB to a file in dir and flushes it to the disk
// every 5 ms, appending each flush's duration to ds, until the returned
// function is called.
func probeFlushes(b *testing.B, dir string, ds *[]time.Duration) (stop func()) {
	f, err := os.CreateTemp(dir, "flush-probe")
	if err != nil {
		b.Fatal(err)
	}
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		page := make([]byte, 8192)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := int64(0); ; i++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if _, err := f.WriteAt(page, i%1024*8192); err != nil {
				b.Error(err)
				return
			}
			t := time.Now()
			if err := syscall.Fdatasync(int(f.Fd())); err != nil {
				b.Error(err)
				return
			}
			*ds = append(*ds, time.Since(t))
		}
	}()
	return func() {
		close(done)
		<-exited
		f.Close()
	}
}

// startRunsEvenly creates n runs, one every interval, configured as `demo
// start` with args configures them, from one engine in this process: a
// steady arrival, where a `demo start` process per batch would add each
// process's start-up and its batch's burst to the workers' load.
func startRunsEvenly(b *testing.B, args []string, n int, interval time.Duration) {
	c := startCommand(b.Context())
	if err := c.parseNoArgs(args); err != nil {
		b.Fatal(err)
	}
	eng, err := openEngine(b.Context(), c.cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for range n {
		<-tick.C
		if _, err := createRuns(b.Context(), eng.Executor, c.cfg.faults(), 1, false, nil); err != nil {
			b.Fatal(err)
		}
	}
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
