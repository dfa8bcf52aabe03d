package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/journeyretry/journeyretry/internal/storecheck"
	"github.com/journeyretry/journeyretry/retry"
)

// Create inserts a run; see [retry.Runs]. An id already taken wraps
// [retry.ErrDuplicateRun]. The run it returns is the row as newRunRow
// makes it, not read back: a read of every column cost about as much as
// the INSERT.
func (s *Store) Create(ctx context.Context, nr retry.NewRun, now time.Time) (retry.Run, error) {
	run, args, err := newRunRow(nr, now)
	if err != nil {
		return retry.Run{}, fmt.Errorf("create run: %w", err)
	}
	w := &writeOp{key: run.ID, fn: func(ctx context.Context, tx queryer) error {
		res, err := tx.ExecContext(ctx, insertRuns[1]+` ON CONFLICT (id) DO NOTHING`, args...)
		if err != nil {
			return err
		}
		if ok, err := affected(res); err != nil || !ok {
			return cmpErr(err, duplicate(run.ID))
		}
		return nil
	}}
	if s.pg {
		w.row = &runRow{run.ID, args}
	}
	if err := s.submit(ctx, "create run", w); err != nil {
		return retry.Run{}, err
	}
	return run, nil
}

// CreateMany inserts runs in one transaction; see [retry.BatchCreator].
// Its rows go in id order, as every batch takes its locks, a hundred to a
// statement.
func (s *Store) CreateMany(ctx context.Context, nrs []retry.NewRun, now time.Time) ([]retry.Run, error) {
	rows := make([]runRow, len(nrs))
	for i, nr := range nrs {
		r, args, err := newRunRow(nr, now)
		if err != nil {
			return nil, fmt.Errorf("create runs: run %d: %w", i, err)
		}
		rows[i] = runRow{r.ID, args}
	}
	if len(rows) == 0 {
		return nil, s.checkOpen("create runs")
	}
	byID := slices.Clone(rows)
	slices.SortFunc(byID, func(a, b runRow) int { return strings.Compare(a.id, b.id) })
	for i := 1; i < len(byID); i++ {
		if byID[i].id == byID[i-1].id {
			return nil, fmt.Errorf("create runs: %w: %s given twice", retry.ErrDuplicateRun, retry.QuoteID(byID[i].id))
		}
	}
	created := make(map[string]retry.Run, len(rows))
	err := s.write(ctx, "create runs", byID[0].id, func(ctx context.Context, tx queryer) error {
		clear(created)
		for rest := byID; len(rest) > 0; {
			n := len(insertRuns) - 1
			if len(rest) < n {
				n = 1 // the rest one at a time: two statements to prepare, not one per length
			}
			args := make([]any, 0, n*len(rest[0].args))
			for _, r := range rest[:n] {
				args = append(args, r.args...)
			}
			runs, err := queryRuns(ctx, tx, insertRuns[n]+` ON CONFLICT (id) DO NOTHING RETURNING `+runColumns, args...)
			if err != nil {
				return dirty(err)
			}
			for _, r := range runs {
				created[r.ID] = r
			}
			rest = rest[n:]
		}
		for _, r := range byID {
			if _, ok := created[r.id]; !ok {
				return dirty(duplicate(r.id))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]retry.Run, len(rows))
	for i, r := range rows {
		out[i] = created[r.id]
	}
	return out, nil
}

// duplicate is the error for creating run id, whose id is taken.
func duplicate(id string) error {
	return fmt.Errorf("%w: %s", retry.ErrDuplicateRun, retry.QuoteID(id))
}

// createsSQL inserts new runs (PostgreSQL), one row of its parameter
// arrays each, in the columns and order of newRunRow's arguments (see
// createsInsert), and returns the ids it inserted: an id already taken is
// left alone. Like recordsSQL it is prepared once per connection.
const createsSQL = createsInsert + ` RETURNING id`

// createsInsert is createsSQL without its RETURNING, which
// recordsCreatesSQL replaces.
const createsInsert = `INSERT INTO journey_runs (id, journey_id, journey_version, status,
	current_node_id, context, retry_count, max_retries, retry_enabled, last_delay_ms, attempt_count,
	claim_token, claimed_by, lease_expires_at, due_at, created_at, updated_at)
SELECT id, journey, version, 'in_progress', node, context, 0, max_retries, retry_enabled, 0, 0,
	token, worker, lease, due, created, updated
FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::int[], $7::bool[], $8::text[],
	$9::text[], $10::bigint[], $11::bigint[], $12::text[], $13::text[])
	AS v(id, journey, version, node, context, max_retries, retry_enabled, token, worker, lease, due, created, updated)
ON CONFLICT (id) DO NOTHING`

// execCreates inserts the new runs among the ops that pick marks (their
// ids distinct, in id order: concurrent batches insert in one order) with
// one execution of createsSQL on q, and sets each picked op's outcome in
// errs (see createdOrDuplicate). It returns the statement's error, which
// wrote nothing.
func (s *Store) execCreates(ctx context.Context, q queryer, ops []*writeOp, pick []bool, errs []error) error {
	rows, err := s.preparedOn(q).QueryContext(ctx, createsSQL, createArgs(ops, pick)...)
	if err != nil {
		return err
	}
	inserted := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			_ = rows.Close()
			return err
		}
		inserted[id] = true
	}
	if err := cmpErr(rows.Err(), rows.Close()); err != nil {
		return err
	}
	createdOrDuplicate(ops, pick, inserted, errs)
	return nil
}

