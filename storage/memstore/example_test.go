package memstore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage/memstore"
)

// The in-memory store answers as the Bun store does, without a database:
// a fake for unit tests of code that takes a retry.Store.
func Example() {
	ctx := context.Background()
	s := memstore.New()
	defer s.Close()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	run, _ := s.Create(ctx, retry.NewRun{ID: "r1", JourneyID: "onboarding", StartNodeID: "send", MaxRetries: 3,
		Worker: "w1", Lease: time.Minute}, now)
	run, _ = s.RecordFailure(ctx, run.Claim(), retry.FailureRecord{NodeID: "send", Class: retry.ClassNetworkBlip,
		Message: "connection reset", Decision: retry.Decision{Retry: true, Delay: 2 * time.Second}, FinishedAt: now})
	fmt.Println(run.Status, run.RetryCount, run.NextRetryAt.Format(time.TimeOnly))
	// Output: retrying 1 09:00:02
}
