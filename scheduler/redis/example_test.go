package redis_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	redisched "github.com/journeyretry/journeyretry/scheduler/redis"
)

// Each worker process of one application opens the scheduler on the same
// Redis and Prefix and gives it to its executor as the store's wake-up
// service. Here two handles stand for two processes: a retry one of them
// schedules wakes a consumer of the other, which claims it, acts on it
// and acknowledges it. (Not run here: it needs a Redis.)
func ExampleOpen() {
	ctx := context.Background()
	// A rediss:// URL with a user and password works the same, and no error
	// or log shows the password; Conn{ClusterAddrs: ...} for a Cluster.
	conn := redisched.Conn{URL: os.Getenv("REDIS_URL")}
	cfg := redisched.Config{Prefix: "clinic"}
	producer, err := redisched.Open(ctx, conn, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer producer.Close()
	consumer, err := redisched.Open(ctx, conn, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer consumer.Close()

	// A retry's wake-up, 50 ms ahead: queued, and in Redis before its time.
	if err := producer.Schedule(ctx, "run-1", time.Now().Add(50*time.Millisecond)); err != nil {
		log.Fatal(err) // Redis down: the store still holds the retry
	}
	for {
		<-consumer.Ready() // the due time came, or another process scheduled sooner
		ds, err := consumer.Claim(ctx, time.Now(), 10)
		if err != nil {
			log.Fatal(err)
		}
		for _, d := range ds {
			fmt.Println("wake", d.ID) // the executor claims the run in the store here
			_ = consumer.Ack(ctx, d)
		}
		if len(ds) > 0 {
			return
		}
	}
}
