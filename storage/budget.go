package storage

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// Retry budgets (see [retry.BudgetState]) live in two tables:
// journey_retry_budgets holds each key's state as JSON, and
// journey_retry_budget_attempts the attempts of each scope per bucket of
// its window. A batch's budgeted writes share one budgetTx: it reads each
// state once, lets the writes change it in memory in order, and writes
// the states and the attempts counted at the end of the batch, in the
// batch's transaction: the budget moves with the failures it counts.
//
// Locks (PostgreSQL): a batch locks the budget rows its failures charge
// before any run (in key order, see runTx), and writes the attempts rows
// after every run (in scope and bucket order), so every transaction takes
// budget rows, runs and attempts rows in that one order. Two batches that
// charge one class wait for each other, which is what makes the budget
// exact across processes; the attempts rows, which every success counts
// in, are held only from the batch's last statements to its commit.

// budgetCtxKey carries a batch's *budgetTx in the context its writes get.
type budgetCtxKey struct{}

// budgetsOf returns the budgetTx of the batch ctx belongs to.
func budgetsOf(ctx context.Context) *budgetTx {
	bt, _ := ctx.Value(budgetCtxKey{}).(*budgetTx)
	return bt
}

// scopeBucket is one row of journey_retry_budget_attempts.
type scopeBucket struct {
	scope  string
	bucket int64
}

// budgetTx is the budgets as one batch sees and changes them.
type budgetTx struct {
	s       *Store
	states  map[string]*retry.BudgetState // read (PostgreSQL: locked)
	dirty   map[string]bool
	counted map[scopeBucket]int64 // attempts this batch counted
	stored  map[scopeBucket]int64 // attempts in the window ending at the bucket, as committed
	now     time.Time             // the latest write's
}

// lock reads and locks the states the ops charge, in key order
// (PostgreSQL; on SQLite the one writer makes lazy reads just as safe).
func (bt *budgetTx) lock(ctx context.Context, tx queryer, ops []*writeOp) error {
	var keys []string
	for _, w := range ops {
		if w.budgetKey != "" {
			keys = append(keys, w.budgetKey)
		}
	}
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		if _, err := bt.state(ctx, tx, k); err != nil {
			return err
		}
	}
	return nil
}

// state returns key's state as the batch has it, reading it first (on
// PostgreSQL locking its row, made if missing).
func (bt *budgetTx) state(ctx context.Context, tx queryer, key string) (*retry.BudgetState, error) {
	if st, ok := bt.states[key]; ok {
		return st, nil
	}
	q := `SELECT state FROM journey_retry_budgets WHERE budget_key = ?`
	if bt.s.pg {
		q = `INSERT INTO journey_retry_budgets (budget_key, state, updated_at) VALUES (?, '{}', 0)
ON CONFLICT (budget_key) DO UPDATE SET budget_key = EXCLUDED.budget_key RETURNING state`
	}
	rows, err := tx.QueryContext(ctx, q, key)
	if err != nil {
		return nil, fmt.Errorf("read budget %s: %w", key, err)
	}
	var text string
	if rows.Next() {
		err = rows.Scan(&text)
	}
	if err = cmpErr(err, cmpErr(rows.Err(), rows.Close())); err != nil {
		return nil, fmt.Errorf("read budget %s: %w", key, err)
	}
	st := new(retry.BudgetState)
	if err := decodeBudget(text, st); err != nil {
		return nil, fmt.Errorf("budget %s: %w", key, err)
	}
	if bt.states == nil {
		bt.states = map[string]*retry.BudgetState{}
	}
	bt.states[key] = st
	return st, nil
}

// decodeBudget reads a stored state; empty text is a new one.
func decodeBudget(text string, st *retry.BudgetState) error {
	if text == "" {
		return nil
	}
	return json.Unmarshal([]byte(text), st)
}

// countAttempt counts an attempt at now in u's scope, if it names one.
func (bt *budgetTx) countAttempt(u retry.BudgetUse, now time.Time) {
	if u.Scope == "" {
		return
	}
	if bt.counted == nil {
		bt.counted = map[scopeBucket]int64{}
	}
	bt.counted[scopeBucket{u.Scope, u.Budget.BudgetBucket(now)}]++
	bt.now = maxTime(bt.now, now)
}

// apply charges a failure recorded at now with decision d to u's budget
// (retrying: the failure leaves the run retrying) and returns the
// decision to record; see [retry.BudgetState.Apply].
func (bt *budgetTx) apply(ctx context.Context, tx queryer, u retry.BudgetUse, now time.Time, retrying bool, d retry.Decision) (retry.Decision, error) {
	bt.countAttempt(u, now)
	st, err := bt.state(ctx, tx, u.Key)
	if err != nil {
		return d, err
	}
	var werr error // the count is read only if the window holds the floor
	d = st.Apply(u, now, retrying, d, func() int64 {
		n, err := bt.window(ctx, tx, u, now)
		werr = err
		return n
	})
	if werr != nil {
		return d, werr
	}
	if bt.dirty == nil {
		bt.dirty = map[string]bool{}
	}
	bt.dirty[u.Key] = true
	bt.now = maxTime(bt.now, now)
	return d, nil
}

