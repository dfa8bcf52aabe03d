package main

import (
	"context"
	"crypto/rand"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/journeyretry/journeyretry/report"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage/pgtest"
)

// TestWorkersShareRedis: 4 worker processes on one PostgreSQL store and
// one Redis scheduler; two are killed with SIGKILL and restarted, and
// Redis loses every entry midway (the test deletes the scheduler's keys, a
// FLUSHALL of this prefix only, which other tests share the server with).
// Every run ends, none beyond its retry limit, and no two attempts of one
// run overlap.
func TestWorkersShareRedis(t *testing.T) {
	t.Parallel()
	u := os.Getenv("RETRY_TEST_REDIS_URL")
	if u == "" {
		t.Skip("RETRY_TEST_REDIS_URL is unset: no Redis for the redis scheduler")
	}
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	prefix := "jrtest-demo-" + rand.Text()[:12]
	opts, err := goredis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() }) // after the flush registered below
	flush := func() {
		ctx := context.Background()
		keys, err := rdb.Keys(ctx, "{"+prefix+"}:*").Result()
		if err == nil && len(keys) > 0 {
			err = rdb.Del(ctx, keys...).Err()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(flush)
	const runs = 200
	if r := runDemo(t, dir, nil, "start", "--store", dsn, "--runs", strconv.Itoa(runs)); r.code != 0 {
		t.Fatalf("start: status %d\n%s", r.code, r.stderr)
	}
	start := func() *worker {
		return startWorker(t, dir, dsn, "--scheduler", "redis", "--redis", u, "--redis-prefix", prefix)
	}
	ws := []*worker{start(), start(), start(), start()}
	finished := func(n int) func(map[retry.Status]int) bool {
		return func(c map[retry.Status]int) bool { return runs-report.Unfinished(c) >= n }
	}
	waitFor(t, dsn, 60*time.Second, finished(runs/5))
	for _, i := range []int{0, 1} {
		ws[i].cmd.Process.Signal(syscall.SIGKILL)
		ws[i].cmd.Wait()
	}
	waitFor(t, dsn, 60*time.Second, finished(runs*2/5))
	flush()
	ws[0], ws[1] = start(), start()
	waitFor(t, dsn, 60*time.Second, finished(runs*3/5))
	if n := report.Unfinished(countRuns(t, dsn)); n == 0 {
		t.Fatal("every run had finished before the flush was felt: the test shows nothing")
	}
	waitFor(t, dsn, 90*time.Second, finished(runs))
	for _, w := range ws {
		w.stop(t)
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
