// Package pgtest gives each test its own PostgreSQL schema, so test
// packages that share one database (go test ./... runs packages in
// parallel) never see each other's tables.
//
//	func TestSomething(t *testing.T) {
//		dsn := pgtest.DSN(t) // skips unless RETRY_TEST_POSTGRES_URL is set
//		s, err := storage.Open(t.Context(), storage.Config{DSN: dsn})
//		...
//	}
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun/driver/pgdriver"
)

// EnvURL names the environment variable holding the PostgreSQL URL the
// tests use, for example postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const EnvURL = "RETRY_TEST_POSTGRES_URL"

// DSN creates a new, empty schema on the database named by
// RETRY_TEST_POSTGRES_URL, drops it when t ends, and returns a DSN whose
// connections use it (search_path). It skips t when the variable is unset
// and fails it when the database cannot be reached.
func DSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		t.Skipf("%s is not set: skipping the PostgreSQL test", EnvURL)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", EnvURL, err)
	}
	schema := "t_" + strings.ToLower(rand.Text())
	db := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(base)))
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("%s: create schema: %v", EnvURL, err)
	}
	t.Cleanup(func() {
		db := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(base)))
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
