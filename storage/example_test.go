package storage_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage"
)

// Open a SQLite store, migrate it, and take a run through a failure and a
// retry: create it claimed, record the failure and the policy's decision,
// claim it again when it is due, and complete it.
func Example() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	s, err := storage.Open(ctx, storage.Config{DSN: filepath.Join(dir, "runs.db")})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil { // idempotent: fine on every start
		log.Fatal(err)
	}

	now := time.Date(2026, 1, 2, 9, 0, 0, 0, time.UTC)
	run, err := s.Create(ctx, retry.NewRun{ID: "run-1", JourneyID: "onboarding", StartNodeID: "send_email",
		MaxRetries: 3, Worker: "worker-1", Lease: time.Minute}, now)
	if err != nil {
		log.Fatal(err)
	}

	// The node failed; the policy said: retry in 2 s.
	run, err = s.RecordFailure(ctx, run.Claim(), retry.FailureRecord{
		NodeID: "send_email", Class: retry.ClassNetworkBlip, Message: "connection reset",
		Decision:  retry.Decision{Retry: true, Delay: 2 * time.Second, Strategy: "immediate", Rule: "class:network_blip"},
		StartedAt: now, FinishedAt: now.Add(100 * time.Millisecond),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(run.Status, run.RetryCount, run.NextRetryAt.Format(time.TimeOnly))

	// Not due yet; then due.
	due, _ := s.ClaimDue(ctx, "worker-2", now.Add(time.Second), now.Add(time.Second), time.Minute, 10)
	fmt.Println(len(due), "due at 09:00:01")
	due, _ = s.ClaimDue(ctx, "worker-2", now.Add(3*time.Second), now.Add(3*time.Second), time.Minute, 10)
	fmt.Println(len(due), "due at 09:00:03")

	run, err = s.CompleteNode(ctx, due[0].Claim(), retry.NodeSuccess{NodeID: "send_email",
		Output: []byte(`{"sent":true}`), FinishedAt: now.Add(4 * time.Second)})
	if err != nil {
		log.Fatal(err)
	}
	attempts, _ := s.Attempts(ctx, run.ID)
	fmt.Println(run.Status, len(attempts), "attempts")
	// Output:
	// retrying 1 09:00:02
	// 0 due at 09:00:01
	// 1 due at 09:00:03
	// completed 2 attempts
}
