package state_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/server/state"
)

// Tokens: the value is shown once and stored hashed; it authenticates until it expires or is revoked; bad names,
// scopes and lifetimes are refused; the database file is 0600; reopening migrates nothing twice, and a database
// of a newer schema is refused.
func TestTokens(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "state.db")
	st, err := state.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	v, tok, err := st.CreateToken(ctx, "ci", state.ScopeOperate, time.Hour, now)
	if err != nil || !strings.HasPrefix(v, state.TokenPrefix) || len(v) < 50 || tok.Scope != state.ScopeOperate {
		t.Fatalf("CreateToken = %q %+v %v", v, tok, err)
	}
	if got, ok, err := st.Authenticate(ctx, v, now.Add(time.Minute)); !ok || err != nil || got.Name != "ci" {
		t.Errorf("Authenticate = %+v %v %v", got, ok, err)
	}
	for _, bad := range []string{"", "myx_", v + "x", strings.ToUpper(v), "Bearer " + v} {
		if _, ok, _ := st.Authenticate(ctx, bad, now); ok {
			t.Errorf("Authenticate(%q) passed", bad)
		}
	}
	if _, ok, _ := st.Authenticate(ctx, v, now.Add(time.Hour)); ok {
		t.Error("an expired token passed")
	}
	for _, c := range []struct {
		name  string
		scope state.Scope
		ttl   time.Duration
		want  error
	}{
		{"ci", state.ScopeRead, time.Hour, errdefs.ErrAlreadyExists},
		{"bad name", state.ScopeRead, time.Hour, errdefs.ErrInvalidArgument},
		{"x", "root", time.Hour, errdefs.ErrInvalidArgument},
		{"x", state.ScopeRead, 0, errdefs.ErrInvalidArgument},
		{"x", state.ScopeRead, 400 * 24 * time.Hour, errdefs.ErrInvalidArgument},
	} {
		if _, _, err := st.CreateToken(ctx, c.name, c.scope, c.ttl, now); !errors.Is(err, c.want) {
			t.Errorf("CreateToken(%q, %q, %s) = %v, want %v", c.name, c.scope, c.ttl, err, c.want)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil || strings.Contains(string(raw), v) {
		t.Error("the database holds the token's value")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the database's mode = %v, %v", fi.Mode(), err)
	}
	if err := st.RevokeToken(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := st.Authenticate(ctx, v, now); ok {
		t.Error("a revoked token passed")
	}
	if err := st.RevokeToken(ctx, "ci"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("revoking again = %v", err)
	}
	if !state.ScopeAdmin.Allows(state.ScopeRead) || state.ScopeRead.Allows(state.ScopeOperate) || state.Scope("x").Allows("x") {
		t.Error("Allows")
	}
	st.Close()

	// Reopened: the migrations are not run again; a newer schema is refused.
	st, err = state.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE schema_version SET version = 999`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := state.OpenSQLite(ctx, path); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("a newer schema = %v, want ErrNotImplemented", err)
	}
}
