// Package state is the server's durable state: API tokens (hashed, with scopes and expiry), jobs with their
// events and results, and the audit log. It runs on SQLite (modernc.org/sqlite: pure Go, the build stays
// static), with schema migrations applied on open.
package state

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/codomyrmex/containerization/errdefs"
)

// Scope is what a token may do: read < operate < admin.
type Scope string

// The scopes.
const (
	ScopeRead    Scope = "read"
	ScopeOperate Scope = "operate"
	ScopeAdmin   Scope = "admin"
)

// Allows reports whether s covers need.
func (s Scope) Allows(need Scope) bool { return s.rank() >= need.rank() && need.rank() > 0 }

func (s Scope) rank() int {
	switch s {
	case ScopeRead:
		return 1
	case ScopeOperate:
		return 2
	case ScopeAdmin:
		return 3
	}
	return 0
}

// ParseScope reads a scope's name.
func ParseScope(s string) (Scope, error) {
	if sc := Scope(s); sc.rank() > 0 {
		return sc, nil
	}
	return "", fmt.Errorf("%w: scope %q: want read, operate or admin", errdefs.ErrInvalidArgument, s)
}

// Store is the state in one database.
type Store struct {
	db *sql.DB
}

// TokenPrefix starts every token, so that a leaked one is recognisable (by scanners, by people).
const TokenPrefix = "myx_"

// migrations are applied in order, each once; a database newer than this program is refused.
var migrations = []string{
	`CREATE TABLE tokens (
		name TEXT PRIMARY KEY,
		hash TEXT NOT NULL UNIQUE,
		scope TEXT NOT NULL,
		created INTEGER NOT NULL,
		expires INTEGER NOT NULL,
		last_used INTEGER NOT NULL DEFAULT 0
	)`,
	`CREATE TABLE jobs (
		id TEXT PRIMARY KEY,
		kind TEXT NOT NULL,
		subject TEXT NOT NULL,
		state TEXT NOT NULL,
		owner TEXT NOT NULL,
		created INTEGER NOT NULL,
		started INTEGER NOT NULL DEFAULT 0,
		finished INTEGER NOT NULL DEFAULT 0,
		result TEXT NOT NULL DEFAULT '',
		error TEXT NOT NULL DEFAULT ''
	)`,
	`CREATE TABLE job_events (
		job TEXT NOT NULL,
		seq INTEGER NOT NULL,
		event TEXT NOT NULL,
		PRIMARY KEY (job, seq)
	)`,
	`CREATE TABLE audit (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		time INTEGER NOT NULL,
		token TEXT NOT NULL,
		method TEXT NOT NULL,
		path TEXT NOT NULL,
		status INTEGER NOT NULL,
		outcome TEXT NOT NULL
	)`,
	`CREATE INDEX audit_time ON audit (time)`,
}

// OpenSQLite opens (creating it when missing, 0600) the database at path and migrates it.
func OpenSQLite(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: no state database path", errdefs.ErrInvalidArgument)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("%w: state database %s: %v", errdefs.ErrInvalidArgument, path, err)
	} else {
		f.Close()
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1) // one writer: SQLite serialises them anyway, and this keeps "database is locked" away
	s := &Store{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := s.db.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return fmt.Errorf("state: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("%w: the state database has schema version %d; this myrmex knows %d", errdefs.ErrNotImplemented, v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("state: %w", err)
		}
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("state: migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, i+1); err != nil {
			tx.Rollback()
			return fmt.Errorf("state: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("state: %w", err)
		}
	}
	return nil
}

// Token is a token as it is stored: never its value.
type Token struct {
	Name     string    `json:"name"`
	Scope    Scope     `json:"scope"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires"`
	LastUsed time.Time `json:"last_used,omitzero"`
}

var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// MaxTokenLifetime bounds a token's life.
const MaxTokenLifetime = 366 * 24 * time.Hour

