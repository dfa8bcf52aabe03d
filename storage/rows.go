package storage

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/uptrace/bun"

	"github.com/journeyretry/journeyretry/internal/storecheck"
	"github.com/journeyretry/journeyretry/retry"
)

// runColumns is the column list every statement that returns runs reads,
// in scanRun's order: unclaimedColumns, then the columns a claim sets.
const runColumns = unclaimedColumns + `,
	status, claim_token, claimed_by, lease_expires_at, CAST(updated_at AS TEXT)`

// unclaimedColumns are the columns of runColumns a claim leaves as they
// were. SQLite's ClaimDue reads back only these: the claimer knows what it
// set, and the read-back cost nearly as much as the claim's UPDATE, most
// of it the driver converting values. The DATETIME columns are read as
// text: the SQLite driver would otherwise try a dozen layouts on every
// value.
const unclaimedColumns = `id, journey_id, journey_version, current_node_id, context,
	retry_count, max_retries, retry_enabled, last_error_message, last_error_class,
	last_error_timestamp, last_delay_ms, next_retry_at, wake_at, attempt_count,
	CAST(created_at AS TEXT), policy_override, snooze_count, node_started_at`

// claimable is the SQL condition for a run a claimer may take at the
// argument's time: due_at is maintained for every claimable state (the
// retry time, the wake-up time, the lease expiry, or the time it became
// free), and NULL for ended runs.
const claimable = `due_at <= ? AND ` + claimableStatus

// claimableStatus is the status condition of claimable.
const claimableStatus = `status IN ('in_progress', 'retrying', 'waiting')`

// heldBy is the SQL condition for a write under a claim: the token matches
// and the lease is live at the argument's time.
const heldBy = `id = ? AND claim_token = ? AND lease_expires_at > ?`

// queryer is what both a transaction and a database offer.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

var (
	_ queryer = bun.Tx{}
	_ queryer = (*bun.DB)(nil)
)

// queryRuns runs query and scans every row it returns as a run.
func queryRuns(ctx context.Context, q queryer, query string, args ...any) ([]retry.Run, error) {
	return queryScan(ctx, q, 0, func(rows *sql.Rows) (retry.Run, error) { return scanRun(rows) }, query, args...)
}

// queryScan runs query and scans every row it returns with scan; size is
// the number of rows expected, when known (0 if not), so that the slice is
// allocated once.
func queryScan(ctx context.Context, q queryer, size int, scan func(*sql.Rows) (retry.Run, error), query string, args ...any) ([]retry.Run, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var runs []retry.Run
	if size > 0 {
		runs = make([]retry.Run, 0, size)
	}
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	return runs, rows.Err()
}

// queryRun is queryRuns for a statement that returns at most one row; ok is
// false when it returned none.
func queryRun(ctx context.Context, q queryer, query string, args ...any) (r retry.Run, ok bool, err error) {
	runs, err := queryRuns(ctx, q, query, args...)
	if err != nil || len(runs) == 0 {
		return retry.Run{}, false, err
	}
	return runs[0], true, nil
}

// runDest holds scanRun's destinations: one allocation per row, where
// twenty separate variables (or the run itself) would each escape to the
// heap through Scan's arguments. The columns other than the run's ids and
// status are scanned as the driver's values and converted by null: Scan
// into a sql.Null type runs its Scan method, and reflection in it, on
// every column of every row.
type runDest struct {
	id, journeyID string
	journeyVersion, node, ctxJSON, retryCount, maxRetries, enabled, msg, class,
	errorAt, lastDelay, nextRetry, wake, attempts, created, override, snoozes, nodeStarted any
	status                        string
	token, worker, lease, updated any
}

