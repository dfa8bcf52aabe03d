package engine_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/journeyretry/journeyretry/engine"
	"github.com/journeyretry/journeyretry/storage"
)

func engineStore(t *testing.T) storage.Config {
	return storage.Config{DSN: filepath.Join(t.TempDir(), "runs.db")}
}

// redisScheduler configures the redis backend on RETRY_TEST_REDIS_URL with
// a key prefix of the test's own, whose keys are deleted when it ends.
func redisScheduler(t *testing.T) engine.SchedulerConfig {
	u := os.Getenv("RETRY_TEST_REDIS_URL")
	if u == "" {
		t.Skip("RETRY_TEST_REDIS_URL is unset: no Redis to test the redis scheduler against")
	}
	prefix := "jrtest-engine-" + rand.Text()[:12]
	t.Cleanup(func() {
		opts, err := goredis.ParseURL(u)
		if err != nil {
			t.Fatal(err)
		}
		rdb := goredis.NewClient(opts)
		defer rdb.Close()
		ctx := context.Background()
		keys, err := rdb.Keys(ctx, "{"+prefix+"}:*").Result()
		if err == nil && len(keys) > 0 {
			err = rdb.Del(ctx, keys...).Err()
		}
		if err != nil {
			t.Error(err)
		}
	})
	return engine.SchedulerConfig{Backend: engine.SchedulerRedis, RedisURL: u, RedisPrefix: prefix}
}
