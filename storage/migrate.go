package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"

	"github.com/journeyretry/journeyretry/internal/storecheck"
	"github.com/journeyretry/journeyretry/retry"
)

// ErrDowngradeBlocked is returned by [Store.MigrateDown] while runs hold a
// status the legacy schema does not know ([retry.LegacyStatuses]): the
// legacy system would not know what to do with them.
var ErrDowngradeBlocked = errors.New("downgrade blocked")

// Migration names, in order. bun's migrate package records each in the
// journeyretry_migrations table once applied.
const (
	migrationLegacy = "20260101000000"
	migrationRetry  = "20260101000001"
	migrationReads  = "20260101000002"
	migrationOps    = "20260101000003"
	migrationNodes  = "20260101000004"
	// migrationBudgets adds the retry budgets' tables. Its number leaves
	// room below it for migrations of other features.
	migrationBudgets = "20260101000010"
	// migrationCounts adds countIndexes.
	migrationCounts = "20260101000011"
	// migrationUnknownStatus redefines the unknown-status index
	// (unknownStatusIndexes).
	migrationUnknownStatus = "20260101000012"
	// migrationNextRetry makes the next_retry_at index partial
	// (nextRetryIndexes).
	migrationNextRetry = "20260101000013"
)

// operatorColumns are the columns migration 3 adds for operators'
// controls: a run's policy override (JSON, set by a replay with options)
// and the operator act an attempt row records (JSON: who replayed or
// cancelled, from where, with what, and the outputs a replay moved aside).
var operatorColumns = []addedColumn{
	{"journey_runs", "policy_override", "TEXT"},
	{"journey_run_attempts", "operator_act", "TEXT"},
}

// nodeColumns are the columns migration 4 adds to journey_runs: the
// current node's snoozes and when its first attempt began (the elapsed
// time a policy may bound). Existing rows take the defaults: no snooze,
// no start recorded, which the next attempt records.
var nodeColumns = []addedColumn{
	{"journey_runs", "snooze_count", "INTEGER DEFAULT 0"},
	{"journey_runs", "node_started_at", "BIGINT"},
}

// addedColumn is a column a migration adds to a table.
type addedColumn struct{ table, name, sqlType string }

// index is an index of a migration: its name, and its definition after ON.
type index struct{ name, def string }

// readIndexes are the indexes migration 2 creates for operators' reads:
// ended runs by status in id order (the dashboard's dead-letter pages) and
// attempts by finish time (activity over time). The first two are partial,
// one per failed status: an index over every status would offer claims,
// whose statements filter on status too, a plan slower than their
// due-time indexes.
var readIndexes = []index{
	{"idx_journey_runs_failed_id", "journey_runs(id) WHERE status = 'failed'"},
	{"idx_journey_runs_failed_max_retries_id", "journey_runs(id) WHERE status = 'failed_max_retries'"},
	{"idx_journey_run_attempts_finished", "journey_run_attempts(finished_at)"},
}

// countIndexes are the indexes migration 11 creates so that every read of
// the dashboard's pages and the metrics' gauge walks entries of one index
// and reads no row but those it returns: the counts of runs by status and
// by retry count, the dead-letter pages with their filters, the error
// patterns and the activity over time. The runs' indexes are partial, for
// the reason readIndexes gives: one per status but completed (a claim
// statement, whose condition names three statuses, can use none), each
// failed status's in id order with the columns the dead-letter filters
// test, and one over the runs of a status no store writes (normally
// none). Completed runs need none: they are counted as the rest (see
// countQuery). Four begin with the columns of an index they supersede
// (supersededIndexes).
var countIndexes = []index{
	{"idx_journey_runs_in_progress_retries", "journey_runs(status, retry_count) WHERE status = 'in_progress'"},
	{"idx_journey_runs_retrying_retries", "journey_runs(status, retry_count) WHERE status = 'retrying'"},
	{"idx_journey_runs_waiting_retries", "journey_runs(status, retry_count) WHERE status = 'waiting'"},
	{"idx_journey_runs_failed_filters", "journey_runs(id, journey_id, last_error_class) WHERE status = 'failed'"},
	{"idx_journey_runs_failed_max_retries_filters", "journey_runs(id, journey_id, last_error_class) WHERE status = 'failed_max_retries'"},
	{"idx_journey_runs_cancelled", "journey_runs(status) WHERE status = 'cancelled'"},
	unknownStatusIndexes[0],
	{"idx_journey_run_attempts_failed_errors", "journey_run_attempts(finished_at, outcome, error_class, error_message) WHERE outcome = 'failed'"},
	{"idx_journey_run_attempts_finished_outcomes", "journey_run_attempts(finished_at, outcome, status_after, error_class, error_message)"},
}

