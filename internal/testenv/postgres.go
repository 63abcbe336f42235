package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// Postgres returns the URL of a new, empty database on the test PostgreSQL server (MYRMEX_TEST_POSTGRES, which
// scripts/postgres.sh starts and `make test` exports), dropped when the test ends. It skips or fails (see the
// package doc) when no server answers.
func Postgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv("MYRMEX_TEST_POSTGRES")
	if base == "" {
		if Required() {
			t.Fatal("the tests need PostgreSQL: MYRMEX_TEST_POSTGRES is not set (make test starts one: scripts/postgres.sh)")
		}
		t.Skip("no PostgreSQL (run `make test`, which starts one; or scripts/postgres.sh up and export MYRMEX_TEST_POSTGRES)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.PingContext(ctx); err != nil {
		if Required() {
			t.Fatalf("the tests need PostgreSQL at MYRMEX_TEST_POSTGRES: %v", err)
		}
		t.Skipf("no PostgreSQL answers at MYRMEX_TEST_POSTGRES: %v", err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "myrmex_test_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer admin.Close()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("dropping the test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
