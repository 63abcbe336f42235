package state

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/codomyrmex/containerization/errdefs"
)

// SessionPrefix starts every session value (the dashboard's cookie).
const SessionPrefix = "myxs_"

// MaxSessionLifetime bounds a session's life; it never outlives its token either.
const MaxSessionLifetime = 12 * time.Hour

// Session is a browser's sign-in, made from a token.
type Session struct {
	Token   Token     `json:"token"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// CreateSession signs a browser in with the token whose value is token: it returns the session's value (the
// only time it is seen; the store keeps its SHA-256) valid for ttl (at most [MaxSessionLifetime], and never past
// the token's expiry). ok is false when the token is not a valid one. Expired sessions are deleted on the way.
func (s *Store) CreateSession(ctx context.Context, token string, ttl time.Duration, now time.Time) (value string, sess *Session, ok bool, err error) {
	if ttl <= 0 || ttl > MaxSessionLifetime {
		return "", nil, false, fmt.Errorf("%w: a session lives from a second to %s, not %s", errdefs.ErrInvalidArgument, MaxSessionLifetime, ttl)
	}
	tok, ok, err := s.Authenticate(ctx, token, now)
	if err != nil || !ok {
		return "", nil, false, err
	}
	if _, err := s.exec(ctx, `DELETE FROM sessions WHERE expires <= ?`, now.UnixNano()); err != nil {
		return "", nil, false, fmt.Errorf("state: %w", err)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	value = SessionPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw))
	sess = &Session{Token: *tok, Created: now.UTC(), Expires: now.Add(ttl).UTC()}
	if tok.Expires.Before(sess.Expires) {
		sess.Expires = tok.Expires
	}
	if _, err := s.exec(ctx, `INSERT INTO sessions (hash, token, created, expires) VALUES (?, ?, ?, ?)`,
		hashToken(value), tok.Name, sess.Created.UnixNano(), sess.Expires.UnixNano()); err != nil {
		return "", nil, false, fmt.Errorf("state: %w", err)
	}
	return value, sess, true, nil
}

// AuthenticateSession returns the session whose value is v and its token, both unexpired; ok is false
// otherwise (a revoked token takes its sessions with it).
func (s *Store) AuthenticateSession(ctx context.Context, v string, now time.Time) (*Session, bool, error) {
	if !strings.HasPrefix(v, SessionPrefix) || len(v) > 128 {
		return nil, false, nil
	}
	var sess Session
	var scope string
	var created, expires, tcreated, texpires int64
	err := s.queryRow(ctx, `SELECT s.created, s.expires, t.name, t.scope, t.created, t.expires
		FROM sessions s JOIN tokens t ON t.name = s.token WHERE s.hash = ?`, hashToken(v)).
		Scan(&created, &expires, &sess.Token.Name, &scope, &tcreated, &texpires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state: %w", err)
	}
	sess.Created, sess.Expires = time.Unix(0, created).UTC(), time.Unix(0, expires).UTC()
	sess.Token.Scope, sess.Token.Created, sess.Token.Expires = Scope(scope), time.Unix(0, tcreated).UTC(), time.Unix(0, texpires).UTC()
	if !now.Before(sess.Expires) || !now.Before(sess.Token.Expires) {
		return nil, false, nil
	}
	return &sess, true, nil
}

// DeleteSession signs a session out; one not there is not an error.
func (s *Store) DeleteSession(ctx context.Context, v string) error {
	if _, err := s.exec(ctx, `DELETE FROM sessions WHERE hash = ?`, hashToken(v)); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// CSRFToken is the value a signed-in page must send back (X-CSRF-Token) with every change it asks for: derived
// from the session's value, which the page cannot read (HttpOnly), so a page of another site cannot know it.
func CSRFToken(session string) string {
	h := sha256.Sum256([]byte("myrmex-csrf\x00" + session))
	return hex.EncodeToString(h[:])
}