// unknownStatusIndexes are the index over the runs of an unknown status
// as migration 11 defined it, and as migration 12 redefines it, under
// unknownStatus. SQLite tests a partial index's condition on every write
// of a row (an UPDATE: before and after), and builds a temporary table for
// each test of a NOT IN list of more than two values: in page-cache memory
// mapped and unmapped each time, about a sixth of the CPU of an attempt.
// The comparisons of unknownStatus build none.
var unknownStatusIndexes = [2]index{
	{"idx_journey_runs_unknown_status", "journey_runs(status) WHERE status NOT IN ('in_progress', 'completed', 'failed', 'retrying', 'failed_max_retries', 'waiting', 'cancelled')"},
	{"idx_journey_runs_unknown_status", "journey_runs(status) WHERE " + unknownStatus},
}

// nextRetryIndexes are the proposal's index on next_retry_at as migration 1
// creates it, over every run, and as migration 13 redefines it, over the
// runs waiting for a retry. It still serves the proposal's lookup (status
// = 'retrying' AND next_retry_at <= now), but a run that is new, ended or
// retried at once under the claim it keeps (in progress) has no entry, so
// the writes of the attempt path leave it alone: on SQLite a page less in
// the log of such a transaction, on PostgreSQL an index entry less.
var nextRetryIndexes = [2]index{
	{"idx_journey_runs_next_retry_at", "journey_runs(next_retry_at)"},
	{"idx_journey_runs_next_retry_at", "journey_runs(next_retry_at) WHERE status = 'retrying'"},
}

// supersededIndexes are the indexes of migrations 1 and 2 that migration
// 11 drops: a countIndexes index begins with each one's columns, under the
// same condition, so keeping them would only slow the writes.
var supersededIndexes = []index{
	{"idx_journey_runs_failed_id", "journey_runs(id) WHERE status = 'failed'"},
	{"idx_journey_runs_failed_max_retries_id", "journey_runs(id) WHERE status = 'failed_max_retries'"},
	{"idx_journey_run_attempts_failed", "journey_run_attempts(finished_at) WHERE outcome = 'failed'"},
	{"idx_journey_run_attempts_finished", "journey_run_attempts(finished_at)"},
}

// retryColumns are the columns migration 1 adds to journey_runs, with their
// SQL types: the design's six first (times as Unix milliseconds, see the
// package comment), then what claims, resumption and history need.
var retryColumns = []struct{ name, sqlType string }{
	{"retry_count", "INTEGER DEFAULT 0"},
	{"max_retries", "INTEGER DEFAULT 3"},
	{"last_error_message", "TEXT"},
	{"last_error_timestamp", "BIGINT"},
	{"next_retry_at", "BIGINT"},
	{"retry_enabled", "BOOLEAN DEFAULT true"},
	{"journey_version", "INTEGER DEFAULT 0"},
	{"context", "TEXT"},
	{"last_error_class", "TEXT"},
	{"last_delay_ms", "BIGINT DEFAULT 0"},
	{"wake_at", "BIGINT"},
	{"attempt_count", "INTEGER DEFAULT 0"},
	{"claim_token", "TEXT"},
	{"claimed_by", "TEXT"},
	{"lease_expires_at", "BIGINT"},
	{"due_at", "BIGINT"},
}