// unclaimed returns the destinations of unclaimedColumns, in d, in a slice
// with room for extra more.
func (d *runDest) unclaimed(extra int) []any {
	return append(make([]any, 0, 19+extra), &d.id, &d.journeyID, &d.journeyVersion, &d.node, &d.ctxJSON,
		&d.retryCount, &d.maxRetries, &d.enabled, &d.msg, &d.class,
		&d.errorAt, &d.lastDelay, &d.nextRetry, &d.wake, &d.attempts, &d.created, &d.override, &d.snoozes, &d.nodeStarted)
}

// scanRun scans a row of runColumns, followed by the columns of extra.
func scanRun(rows *sql.Rows, extra ...any) (retry.Run, error) {
	d := new(runDest)
	dest := append(d.unclaimed(5+len(extra)), &d.status, &d.token, &d.worker, &d.lease, &d.updated)
	if err := rows.Scan(append(dest, extra...)...); err != nil {
		return retry.Run{}, fmt.Errorf("scan run: %w", err)
	}
	var r retry.Run
	c := new(converter)
	r.ClaimToken, r.ClaimedBy, r.LeaseExpiresAt = null[string](c, d.token).V, null[string](c, d.worker).V, fromMS(null[int64](c, d.lease))
	if err := d.convert(&r, c); err != nil {
		return retry.Run{}, err
	}
	st, err := retry.ParseStatus(d.status)
	if err != nil {
		return retry.Run{}, fmt.Errorf("run %s: %w", retry.QuoteID(r.ID), err)
	}
	r.Status = st
	if err := d.decode(&r); err != nil {
		return retry.Run{}, err
	}
	if r.UpdatedAt, err = parseDatetime(d.updated); err != nil {
		return retry.Run{}, fmt.Errorf("run %s: updated_at: %w", retry.QuoteID(r.ID), err)
	}
	return r, nil
}

// scanClaimed returns the scan function of a claimed batch's rows of
// unclaimedColumns: each row is scanned into a copy of claimed, the fields
// the claim set, with the claim's token claimed.ClaimToken followed by the
// run id (see claimSet). The destinations are allocated once per batch:
// every row's Scan sets them all.
func scanClaimed(claimed retry.Run) func(*sql.Rows) (retry.Run, error) {
	var r retry.Run
	d := new(runDest)
	dest := d.unclaimed(0)
	return func(rows *sql.Rows) (retry.Run, error) {
		r = claimed
		if err := rows.Scan(dest...); err != nil {
			return retry.Run{}, fmt.Errorf("scan run: %w", err)
		}
		if err := d.convert(&r, new(converter)); err != nil {
			return retry.Run{}, err
		}
		if err := d.decode(&r); err != nil {
			return retry.Run{}, err
		}
		r.ClaimToken += r.ID
		return r, nil
	}
}

// convert converts the scanned unclaimedColumns into r, except those
// decode reads (it leaves the context as a string for decode); it reports
// the first conversion error, c's included.
func (d *runDest) convert(r *retry.Run, c *converter) error {
	r.ID, r.JourneyID = d.id, d.journeyID
	d.ctxJSON = null[string](c, d.ctxJSON).V
	d.override = null[string](c, d.override).V
	r.JourneyVersion = int(null[int64](c, d.journeyVersion).V)
	r.CurrentNodeID = null[string](c, d.node).V
	r.RetryCount, r.MaxRetries, r.AttemptCount = int(null[int64](c, d.retryCount).V), int(null[int64](c, d.maxRetries).V), int(null[int64](c, d.attempts).V)
	enabled := null[bool](c, d.enabled)
	r.RetryEnabled = !enabled.Valid || enabled.V
	r.LastErrorMessage, r.LastErrorClass = null[string](c, d.msg).V, retry.Class(null[string](c, d.class).V)
	r.LastErrorAt, r.NextRetryAt, r.WakeAt = fromMS(null[int64](c, d.errorAt)), fromMS(null[int64](c, d.nextRetry)), fromMS(null[int64](c, d.wake))
	r.LastDelay = time.Duration(null[int64](c, d.lastDelay).V) * time.Millisecond
	r.SnoozeCount, r.NodeStartedAt = int(null[int64](c, d.snoozes).V), fromMS(null[int64](c, d.nodeStarted))
	if c.err != nil {
		return fmt.Errorf("scan run %s: %w", retry.QuoteID(r.ID), c.err)
	}
	return nil
}

