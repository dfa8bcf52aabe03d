package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage/pgtest"
)

// TestBudgetAttemptsPruned: the attempt counters of a budget's scope keep
// about two windows of buckets, however long the store counts, for each
// scope of its own (scopes counting in buckets of different widths too).
func TestBudgetAttemptsPruned(t *testing.T) {
	for name, dsn := range map[string]func(*testing.T) string{"sqlite": sqliteFile, "postgres": func(t *testing.T) string { return pgtest.DSN(t) }} {
		t.Run(name, func(t *testing.T) {
			s := open(t, dsn(t))
			ctx := context.Background()
			base := time.Unix(1_000_000_000, 0).UTC()
			r, err := s.Create(ctx, retry.NewRun{ID: "r", JourneyID: "j", JourneyVersion: 1, StartNodeID: "a", MaxRetries: 3, Worker: "w", Lease: time.Hour}, base)
			if err != nil {
				t.Fatal(err)
			}
			scopes := []retry.BudgetUse{
				{Scope: "*", Budget: retry.Budget{Window: time.Minute}},          // 10 s buckets
				{Scope: "*@fast", Budget: retry.Budget{Window: 6 * time.Second}}, // 1 s buckets
			}
			for i := range 120 { // ten minutes, one success every 5 s in each scope
				now := base.Add(time.Duration(i) * 5 * time.Second)
				for _, u := range scopes {
					if r, err = s.CompleteNode(ctx, r.Claim(), retry.NodeSuccess{NodeID: "a", NextNodeID: "a", FinishedAt: now, Budget: u}); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, u := range scopes {
				var rows int
				if err := s.DB().NewRaw(`SELECT COUNT(*) FROM journey_retry_budget_attempts WHERE scope = ?`, u.Scope).Scan(ctx, &rows); err != nil {
					t.Fatal(err)
				}
				if rows == 0 || rows > 2*retry.BudgetBuckets+1 {
					t.Errorf("scope %s keeps %d attempt buckets after ten minutes; want 1 to %d", u.Scope, rows, 2*retry.BudgetBuckets+1)
				}
			}
		})
	}
}