// retryIndexes are the indexes migration 1 creates: the design's two, and
// the one claims use.
var retryIndexes = []index{
	nextRetryIndexes[0],
	{"idx_journey_runs_retrying", "journey_runs(status) WHERE status = 'retrying'"},
	{"idx_journey_runs_due_at", "journey_runs(due_at) WHERE due_at IS NOT NULL"},
}

// Migrate applies every migration not yet applied, in order; on an up to
// date database it changes nothing. On a fresh database the first creates
// the legacy journey_runs table, so fresh and upgraded databases end
// identical. Every migration and its record run in one transaction (both
// dialects have transactional DDL): a failed Migrate leaves the database
// as it was, bookkeeping table included.
//
// Migrate does not touch the rows a legacy system left in flight: while it
// may still be running them (phase 1 of the rollout, docs/design.md), the store must not
// hand them to workers. [Store.AdoptLegacy] does that, at cutover.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.checkOpen("migrate"); err != nil {
		return err
	}
	return s.migrateTx(ctx, func(ctx context.Context, tx bun.Tx, applied map[string]*migrate.Migration) error {
		group := int64(1)
		for _, m := range applied {
			group = max(group, m.GroupID+1)
		}
		up, _ := s.steps()
		for _, m := range s.migrations().Sorted() {
			if applied[m.Name] != nil {
				continue
			}
			if err := up[m.Name](ctx, tx); err != nil {
				return fmt.Errorf("%s %s: %w", m.Name, m.Comment, err)
			}
			rec := &migrate.Migration{Name: m.Name, GroupID: group, MigratedAt: time.Now()}
			if _, err := tx.NewInsert().Model(rec).ModelTableExpr(migrationsTable).Exec(ctx); err != nil {
				return fmt.Errorf("record %s: %w", m.Name, err)
			}
		}
		return nil
	})
}