// decode reads the scanned context, policy override and created_at into r.
// It decodes into variables of its own: a field of r given to
// json.Unmarshal would move all of r to the heap.
func (d *runDest) decode(r *retry.Run) error {
	if ctxJSON := d.ctxJSON.(string); ctxJSON != "" {
		var rc retry.RunContext
		if err := json.Unmarshal([]byte(ctxJSON), &rc); err != nil {
			return fmt.Errorf("run %s: context: %w", retry.QuoteID(r.ID), err)
		}
		r.Context = rc
	}
	if o := d.override.(string); o != "" {
		var po retry.PolicyOverride
		if err := json.Unmarshal([]byte(o), &po); err != nil {
			return fmt.Errorf("run %s: policy override: %w", retry.QuoteID(r.ID), err)
		}
		r.Override = po
	}
	var err error
	if r.CreatedAt, err = parseDatetime(d.created); err != nil {
		return fmt.Errorf("run %s: created_at: %w", retry.QuoteID(r.ID), err)
	}
	return nil
}

// converter converts scanned driver values as Scan into a sql.Null[T]
// would, taking NULL and the driver's usual type directly; it keeps the
// first error.
type converter struct{ err error }

// null converts v for c.
func null[T any](c *converter, v any) sql.Null[T] {
	switch v := v.(type) {
	case nil:
		return sql.Null[T]{}
	case T:
		return sql.Null[T]{V: v, Valid: true}
	}
	var n sql.Null[T] // escapes to the heap through Scan: off the common paths
	if err := n.Scan(v); err != nil && c.err == nil {
		c.err = err
	}
	return n
}

// ms is t in Unix milliseconds, the store's time format.
func ms(t time.Time) int64 { return t.UnixMilli() }

// fromMS reads a nullable millisecond column; NULL is the zero time.
func fromMS(v sql.Null[int64]) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.V).UTC()
}

// datetimeLayout is how the store writes the legacy DATETIME text columns:
// UTC, fixed width, with milliseconds, sorting as text in time order.
const datetimeLayout = "2006-01-02 15:04:05.000"

func datetime(t time.Time) string { return t.UTC().Format(datetimeLayout) }

// parseDatetime reads a created_at or updated_at value: the store's own
// text, the legacy system's "2006-01-02 15:04:05" (SQLite's
// CURRENT_TIMESTAMP, UTC), or a time.Time when the driver parsed the
// DATETIME column itself. NULL is the zero time.
func parseDatetime(v any) (time.Time, error) {
	switch v := v.(type) {
	case nil:
		return time.Time{}, nil
	case time.Time:
		return v.UTC().Truncate(time.Millisecond), nil
	case []byte:
		return parseDatetime(string(v))
	case int64: // Unix seconds, as some legacy writers stored it
		return time.Unix(v, 0).UTC(), nil
	case string:
		if t, ok := parseOwnDatetime(v); ok { // the common case
			return t, nil
		}
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
			return parseDatetime(secs)
		}
		for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999", "2006-01-02"} {
			if t, err := time.Parse(layout, v); err == nil {
				return t.UTC().Truncate(time.Millisecond), nil
			}
		}
		return time.Time{}, fmt.Errorf("unreadable time %q", v)
	}
	return time.Time{}, fmt.Errorf("unreadable time of type %T", v)
}

