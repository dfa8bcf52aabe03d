package sqlpoll

import (
	"context"
	"fmt"
	"strings"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/migrate"
)

// The table: next_ms is when the entry is next handed out (its due time,
// or once delivered its lease's end), and the one column claims and polls
// scan, by its index; token is empty until the entry is delivered.
// On SQLite the table is WITHOUT ROWID, clustered on id: one B-tree
// fewer for every write to keep.
func createTable(pg bool) []string {
	clustered := " WITHOUT ROWID"
	if pg {
		clustered = ""
	}
	return []string{
		`CREATE TABLE IF NOT EXISTS ` + Table + ` (
	id TEXT PRIMARY KEY,
	due_ms BIGINT NOT NULL,
	next_ms BIGINT NOT NULL,
	token TEXT NOT NULL DEFAULT ''
)` + clustered,
		`CREATE INDEX IF NOT EXISTS idx_` + Table + `_next_ms ON ` + Table + ` (next_ms)`,
	}
}

// queries are the scheduler's statements in one dialect's placeholders
// (they also run in a caller's *sql.Tx, below bun).
type queries struct {
	schedule, scheduleNotify, restore, restoreNotify string
	cancel, ack, claim, earliest                     string
}

func queriesFor(pg bool) queries {
	const (
		insert   = `INSERT INTO ` + Table + ` (id, due_ms, next_ms, token) VALUES (?, ?, ?, '')`
		replace  = ` ON CONFLICT (id) DO UPDATE SET due_ms = excluded.due_ms, next_ms = excluded.next_ms, token = ''`
		keep     = ` ON CONFLICT (id) DO NOTHING`
		selectID = `SELECT id FROM ` + Table + ` WHERE next_ms <= ? ORDER BY next_ms LIMIT ?`
	)
	q := queries{
		cancel: `DELETE FROM ` + Table + ` WHERE id = ?`,
		ack:    `DELETE FROM ` + Table + ` WHERE id = ? AND token = ?`,
		// Whether anything is due, and the earliest time after now: a look
		// that finds due entries still knows when to look again.
		earliest: `SELECT EXISTS (SELECT 1 FROM ` + Table + ` WHERE next_ms <= ?1), (SELECT MIN(next_ms) FROM ` + Table + ` WHERE next_ms > ?1)`,
	}
	if !pg {
		// SQLite numbers ?NNN placeholders, so the due time is bound once.
		q.schedule = strings.Replace(insert, "?, ?, ?", "?1, ?2, ?2", 1) + replace
		q.restore = strings.Replace(insert, "?, ?, ?", "?1, ?2, ?2", 1) + keep
		q.scheduleNotify, q.restoreNotify = q.schedule, q.restore
		q.claim = `UPDATE ` + Table + ` SET token = ?, next_ms = ? WHERE id IN (` + selectID + `) RETURNING id, due_ms`
		return q
	}
	ins := strings.Replace(insert, "?, ?, ?", "$1, $2, $2", 1)
	// A data-modifying CTE runs whatever the outer query reads: the
	// notification goes out with the write, at commit.
	notify := func(stmt string) string {
		return `WITH w AS (` + stmt + ` RETURNING due_ms) SELECT pg_notify('` + Table + `', due_ms::text) FROM w`
	}
	q.schedule, q.restore = ins+replace, ins+keep
	q.scheduleNotify, q.restoreNotify = notify(q.schedule), notify(q.restore)
	q.earliest = strings.ReplaceAll(q.earliest, "?1", "$1")
	q.cancel = `DELETE FROM ` + Table + ` WHERE id = $1`
	q.ack = `DELETE FROM ` + Table + ` WHERE id = $1 AND token = $2`
	q.claim = `WITH c AS (SELECT id FROM ` + Table + ` WHERE next_ms <= $3 ORDER BY next_ms LIMIT $4 FOR UPDATE SKIP LOCKED)
UPDATE ` + Table + ` w SET token = $1, next_ms = $2 FROM c WHERE w.id = c.id RETURNING w.id, w.due_ms`
	return q
}

// Migrate creates the scheduler's table and index unless they exist,
// recording its migration in the sqlpoll_migrations table with bun's
// migrate. It is idempotent, so calling it on every start is fine; on
// PostgreSQL concurrent calls wait for each other.
func Migrate(ctx context.Context, db *bun.DB) error {
	pg := db.Dialect().Name() == dialect.PG
	ms := migrate.NewMigrations()
	ms.Add(migrate.Migration{
		Name:    "20260201000000",
		Comment: "sqlpoll_wakeups",
		Up: func(ctx context.Context, _ *migrate.Migrator, _ *migrate.Migration) error {
			return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				for _, stmt := range createTable(pg) {
					if _, err := tx.ExecContext(ctx, stmt); err != nil {
						return err
					}
				}
				return nil
			})
		},
		Down: func(ctx context.Context, _ *migrate.Migrator, _ *migrate.Migration) error {
			_, err := db.ExecContext(ctx, `DROP TABLE IF EXISTS `+Table)
			return err
		},
	})
	m := migrate.NewMigrator(db, ms,
		migrate.WithTableName("sqlpoll_migrations"),
		migrate.WithLocksTableName("sqlpoll_migration_locks"),
		migrate.WithMarkAppliedOnSuccess(true))
	if pg {
		conn, err := db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("sqlpoll: migrate: %w", err)
		}
		defer conn.Close() // closing the connection unlocks too
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(hashtext('journeyretry.sqlpoll.' || current_schema()))`); err != nil {
			return fmt.Errorf("sqlpoll: migrate: lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), //nolint:errcheck // see above
			`SELECT pg_advisory_unlock(hashtext('journeyretry.sqlpoll.' || current_schema()))`)
	}
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("sqlpoll: migrate: init: %w", err)
	}
	if _, err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("sqlpoll: migrate: %w", err)
	}
	return nil
}
