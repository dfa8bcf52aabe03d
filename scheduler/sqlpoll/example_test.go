package sqlpoll_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/journeyretry/journeyretry/scheduler/sqlpoll"
	"github.com/journeyretry/journeyretry/storage"
)

// Put the scheduler on the store's own database, so that a retry's
// decision and its wake-up commit together, and every process on the
// database shares the wake-ups. Here a consumer claims what is due and
// acknowledges it, as an executor does on every worker.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "sqlpoll-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	store, err := storage.Open(ctx, storage.Config{DSN: filepath.Join(dir, "runs.db")})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close() // after the scheduler, which does not own the pool
	if err := sqlpoll.Migrate(ctx, store.DB()); err != nil {
		log.Fatal(err)
	}
	sched, err := sqlpoll.New(ctx, store.DB(), sqlpoll.Config{Lease: time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	defer sched.Close()

	now := time.Now()
	_ = sched.Schedule(ctx, "run-1", now.Add(-time.Second))
	_ = sched.Schedule(ctx, "run-2", now.Add(time.Hour)) // not due yet
	ds, err := sched.Claim(ctx, now, 10)
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range ds {
		fmt.Println("wake", d.ID) // the executor claims the run in the store here
		_ = sched.Ack(ctx, d)
	}
	// Output:
	// wake run-1
}