// PendingMigrations returns how many of the store's migrations the
// database has not applied: 0 on a database ready for use. It writes
// nothing (Migrate creates the bookkeeping tables), so a read-only tool can
// tell an operator to migrate first instead of failing on a missing table.
func (s *Store) PendingMigrations(ctx context.Context) (int, error) {
	if err := s.checkOpen("pending migrations"); err != nil {
		return 0, err
	}
	all := s.migrations().Sorted()
	q := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'journeyretry_migrations'`
	if s.pg {
		q = `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'journeyretry_migrations'`
	}
	var tables int
	if err := s.rdb.QueryRowContext(ctx, q).Scan(&tables); err != nil {
		return 0, fmt.Errorf("pending migrations: %w", err)
	}
	if tables == 0 {
		return len(all), nil
	}
	names := make([]string, len(all))
	for i, m := range all {
		names[i] = m.Name
	}
	var applied int
	if err := s.rdb.NewRaw(`SELECT COUNT(DISTINCT name) FROM journeyretry_migrations WHERE name IN (?)`, bun.List(names)).Scan(ctx, &applied); err != nil {
		return 0, fmt.Errorf("pending migrations: %w", err)
	}
	return len(all) - applied, nil
}

// LegacyAdoption counts what [Store.AdoptLegacy] did.
type LegacyAdoption struct {
	// Adopted runs are claimable at once, journey_version set to the
	// latest registered version of their journey: workers resume them at
	// their current node under that definition.
	Adopted int
	// Malformed runs had no current node, or a current node or an id no
	// store accepts as an identifier (NUL or invalid UTF-8, which SQLite
	// lets a legacy writer store): nothing can resume them, so they ended
	// failed, class malformed_node (validation for the id), with the
	// reason in their history.
	Malformed int
	// Unregistered runs were of a journey the given registry lacks: no
	// worker runs them, so they ended failed, class missing_journey, with
	// the reason in their history.
	Unregistered int
}

// legacyInFlight selects the rows a legacy system left in flight: in
// progress with no due time and no claim, which the store itself never
// writes.
const legacyInFlight = `status = 'in_progress' AND due_at IS NULL AND claim_token IS NULL`

// AdoptLegacy makes the runs a legacy system left in flight claimable at
// once. It is the cutover step of a phased rollout, the operator's
// explicit act once every legacy writer has stopped (the demo's "migrate
// --adopt-legacy"); adopting while a legacy writer still runs a row would
// execute it twice. Call it after Migrate.
//
// A legacy row has no journey version (journey_version 0, which no
// definition has). versions is the registry of the program that adopts:
// the latest registered version of each journey id (what
// [executor.Executor.Versions] returns once the journeys the workers run
// are registered). Each row at version 0 of a journey in versions, in
// flight or finished, gets the version of its journey, the one deployed
// at the cutover, so workers resume an adopted run, and a replay runs a
// finished one, like any run that pinned a version; no legacy column
// changes. An in-flight row of a journey versions lacks, or with no usable
// current node, is not adopted but ended (see [LegacyAdoption]), at now,
// all in one transaction. It is idempotent: a second call finds nothing
// to adopt. A version below 1 wraps [retry.ErrInvalidArgument].
//
// [executor.Executor.Versions]: https://pkg.go.dev/github.com/journeyretry/journeyretry/executor#Executor.Versions
func (s *Store) AdoptLegacy(ctx context.Context, now time.Time, versions map[string]int) (LegacyAdoption, error) {
	var a LegacyAdoption
	if err := s.checkOpen("adopt legacy runs"); err != nil {
		return a, err
	}
	for id, v := range versions {
		if v < 1 || v > math.MaxInt32 {
			return a, fmt.Errorf("adopt legacy runs: journey %s version %d: want 1 to %d: %w", retry.QuoteID(id), v, math.MaxInt32, retry.ErrInvalidArgument)
		}
	}
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		ends, err := legacyEnds(ctx, tx, versions)
		if err != nil {
			return err
		}
		for _, e := range ends {
			if err := endLegacy(ctx, tx, e, now); err != nil {
				return fmt.Errorf("end run %s: %w", retry.QuoteID(e.id), err)
			}
			if e.class == retry.ClassMissingJourney {
				a.Unregistered++
			} else {
				a.Malformed++
			}
		}
		for id, v := range versions {
			res, err := tx.ExecContext(ctx, `UPDATE journey_runs SET due_at = 0 WHERE `+legacyInFlight+` AND journey_id = ?`, id)
			var n int
			if err == nil {
				n, err = rowsAffected(res)
			}
			if err == nil { // the finished legacy rows too, so that a replay runs them
				_, err = tx.ExecContext(ctx, `UPDATE journey_runs SET journey_version = ? WHERE journey_version = 0 AND journey_id = ?`, v, id)
			}
			if err != nil {
				return fmt.Errorf("adopt journey %s: %w", retry.QuoteID(id), err)
			}
			a.Adopted += n
		}
		return nil
	})
	if err != nil {
		return LegacyAdoption{}, fmt.Errorf("adopt legacy runs: %w", err)
	}
	return a, nil
}

// legacyEnd is a legacy in-flight row that cannot be adopted.
type legacyEnd struct {
	id, node string
	class    retry.Class
	reason   string
}

// legacyEnds reads the legacy in-flight rows and returns those adoption
// ends: an id or a current node that is not storable text, no current
// node, or a journey versions lacks. Identifiers are checked here, in Go, because
// SQL cannot tell invalid UTF-8 on SQLite.
func legacyEnds(ctx context.Context, tx bun.Tx, versions map[string]int) ([]legacyEnd, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, journey_id, current_node_id FROM journey_runs WHERE `+legacyInFlight)
	if err != nil {
		return nil, fmt.Errorf("read legacy runs: %w", err)
	}
	defer rows.Close()
	var ends []legacyEnd
	for rows.Next() {
		var id, journey string
		var node sql.NullString
		if err := rows.Scan(&id, &journey, &node); err != nil {
			return nil, fmt.Errorf("read legacy runs: %w", err)
		}
		e := legacyEnd{id: id, class: retry.ClassMalformedNode}
		switch {
		case !retry.StorableText(id):
			e.node, e.class = storecheck.Storable(node.String), retry.ClassValidation
			e.reason = fmt.Sprintf("legacy run id %s holds a NUL byte or invalid UTF-8: no write under a claim accepts it", retry.QuoteID(id))
		case node.String == "":
			e.reason = "legacy run has no current node: nothing to resume"
		case !retry.StorableText(node.String):
			e.node = storecheck.Storable(node.String)
			e.reason = fmt.Sprintf("legacy run's current node %s holds a NUL byte or invalid UTF-8: nothing to resume", retry.QuoteID(node.String))
		case versions[journey] == 0:
			e.node, e.class = node.String, retry.ClassMissingJourney
			e.reason = fmt.Sprintf("journey %s is not registered where the legacy run was adopted: no worker runs it", retry.QuoteID(journey))
		default:
			continue
		}
		ends = append(ends, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read legacy runs: %w", err)
	}
	return ends, nil
}

