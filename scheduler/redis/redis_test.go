package redis_test

import (
	"context"
	"crypto/rand"
	"os"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/journeyretry/journeyretry/retry"
	redisched "github.com/journeyretry/journeyretry/scheduler/redis"
	"github.com/journeyretry/journeyretry/scheduler/schedulertest"
)

// testConn returns the connection the environment names: a server
// (RETRY_TEST_REDIS_URL) or a Cluster (RETRY_TEST_REDIS_CLUSTER_ADDRS,
// comma-separated host:port seeds), skipping when the variable is unset.
func testConn(t testing.TB, cluster bool) redisched.Conn {
	t.Helper()
	if cluster {
		addrs := os.Getenv("RETRY_TEST_REDIS_CLUSTER_ADDRS")
		if addrs == "" {
			t.Skip("RETRY_TEST_REDIS_CLUSTER_ADDRS is unset: no Redis Cluster to test against (.ci/run starts one)")
		}
		return redisched.Conn{ClusterAddrs: strings.Split(addrs, ",")}
	}
	u := os.Getenv("RETRY_TEST_REDIS_URL")
	if u == "" {
		t.Skip("RETRY_TEST_REDIS_URL is unset: no Redis to test against (.ci/run starts one)")
	}
	return redisched.Conn{URL: u}
}

// testPrefix is a key prefix no other test (of this or another package,
// in this or another process) uses; its keys are deleted when t ends.
func testPrefix(t testing.TB, c redisched.Conn) string {
	t.Helper()
	p := "jrtest-" + rand.Text()[:12]
	t.Cleanup(func() { deletePrefix(t, c, p) })
	return p
}

func deletePrefix(t testing.TB, c redisched.Conn, prefix string) {
	rdb := newClient(t, c)
	defer rdb.Close()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "{"+prefix+"}:*").Result()
	if err == nil && len(keys) > 0 {
		err = rdb.Del(ctx, keys...).Err()
	}
	if err != nil {
		t.Errorf("delete the keys of %s: %v", prefix, err)
	}
}

// newClient opens a client as c says, for a test to look at Redis itself.
func newClient(t testing.TB, c redisched.Conn) goredis.UniversalClient {
	t.Helper()
	if len(c.ClusterAddrs) > 0 {
		return goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: c.ClusterAddrs})
	}
	opts, err := goredis.ParseURL(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	return goredis.NewClient(opts)
}

func open(t testing.TB, c redisched.Conn, cfg redisched.Config) *redisched.Scheduler {
	t.Helper()
	s, err := redisched.Open(context.Background(), c, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func conformance(t *testing.T, cluster bool) {
	c := testConn(t, cluster)
	const lease = time.Minute
	schedulertest.Run(t, func(t *testing.T) schedulertest.Backend {
		cfg := redisched.Config{Prefix: testPrefix(t, c), Lease: lease}
		return schedulertest.Backend{
			Scheduler: open(t, c, cfg),
			Lease:     lease,
			Open:      func(t *testing.T) retry.Scheduler { return open(t, c, cfg) },
		}
	})
}

func TestConformance(t *testing.T)        { conformance(t, false) }
func TestClusterConformance(t *testing.T) { conformance(t, true) }
