package storage

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/journeyretry/journeyretry/internal/storecheck"
	"github.com/journeyretry/journeyretry/retry"
)

// ListWakeups pages through the retrying and waiting runs in id order; see
// [retry.WakeupLister].
func (s *Store) ListWakeups(ctx context.Context, afterID string, limit int) ([]retry.Wakeup, error) {
	if limit < 1 {
		return nil, fmt.Errorf("list wakeups: %w", storecheck.Invalid("limit %d below 1", limit))
	}
	if err := s.checkOpen("list wakeups"); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, status, CASE WHEN status = 'retrying' THEN next_retry_at ELSE wake_at END
FROM journey_runs WHERE status IN ('retrying', 'waiting') AND id > ? ORDER BY id LIMIT ?`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list wakeups: %w", err)
	}
	defer rows.Close()
	var out []retry.Wakeup
	for rows.Next() {
		var w retry.Wakeup
		var st string
		var at *int64
		if err := rows.Scan(&w.RunID, &st, &at); err != nil {
			return nil, fmt.Errorf("list wakeups: %w", err)
		}
		w.Status = retry.Status(st)
		if at != nil {
			w.At = time.UnixMilli(*at).UTC()
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list wakeups: %w", err)
	}
	return out, nil
}

// unknownStatus is the SQL condition for a status outside [retry.Statuses],
// spelled as the partial index over such runs (unknownStatusIndexes)
// spells it, so that the planner can use it: comparisons, not NOT IN (a
// test checks the list against retry.Statuses: a new status needs a
// migration that redefines it).
const unknownStatus = `status <> 'in_progress' AND status <> 'completed' AND status <> 'failed' AND status <> 'retrying'
	AND status <> 'failed_max_retries' AND status <> 'waiting' AND status <> 'cancelled'`

// countQuery counts the runs by status in one statement (one snapshot),
// reading no row: all runs first, with the key "" (SQLite counts them from
// an index's pages, without stepping through its entries), then every
// status but completed, each through a partial index of its own
// (countIndexes), and last the runs of an unknown status, through theirs.
// Completed runs, usually most of them, are the rest.
const countQuery = `SELECT '', (SELECT COUNT(*) FROM journey_runs)
UNION ALL SELECT status, COUNT(*) FROM journey_runs WHERE status = 'in_progress' GROUP BY status
UNION ALL SELECT status, COUNT(*) FROM journey_runs WHERE status = 'retrying' GROUP BY status
UNION ALL SELECT status, COUNT(*) FROM journey_runs WHERE status = 'waiting' GROUP BY status
UNION ALL SELECT status, COUNT(*) FROM journey_runs WHERE status = 'failed' GROUP BY status
UNION ALL SELECT status, COUNT(*) FROM journey_runs WHERE status = 'failed_max_retries' GROUP BY status
UNION ALL SELECT status, COUNT(*) FROM journey_runs WHERE status = 'cancelled' GROUP BY status
UNION ALL SELECT status, COUNT(*) FROM journey_runs WHERE ` + unknownStatus + ` GROUP BY status`

// histogramQuery counts the runs not yet ended by status and retry count,
// each part through its status's partial index (countIndexes).
const histogramQuery = `SELECT COALESCE(retry_count, 0), COUNT(*) FROM journey_runs WHERE status = 'in_progress' GROUP BY retry_count
UNION ALL SELECT COALESCE(retry_count, 0), COUNT(*) FROM journey_runs WHERE status = 'retrying' GROUP BY retry_count
UNION ALL SELECT COALESCE(retry_count, 0), COUNT(*) FROM journey_runs WHERE status = 'waiting' GROUP BY retry_count`

// CountByStatus counts the runs in each status; see [retry.Inspector]. It
// reads no row (countQuery). A status outside [retry.Statuses] found in a
// row is an error wrapping [retry.ErrInvalidStatus].
func (s *Store) CountByStatus(ctx context.Context) (map[retry.Status]int, error) {
	counts := make(map[retry.Status]int, len(retry.Statuses))
	for _, st := range retry.Statuses {
		counts[st] = 0
	}
	total := 0
	err := s.scanCounts(ctx, "count by status", countQuery, func(k any, n int) error {
		if k == "" {
			total = n
			return nil
		}
		st, err := retry.ParseStatus(fmt.Sprint(k))
		counts[st] = n
		return err
	})
	if err != nil {
		return nil, err
	}
	others := 0
	for _, n := range counts {
		others += n
	}
	counts[retry.StatusCompleted] = total - others
	return counts, nil
}

// RetryHistogram maps retry counts to the number of runs not yet ended
// with that count; see [retry.Inspector]. It reads index entries only
// (histogramQuery).
func (s *Store) RetryHistogram(ctx context.Context) (map[int]int, error) {
	hist := map[int]int{}
	err := s.scanCounts(ctx, "retry histogram", histogramQuery, func(k any, n int) error {
		c, ok := k.(int64)
		if !ok {
			return fmt.Errorf("retry count of type %T", k)
		}
		hist[int(c)] += n // a status's NULL and 0 are one count
		return nil
	})
	if err != nil {
		return nil, err
	}
	return hist, nil
}

// scanCounts runs a two-column (key, count) query and hands each row to f.
func (s *Store) scanCounts(ctx context.Context, op, query string, f func(key any, n int) error) error {
	if err := s.checkOpen(op); err != nil {
		return err
	}
	rows, err := s.rdb.QueryContext(ctx, query)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var k any
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if b, ok := k.([]byte); ok {
			k = string(b)
		}
		if err := f(k, n); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// TopErrors returns the most frequent (class, message) pairs among failed
// attempts finished in [since, until); see [retry.Inspector]. It reads the
// entries of one partial index in its time range (countIndexes), no row.
func (s *Store) TopErrors(ctx context.Context, since, until time.Time, limit int) ([]retry.ErrorCount, error) {
	if limit < 1 {
		return nil, fmt.Errorf("top errors: %w", storecheck.Invalid("limit %d below 1", limit))
	}
	if err := s.checkOpen("top errors"); err != nil {
		return nil, err
	}
	out, err := s.topErrors(ctx, `FROM journey_run_attempts WHERE outcome = 'failed' AND finished_at >= ? AND finished_at < ?`,
		ms(since), ms(until), limit)
	if err != nil {
		return nil, fmt.Errorf("top errors: %w", err)
	}
	return out, nil
}

// topErrors groups the rows of from (a FROM clause with its conditions,
// over columns error_class and error_message, taking args) by class and
// message, and returns the limit most frequent.
func (s *Store) topErrors(ctx context.Context, from string, args ...any) ([]retry.ErrorCount, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT COALESCE(error_class, ''), COALESCE(error_message, ''), COUNT(*) AS n
`+from+`
GROUP BY COALESCE(error_class, ''), COALESCE(error_message, '')
ORDER BY n DESC, 1, 2 LIMIT ?`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []retry.ErrorCount
	for rows.Next() {
		var e retry.ErrorCount
		if err := rows.Scan(&e.Class, &e.Message, &e.Count); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// retryStatsQuery is RetryStats as one statement, so that its numbers come
// from one snapshot and agree with each other: rows of (kind, attempts,
// strategy, class, count), where kind is 'runs' (count runs took attempts
// attempts), 'retries' (count retries had strategy and class), 'replays',
// 'snoozes' or 'shadow'.
const retryStatsQuery = `SELECT 'runs', n, '', '', COUNT(*) FROM (
	SELECT COUNT(a.run_id) AS n FROM journey_runs r
	LEFT JOIN journey_run_attempts a ON a.run_id = r.id AND a.outcome <> 'replayed'
	GROUP BY r.id) per_run
GROUP BY n
UNION ALL
SELECT 'retries', 0, COALESCE(decision_strategy, ''), COALESCE(error_class, ''), COUNT(*)
FROM journey_run_attempts WHERE outcome = 'failed' AND status_after = 'retrying'
GROUP BY COALESCE(decision_strategy, ''), COALESCE(error_class, '')
UNION ALL
SELECT 'replays', 0, '', '', COUNT(*) FROM journey_run_attempts WHERE outcome = 'replayed'
UNION ALL
SELECT 'snoozes', 0, '', '', COUNT(*) FROM journey_run_attempts WHERE outcome = 'snoozed'
UNION ALL
SELECT 'shadow', CASE WHEN decision_retry THEN 1 ELSE 0 END, COALESCE(decision_strategy, ''), COALESCE(error_class, ''), COUNT(*)
FROM journey_run_attempts WHERE outcome = 'failed' AND shadow
GROUP BY CASE WHEN decision_retry THEN 1 ELSE 0 END, COALESCE(decision_strategy, ''), COALESCE(error_class, '')`

// RetryStats aggregates the attempt history in SQL; see [retry.Inspector].
func (s *Store) RetryStats(ctx context.Context) (retry.RetryStats, error) {
	if err := s.checkOpen("retry stats"); err != nil {
		return retry.RetryStats{}, err
	}
	rows, err := s.rdb.QueryContext(ctx, retryStatsQuery)
	if err != nil {
		return retry.RetryStats{}, fmt.Errorf("retry stats: %w", err)
	}
	defer rows.Close()
	st := storecheck.NewStats()
	for rows.Next() {
		var kind, strategy string
		var class retry.Class
		var attempts, n int
		if err := rows.Scan(&kind, &attempts, &strategy, &class, &n); err != nil {
			return retry.RetryStats{}, fmt.Errorf("retry stats: %w", err)
		}
		switch kind {
		case "runs":
			st.AttemptsPerRun[attempts] = n
		case "retries":
			st.RetriesByStrategy[strategy] += n
			st.RetriesByClass[class] += n
		case "replays":
			st.Replays = n
		case "snoozes":
			st.Snoozes = n
		case "shadow":
			st.ShadowDecisions += n
			if attempts == 1 { // the decision was to retry
				st.ShadowRetriesByStrategy[strategy] += n
				st.ShadowRetriesByClass[class] += n
			}
		}
	}
	if err := rows.Err(); err != nil {
		return retry.RetryStats{}, fmt.Errorf("retry stats: %w", err)
	}
	return st, nil
}

// ReplayCounts returns how many times each of the runs ids was replayed
// ([Store.Replay]), leaving out those never replayed. A run's AttemptCount
// counts its replay markers beside its executions: a listing that shows
// executions subtracts these. One query, however many ids.
func (s *Store) ReplayCounts(ctx context.Context, ids []string) (map[string]int, error) {
	n := map[string]int{}
	if len(ids) == 0 {
		return n, nil
	}
	if err := s.checkOpen("replay counts"); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT run_id, COUNT(*) FROM journey_run_attempts
WHERE outcome = 'replayed' AND run_id IN (?) GROUP BY run_id`, bun.List(ids))
	if err != nil {
		return nil, fmt.Errorf("replay counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var c int
		if err := rows.Scan(&id, &c); err != nil {
			return nil, fmt.Errorf("replay counts: %w", err)
		}
		n[id] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("replay counts: %w", err)
	}
	return n, nil
}

// ListRuns returns a page of runs in id order; see [retry.Inspector]. With
// a status it walks the (status, id) index.
func (s *Store) ListRuns(ctx context.Context, f retry.RunFilter) ([]retry.Run, error) {
	limit, err := storecheck.Filter(f)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	if err := s.checkOpen("list runs"); err != nil {
		return nil, err
	}
	where, args := `id > ?`, []any{f.AfterID}
	if f.Status != "" {
		where, args = where+` AND status = ?`, append(args, string(f.Status))
	}
	if f.JourneyID != "" {
		where, args = where+` AND journey_id = ?`, append(args, f.JourneyID)
	}
	if f.ErrorClass != "" {
		where, args = where+` AND last_error_class = ?`, append(args, string(f.ErrorClass))
	}
	if f.NodeID != "" {
		where, args = where+` AND current_node_id = ?`, append(args, f.NodeID)
	}
	if !f.FailedSince.IsZero() {
		where, args = where+` AND last_error_timestamp >= ?`, append(args, ms(f.FailedSince))
	}
	if !f.FailedUntil.IsZero() {
		where, args = where+` AND last_error_timestamp < ?`, append(args, ms(f.FailedUntil))
	}
	runs, err := queryRuns(ctx, s.rdb, `SELECT `+runColumns+` FROM journey_runs WHERE `+where+` ORDER BY id LIMIT ?`,
		append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return runs, nil
}

// Replay restarts a replayable run at its current node, due at now; see
// [retry.Inspector].
func (s *Store) Replay(ctx context.Context, id string, now time.Time) (retry.Run, error) {
	return s.ReplayWith(ctx, id, retry.ReplayOptions{}, now)
}

var _ retry.Operator = (*Store)(nil)

// ReplayWith restarts a replayable run at o.From (or its current node),
// due at now, under o.Override; see [retry.Operator]. It reads the run and
// its completed nodes in the write's transaction (on PostgreSQL with the
// row locked), so the context it writes back is the one it read.
func (s *Store) ReplayWith(ctx context.Context, id string, o retry.ReplayOptions, now time.Time) (retry.Run, error) {
	if err := storecheck.Replay(id, o, now); err != nil {
		return retry.Run{}, fmt.Errorf("replay: %w", err)
	}
	var override any
	if !o.Override.IsZero() {
		b, err := json.Marshal(o.Override)
		if err != nil {
			return retry.Run{}, fmt.Errorf("replay %s: %w", retry.QuoteID(id), err)
		}
		override = string(b)
	}
	var maxRetries any
	if o.Override.MaxRetries != nil {
		maxRetries = *o.Override.MaxRetries
	}
	var run retry.Run
	err := s.write(ctx, "replay", id, func(ctx context.Context, tx queryer) error {
		lock := ""
		if s.pg {
			lock = " FOR UPDATE"
		}
		r, ok, err := queryRun(ctx, tx, `SELECT `+runColumns+` FROM journey_runs WHERE id = ?`+lock, id)
		switch {
		case err != nil:
			return err
		case !ok:
			return fmt.Errorf("run %s: %w", retry.QuoteID(id), retry.ErrNotFound)
		case !r.Status.Replayable():
			return fmt.Errorf("run %s is %s: %w", retry.QuoteID(id), r.Status, retry.ErrNotReplayable)
		}
		last, err := lastSuccesses(ctx, tx, id)
		if err != nil {
			return err
		}
		node, kept, moved, err := storecheck.ReplayFrom(r, o, last)
		if err != nil {
			return err
		}
		runCtx, err := json.Marshal(kept)
		if err != nil {
			return err
		}
		a := attempt{nodeID: node, finished: now, outcome: retry.OutcomeReplayed,
			act: &retry.OperatorAct{By: o.By, From: o.From, Override: o.Override, Moved: moved}}
		act, err := a.actValue()
		if err != nil {
			return err
		}
		if err := insertAttemptRow(ctx, tx, []any{id, r.AttemptCount + 1, node, r.RetryCount + 1, r.ClaimedBy, r.ClaimToken},
			a.values(), string(retry.StatusRetrying), act); err != nil {
			return err
		}
		r, _, err = s.writeRun(ctx, tx, id, `UPDATE journey_runs SET status = 'retrying', current_node_id = ?, context = ?,
	retry_count = 0, max_retries = COALESCE(?, max_retries), policy_override = ?,
	next_retry_at = ?, due_at = ?, last_delay_ms = 0, snooze_count = 0, node_started_at = NULL,
	attempt_count = attempt_count + 1, updated_at = ?, `+releaseSet+`
WHERE id = ?`, node, string(runCtx), maxRetries, override, ms(now), ms(now), datetime(now), id)
		run = r
		return err
	})
	return run, err
}

// lastSuccesses maps each node of run id that completed to the number of
// its last succeeded attempt.
func lastSuccesses(ctx context.Context, tx queryer, id string) (map[string]int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT node_id, MAX(number) FROM journey_run_attempts
WHERE run_id = ? AND outcome = 'succeeded' GROUP BY node_id`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	last := map[string]int{}
	for rows.Next() {
		var node string
		var n int
		if err := rows.Scan(&node, &n); err != nil {
			return nil, err
		}
		last[node] = n
	}
	return last, rows.Err()
}

// Cancel ends a run that has not ended, whoever holds it; see
// [retry.Operator].
func (s *Store) Cancel(ctx context.Context, id, by string, now time.Time) (retry.Run, error) {
	if err := storecheck.Cancel(id, by, now); err != nil {
		return retry.Run{}, fmt.Errorf("cancel: %w", err)
	}
	a := attempt{finished: now, outcome: retry.OutcomeCancelled, statusExpr: `'cancelled'`, act: &retry.OperatorAct{By: by}}
	var run retry.Run
	err := s.write(ctx, "cancel", id, func(ctx context.Context, tx queryer) error {
		ok, err := s.insertAttempt(ctx, tx, a, `id = ? AND `+claimableStatus, id)
		if err != nil {
			return err
		}
		if !ok {
			return refused(ctx, tx, id, retry.ErrNotCancellable)
		}
		r, _, err := s.writeRun(ctx, tx, id, `UPDATE journey_runs SET status = 'cancelled', due_at = NULL,
	attempt_count = attempt_count + 1, updated_at = ?, `+releaseSet+`
WHERE id = ?`, datetime(now), id)
		run = r
		return err
	})
	return run, err
}

// Activity counts attempts over time and samples retry lateness; see
// [retry.ActivityInspector]. Both queries read the attempts through the
// finished_at index, newest first, and stop at their bound.
func (s *Store) Activity(ctx context.Context, q retry.ActivityQuery) (retry.Activity, error) {
	switch {
	case !q.Until.After(q.Since):
		return retry.Activity{}, fmt.Errorf("activity: %w", storecheck.Invalid("window [%s, %s) is empty", q.Since, q.Until))
	case q.Bucket <= 0 || q.Bucket%time.Millisecond != 0:
		return retry.Activity{}, fmt.Errorf("activity: %w", storecheck.Invalid("bucket %s is not a positive number of milliseconds", q.Bucket))
	case q.Until.Sub(q.Since)/q.Bucket >= retry.MaxBuckets:
		return retry.Activity{}, fmt.Errorf("activity: %w", storecheck.Invalid("more than %d buckets of %s", retry.MaxBuckets, q.Bucket))
	case q.MaxAttempts < 0 || q.LatenessSamples < 0 || q.TopErrors < 0:
		return retry.Activity{}, fmt.Errorf("activity: %w", storecheck.Invalid("negative bound"))
	}
	if err := s.checkOpen("activity"); err != nil {
		return retry.Activity{}, err
	}
	maxAttempts := cmp.Or(q.MaxAttempts, 100_000)
	since, bucket := ms(q.Since), q.Bucket.Milliseconds()
	n := int((ms(q.Until) - since + bucket - 1) / bucket)
	act := retry.Activity{Buckets: make([]retry.ActivityBucket, n), RetryLateness: []time.Duration{}}
	for i := range act.Buckets {
		act.Buckets[i].Start = time.UnixMilli(since + int64(i)*bucket)
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT (finished_at - ?) / ?, COUNT(*),
SUM(CASE WHEN outcome = 'failed' THEN 1 ELSE 0 END),
SUM(CASE WHEN outcome = 'failed' AND status_after = 'retrying' THEN 1 ELSE 0 END)
FROM (SELECT finished_at, outcome, status_after FROM journey_run_attempts
  WHERE finished_at >= ? AND finished_at < ? AND outcome <> 'replayed'
  ORDER BY finished_at DESC LIMIT ?) latest
GROUP BY 1`, since, bucket, since, ms(q.Until), maxAttempts)
	if err != nil {
		return retry.Activity{}, fmt.Errorf("activity: %w", err)
	}
	total := 0
	for rows.Next() {
		var i int64
		var b retry.ActivityBucket
		if err := rows.Scan(&i, &b.Attempts, &b.Failures, &b.Retries); err != nil {
			rows.Close()
			return retry.Activity{}, fmt.Errorf("activity: %w", err)
		}
		if i >= 0 && i < int64(n) {
			b.Start = act.Buckets[i].Start
			act.Buckets[i] = b
		}
		total += b.Attempts
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return retry.Activity{}, fmt.Errorf("activity: %w", err)
	}
	act.Truncated = total >= maxAttempts
	rows, err = s.rdb.QueryContext(ctx, `SELECT a.started_at - (p.finished_at + p.decision_delay_ms)
FROM journey_run_attempts a JOIN journey_run_attempts p ON p.run_id = a.run_id AND p.number = a.number - 1
WHERE a.finished_at >= ? AND a.finished_at < ? AND a.started_at IS NOT NULL AND a.outcome <> 'replayed'
  AND p.outcome = 'failed' AND p.status_after = 'retrying'
ORDER BY a.finished_at DESC LIMIT ?`, since, ms(q.Until), cmp.Or(q.LatenessSamples, 2000))
	if err != nil {
		return retry.Activity{}, fmt.Errorf("activity: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var late int64
		if err := rows.Scan(&late); err != nil {
			return retry.Activity{}, fmt.Errorf("activity: %w", err)
		}
		act.RetryLateness = append(act.RetryLateness, time.Duration(late)*time.Millisecond)
	}
	if err := rows.Err(); err != nil {
		return retry.Activity{}, fmt.Errorf("activity: %w", err)
	}
	if q.TopErrors > 0 {
		if act.TopErrors, err = s.topErrors(ctx, `FROM (SELECT outcome, error_class, error_message FROM journey_run_attempts
  WHERE finished_at >= ? AND finished_at < ? AND outcome <> 'replayed'
  ORDER BY finished_at DESC LIMIT ?) latest WHERE outcome = 'failed'`, since, ms(q.Until), maxAttempts, q.TopErrors); err != nil {
			return retry.Activity{}, fmt.Errorf("activity: %w", err)
		}
	}
	return act, nil
}
