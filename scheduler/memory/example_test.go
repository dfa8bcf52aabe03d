package memory_test

import (
	"context"
	"fmt"
	"time"

	"github.com/journeyretry/journeyretry/scheduler/memory"
)

// A consumer waits on Ready, claims what is due at its now, acts on each
// delivery and acknowledges it. An executor runs this loop on every worker.
func Example() {
	s, err := memory.New(memory.Config{Lease: time.Minute})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	ctx := context.Background()

	_ = s.Schedule(ctx, "run-2", time.Now().Add(-time.Second))
	_ = s.Schedule(ctx, "run-1", time.Now().Add(-2*time.Second))
	_ = s.Schedule(ctx, "run-3", time.Now().Add(time.Hour)) // not due yet

	<-s.Ready()
	ds, err := s.Claim(ctx, time.Now(), 10)
	if err != nil {
		panic(err)
	}
	for _, d := range ds {
		fmt.Println("wake", d.ID) // the executor claims the run in the store here
		_ = s.Ack(ctx, d)
	}
	fmt.Println("still pending:", s.Len())
	// Output:
	// wake run-1
	// wake run-2
	// still pending: 1
}