// window counts u's scope's attempts in the window ending at now: those
// committed (read once per batch and bucket) and those the batch counted.
func (bt *budgetTx) window(ctx context.Context, tx queryer, u retry.BudgetUse, now time.Time) (int64, error) {
	cur := u.Budget.BudgetBucket(now)
	k := scopeBucket{u.Scope, cur}
	stored, ok := bt.stored[k]
	if !ok {
		var err error
		if stored, err = windowAttempts(ctx, tx, u.Scope, cur); err != nil {
			return 0, err
		}
		if bt.stored == nil {
			bt.stored = map[scopeBucket]int64{}
		}
		bt.stored[k] = stored
	}
	for sb, n := range bt.counted {
		if sb.scope == u.Scope && sb.bucket > cur-retry.BudgetBuckets && sb.bucket <= cur {
			stored += n
		}
	}
	return stored, nil
}

// windowAttempts reads the attempts of scope committed in the window
// ending at bucket cur.
func windowAttempts(ctx context.Context, q queryer, scope string, cur int64) (int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT COALESCE(SUM(attempts), 0) FROM journey_retry_budget_attempts
WHERE scope = ? AND bucket > ? AND bucket <= ?`, scope, cur-retry.BudgetBuckets, cur)
	if err != nil {
		return 0, fmt.Errorf("read budget attempts: %w", err)
	}
	var n int64
	if rows.Next() {
		err = rows.Scan(&n)
	}
	if err = cmpErr(err, cmpErr(rows.Err(), rows.Close())); err != nil {
		return 0, fmt.Errorf("read budget attempts: %w", err)
	}
	return n, nil
}

// flush writes what the batch changed: the states it charged, then the
// attempts it counted, each in key order; and, about once per bucket,
// drops a scope's attempts rows older than any window.
func (bt *budgetTx) flush(ctx context.Context, tx queryer) error {
	for _, key := range slices.Sorted(maps.Keys(bt.dirty)) {
		text, err := json.Marshal(bt.states[key])
		if err != nil {
			return fmt.Errorf("budget %s: %w", key, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO journey_retry_budgets (budget_key, state, updated_at) VALUES (?, ?, ?)
ON CONFLICT (budget_key) DO UPDATE SET state = EXCLUDED.state, updated_at = EXCLUDED.updated_at`, key, string(text), ms(bt.now)); err != nil {
			return fmt.Errorf("write budget %s: %w", key, err)
		}
	}
	if len(bt.counted) == 0 {
		return nil
	}
	keys := slices.SortedFunc(maps.Keys(bt.counted), func(a, b scopeBucket) int {
		return cmp.Or(cmp.Compare(a.scope, b.scope), cmp.Compare(a.bucket, b.bucket))
	})
	newest := map[string]int64{} // per scope: scopes may count in buckets of other widths
	for _, k := range keys {
		if _, err := tx.ExecContext(ctx, `INSERT INTO journey_retry_budget_attempts (scope, bucket, attempts) VALUES (?, ?, ?)
ON CONFLICT (scope, bucket) DO UPDATE SET attempts = journey_retry_budget_attempts.attempts + EXCLUDED.attempts`,
			k.scope, k.bucket, bt.counted[k]); err != nil {
			return fmt.Errorf("count budget attempts: %w", err)
		}
		newest[k.scope] = max(newest[k.scope], k.bucket)
	}
	for _, scope := range slices.Sorted(maps.Keys(newest)) {
		b := newest[scope]
		if last, ok := bt.s.budgetPruned.Load(scope); ok && b <= last.(int64) {
			continue
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM journey_retry_budget_attempts WHERE scope = ? AND bucket <= ?`,
			scope, b-2*retry.BudgetBuckets); err != nil {
			return fmt.Errorf("prune budget attempts: %w", err)
		}
		bt.s.budgetPruned.Store(scope, b)
	}
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Budgets returns the budgets the store keeps; see [retry.BudgetInspector].
func (s *Store) Budgets(ctx context.Context, now time.Time) ([]retry.BudgetStatus, error) {
	if err := s.checkOpen("budgets"); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT budget_key, state FROM journey_retry_budgets ORDER BY budget_key`)
	if err != nil {
		return nil, fmt.Errorf("budgets: %w", err)
	}
	type keyed struct {
		key string
		st  retry.BudgetState
	}
	var all []keyed
	for rows.Next() {
		var k keyed
		var text string
		if err := rows.Scan(&k.key, &text); err != nil {
			rows.Close()
			return nil, fmt.Errorf("budgets: %w", err)
		}
		if err := decodeBudget(text, &k.st); err != nil {
			rows.Close()
			return nil, fmt.Errorf("budgets: %s: %w", k.key, err)
		}
		all = append(all, k)
	}
	if err := cmpErr(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("budgets: %w", err)
	}
	out := make([]retry.BudgetStatus, 0, len(all))
	for _, k := range all {
		var attempts int64
		if k.st.WidthMS > 0 {
			if attempts, err = windowAttempts(ctx, s.rdb, k.st.Scope, now.UnixMilli()/k.st.WidthMS); err != nil {
				return nil, fmt.Errorf("budgets: %w", err)
			}
		}
		out = append(out, k.st.Status(k.key, now, attempts))
	}
	return out, nil
}
