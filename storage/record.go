package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/journeyretry/journeyretry/internal/storecheck"
	"github.com/journeyretry/journeyretry/retry"
)

// CompleteNode records a completed node under c; see [retry.Recorder]. The
// output is stored in the run's context under s.NodeID by the database's
// JSON functions, in the statement that checks the claim.
func (s *Store) CompleteNode(ctx context.Context, c retry.Claim, ns retry.NodeSuccess) (retry.Run, error) {
	return s.CompleteNodeTx(ctx, c, ns, nil)
}

// CompleteNodeTx is CompleteNode that runs then, when not nil, in the
// transaction that records the node; see [retry.TxStore] and
// [Store.RecordFailureTx] (then may run more than once).
func (s *Store) CompleteNodeTx(ctx context.Context, c retry.Claim, ns retry.NodeSuccess, then retry.TxFunc) (retry.Run, error) {
	rec, err := completion(c, ns)
	if err != nil {
		return retry.Run{}, fmt.Errorf("complete node: %w", err)
	}
	rec.count, rec.then = ns.Budget, then
	return s.writeRecord(ctx, "complete node", rec)
}

// completion is the record of node success ns under c.
func completion(c retry.Claim, ns retry.NodeSuccess) (*record, error) {
	out, err := storecheck.Success(c, ns)
	if err != nil {
		return nil, err
	}
	now, output := ns.FinishedAt, string(out)
	// The UPDATE for each case is a constant: nothing is built per call.
	const completeSet = `UPDATE journey_runs SET context = ` + setOutput + `,
	status = ?, retry_count = 0, last_delay_ms = 0, snooze_count = 0, node_started_at = NULL,
	attempt_count = attempt_count + 1, updated_at = ?, `
	var wake *int64
	status, update, setArgs := retry.StatusInProgress, completeSet+"current_node_id = ?", []any{ns.NextNodeID}
	switch {
	case ns.NextNodeID == "":
		status, update, setArgs = retry.StatusCompleted, completeSet+"current_node_id = NULL, due_at = NULL, "+releaseSet, nil
	case !ns.WakeAt.IsZero():
		status, update = retry.StatusWaiting, completeSet+"current_node_id = ?, wake_at = ?, due_at = ?, "+releaseSet
		at := ms(ns.WakeAt)
		setArgs, wake = append(setArgs, at, at), &at
	}
	return &record{c: c,
		a: attempt{nodeID: ns.NodeID, started: ns.StartedAt, finished: now,
			outcome: retry.OutcomeSucceeded, statusExpr: "'" + string(status) + "'"},
		update: update,
		args:   append([]any{ns.NodeID, output, string(status), datetime(now)}, setArgs...),
		row:    recordRow{kind: "c", mode: string(status), nextNode: nonEmpty(ns.NextNodeID), wake: wake, output: &output},
	}, nil
}

// recordUnder (SQLite) appends attempt a to the history of the run c claims, then
// runs update, an UPDATE of journey_runs without its WHERE clause (the
// claim's, added here with its arguments after args), and returns the run
// as written. A claim that no longer holds changes nothing (ErrLostClaim,
// or ErrNotFound for a missing run).
func (s *Store) recordUnder(ctx context.Context, tx queryer, c retry.Claim, a attempt, update string, args ...any) (retry.Run, error) {
	now := ms(a.finished)
	ok, err := s.insertAttempt(ctx, tx, a, heldBy, c.RunID, c.Token, now)
	if err != nil {
		return retry.Run{}, err
	}
	if !ok {
		return retry.Run{}, lostOrMissing(ctx, tx, c)
	}
	r, ok, err := s.writeRun(ctx, tx, c.RunID, update+"\nWHERE "+heldBy, append(args, c.RunID, c.Token, now)...)
	if err == nil && !ok { // the claim moved between the two statements: never keep the attempt alone
		err = dirty(fmt.Errorf("run %s: %w", retry.QuoteID(c.RunID), retry.ErrLostClaim))
	}
	return r, err
}

// setOutput is the SQL expression (SQLite) for the context with the
// output (second argument, JSON text) stored under the node id (first
// argument); recordsSQL has PostgreSQL's.
const setOutput = `json_set(json_set(COALESCE(NULLIF(context, ''), '{}'), '$.outputs',
	json(COALESCE(json_extract(COALESCE(NULLIF(context, ''), '{}'), '$.outputs'), '{}'))),
	'$.outputs.' || json_quote(?), json(?))`

// failureMode is f's decision in recordsSQL's terms (see failedStatus).
func failureMode(f retry.FailureRecord) string {
	switch d := f.Decision; {
	case f.Shadow || (!d.Retry && !d.Exhausted):
		return "failed"
	case d.Exhausted:
		return "exhausted"
	}
	return "retry"
}

