package sqlpoll_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/schedulertest"
	"github.com/journeyretry/journeyretry/scheduler/sqlpoll"
	"github.com/journeyretry/journeyretry/storage"
	"github.com/journeyretry/journeyretry/storage/pgtest"
)

// The tests open the database as the demo does: through the store, whose
// database the scheduler shares (storage.Store.DB).

func TestConformanceSQLite(t *testing.T) {
	schedulertest.Run(t, factory(func(t *testing.T) string { return filepath.Join(t.TempDir(), "s.db") }))
}

func TestConformancePostgres(t *testing.T) {
	pgtest.DSN(t) // skips the whole test unless the variable is set
	schedulertest.Run(t, factory(func(t *testing.T) string { return pgtest.DSN(t) }))
}

// factory returns fresh backends on a new database from dsn; Open is a
// second store and scheduler on the same database, as another process
// would open them.
func factory(dsn func(t *testing.T) string) schedulertest.Factory {
	return func(t *testing.T) schedulertest.Backend {
		d := dsn(t)
		return schedulertest.Backend{
			Scheduler: open(t, openDB(t, d), sqlpoll.Config{}),
			Lease:     sqlpoll.LeaseDefault,
			Open: func(t *testing.T) retry.Scheduler {
				return open(t, openDB(t, d), sqlpoll.Config{})
			},
		}
	}
}

// openDB opens a store on dsn, migrates the scheduler's table in its
// database and returns it; the store closes when t ends.
func openDB(t testing.TB, dsn string) *bun.DB {
	t.Helper()
	st, err := storage.Open(context.Background(), storage.Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := sqlpoll.Migrate(context.Background(), st.DB()); err != nil {
		t.Fatal(err)
	}
	return st.DB()
}

// open returns a scheduler on db that closes when t ends.
func open(t testing.TB, db *bun.DB, cfg sqlpoll.Config) *sqlpoll.Scheduler {
	t.Helper()
	s, err := sqlpoll.New(context.Background(), db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestDurable: entries and outstanding deliveries outlive every handle on
// the database.
func TestDurable(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "s.db")
	ctx := t.Context()
	now := time.UnixMilli(1_000_000_000_000)
	func() {
		st, err := storage.Open(ctx, storage.Config{DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := sqlpoll.Migrate(ctx, st.DB()); err != nil {
			t.Fatal(err)
		}
		s, err := sqlpoll.New(ctx, st.DB(), sqlpoll.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for _, id := range []string{"a", "b"} {
			if err := s.Schedule(ctx, id, now); err != nil {
				t.Fatal(err)
			}
		}
		if ds, err := s.Claim(ctx, now, 1); err != nil || len(ds) != 1 || ds[0].ID != "a" {
			t.Fatalf("Claim = %v, %v; want a", ds, err)
		}
	}()
	s := open(t, openDB(t, dsn), sqlpoll.Config{})
	ds, err := s.Claim(ctx, now, 10)
	if err != nil || len(ds) != 1 || ds[0].ID != "b" {
		t.Fatalf("after reopening, Claim = %v, %v; want b (a is still leased)", ds, err)
	}
	if err := s.Ack(ctx, ds[0]); err != nil {
		t.Fatal(err)
	}
	if ds, err := s.Claim(ctx, now.Add(sqlpoll.LeaseDefault), 10); err != nil || len(ds) != 1 || ds[0].ID != "a" {
		t.Fatalf("after the lease, Claim = %v, %v; want a again", ds, err)
	}
}

func TestRestoreKeepsEntries(t *testing.T) {
	s := open(t, openDB(t, filepath.Join(t.TempDir(), "s.db")), sqlpoll.Config{})
	ctx := t.Context()
	now := time.UnixMilli(1_000_000_000_000)
	if err := s.Schedule(ctx, "a", now); err != nil {
		t.Fatal(err)
	}
	d, err := s.Claim(ctx, now, 1)
	if err != nil || len(d) != 1 {
		t.Fatalf("Claim = %v, %v", d, err)
	}
	// Restoring a delivered entry or a pending one changes neither.
	if err := s.Restore(ctx, "a", now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.Schedule(ctx, "b", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.Restore(ctx, "b", now); err != nil {
		t.Fatal(err)
	}
	if err := s.Restore(ctx, "c", now); err != nil {
		t.Fatal(err)
	}
	if ds, err := s.Claim(ctx, now, 10); err != nil || len(ds) != 1 || ds[0].ID != "c" {
		t.Fatalf("Claim = %v, %v; want only c (a delivered, b due in an hour)", ds, err)
	}
	if err := s.Ack(ctx, d[0]); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Len(ctx); err != nil || n != 2 {
		t.Fatalf("Len = %d, %v; want 2 (b, c)", n, err)
	}
}

func TestBadInput(t *testing.T) {
	s := open(t, openDB(t, filepath.Join(t.TempDir(), "s.db")), sqlpoll.Config{})
	ctx := t.Context()
	for name, err := range map[string]error{
		"zero time":  s.Schedule(ctx, "a", time.Time{}),
		"year 10000": s.Schedule(ctx, "a", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)),
		"NUL id":     s.Schedule(ctx, "a\x00", time.Now()),
		"invalid id": s.Restore(ctx, "\xff", time.Now()),
		"nil tx":     s.ScheduleTx(ctx, nil, "a", time.Now()),
		"cancel NUL": s.Cancel(ctx, "\x00"),
		"config":     func() error { _, err := sqlpoll.New(ctx, nil, sqlpoll.Config{}); return err }(),
	} {
		if !errors.Is(err, retry.ErrInvalidArgument) {
			t.Errorf("%s: %v; want retry.ErrInvalidArgument", name, err)
		}
	}
	for field, cfg := range map[string]sqlpoll.Config{"Lease": {Lease: -1}, "PollInterval": {PollInterval: -1}} {
		err := cfg.Validate()
		if fe, ok := errors.AsType[*retry.FieldError](err); !ok || fe.Field != field || !errors.Is(err, retry.ErrInvalidArgument) {
			t.Errorf("Validate(%+v) = %v; want a retry.FieldError naming %s, wrapping ErrInvalidArgument", cfg, err, field)
		}
	}
	if n, err := s.Len(ctx); err != nil || n != 0 {
		t.Fatalf("Len = %d, %v; want 0: bad input wrote something", n, err)
	}
}
