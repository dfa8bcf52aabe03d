package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/journeyretry/journeyretry/internal/storecheck"
	"github.com/journeyretry/journeyretry/retry"
)

// claimSet is the SET clause of a claim: the run is in progress under a
// new token (first argument, to which the run id is appended so a batch's
// tokens differ), worker and lease, and due again when the lease expires.
const claimSet = `status = 'in_progress', ` + claimHold

// claimHold is claimSet but the status.
const claimHold = `claim_token = ? || id, claimed_by = ?,
	lease_expires_at = ?, due_at = ?, updated_at = ?`

// ClaimRun claims run id; see [retry.Claimer].
func (s *Store) ClaimRun(ctx context.Context, id, worker string, now time.Time, lease time.Duration) (retry.Run, error) {
	if err := cmpErr(storecheck.RunID(id), storecheck.CheckIDs("worker", worker)); err != nil {
		return retry.Run{}, fmt.Errorf("claim run: %w", err)
	}
	if err := storecheck.Lease(now, lease); err != nil {
		return retry.Run{}, fmt.Errorf("claim run %s: %w", retry.QuoteID(id), err)
	}
	until := ms(now.Add(lease))
	if s.pg {
		req := &claimReq{id: id, token: newToken() + "." + id, worker: worker, now: ms(now), until: until, updated: datetime(now)}
		err := s.submit(ctx, "claim run", &writeOp{key: id, claim: req})
		return req.run, err
	}
	var run retry.Run
	err := s.write(ctx, "claim run", "", func(ctx context.Context, tx queryer) error {
		r, ok, err := s.writeRun(ctx, tx, id, `UPDATE journey_runs SET `+claimSet+`
WHERE id = ? AND `+claimable,
			newToken()+".", worker, until, until, datetime(now), id, ms(now))
		if err != nil || ok {
			run = r
			return err
		}
		return refused(ctx, tx, id, retry.ErrNotClaimable)
	})
	return run, err
}

// claimReq is a by-id claim on PostgreSQL, which the claimers run in
// batches: one statement claims every run the batch asks for (see
// claimsSQL).
type claimReq struct {
	id, token, worker string
	now, until        int64
	updated           string
	run               retry.Run // as claimed, once the claim succeeded
}

// claimsSQL claims runs by id (PostgreSQL), one row of its parameter
// arrays a claim, each with its own token, worker, time and lease. A run
// that another transaction holds is skipped (FOR UPDATE SKIP LOCKED), not
// waited for: it is being written, so not claimable now, and waiting could
// close a cycle of waits. The runs are distinct. As in recordsSQL, every
// scan of journey_runs states its ids.
var claimsSQL = `WITH v AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[])
	AS v(c_id, c_token, c_worker, c_now, c_until, c_updated)),
c AS MATERIALIZED (SELECT v.* FROM v JOIN LATERAL (SELECT 1 FROM journey_runs r WHERE r.id = v.c_id
	AND r.due_at <= v.c_now AND r.` + claimableStatus + ` FOR UPDATE SKIP LOCKED) l ON true)
UPDATE journey_runs r SET status = 'in_progress', claim_token = c.c_token, claimed_by = c.c_worker,
	lease_expires_at = c.c_until, due_at = c.c_until, updated_at = c.c_updated
	FROM c WHERE r.id = c.c_id
	RETURNING ` + recordsReturning

// runClaims runs a batch of by-id claims (PostgreSQL) as one statement,
// outside every transaction, and answers each: the run as claimed, or why
// not (ErrNotClaimable naming its status, ErrNotFound). The statement runs
// to its end once started, without the callers' cancellations but under
// the earliest of their deadlines (see batchContext).
func (s *Store) runClaims(batch []*writeOp) {
	ctx, cancel := batchContext(batch)
	defer cancel()
	cols := make(pgColumns, 6)
	var asked []*writeOp
	seen := map[string]bool{}
	for _, w := range batch {
		if !w.start() {
			w.done <- w.ctx.Err()
			continue
		}
		c := w.claim
		asked = append(asked, w)
		if seen[c.id] {
			continue // claimed once at most: the other claims find it in progress
		}
		seen[c.id] = true
		cols.add(c.id, c.token, c.worker, c.now, c.until, c.updated)
	}
	if len(asked) == 0 {
		return
	}
	claimed := map[string]retry.Run{}
	runs, err := queryRuns(ctx, pgPrepared{s: s}, claimsSQL, cols.args()...)
	for _, r := range runs {
		claimed[r.ClaimToken] = r
	}
	for _, w := range asked {
		r, ok := claimed[w.claim.token]
		switch {
		case err != nil:
			w.done <- err
		case ok:
			w.claim.run = r
			w.done <- nil
		default:
			w.done <- refused(ctx, pgPrepared{s: s}, w.claim.id, retry.ErrNotClaimable)
		}
	}
}