// endLegacy ends legacy row e failed, with one attempt saying why.
func endLegacy(ctx context.Context, tx bun.Tx, e legacyEnd, now time.Time) error {
	exec := tx.ExecContext
	if !retry.StorableText(e.id) {
		// bun writes arguments into the SQL text, which cannot carry
		// such an id (only SQLite stores one); the driver binds it.
		exec = tx.Tx.ExecContext
	}
	if _, err := exec(ctx, `INSERT INTO journey_run_attempts (`+attemptColumns+`)
SELECT id, attempt_count + 1, ?, retry_count + 1, NULL, NULL, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL
FROM journey_runs WHERE id = ?`,
		e.node, ms(now), string(retry.OutcomeFailed), string(e.class), e.reason,
		false, 0, "none", string(e.class), false, false, string(retry.StatusFailed), e.id); err != nil {
		return fmt.Errorf("record attempt: %w", err)
	}
	_, err := exec(ctx, `UPDATE journey_runs SET status = ?, last_error_class = ?,
	last_error_message = ?, last_error_timestamp = ?, attempt_count = attempt_count + 1, updated_at = ?
WHERE id = ?`,
		string(retry.StatusFailed), string(e.class), e.reason, ms(now), datetime(now), e.id)
	return err
}

func rowsAffected(res sql.Result) (int, error) {
	n, err := res.RowsAffected()
	return int(n), err
}

// MigrateDown reverts the retry migration: it drops the attempts table, the
// retry indexes and the retry columns, leaving the legacy table (and any
// column the store never heard of) as it was, in one transaction. It
// refuses, with an error wrapping [ErrDowngradeBlocked] that counts the
// runs in each unknown status, while any run holds a status outside
// [retry.LegacyStatuses], except [retry.StatusCancelled], which it maps to
// [retry.StatusFailed].
func (s *Store) MigrateDown(ctx context.Context) error {
	if err := s.checkOpen("migrate down"); err != nil {
		return err
	}
	return s.migrateTx(ctx, func(ctx context.Context, tx bun.Tx, applied map[string]*migrate.Migration) error {
		_, down := s.steps()
		ms := s.migrations().Sorted()
		for i := len(ms) - 1; i >= 0; i-- {
			rec := applied[ms[i].Name]
			if rec == nil || down[ms[i].Name] == nil {
				continue // the legacy table is never dropped
			}
			if err := down[ms[i].Name](ctx, tx); err != nil {
				return err
			}
			if _, err := tx.NewDelete().Model(rec).ModelTableExpr(migrationsTable).Where("id = ?", rec.ID).Exec(ctx); err != nil {
				return err
			}
		}
		return nil
	})
}

// migrationsTable records the applied migrations, in the table layout of
// bun's migrate package (which earlier versions of the store used).
const migrationsTable = "journeyretry_migrations"