// createArgs are the arguments of createsInsert for the new runs among
// the ops that pick marks.
func createArgs(ops []*writeOp, pick []bool) []any {
	cols := make(pgColumns, 13)
	for i, w := range ops {
		if pick[i] && w.row != nil {
			cols.add(w.row.args...)
		}
	}
	return cols.args()
}

// createdOrDuplicate sets the outcome in errs of each new run among the
// ops that pick marks: nil for an id in inserted, ErrDuplicateRun for one
// that was taken.
func createdOrDuplicate(ops []*writeOp, pick []bool, inserted map[string]bool, errs []error) {
	for i, w := range ops {
		if pick[i] && w.row != nil && !inserted[w.row.id] {
			errs[i] = duplicate(w.row.id)
		}
	}
}

// runRow is a new run's id and the arguments of its row in insertRuns.
type runRow struct {
	id   string
	args []any
}

// insertRuns[n] inserts n runs, each of the arguments newRunRow returns;
// CreateMany uses n = 1 and n = len(insertRuns)-1 (100 rows, 1,300
// arguments: far below either database's limit).
var insertRuns = func() [101]string {
	var stmts [101]string
	row := `(?, ?, ?, 'in_progress', ?, ?, 0, ?, ?, 0, 0, ?, ?, ?, ?, ?, ?)`
	for _, n := range []int{1, len(stmts) - 1} {
		stmts[n] = `INSERT INTO journey_runs (id, journey_id, journey_version, status,
	current_node_id, context, retry_count, max_retries, retry_enabled, last_delay_ms, attempt_count,
	claim_token, claimed_by, lease_expires_at, due_at, created_at, updated_at)
VALUES ` + strings.Repeat(row+", ", n-1) + row
	}
	return stmts
}()

// newRunRow checks nr and returns the run as its row in insertRuns holds
// it, as a read of it would return it (its id generated when nr has
// none), and the arguments of the row.
func newRunRow(nr retry.NewRun, now time.Time) (retry.Run, []any, error) {
	if err := storecheck.NewRun(nr, now); err != nil {
		return retry.Run{}, nil, err
	}
	runCtx, err := json.Marshal(retry.RunContext{Input: nr.Input})
	if err != nil {
		return retry.Run{}, nil, storecheck.Invalid("input: %v", err)
	}
	created := now.UTC().Truncate(time.Millisecond) // as datetime writes it
	r := retry.Run{ID: nr.ID, JourneyID: nr.JourneyID, JourneyVersion: nr.JourneyVersion, Status: retry.StatusInProgress,
		CurrentNodeID: nr.StartNodeID, MaxRetries: nr.MaxRetries, RetryEnabled: !nr.DisableRetry,
		CreatedAt: created, UpdatedAt: created}
	if r.ID == "" {
		r.ID = uuid.Must(uuid.NewV7()).String()
	}
	if err := json.Unmarshal(runCtx, &r.Context); err != nil { // the input as the column holds it
		return retry.Run{}, nil, storecheck.Invalid("input: %v", err)
	}
	var token, worker, lease any // NULL unless claimed
	due := ms(now)
	if nr.Lease > 0 {
		due = ms(now.Add(nr.Lease))
		r.ClaimToken, r.ClaimedBy, r.LeaseExpiresAt = newToken(), nr.Worker, time.UnixMilli(due).UTC()
		token, worker, lease = r.ClaimToken, r.ClaimedBy, due
	}
	return r, []any{r.ID, nr.JourneyID, nr.JourneyVersion, nr.StartNodeID, string(runCtx), nr.MaxRetries, !nr.DisableRetry,
		token, worker, lease, due, datetime(now), datetime(now)}, nil
}