// ClaimDue claims up to limit due runs, earliest due first; see
// [retry.Claimer]. One statement claims the whole batch: on SQLite the
// single writer makes it atomic, on PostgreSQL FOR UPDATE SKIP LOCKED lets
// claimers in other processes take other rows instead of waiting.
func (s *Store) ClaimDue(ctx context.Context, worker string, dueBy, now time.Time, lease time.Duration, limit int) ([]retry.Run, error) {
	if err := storecheck.ClaimDue(worker, dueBy, now, lease, limit); err != nil {
		return nil, fmt.Errorf("claim due: %w", err)
	}
	until, prefix := ms(now.Add(lease)), newToken()+"."
	set := []any{prefix, worker, until, until, datetime(now)}
	var runs []retry.Run
	err := s.claim(ctx, "claim due", func(ctx context.Context, tx queryer) error {
		var err error
		if s.pg {
			// The status condition is checked outside the ordered scan:
			// PostgreSQL, without statistics on a new or freshly filled
			// table, guesses that it keeps few rows, and then reads and
			// sorts every due row instead of the first in index order (a
			// batch of 100 among 10,000 due runs: 4.4 ms instead of 0.9).
			// due_at is NULL for every run that has ended, so the scan
			// meets another status only in a row written outside the store,
			// which it then leaves alone.
			runs, err = queryRuns(ctx, tx, `WITH due AS MATERIALIZED (SELECT id AS due_id FROM journey_runs WHERE due_at <= ?
	ORDER BY due_at LIMIT ? FOR UPDATE SKIP LOCKED)
UPDATE journey_runs SET `+claimSet+` FROM due WHERE id = due.due_id AND `+claimableStatus+` RETURNING `+runColumns,
				append([]any{ms(dueBy), limit}, set...)...)
			return err
		}
		// SQLite: without RETURNING (see writeRun), then read back the rows
		// that carry this batch's tokens: they are due when the new lease
		// ends. OR FAIL: no statement journal to undo a partial update.
		// The claim leaves the status alone, and a second statement sets it
		// where it changes: SQLite maintains every index whose columns or
		// condition an UPDATE's SET names, and the status has eight partial
		// indexes (the counts and the dashboard's), which runs already in
		// progress (expired leases) would each cost a delete and an insert
		// for nothing.
		res, err := tx.ExecContext(ctx, `UPDATE OR FAIL journey_runs SET `+claimHold+`
WHERE id IN (SELECT id FROM journey_runs WHERE `+claimable+` ORDER BY due_at LIMIT ?)`, append(set, ms(dueBy), limit)...)
		if err != nil {
			return err
		}
		// The batch's size: nothing to read back when nothing was due.
		n, err := res.RowsAffected()
		if err != nil || n == 0 {
			runs = nil // this may run again after its group commit rolled back
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE OR FAIL journey_runs SET status = 'in_progress'
WHERE due_at = ? AND substr(claim_token, 1, ?) = ? AND status <> 'in_progress'`, until, len(prefix), prefix); err != nil {
			return err
		}
		// The read-back reads only the columns the claim left alone; the
		// others hold what it set, updated_at at the millisecond precision
		// of its text, as a read would return it.
		claimed := retry.Run{Status: retry.StatusInProgress, ClaimToken: prefix, ClaimedBy: worker,
			LeaseExpiresAt: time.UnixMilli(until).UTC(), UpdatedAt: time.UnixMilli(ms(now)).UTC()}
		runs, err = queryScan(ctx, tx, int(n), scanClaimed(claimed),
			`SELECT `+unclaimedColumns+` FROM journey_runs
WHERE due_at = ? AND substr(claim_token, 1, ?) = ?`, until, len(prefix), prefix)
		return err
	})
	return runs, err
}

// ExtendLease moves c's lease to now + lease; see [retry.Claimer].
func (s *Store) ExtendLease(ctx context.Context, c retry.Claim, now time.Time, lease time.Duration) (retry.Claim, error) {
	if err := storecheck.Claim(c, now); err != nil {
		return retry.Claim{}, fmt.Errorf("extend lease: %w", err)
	}
	if err := storecheck.Lease(now, lease); err != nil {
		return retry.Claim{}, fmt.Errorf("extend lease of %s: %w", retry.QuoteID(c.RunID), err)
	}
	until := now.Add(lease).Truncate(time.Millisecond).UTC()
	err := s.write(ctx, "extend lease", c.RunID, func(ctx context.Context, tx queryer) error {
		res, err := tx.ExecContext(ctx, `UPDATE journey_runs SET lease_expires_at = ?, due_at = ?, updated_at = ?
WHERE `+heldBy, ms(until), ms(until), datetime(now), c.RunID, c.Token, ms(now))
		if err != nil {
			return err
		}
		if ok, err := affected(res); err != nil || ok {
			return err
		}
		return lostOrMissing(ctx, tx, c)
	})
	if err != nil {
		return retry.Claim{}, err
	}
	c.LeaseExpiresAt = until
	return c, nil
}

// releaseSet is the SET clause that gives a claim up.
const releaseSet = `claim_token = NULL, claimed_by = NULL, lease_expires_at = NULL`

// Release gives c up, leaving the run claimable at once; see
// [retry.Claimer].
func (s *Store) Release(ctx context.Context, c retry.Claim, now time.Time) error {
	if err := storecheck.Claim(c, now); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	return s.write(ctx, "release", c.RunID, func(ctx context.Context, tx queryer) error {
		res, err := tx.ExecContext(ctx, `UPDATE journey_runs SET `+releaseSet+`, due_at = ?, updated_at = ?
WHERE `+heldBy, ms(now), datetime(now), c.RunID, c.Token, ms(now))
		if err != nil {
			return err
		}
		if ok, err := affected(res); err != nil || ok {
			return err
		}
		return lostOrMissing(ctx, tx, c)
	})
}