// migrateTx runs f in one transaction with the applied migrations by
// name, creating the bookkeeping table first if needed. On PostgreSQL a
// transaction-scoped advisory lock makes processes migrating one schema
// at once take turns; on SQLite the IMMEDIATE transaction does.
func (s *Store) migrateTx(ctx context.Context, f func(context.Context, bun.Tx, map[string]*migrate.Migration) error) error {
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if s.pg {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('journeyretry.migrate.' || current_schema()))`); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
		}
		if _, err := tx.NewCreateTable().Model((*migrate.Migration)(nil)).ModelTableExpr(migrationsTable).IfNotExists().Exec(ctx); err != nil {
			return fmt.Errorf("init: %w", err)
		}
		var recs []*migrate.Migration
		if err := tx.NewSelect().ColumnExpr("*").Model(&recs).ModelTableExpr(migrationsTable).Scan(ctx); err != nil {
			return fmt.Errorf("init: %w", err)
		}
		applied := map[string]*migrate.Migration{}
		for _, r := range recs {
			applied[r.Name] = r
		}
		return f(ctx, tx, applied)
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// migrations lists the store's migrations, by name and comment, for
// ordering and for PendingMigrations; steps holds what they do.
func (s *Store) migrations() *migrate.Migrations {
	ms := migrate.NewMigrations()
	ms.Add(migrate.Migration{Name: migrationLegacy, Comment: "legacy_journey_runs"})
	ms.Add(migrate.Migration{Name: migrationRetry, Comment: "retry_columns_and_attempts"})
	ms.Add(migrate.Migration{Name: migrationReads, Comment: "read_indexes"})
	ms.Add(migrate.Migration{Name: migrationOps, Comment: "operator_controls"})
	ms.Add(migrate.Migration{Name: migrationNodes, Comment: "node_snoozes_and_start"})
	ms.Add(migrate.Migration{Name: migrationBudgets, Comment: "retry_budgets"})
	ms.Add(migrate.Migration{Name: migrationCounts, Comment: "count_indexes"})
	ms.Add(migrate.Migration{Name: migrationUnknownStatus, Comment: "unknown_status_index"})
	ms.Add(migrate.Migration{Name: migrationNextRetry, Comment: "next_retry_at_index_partial"})
	return ms
}

// migrationStep is one direction of a migration, inside migrateTx's
// transaction.
type migrationStep func(context.Context, bun.Tx) error

// steps returns what each migration does up and down, by name (the legacy
// table is never dropped).
func (s *Store) steps() (up, down map[string]migrationStep) {
	return map[string]migrationStep{migrationLegacy: s.createLegacyTable, migrationRetry: s.addRetrySchema, migrationReads: createIndexes(readIndexes),
			migrationOps: addColumns(operatorColumns), migrationNodes: addColumns(nodeColumns), migrationBudgets: addBudgetTables,
			migrationCounts:        replaceIndexes(supersededIndexes, countIndexes),
			migrationUnknownStatus: replaceIndexes(unknownStatusIndexes[:1], unknownStatusIndexes[1:]),
			migrationNextRetry:     replaceIndexes(nextRetryIndexes[:1], nextRetryIndexes[1:])},
		map[string]migrationStep{migrationRetry: s.dropRetrySchema, migrationReads: dropIndexes(readIndexes),
			migrationOps: dropColumns(operatorColumns), migrationNodes: dropColumns(nodeColumns), migrationBudgets: dropBudgetTables,
			migrationCounts:        replaceIndexes(countIndexes, supersededIndexes),
			migrationUnknownStatus: replaceIndexes(unknownStatusIndexes[1:], unknownStatusIndexes[:1]),
			migrationNextRetry:     replaceIndexes(nextRetryIndexes[1:], nextRetryIndexes[:1])}
}

// budgetTables are the retry budgets' tables (see budget.go): each key's
// state, and the attempts of each scope per bucket of its window.
var budgetTables = []struct{ name, def string }{
	{"journey_retry_budgets", `budget_key TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at BIGINT NOT NULL`},
	{"journey_retry_budget_attempts", `scope TEXT NOT NULL, bucket BIGINT NOT NULL, attempts BIGINT NOT NULL,
	PRIMARY KEY (scope, bucket)`},
}

// addBudgetTables creates budgetTables.
func addBudgetTables(ctx context.Context, tx bun.Tx) error {
	for _, t := range budgetTables {
		if _, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+t.name+" ("+t.def+")"); err != nil {
			return fmt.Errorf("create table %s: %w", t.name, err)
		}
	}
	return nil
}

// addColumns returns the migration step that adds cols.
func addColumns(cols []addedColumn) migrationStep {
	return func(ctx context.Context, tx bun.Tx) error {
		for _, c := range cols {
			if _, err := tx.ExecContext(ctx, "ALTER TABLE "+c.table+" ADD COLUMN "+c.name+" "+c.sqlType); err != nil {
				return fmt.Errorf("add column %s.%s: %w", c.table, c.name, err)
			}
		}
		return nil
	}
}

// dropColumns returns the migration step that drops cols.
func dropColumns(cols []addedColumn) migrationStep {
	return func(ctx context.Context, tx bun.Tx) error {
		for _, c := range cols {
			if _, err := tx.ExecContext(ctx, "ALTER TABLE "+c.table+" DROP COLUMN "+c.name); err != nil {
				return fmt.Errorf("drop column %s.%s: %w", c.table, c.name, err)
			}
		}
		return nil
	}
}

// dropBudgetTables drops budgetTables.
func dropBudgetTables(ctx context.Context, tx bun.Tx) error {
	for _, t := range budgetTables {
		if _, err := tx.ExecContext(ctx, "DROP TABLE IF EXISTS "+t.name); err != nil {
			return fmt.Errorf("drop table %s: %w", t.name, err)
		}
	}
	return nil
}

// replaceIndexes is the step that drops old and creates ixs.
func replaceIndexes(old, ixs []index) migrationStep {
	return func(ctx context.Context, tx bun.Tx) error {
		if err := dropIndexes(old)(ctx, tx); err != nil {
			return err
		}
		return createIndexes(ixs)(ctx, tx)
	}
}

// createIndexes is the step that creates ixs.
func createIndexes(ixs []index) migrationStep {
	return func(ctx context.Context, tx bun.Tx) error {
		for _, ix := range ixs {
			if _, err := tx.ExecContext(ctx, "CREATE INDEX IF NOT EXISTS "+ix.name+" ON "+ix.def); err != nil {
				return fmt.Errorf("create index %s: %w", ix.name, err)
			}
		}
		return nil
	}
}

// dropIndexes is the step that drops ixs.
func dropIndexes(ixs []index) migrationStep {
	return func(ctx context.Context, tx bun.Tx) error {
		for _, ix := range ixs {
			if _, err := tx.ExecContext(ctx, "DROP INDEX IF EXISTS "+ix.name); err != nil {
				return fmt.Errorf("drop index %s: %w", ix.name, err)
			}
		}
		return nil
	}
}

func (s *Store) inTx(ctx context.Context, f func(context.Context, bun.Tx) error) error {
	return s.db.RunInTx(ctx, nil, f)
}

// createLegacyTable creates journey_runs as the pre-retry system had it,
// unless it exists. DATETIME is SQLite's spelling; PostgreSQL keeps the
// same text in TEXT.
func (s *Store) createLegacyTable(ctx context.Context, tx bun.Tx) error {
	dt := "DATETIME"
	if s.pg {
		dt = "TEXT"
	}
	_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS journey_runs (
	id TEXT PRIMARY KEY,
	journey_id TEXT NOT NULL,
	status TEXT NOT NULL,
	current_node_id TEXT,
	created_at `+dt+` DEFAULT CURRENT_TIMESTAMP,
	updated_at `+dt+` DEFAULT CURRENT_TIMESTAMP
)`)
	return err
}