// nonEmpty is &s, or nil for "".
func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// failedStatus is the SQL expression, over the run row before the write,
// for the status a failure leaves the run in. The store enforces the run's
// retry_enabled and max_retries (-1: unlimited) whatever the decision asks.
func failedStatus(f retry.FailureRecord) string {
	switch d := f.Decision; {
	case f.Shadow || (!d.Retry && !d.Exhausted):
		return `'failed'`
	case d.Exhausted:
		return `CASE WHEN retry_enabled = false THEN 'failed' ELSE 'failed_max_retries' END`
	}
	return `CASE WHEN retry_enabled = false THEN 'failed'
	WHEN max_retries >= 0 AND retry_count >= max_retries THEN 'failed_max_retries' ELSE 'retrying' END`
}

// RecordFailure records a failed attempt and its decision under c; see
// [retry.Recorder].
func (s *Store) RecordFailure(ctx context.Context, c retry.Claim, f retry.FailureRecord) (retry.Run, error) {
	return s.RecordFailureTx(ctx, c, f, nil)
}

// RecordFailureTx is RecordFailure that runs then, when not nil, in the
// transaction that records the failure; see [retry.TxStore]. then may run
// more than once (a batch that another write rolls back is replayed), each
// time in a new transaction, and is committed at most once.
func (s *Store) RecordFailureTx(ctx context.Context, c retry.Claim, f retry.FailureRecord, then retry.TxFunc) (retry.Run, error) {
	rec, f, err := failure(c, f)
	if err != nil {
		return retry.Run{}, fmt.Errorf("record failure: %w", err)
	}
	if s.pg && f.Budget.Key == "" {
		rec.then = then
		return s.writeRecord(ctx, "record failure", rec)
	}
	var run retry.Run
	err = s.writeCharging(ctx, "record failure", c.RunID, f.Budget.Key, func(ctx context.Context, tx queryer) error {
		r, err := recordFailureRead(ctx, tx, c, rec.a, f.Budget)
		run = r
		return joinTx(ctx, tx, r, err, then)
	})
	return run, err
}

// failure is the record of failure f under c, with f as stored (its free
// text is stored, never rejected). The store enforces the run's limits in
// SQL: see failedStatus. It has no update: on SQLite, and for a failure
// charged to a retry budget, recordFailureRead writes it.
func failure(c retry.Claim, f retry.FailureRecord) (*record, retry.FailureRecord, error) {
	f, err := storecheck.Failure(c, f)
	if err != nil {
		return nil, f, err
	}
	now := f.FinishedAt
	next, start := ms(now.Add(f.Decision.Delay)), ms(storecheck.NodeStart(f.StartedAt, now))
	return &record{c: c,
		a: attempt{nodeID: f.NodeID, started: f.StartedAt, finished: now, outcome: retry.OutcomeFailed,
			class: f.Class, message: f.Message, decision: f.Decision, shadow: f.Shadow, statusExpr: failedStatus(f)},
		row: recordRow{kind: "f", mode: failureMode(f), delay: f.Decision.Delay.Milliseconds(), next: next,
			message: f.Message, class: string(f.Class), nodeStart: &start},
	}, f, nil
}

// Snooze parks the run until its node runs again, without a failure,
// under c; see [retry.Recorder].
func (s *Store) Snooze(ctx context.Context, c retry.Claim, sn retry.SnoozeRecord) (retry.Run, error) {
	return s.SnoozeTx(ctx, c, sn, nil)
}

// SnoozeTx is Snooze that runs then, when not nil, in the transaction that
// parks the run; see [retry.TxStore] and [Store.RecordFailureTx] (then may
// run more than once).
func (s *Store) SnoozeTx(ctx context.Context, c retry.Claim, sn retry.SnoozeRecord, then retry.TxFunc) (retry.Run, error) {
	rec, err := snoozing(c, sn)
	if err != nil {
		return retry.Run{}, fmt.Errorf("snooze: %w", err)
	}
	rec.then = then
	return s.writeRecord(ctx, "snooze", rec)
}

// snoozing is the record of snooze sn under c.
func snoozing(c retry.Claim, sn retry.SnoozeRecord) (*record, error) {
	sn, err := storecheck.Snooze(c, sn)
	if err != nil {
		return nil, err
	}
	now := sn.FinishedAt
	wake, start := ms(now.Add(sn.Delay)), ms(storecheck.NodeStart(sn.StartedAt, now))
	return &record{c: c,
		a: attempt{nodeID: sn.NodeID, started: sn.StartedAt, finished: now, outcome: retry.OutcomeSnoozed,
			message: sn.Message, decision: retry.Decision{Delay: sn.Delay}, statusExpr: "'" + string(retry.StatusWaiting) + "'"},
		update: `UPDATE journey_runs SET status = 'waiting', wake_at = ?, due_at = ?,
	snooze_count = COALESCE(snooze_count, 0) + 1, node_started_at = COALESCE(node_started_at, ?),
	attempt_count = attempt_count + 1, updated_at = ?, ` + releaseSet,
		args: []any{wake, wake, start, datetime(now)},
		row:  recordRow{kind: "s", wake: &wake, nodeStart: &start},
	}, nil
}