// Get returns the run, or an error wrapping [retry.ErrNotFound].
func (s *Store) Get(ctx context.Context, id string) (retry.Run, error) {
	if err := storecheck.RunID(id); err != nil {
		return retry.Run{}, fmt.Errorf("get run: %w", err)
	}
	if err := s.checkOpen("get run"); err != nil {
		return retry.Run{}, err
	}
	r, ok, err := queryRun(ctx, s.rdb, `SELECT `+runColumns+` FROM journey_runs WHERE id = ?`, id)
	switch {
	case err != nil:
		return retry.Run{}, fmt.Errorf("get run: %w", err)
	case !ok:
		return retry.Run{}, fmt.Errorf("get run %s: %w", retry.QuoteID(id), retry.ErrNotFound)
	}
	return r, nil
}

// attemptColumns are the columns of journey_run_attempts in scan order.
const attemptColumns = `run_id, number, node_id, node_attempt, worker, claim_token, started_at,
	finished_at, outcome, error_class, error_message, decision_retry, decision_delay_ms,
	decision_strategy, decision_rule, decision_exhausted, shadow, status_after, operator_act`

// Attempts returns the run's attempt history in attempt order.
func (s *Store) Attempts(ctx context.Context, runID string) ([]retry.Attempt, error) {
	if err := storecheck.RunID(runID); err != nil {
		return nil, fmt.Errorf("attempts: %w", err)
	}
	if err := s.checkOpen("attempts"); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+attemptColumns+` FROM journey_run_attempts WHERE run_id = ? ORDER BY number`, runID)
	if err != nil {
		return nil, fmt.Errorf("attempts: %w", err)
	}
	defer rows.Close()
	var out []retry.Attempt
	for rows.Next() {
		var (
			a                                      retry.Attempt
			worker, token, class, msg, strat, rule sql.NullString
			started, finished, delay               sql.Null[int64]
			outcome, status                        string
			act                                    sql.NullString
		)
		if err := rows.Scan(&a.RunID, &a.Number, &a.NodeID, &a.NodeAttempt, &worker, &token, &started,
			&finished, &outcome, &class, &msg, &a.Decision.Retry, &delay,
			&strat, &rule, &a.Decision.Exhausted, &a.Shadow, &status, &act); err != nil {
			return nil, fmt.Errorf("attempts: %w", err)
		}
		if act.Valid {
			a.Act = new(retry.OperatorAct)
			if err := json.Unmarshal([]byte(act.String), a.Act); err != nil {
				return nil, fmt.Errorf("attempts of %s: attempt %d: operator act: %w", retry.QuoteID(runID), a.Number, err)
			}
		}
		if a.Status, err = retry.ParseStatus(status); err != nil {
			return nil, fmt.Errorf("attempts of %s: attempt %d: %w", retry.QuoteID(runID), a.Number, err)
		}
		a.Worker, a.ClaimToken, a.ErrorClass, a.ErrorMessage = worker.String, token.String, retry.Class(class.String), msg.String
		a.StartedAt, a.FinishedAt = fromMS(started), fromMS(finished)
		a.Outcome = retry.Outcome(outcome)
		a.Decision.Delay = time.Duration(delay.V) * time.Millisecond
		a.Decision.Strategy, a.Decision.Rule = strat.String, rule.String
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("attempts: %w", err)
	}
	if len(out) == 0 {
		found, err := exists(ctx, s.rdb, runID)
		if err != nil {
			return nil, fmt.Errorf("attempts: %w", err)
		}
		if !found {
			return nil, fmt.Errorf("attempts of %s: %w", retry.QuoteID(runID), retry.ErrNotFound)
		}
	}
	return out, nil
}

