package memstore

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// budgets is the budgets' state: each key's [retry.BudgetState], and the
// attempts of each scope per bucket (as the Bun store's two tables).
type budgets struct {
	states   map[string]*retry.BudgetState
	attempts map[string]map[int64]int64
}

// countAttempt counts an attempt at now in u's scope. The caller holds
// s.data.mu.
func (d *data) countAttempt(u retry.BudgetUse, now time.Time) {
	if u.Scope == "" {
		return
	}
	if d.budgets.attempts == nil {
		d.budgets.attempts = map[string]map[int64]int64{}
	}
	m := d.budgets.attempts[u.Scope]
	if m == nil {
		m = map[int64]int64{}
		d.budgets.attempts[u.Scope] = m
	}
	cur := u.Budget.BudgetBucket(now)
	m[cur]++
	for b := range m { // keep the window only
		if b <= cur-retry.BudgetBuckets {
			delete(m, b)
		}
	}
}

// windowAttempts counts scope's attempts in b's window ending at now.
func (d *data) windowAttempts(scope string, b retry.Budget, now time.Time) int64 {
	cur := b.BudgetBucket(now)
	var n int64
	for bucket, c := range d.budgets.attempts[scope] {
		if bucket > cur-retry.BudgetBuckets && bucket <= cur {
			n += c
		}
	}
	return n
}

// budgetState returns key's state, made on first use.
func (d *data) budgetState(key string) *retry.BudgetState {
	if d.budgets.states == nil {
		d.budgets.states = map[string]*retry.BudgetState{}
	}
	st := d.budgets.states[key]
	if st == nil {
		st = new(retry.BudgetState)
		d.budgets.states[key] = st
	}
	return st
}

// Budgets returns the budgets the store keeps; see [retry.BudgetInspector].
func (s *Store) Budgets(ctx context.Context, now time.Time) ([]retry.BudgetStatus, error) {
	if err := s.lock(ctx, "budgets"); err != nil {
		return nil, err
	}
	defer s.data.mu.Unlock()
	var out []retry.BudgetStatus
	for _, key := range slices.Sorted(maps.Keys(s.data.budgets.states)) {
		st := s.data.budgets.states[key]
		b := retry.Budget{Window: time.Duration(st.WindowMS) * time.Millisecond}
		out = append(out, st.Status(key, now, s.data.windowAttempts(st.Scope, b, now)))
	}
	return out, nil
}