// parseOwnDatetime reads v when it is in datetimeLayout, reading the
// digits in place: time.Parse, which interprets the layout on every call,
// took a third of scanRun's time on a claimed batch. ok is false for
// anything else, including an out-of-range field, which parseDatetime then
// reads or reports.
func parseOwnDatetime(v string) (t time.Time, ok bool) {
	if len(v) != len(datetimeLayout) || v[4] != '-' || v[7] != '-' || v[10] != ' ' || v[13] != ':' || v[16] != ':' || v[19] != '.' {
		return time.Time{}, false
	}
	var f [7]int // year, month, day, hour, minute, second, millisecond
	for i, span := range [7][2]int{{0, 4}, {5, 7}, {8, 10}, {11, 13}, {14, 16}, {17, 19}, {20, 23}} {
		for _, c := range []byte(v[span[0]:span[1]]) {
			if c < '0' || c > '9' {
				return time.Time{}, false
			}
			f[i] = f[i]*10 + int(c-'0')
		}
	}
	t = time.Date(f[0], time.Month(f[1]), f[2], f[3], f[4], f[5], f[6]*int(time.Millisecond), time.UTC)
	// time.Date normalises out-of-range fields (a 13th month, 25 o'clock):
	// such text is not a time the store wrote.
	if t.Month() != time.Month(f[1]) || t.Day() != f[2] || t.Hour() != f[3] || t.Minute() != f[4] || t.Second() != f[5] {
		return time.Time{}, false
	}
	return t, true
}

// newToken returns a random claim token.
func newToken() string { return rand.Text() }

// lostOrMissing tells why a write under c changed nothing: the run does not
// exist, or the claim is no longer held (because an operator cancelled the
// run, when it is cancelled).
func lostOrMissing(ctx context.Context, q queryer, c retry.Claim) error {
	rows, err := q.QueryContext(ctx, `SELECT status FROM journey_runs WHERE id = ?`, c.RunID)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		return cmpErr(rows.Err(), fmt.Errorf("run %s: %w", retry.QuoteID(c.RunID), retry.ErrNotFound))
	}
	var status string
	if err := rows.Scan(&status); err != nil {
		return err
	}
	return storecheck.Lost(c.RunID, retry.Status(status))
}

// refused tells why a write conditional on run id's status changed
// nothing: the run does not exist (retry.ErrNotFound), or its status is
// not one the operation takes (sentinel, with the status named, so that a
// caller can say why without reading the run again).
func refused(ctx context.Context, q queryer, id string, sentinel error) error {
	rows, err := q.QueryContext(ctx, `SELECT status FROM journey_runs WHERE id = ?`, id)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		return cmpErr(rows.Err(), fmt.Errorf("run %s: %w", retry.QuoteID(id), retry.ErrNotFound))
	}
	var status string
	if err := rows.Scan(&status); err != nil {
		return err
	}
	return fmt.Errorf("run %s is %s: %w", retry.QuoteID(id), status, sentinel)
}

// exists reports whether run id exists.
func exists(ctx context.Context, q queryer, id string) (bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT 1 FROM journey_runs WHERE id = ?`, id)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	found := rows.Next()
	return found, rows.Err()
}

// affected reports whether res changed a row.
func affected(res sql.Result) (bool, error) {
	n, err := res.RowsAffected()
	return n > 0, err
}

// writeRun runs stmt, a statement that writes run id at most (an INSERT or
// an UPDATE), and returns the run as written; ok is false when it wrote
// nothing. PostgreSQL returns the row with RETURNING. SQLite reads it
// back instead: it implements RETURNING as a trigger, which makes every
// statement copy the pages it touches to a statement journal, and the
// writer's own read after its write is as atomic there.
func (s *Store) writeRun(ctx context.Context, tx queryer, id, stmt string, args ...any) (r retry.Run, ok bool, err error) {
	if s.pg {
		return queryRun(ctx, tx, stmt+" RETURNING "+runColumns, args...)
	}
	res, err := tx.ExecContext(ctx, stmt, args...)
	if err != nil {
		return retry.Run{}, false, err
	}
	if ok, err := affected(res); err != nil || !ok {
		return retry.Run{}, false, err
	}
	return queryRun(ctx, tx, `SELECT `+runColumns+` FROM journey_runs WHERE id = ?`, id)
}