// attempt is the part of an attempt row the caller knows; the rest (the
// attempt numbers, the worker and the token) is copied from the run row by
// insertAttempt, in the same statement that checks the claim.
type attempt struct {
	nodeID            string
	started, finished time.Time
	outcome           retry.Outcome
	class             retry.Class
	message           string
	decision          retry.Decision
	shadow            bool
	statusExpr        string // SQL over the run row: the status after
	act               *retry.OperatorAct
}

// actValue is a's operator act as its column holds it: JSON, or NULL.
func (a attempt) actValue() (any, error) {
	if a.act == nil {
		return nil, nil
	}
	b, err := json.Marshal(a.act)
	if err != nil {
		return nil, fmt.Errorf("operator act: %w", err)
	}
	return string(b), nil
}

// values returns a's own columns of the attempt row, from started_at to
// shadow in attemptColumns' order.
func (a attempt) values() []any {
	var started any
	if !a.started.IsZero() {
		started = ms(a.started)
	}
	var class, msg, strat, rule any
	if a.class != "" {
		class = string(a.class)
	}
	if a.outcome == retry.OutcomeFailed || a.outcome == retry.OutcomeSnoozed {
		msg = a.message
	}
	if a.decision.Strategy != "" {
		strat = a.decision.Strategy
	}
	if a.decision.Rule != "" {
		rule = a.decision.Rule
	}
	return []any{started, ms(a.finished), string(a.outcome), class, msg,
		a.decision.Retry, a.decision.Delay.Milliseconds(), strat, rule, a.decision.Exhausted, a.shadow}
}

// insertAttempt appends a to the history of the run where cond (with
// condArgs) holds, and reports whether it did: false means the run does not
// exist or the condition (the claim) does not hold, and nothing changed.
func (s *Store) insertAttempt(ctx context.Context, tx queryer, a attempt, cond string, condArgs ...any) (bool, error) {
	values := a.values()
	act, err := a.actValue()
	if err != nil {
		return false, err
	}
	// The run's part: its id, attempt numbers, worker, token and status after.
	const fromRun = `id, attempt_count + 1, COALESCE(NULLIF(?, ''), current_node_id, ''), retry_count + 1, claimed_by, claim_token`
	if s.pg {
		res, err := tx.ExecContext(ctx, `INSERT INTO journey_run_attempts (`+attemptColumns+`)
SELECT `+fromRun+`, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, `+a.statusExpr+`, ? FROM journey_runs WHERE `+cond,
			append(append(append([]any{a.nodeID}, values...), act), condArgs...)...)
		if err != nil {
			return false, fmt.Errorf("append attempt: %w", err)
		}
		return affected(res)
	}
	// SQLite: read the run's part, then insert one row of values. An
	// INSERT ... SELECT may write many rows, so SQLite would copy every
	// page it touches to a statement journal; the single writer makes the
	// read and the write one atomic step anyway.
	rows, err := tx.QueryContext(ctx, `SELECT `+fromRun+`, `+a.statusExpr+` FROM journey_runs WHERE `+cond,
		append([]any{a.nodeID}, condArgs...)...)
	if err != nil {
		return false, fmt.Errorf("append attempt: %w", err)
	}
	run, dest := make([]any, 7), make([]any, 7)
	for i := range dest {
		dest[i] = &run[i]
	}
	found := rows.Next()
	if found {
		err = rows.Scan(dest...)
	}
	err = cmpErr(err, cmpErr(rows.Err(), rows.Close()))
	if err != nil || !found {
		return false, err
	}
	return true, insertAttemptRow(ctx, tx, run[:6:6], values, run[6], act)
}

// insertAttemptRow inserts one attempt row: the run's part (its id, the
// attempt numbers, worker and token), the attempt's values, the status
// after and the operator act (nil for none).
func insertAttemptRow(ctx context.Context, tx queryer, run, values []any, status, act any) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO journey_run_attempts (`+attemptColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, append(append(run, values...), status, act)...); err != nil {
		return fmt.Errorf("append attempt: %w", err)
	}
	return nil
}