// recordFailureRead is RecordFailure on SQLite, and for a failure charged
// to a retry budget u on PostgreSQL: it reads the run once, under the
// claim, with the status the failure leaves it in, charges the budget
// (which may defer the retry: a.decision changes), then writes the
// attempt and the run with values computed from that read, and returns
// the run as written without reading it back. On SQLite the single writer
// makes the read and the writes one atomic step; on PostgreSQL the UPDATE
// states the claim, so a claim lost in between changes nothing (and rolls
// the batch back). (Without a budget, PostgreSQL computes the same in SQL
// and returns the run with RETURNING: a round trip less.)
func recordFailureRead(ctx context.Context, tx queryer, c retry.Claim, a attempt, u retry.BudgetUse) (retry.Run, error) {
	now := a.finished
	rows, err := tx.QueryContext(ctx, `SELECT `+runColumns+`, `+a.statusExpr+` FROM journey_runs WHERE `+heldBy,
		c.RunID, c.Token, ms(now))
	if err != nil {
		return retry.Run{}, err
	}
	var (
		r      retry.Run
		status string
	)
	found := rows.Next()
	if found {
		r, err = scanRun(rows, &status)
	}
	if err = cmpErr(err, cmpErr(rows.Err(), rows.Close())); err != nil {
		return retry.Run{}, err
	}
	if !found {
		return retry.Run{}, lostOrMissing(ctx, tx, c)
	}
	if r.Status, err = retry.ParseStatus(status); err != nil {
		return retry.Run{}, err
	}
	if u.Key != "" {
		if a.decision, err = budgetsOf(ctx).apply(ctx, tx, u, now, r.Status == retry.StatusRetrying, a.decision); err != nil {
			return retry.Run{}, err
		}
	}
	node := a.nodeID
	if node == "" {
		node = r.CurrentNodeID
	}
	if err := insertAttemptRow(ctx, tx, []any{r.ID, r.AttemptCount + 1, node, r.RetryCount + 1, r.ClaimedBy, r.ClaimToken},
		a.values(), status, nil); err != nil {
		return retry.Run{}, err
	}
	var due any // NULL: the run is due again only when it retries
	kept := r.Status == retry.StatusRetrying && a.decision.Delay == 0
	if r.Status == retry.StatusRetrying {
		r.RetryCount++
		r.NextRetryAt = time.UnixMilli(ms(now.Add(a.decision.Delay))).UTC()
		r.LastDelay = time.Duration(a.decision.Delay.Milliseconds()) * time.Millisecond
		due = ms(r.NextRetryAt)
	}
	r.LastErrorMessage, r.LastErrorClass = a.message, a.class
	r.LastErrorAt = time.UnixMilli(ms(now)).UTC()
	r.UpdatedAt = r.LastErrorAt
	if r.NodeStartedAt.IsZero() {
		r.NodeStartedAt = time.UnixMilli(ms(storecheck.NodeStart(a.started, now))).UTC()
	}
	r.AttemptCount++
	if kept { // retried at once: the claim stays, due when its lease ends
		r.Status = retry.StatusInProgress
	} else {
		r.ClaimToken, r.ClaimedBy, r.LeaseExpiresAt = "", "", time.Time{}
	}
	// The UPDATE states the claim too, as every write under a claim does:
	// the read above makes it hold, but the statement alone must never
	// overwrite a run whose claim moved on. A kept claim leaves the
	// status, the due time (its lease's end) and the claim's columns as
	// they are, and its UPDATE does not name them: SQLite rewrites the
	// index entries over every column an UPDATE sets, changed or not, each
	// index a page more in the log of every such transaction.
	update, args := failureKept, []any{r.RetryCount, nullTime(r.NextRetryAt), r.LastDelay.Milliseconds(),
		r.LastErrorMessage, string(r.LastErrorClass), ms(now), r.AttemptCount, datetime(now), ms(r.NodeStartedAt)}
	if !kept {
		update, args = failureReleased, append(args, string(r.Status), due)
	}
	res, err := tx.ExecContext(ctx, update, append(args, c.RunID, c.Token, ms(now))...)
	if err != nil {
		return retry.Run{}, err
	}
	if ok, err := affected(res); err != nil || !ok {
		return retry.Run{}, dirty(cmpErr(err, fmt.Errorf("run %s: %w", retry.QuoteID(c.RunID), retry.ErrLostClaim)))
	}
	return r, nil
}

// The UPDATEs of recordFailureRead: a failure retried at once, under the
// claim it keeps, and one that releases it.
const (
	failureSet = `UPDATE journey_runs SET retry_count = ?, next_retry_at = ?, last_delay_ms = ?,
	last_error_message = ?, last_error_class = ?, last_error_timestamp = ?, attempt_count = ?, updated_at = ?,
	node_started_at = ?`
	failureKept     = failureSet + "\nWHERE " + heldBy
	failureReleased = failureSet + ", status = ?, due_at = ?, " + releaseSet + "\nWHERE " + heldBy
)

// nullTime is t in Unix milliseconds, or NULL for the zero time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return ms(t)
}
