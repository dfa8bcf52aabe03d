package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// TestExplainBudgets: a demo run with retry budgets on (through the
// environment, as an operator sets them) defers the retries over the
// budget; explain names the budget's rule for a class, and with --budgets
// prints what each budget let through and deferred, as the store holds it.
func TestExplainBudgets(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "runs.db")
	env := []string{"JRETRY_EXECUTOR_BUDGET_ENABLED=true", "JRETRY_EXECUTOR_BUDGET_MIN_RETRIES=1",
		"JRETRY_EXECUTOR_BUDGET_RATIO=0.01", "JRETRY_EXECUTOR_BUDGET_WINDOW=600ms"}
	if r := runDemo(t, dir, env, append(fastArgs(store, 30), "--fault-network", "0.5", "--retryable", "class:network_blip")...); r.code != 0 {
		t.Fatalf("demo run with budgets: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	s := openDB(t, store)
	bs, err := s.Budgets(t.Context(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var blip retry.BudgetStatus
	for _, b := range bs {
		if b.Key == string(retry.ClassNetworkBlip) {
			blip = b
		}
	}
	if blip.DeferredTotal == 0 {
		t.Fatalf("budgets %v: want network_blip retries deferred (1 per 600 ms allowed)", bs)
	}
	r := runDemo(t, dir, env, "explain", "--class", "network_blip", "--budgets", "--store", store)
	for _, want := range []string{
		"budgets in the store:", "network_blip: ", fmt.Sprintf("; %d retried, %d deferred in all", blip.RetriesTotal, blip.DeferredTotal),
		"budget: the retries of network_blip, shared by every worker, at most max(1, 1% of all attempts) per 600ms", "rule budget:network_blip",
	} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Fatalf("explain --budgets: exit %d, want %q in\n%s%s", r.code, want, r.stdout, r.stderr)
		}
	}
	if r := runDemo(t, dir, nil, "explain", "--class", "network_blip"); !strings.Contains(r.stdout, "budget: off") || strings.Contains(r.stdout, "budgets in the store") {
		t.Errorf("explain without budgets:\n%s", r.stdout)
	}
}