// addRetrySchema is phase 1 of docs/design.md: it adds the columns it lacks
// (with their defaults, which existing rows take), the indexes and the
// attempts table. It touches no column it does not own. Legacy in-flight
// runs are adopted by [Store.AdoptLegacy] at cutover, not here.
func (s *Store) addRetrySchema(ctx context.Context, tx bun.Tx) error {
	have, err := s.columns(ctx, tx)
	if err != nil {
		return err
	}
	for _, c := range retryColumns {
		if slices.Contains(have, c.name) {
			continue
		}
		if _, err := tx.ExecContext(ctx, "ALTER TABLE journey_runs ADD COLUMN "+c.name+" "+c.sqlType); err != nil {
			return fmt.Errorf("add column %s: %w", c.name, err)
		}
	}
	if err := createIndexes(retryIndexes)(ctx, tx); err != nil {
		return err
	}
	for _, stmt := range []string{`CREATE TABLE IF NOT EXISTS journey_run_attempts (
	run_id TEXT NOT NULL,
	number INTEGER NOT NULL,
	node_id TEXT NOT NULL,
	node_attempt INTEGER NOT NULL,
	worker TEXT,
	claim_token TEXT,
	started_at BIGINT,
	finished_at BIGINT NOT NULL,
	outcome TEXT NOT NULL,
	error_class TEXT,
	error_message TEXT,
	decision_retry BOOLEAN NOT NULL DEFAULT false,
	decision_delay_ms BIGINT NOT NULL DEFAULT 0,
	decision_strategy TEXT,
	decision_rule TEXT,
	decision_exhausted BOOLEAN NOT NULL DEFAULT false,
	shadow BOOLEAN NOT NULL DEFAULT false,
	status_after TEXT NOT NULL,
	PRIMARY KEY (run_id, number)
)`,
		`CREATE INDEX IF NOT EXISTS idx_journey_run_attempts_failed ON journey_run_attempts(finished_at) WHERE outcome = 'failed'`,
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// dropRetrySchema reverts addRetrySchema, refusing while runs hold
// statuses the legacy schema does not know. Cancelled runs become failed
// first: they have ended without completing, which is what the legacy
// system's failed means, and nothing is left to run for them.
func (s *Store) dropRetrySchema(ctx context.Context, tx bun.Tx) error {
	if _, err := tx.ExecContext(ctx, `UPDATE journey_runs SET status = ? WHERE status = ?`,
		string(retry.StatusFailed), string(retry.StatusCancelled)); err != nil {
		return fmt.Errorf("map cancelled runs to failed: %w", err)
	}
	legacy := make([]string, len(retry.LegacyStatuses))
	for i, st := range retry.LegacyStatuses {
		legacy[i] = string(st)
	}
	rows, err := tx.QueryContext(ctx, `SELECT status, COUNT(*) FROM journey_runs WHERE status NOT IN (?) GROUP BY status ORDER BY status`, bun.List(legacy))
	if err != nil {
		return err
	}
	var blocked []string
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			rows.Close()
			return err
		}
		blocked = append(blocked, fmt.Sprintf("%d %q", n, st))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(blocked) > 0 {
		return fmt.Errorf("%w: runs hold statuses the legacy schema does not know (%s): let them finish, or end them, first",
			ErrDowngradeBlocked, strings.Join(blocked, ", "))
	}
	stmts := []string{`DROP TABLE IF EXISTS journey_run_attempts`}
	for _, ix := range retryIndexes {
		stmts = append(stmts, "DROP INDEX IF EXISTS "+ix.name)
	}
	have, err := s.columns(ctx, tx)
	if err != nil {
		return err
	}
	for _, c := range retryColumns {
		if slices.Contains(have, c.name) {
			stmts = append(stmts, "ALTER TABLE journey_runs DROP COLUMN "+c.name)
		}
	}
	for _, stmt := range stmts {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return nil
}

// columns lists journey_runs' columns.
func (s *Store) columns(ctx context.Context, tx bun.Tx) ([]string, error) {
	q := `SELECT name FROM pragma_table_info('journey_runs')`
	if s.pg {
		q = `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'journey_runs'`
	}
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	return cols, rows.Err()
}