// CreateToken makes a token named name with scope, valid for ttl, and returns its value: the only time it is
// seen (the store keeps its SHA-256).
func (s *Store) CreateToken(ctx context.Context, name string, scope Scope, ttl time.Duration, now time.Time) (string, *Token, error) {
	if !tokenNameRE.MatchString(name) {
		return "", nil, fmt.Errorf("%w: token name %q: want [A-Za-z0-9][A-Za-z0-9_.-]*, at most 64", errdefs.ErrInvalidArgument, name)
	}
	if scope.rank() == 0 {
		return "", nil, fmt.Errorf("%w: scope %q: want read, operate or admin", errdefs.ErrInvalidArgument, scope)
	}
	if ttl <= 0 || ttl > MaxTokenLifetime {
		return "", nil, fmt.Errorf("%w: a token lives from a second to %s, not %s", errdefs.ErrInvalidArgument, MaxTokenLifetime, ttl)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	value := TokenPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw))
	t := &Token{Name: name, Scope: scope, Created: now.UTC(), Expires: now.Add(ttl).UTC()}
	_, err := s.db.ExecContext(ctx, `INSERT INTO tokens (name, hash, scope, created, expires) VALUES (?, ?, ?, ?, ?)`,
		name, hashToken(value), string(scope), t.Created.UnixNano(), t.Expires.UnixNano())
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return "", nil, fmt.Errorf("%w: a token named %s exists (revoke it first)", errdefs.ErrAlreadyExists, name)
		}
		return "", nil, fmt.Errorf("state: %w", err)
	}
	return value, t, nil
}

func hashToken(v string) string {
	h := sha256.Sum256([]byte(v))
	return hex.EncodeToString(h[:])
}

// Authenticate returns the token whose value is v, unexpired; ok is false otherwise. The lookup is by the
// value's hash, so the comparison is on hashes of equal length.
func (s *Store) Authenticate(ctx context.Context, v string, now time.Time) (*Token, bool, error) {
	if !strings.HasPrefix(v, TokenPrefix) || len(v) > 128 {
		return nil, false, nil
	}
	var t Token
	var scope string
	var created, expires, last int64
	err := s.db.QueryRowContext(ctx, `SELECT name, scope, created, expires, last_used FROM tokens WHERE hash = ?`, hashToken(v)).
		Scan(&t.Name, &scope, &created, &expires, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state: %w", err)
	}
	t.Scope, t.Created, t.Expires = Scope(scope), time.Unix(0, created).UTC(), time.Unix(0, expires).UTC()
	if !now.Before(t.Expires) {
		return nil, false, nil
	}
	// The last use, to the minute: not a write per request.
	if now.Sub(time.Unix(0, last)) > time.Minute {
		_, _ = s.db.ExecContext(ctx, `UPDATE tokens SET last_used = ? WHERE name = ?`, now.UnixNano(), t.Name)
		last = now.UnixNano()
	}
	if last > 0 {
		t.LastUsed = time.Unix(0, last).UTC()
	}
	return &t, true, nil
}

// Tokens lists the tokens, by name.
func (s *Store) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, scope, created, expires, last_used FROM tokens ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	defer rows.Close()
	out := []Token{}
	for rows.Next() {
		var t Token
		var scope string
		var created, expires, last int64
		if err := rows.Scan(&t.Name, &scope, &created, &expires, &last); err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
		t.Scope, t.Created, t.Expires = Scope(scope), time.Unix(0, created).UTC(), time.Unix(0, expires).UTC()
		if last > 0 {
			t.LastUsed = time.Unix(0, last).UTC()
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken deletes the token named name; one not there is ErrNotFound.
func (s *Store) RevokeToken(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM tokens WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: no token named %s", errdefs.ErrNotFound, name)
	}
	return nil
}

// AuditEntry is one change made through the API.
type AuditEntry struct {
	ID      int64     `json:"id"`
	Time    time.Time `json:"time"`
	Token   string    `json:"token"` // the token's name, never its value
	Method  string    `json:"method"`
	Path    string    `json:"path"`
	Status  int       `json:"status"`
	Outcome string    `json:"outcome"`
}

// Audit records a change.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit (time, token, method, path, status, outcome) VALUES (?, ?, ?, ?, ?, ?)`,
		e.Time.UnixNano(), e.Token, e.Method, e.Path, e.Status, e.Outcome)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// AuditLog returns the newest entries, at most limit (1 to 1000), older than before when before > 0.
