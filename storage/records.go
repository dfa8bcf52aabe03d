package storage

import (
	"context"
	"fmt"
	"strings"

	"github.com/uptrace/bun"

	"github.com/journeyretry/journeyretry/retry"
)

// record is a write under a claim that appends an attempt and updates the
// run in one step: a node completion, a failure or a snooze. On PostgreSQL
// the writer runs every record of a batch as one statement (see
// execRecords): a round trip and a statement for the whole batch, where
// each record would otherwise cost two of each.
type record struct {
	c      retry.Claim
	a      attempt
	update string // UPDATE journey_runs SET ..., without its WHERE clause
	args   []any
	run    retry.Run // as written, once the write succeeded
}

// writeRecord writes rec under its claim (see recordUnder), then counts
// the attempt in count's budget scope, if it names one, and runs then, if
// not nil, in the same transaction.
func (s *Store) writeRecord(ctx context.Context, op string, rec *record, count retry.BudgetUse, then retry.TxFunc) (retry.Run, error) {
	err := s.submit(ctx, op, s.recordOp(rec, count, then))
	return rec.run, err
}

// recordOp is the write of writeRecord. On PostgreSQL a record that
// counts no budget and runs nothing after it is left to the batch's one
// statement for records.
func (s *Store) recordOp(rec *record, count retry.BudgetUse, then retry.TxFunc) *writeOp {
	w := &writeOp{key: rec.c.RunID, fn: func(ctx context.Context, tx queryer) error {
		r, err := s.recordUnder(ctx, tx, rec.c, rec.a, rec.update, rec.args...)
		if err == nil {
			budgetsOf(ctx).countAttempt(count, rec.a.finished)
		}
		rec.run = r
		return joinTx(ctx, tx, r, err, then)
	}}
	if s.pg && then == nil && count.Scope == "" {
		w.rec = rec
	}
	return w
}

// execRecords runs the records of ops that pick marks in one statement on
// q, and sets each picked op's outcome in errs (a clean error for a lost
// claim or a missing run), or returns the statement's error, which wrote
// nothing.
//
// The statement first locks every run in lock, in id order (a batch passes
// all its runs, so that its other writes find theirs already locked and
// the batch takes its row locks in id order, as every batch does), and
// reads them as locked. Then each record, from the row as it read it
// under the claim (the claim's WHERE clause), updates the run and appends
// the attempt. Runs are distinct: PostgreSQL updates a row once per
// statement.
func (s *Store) execRecords(ctx context.Context, q queryer, ops []*writeOp, pick []bool, lock []string, errs []error) error {
	var b, sel strings.Builder
	args := []any{bun.In(lock)}
	b.WriteString(`WITH o AS (SELECT id, attempt_count, retry_count, current_node_id, claimed_by, claim_token,
	lease_expires_at, retry_enabled, max_retries FROM journey_runs WHERE id IN (?) ORDER BY id FOR UPDATE)`)
	for i, w := range ops {
		if !pick[i] {
			continue
		}
		r := w.rec
		act, err := r.a.actValue()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, `,
h%[1]d AS (SELECT id AS h_id, attempt_count + 1 AS h_number, COALESCE(NULLIF(?, ''), current_node_id, '') AS h_node,
	retry_count + 1 AS h_node_attempt, claimed_by AS h_worker, claim_token AS h_token, %[2]s AS h_status
	FROM o WHERE `+heldBy+`),
u%[1]d AS (%[3]s
	FROM h%[1]d WHERE journey_runs.id = h%[1]d.h_id RETURNING `+runColumns+`),
i%[1]d AS (INSERT INTO journey_run_attempts (`+attemptColumns+`)
	SELECT h_id, h_number, h_node, h_node_attempt, h_worker, h_token, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, h_status, ?
	FROM h%[1]d JOIN u%[1]d ON u%[1]d.id = h%[1]d.h_id)`, i, r.a.statusExpr, r.update)
		args = append(args, r.a.nodeID, r.c.RunID, r.c.Token, ms(r.a.finished))
		args = append(args, r.args...)
		args = append(append(args, r.a.values()...), act)
		if sel.Len() > 0 {
			sel.WriteString("\nUNION ALL ")
		}
		fmt.Fprintf(&sel, "SELECT u%[1]d.*, %[1]d FROM u%[1]d", i)
	}
	b.WriteString("\n")
	b.WriteString(sel.String())
	rows, err := q.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return err
	}
	wrote := make([]bool, len(ops))
	for rows.Next() {
		var i int
		r, err := scanRun(rows, &i)
		if err != nil {
			_ = rows.Close()
			return err
		}
		ops[i].rec.run, wrote[i] = r, true
	}
	if err := cmpErr(rows.Err(), rows.Close()); err != nil {
		return err
	}
	for i, w := range ops {
		if pick[i] && !wrote[i] {
			if errs[i] = lostOrMissing(ctx, q, w.rec.c); !clean(errs[i]) {
				return errs[i]
			}
		}
	}
	return nil
}
