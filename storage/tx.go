package storage

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/journeyretry/journeyretry/retry"
)

var _ retry.TxStore = (*Store)(nil)

// SQLDB returns the pool the store writes through (on SQLite, the writer's
// one connection): a [retry.TxScheduler] opened on [Store.DB] shares it,
// and with it the store's transactions.
func (s *Store) SQLDB() *sql.DB { return s.db.DB }

// joinTx runs then, if any, after a write's statements succeeded (err is
// theirs), in the write's transaction. Its failure rolls the transaction
// back whatever it is, so the write is never committed without it.
func joinTx(ctx context.Context, tx queryer, written retry.Run, err error, then retry.TxFunc) error {
	if err != nil || then == nil {
		return err
	}
	if err := then(ctx, sqlTx(tx), written); err != nil {
		return dirty(fmt.Errorf("in transaction: %w", err))
	}
	return nil
}

// sqlTx is the database/sql transaction under the writer's queryer.
func sqlTx(q queryer) *sql.Tx {
	if p, ok := q.(*preparedTx); ok {
		return p.tx.Tx
	}
	return q.(bun.Tx).Tx
}
