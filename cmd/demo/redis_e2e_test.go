package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/journeyretry/journeyretry/report"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage/pgtest"
)

// redisTestDB is the Redis database TestWorkersShareRedis flushes; no
// other test uses it.
const redisTestDB = 9

// TestWorkersShareRedis: 4 worker processes on one PostgreSQL store and
// one Redis scheduler; two are killed with SIGKILL and restarted, and
// Redis is flushed midway while all four run (FLUSHDB of a database of
// this test's own on RETRY_TEST_REDIS_URL's server, so that tests sharing
// the server keep their keys). Exactly one worker hears of the loss and
// rebuilds the entries from the store; every run ends, none beyond its
// retry limit, and no two attempts of one run overlap.
func TestWorkersShareRedis(t *testing.T) {
	t.Parallel()
	u := os.Getenv("RETRY_TEST_REDIS_URL")
	if u == "" {
		t.Skip("RETRY_TEST_REDIS_URL is unset: no Redis for the redis scheduler")
	}
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	ru, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	ru.Path = "/" + strconv.Itoa(redisTestDB)
	u = ru.String()
	opts, err := goredis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() }) // after the flush registered below
	flush := func() {
		if err := rdb.FlushDB(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
	}
	flush()
	t.Cleanup(flush)
	const runs = 200
	if r := runDemo(t, dir, nil, "start", "--store", dsn, "--runs", strconv.Itoa(runs)); r.code != 0 {
		t.Fatalf("start: status %d\n%s", r.code, r.stderr)
	}
	start := func() *worker {
		return startWorker(t, dir, dsn, "--scheduler", "redis", "--redis", u)
	}
	ws := []*worker{start(), start(), start(), start()}
	all := slices.Clone(ws) // the killed ones too
	finished := func(n int) func(map[retry.Status]int) bool {
		return func(c map[retry.Status]int) bool { return runs-report.Unfinished(c) >= n }
	}
	waitFor(t, dsn, 60*time.Second, finished(runs/5))
	for _, i := range []int{0, 1} {
		ws[i].cmd.Process.Signal(syscall.SIGKILL)
		ws[i].cmd.Wait()
	}
	ws[0], ws[1] = start(), start()
	all = append(all, ws[0], ws[1])
	// A worker that opens its scheduler after the flush finds the
	// generation gone and rebuilds as it starts, as every start does,
	// which repairs the loss without the line this test waits for.
	ws[0].started(t, 60*time.Second)
	ws[1].started(t, 60*time.Second)
	waitFor(t, dsn, 60*time.Second, finished(runs*2/5))
	flush()
	rebuilt := func() int {
		n := 0
		for _, w := range all {
			n += strings.Count(w.out.String(), lossLine)
		}
		return n
	}
	// Every worker peeks at Redis each second, idle or not: one of them
	// notices the flush, whether or not the runs still need the scheduler.
	// Stopping the workers before that would stop a rebuild half way.
	for deadline := time.Now().Add(30 * time.Second); rebuilt() == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			var outs strings.Builder
			for i, w := range all {
				fmt.Fprintf(&outs, "--- worker %d:\n%s", i, w.out.String())
			}
			t.Fatalf("no worker noticed the flush within 30s; runs %v\n%s", countRuns(t, dsn), outs.String())
		}
	}
	if n := report.Unfinished(countRuns(t, dsn)); n == 0 {
		t.Fatal("every run had finished before the flush was felt: the test shows nothing")
	}
	waitFor(t, dsn, 90*time.Second, finished(runs))
	for _, w := range ws {
		w.stop(t)
	}
	if n := rebuilt(); n != 1 {
		t.Errorf("%d workers rebuilt the lost entries, want exactly one", n)
	}
	checkNoOverlap(t, dsn)
	c := countRuns(t, dsn)
	if c[retry.StatusCompleted]+c[retry.StatusFailed]+c[retry.StatusFailedMaxRetries] != runs {
		t.Errorf("runs %v, want %d finished", c, runs)
	}
	over := querySQL(t, openDB(t, dsn).DB(), `SELECT run_id || '/' || node_id, MAX(node_attempt) FROM journey_run_attempts
		WHERE outcome <> 'replayed' GROUP BY run_id, node_id HAVING MAX(node_attempt) > 4`)
	if len(over) > 0 {
		t.Errorf("nodes attempted beyond 3 retries: %v", over)
	}
}

// lossLine is what a worker logs when it rebuilt a lost scheduler.
const lossLine = "the scheduler lost its entries"

// TestStartTellsRedis: `demo start` on the workers' Redis scheduler
// schedules the runs it creates there, so that workers wake for them at
// once instead of waiting for a sweep.
func TestStartTellsRedis(t *testing.T) {
	t.Parallel()
	u := os.Getenv("RETRY_TEST_REDIS_URL")
	if u == "" {
		t.Skip("RETRY_TEST_REDIS_URL is unset: no Redis for the redis scheduler")
	}
	dir := t.TempDir()
	prefix := "jrtest-" + strings.ToLower(strconv.FormatInt(time.Now().UnixNano(), 36))
	opts, err := goredis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() }) // after the keys' deletion below
	keys := func() []string {
		ks, err := rdb.Keys(context.Background(), "{"+prefix+"}:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return ks
	}
	t.Cleanup(func() {
		if ks := keys(); len(ks) > 0 {
			rdb.Del(context.Background(), ks...)
		}
	})
	if r := runDemo(t, dir, nil, "start", "--runs", "3", "--scheduler", "redis", "--redis", u, "--redis-prefix", prefix); r.code != 0 {
		t.Fatalf("start: status %d\n%s", r.code, r.stderr)
	}
	if n, err := rdb.ZCard(context.Background(), "{"+prefix+"}:due").Result(); err != nil || n != 3 {
		t.Fatalf("%d runs due in Redis (%v); want the 3 started", n, err)
	}
}