func (s *Store) AuditLog(ctx context.Context, limit int, before int64) ([]AuditEntry, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	q, args := `SELECT id, time, token, method, path, status, outcome FROM audit ORDER BY id DESC LIMIT ?`, []any{limit}
	if before > 0 {
		q, args = `SELECT id, time, token, method, path, status, outcome FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?`, []any{before, limit}
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var t int64
		if err := rows.Scan(&e.ID, &t, &e.Token, &e.Method, &e.Path, &e.Status, &e.Outcome); err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
		e.Time = time.Unix(0, t).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// Job is a long operation run by the server.
type Job struct {
	ID       string          `json:"id"`
	Kind     string          `json:"kind"`    // build, scan, push, pull, copy, optimize, apply, pipeline
	Subject  string          `json:"subject"` // the image, deployment or pipeline
	State    string          `json:"state"`   // queued, running, succeeded, failed, canceled
	Owner    string          `json:"owner"`   // the token's name
	Created  time.Time       `json:"created"`
	Started  time.Time       `json:"started,omitzero"`
	Finished time.Time       `json:"finished,omitzero"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    json.RawMessage `json:"error,omitempty"`
}

// The job states.
const (
	JobQueued    = "queued"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
	JobCanceled  = "canceled"
)

// Done reports whether the job has ended.
func (j *Job) Done() bool {
	return j.State == JobSucceeded || j.State == JobFailed || j.State == JobCanceled
}

// CreateJob stores a new queued job.
func (s *Store) CreateJob(ctx context.Context, j *Job) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO jobs (id, kind, subject, state, owner, created) VALUES (?, ?, ?, ?, ?, ?)`,
		j.ID, j.Kind, j.Subject, j.State, j.Owner, j.Created.UnixNano())
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// UpdateJob stores the job's state, times, result and error.
func (s *Store) UpdateJob(ctx context.Context, j *Job) error {
	_, err := s.db.ExecContext(ctx, `UPDATE jobs SET state = ?, started = ?, finished = ?, result = ?, error = ? WHERE id = ?`,
		j.State, nanos(j.Started), nanos(j.Finished), string(j.Result), string(j.Error), j.ID)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// GetJob reads a job; one not there is ErrNotFound.
func (s *Store) GetJob(ctx context.Context, id string) (*Job, error) {
	var j Job
	var created, started, finished int64
	var result, jerr string
	err := s.db.QueryRowContext(ctx, `SELECT id, kind, subject, state, owner, created, started, finished, result, error FROM jobs WHERE id = ?`, id).
		Scan(&j.ID, &j.Kind, &j.Subject, &j.State, &j.Owner, &created, &started, &finished, &result, &jerr)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: no job %s", errdefs.ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	j.Created = time.Unix(0, created).UTC()
	if started > 0 {
		j.Started = time.Unix(0, started).UTC()
	}
	if finished > 0 {
		j.Finished = time.Unix(0, finished).UTC()
	}
	if result != "" {
		j.Result = json.RawMessage(result)
	}
	if jerr != "" {
		j.Error = json.RawMessage(jerr)
	}
	return &j, nil
}

// Jobs lists the newest jobs, at most limit (1 to 1000).
func (s *Store) Jobs(ctx context.Context, limit int) ([]Job, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM jobs ORDER BY created DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("state: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	out := []Job{}
	for _, id := range ids {
		j, err := s.GetJob(ctx, id)
		if err != nil {
			return nil, err
		}
		j.Result, j.Error = nil, nil // a listing, not the results
		out = append(out, *j)
	}
	return out, nil
}

// AddEvent appends one event (JSON) to a job's log.
func (s *Store) AddEvent(ctx context.Context, job string, seq int, event []byte) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO job_events (job, seq, event) VALUES (?, ?, ?)`, job, seq, string(event))
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// Events returns a job's events from seq on, in order.
func (s *Store) Events(ctx context.Context, job string, from int) ([]json.RawMessage, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT event FROM job_events WHERE job = ? AND seq >= ? ORDER BY seq`, job, from)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	defer rows.Close()
	var out []json.RawMessage
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
		out = append(out, json.RawMessage(e))
	}
	return out, rows.Err()
}

// FailUnfinished marks the jobs a previous run of the server left queued or running as failed: their process
// is gone (one server per SQLite database).
func (s *Store) FailUnfinished(ctx context.Context, now time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET state = ?, finished = ?, error = ? WHERE state IN (?, ?)`,
		JobFailed, now.UnixNano(), `{"class":"Error","code":"internal","message":"the server stopped while the job ran"}`, JobQueued, JobRunning)
	if err != nil {
		return 0, fmt.Errorf("state: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
