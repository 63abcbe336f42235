package state_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/server/state"
)

// Sessions: made from a valid token only, never outliving it, gone when signed out or when the token is revoked;
// the store keeps no session value.
func TestSessions(t *testing.T) {
	onBoth(t, func(t *testing.T, where string) {
		ctx := context.Background()
		now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		st := open(t, where)
		tok, _, err := st.CreateToken(ctx, "ui", state.ScopeOperate, 2*time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, ok, err := st.CreateSession(ctx, tok+"x", time.Hour, now); ok || err != nil {
			t.Fatalf("a session from a wrong token: ok %v, err %v", ok, err)
		}
		if _, _, _, err := st.CreateSession(ctx, tok, 13*time.Hour, now); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("a 13 h session: %v; want ErrInvalidArgument", err)
		}
		v, sess, ok, err := st.CreateSession(ctx, tok, 12*time.Hour, now)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		if !sess.Expires.Equal(now.Add(2*time.Hour)) || sess.Token.Name != "ui" || sess.Token.Scope != state.ScopeOperate {
			t.Fatalf("session %+v: want it to end with its token, at %s", sess, now.Add(2*time.Hour))
		}
		if v == tok || len(v) < 40 || v[:5] != state.SessionPrefix {
			t.Fatalf("session value %q", v)
		}
		got, ok, err := st.AuthenticateSession(ctx, v, now.Add(time.Hour))
		if err != nil || !ok || got.Token.Name != "ui" {
			t.Fatalf("AuthenticateSession = %+v, %v, %v", got, ok, err)
		}
		if _, ok, _ := st.AuthenticateSession(ctx, v, now.Add(2*time.Hour)); ok {
			t.Fatal("a session past its token's expiry still authenticates")
		}
		if _, ok, _ := st.AuthenticateSession(ctx, tok, now); ok {
			t.Fatal("a token authenticates as a session")
		}
		if state.CSRFToken(v) == state.CSRFToken(v+"x") || len(state.CSRFToken(v)) != 64 {
			t.Fatal("CSRF tokens do not depend on the session")
		}
		// Signed out.
		if err := st.DeleteSession(ctx, v); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := st.AuthenticateSession(ctx, v, now); ok {
			t.Fatal("a session signed out still authenticates")
		}
		// Revoking the token ends its sessions.
		v2, _, _, err := st.CreateSession(ctx, tok, time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.RevokeToken(ctx, "ui"); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := st.AuthenticateSession(ctx, v2, now); ok {
			t.Fatal("a session of a revoked token still authenticates")
		}
	})
}
