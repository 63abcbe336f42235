// Package state is the server's durable state: API tokens (hashed, with scopes and expiry), jobs with their
// events and results, and the audit log. It runs on SQLite (modernc.org/sqlite: pure Go, the build stays
// static) for one server, or on PostgreSQL (pgx) for several replicas sharing the jobs, with schema migrations
// applied on open.
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

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
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

// Store is the state in one database: SQLite (one server) or PostgreSQL (one or several replicas).
type Store struct {
	db       *sql.DB
	postgres bool
}

// TokenPrefix starts every token, so that a leaked one is recognisable (by scanners, by people).
const TokenPrefix = "myx_"

// migration is one step of the schema, in SQLite's words and PostgreSQL's (the same when pg is empty).
type migration struct{ sqlite, pg string }

// migrations are applied in order, each once; a database newer than this program is refused. Times are Unix
// nanoseconds (BIGINT).
var migrations = []migration{
	{sqlite: `CREATE TABLE tokens (
		name TEXT PRIMARY KEY,
		hash TEXT NOT NULL UNIQUE,
		scope TEXT NOT NULL,
		created BIGINT NOT NULL,
		expires BIGINT NOT NULL,
		last_used BIGINT NOT NULL DEFAULT 0
	)`},
	{sqlite: `CREATE TABLE jobs (
		id TEXT PRIMARY KEY,
		kind TEXT NOT NULL,
		subject TEXT NOT NULL,
		state TEXT NOT NULL,
		owner TEXT NOT NULL,
		created BIGINT NOT NULL,
		started BIGINT NOT NULL DEFAULT 0,
		finished BIGINT NOT NULL DEFAULT 0,
		result TEXT NOT NULL DEFAULT '',
		error TEXT NOT NULL DEFAULT ''
	)`},
	{sqlite: `CREATE TABLE job_events (
		job TEXT NOT NULL,
		seq INTEGER NOT NULL,
		event TEXT NOT NULL,
		PRIMARY KEY (job, seq)
	)`},
	{sqlite: `CREATE TABLE audit (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		time BIGINT NOT NULL,
		token TEXT NOT NULL,
		method TEXT NOT NULL,
		path TEXT NOT NULL,
		status INTEGER NOT NULL,
		outcome TEXT NOT NULL
	)`, pg: `CREATE TABLE audit (
		id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		time BIGINT NOT NULL,
		token TEXT NOT NULL,
		method TEXT NOT NULL,
		path TEXT NOT NULL,
		status INTEGER NOT NULL,
		outcome TEXT NOT NULL
	)`},
	{sqlite: `CREATE INDEX audit_time ON audit (time)`},
	// Jobs any replica can run: the request (spec), who runs it (runner) until when (lease), a cancellation asked
	// for from another replica, and how many times it was started.
	{sqlite: `ALTER TABLE jobs ADD COLUMN spec TEXT NOT NULL DEFAULT ''`},
	{sqlite: `ALTER TABLE jobs ADD COLUMN runner TEXT NOT NULL DEFAULT ''`},
	{sqlite: `ALTER TABLE jobs ADD COLUMN lease BIGINT NOT NULL DEFAULT 0`},
	{sqlite: `ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0`},
	{sqlite: `ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0`},
	{sqlite: `CREATE INDEX jobs_state ON jobs (state, created)`},
	{sqlite: `CREATE INDEX jobs_created ON jobs (created)`},
	// Scheduled work (retention policies) done once per schedule and time across replicas.
	{sqlite: `CREATE TABLE schedule_runs (
		name TEXT NOT NULL,
		slot BIGINT NOT NULL,
		runner TEXT NOT NULL,
		started BIGINT NOT NULL,
		PRIMARY KEY (name, slot)
	)`},
	// The scans the server ran, one per job (a scan job's, a build's or a pipeline's), kept as long as the job
	// (deleted with it); the full result is the job's.
	{sqlite: `CREATE TABLE scans (
		job TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
		kind TEXT NOT NULL,
		image TEXT NOT NULL,
		image_name TEXT NOT NULL,
		digest TEXT NOT NULL,
		time BIGINT NOT NULL,
		scan_type TEXT NOT NULL,
		critical INTEGER NOT NULL,
		high INTEGER NOT NULL,
		medium INTEGER NOT NULL,
		low INTEGER NOT NULL,
		unknown INTEGER NOT NULL,
		passed INTEGER NOT NULL,
		verdict TEXT NOT NULL
	)`},
	{sqlite: `CREATE INDEX scans_image ON scans (image, time)`},
	{sqlite: `CREATE INDEX scans_digest ON scans (digest, time)`},
	{sqlite: `CREATE INDEX scans_time ON scans (time)`},
	// The dashboard's sign-ins: a browser holds a session (its value in an HttpOnly cookie, only its hash here)
	// made from a token, which it never sees again; the session goes with its token.
	{sqlite: `CREATE TABLE sessions (
		hash TEXT PRIMARY KEY,
		token TEXT NOT NULL REFERENCES tokens (name) ON DELETE CASCADE,
		created BIGINT NOT NULL,
		expires BIGINT NOT NULL
	)`},
	{sqlite: `CREATE INDEX sessions_expires ON sessions (expires)`},
	// The policy's refusals the server saw (requests, jobs, admission reviews), each with the rules it broke for
	// which images; bounded by count and age as the jobs are (PruneRefusals).
	{sqlite: `CREATE TABLE refusals (
		id TEXT PRIMARY KEY,
		time BIGINT NOT NULL,
		gate TEXT NOT NULL,
		source TEXT NOT NULL,
		subject TEXT NOT NULL,
		token TEXT NOT NULL,
		job TEXT NOT NULL
	)`},
	{sqlite: `CREATE INDEX refusals_time ON refusals (time)`},
	{sqlite: `CREATE TABLE refusal_violations (
		refusal TEXT NOT NULL REFERENCES refusals (id) ON DELETE CASCADE,
		seq INTEGER NOT NULL,
		rule TEXT NOT NULL,
		image TEXT NOT NULL,
		digest TEXT NOT NULL,
		container TEXT NOT NULL,
		finding TEXT NOT NULL,
		PRIMARY KEY (refusal, seq)
	)`},
	{sqlite: `CREATE INDEX refusal_violations_rule ON refusal_violations (rule)`},
	{sqlite: `CREATE INDEX refusal_violations_image ON refusal_violations (image)`},
	// The jobs of one kind (the dashboard's optimizations), newest first.
	{sqlite: `CREATE INDEX jobs_kind ON jobs (kind, created)`},
}

// Open opens the state named by where: a postgres:// (or postgresql://) URL, or the path of a SQLite database.
func Open(ctx context.Context, where string) (*Store, error) {
	if IsPostgres(where) {
		return OpenPostgres(ctx, where)
	}
	return OpenSQLite(ctx, where)
}

// IsPostgres reports whether where names a PostgreSQL database.
func IsPostgres(where string) bool {
	return strings.HasPrefix(where, "postgres://") || strings.HasPrefix(where, "postgresql://")
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

// OpenPostgres connects to the PostgreSQL database at url (postgres://user:password@host:port/db?sslmode=…)
// and migrates it; replicas starting together migrate one at a time (an advisory lock).
func OpenPostgres(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%w: state database URL: %v", errdefs.ErrInvalidArgument, redactURL(err))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(5)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{db: db, postgres: true}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%w: state database: %v", errdefs.ErrUnavailable, redactURL(err))
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Redact is where with a URL's password hidden, for printing.
func Redact(where string) string {
	return passwordRE.ReplaceAllString(where, "://$1:***@")
}

// redactURL keeps a password in a connection error out of what is printed.
func redactURL(err error) string {
	return passwordRE.ReplaceAllString(err.Error(), "://$1:***@")
}

var passwordRE = regexp.MustCompile(`://([^:/@\s]*):[^@\s]*@`)

// Postgres reports whether the store is on PostgreSQL (shared by replicas).
func (s *Store) Postgres() bool { return s.postgres }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// q rewrites a query's ? placeholders as $1, $2, … for PostgreSQL. No query here holds a ? in a literal.
func (s *Store) q(query string) string {
	if !s.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.db.ExecContext(ctx, s.q(query), args...)
}

func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.db.QueryContext(ctx, s.q(query), args...)
}

func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return s.db.QueryRowContext(ctx, s.q(query), args...)
}

// isUnique reports a uniqueness violation, in either database's words.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	return err != nil && strings.Contains(err.Error(), "UNIQUE")
}

func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer conn.Close()
	if s.postgres {
		// One replica migrates at a time; the others wait, then find nothing left to do.
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(7361827364)`); err != nil {
			return fmt.Errorf("state: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(7361827364)`)
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	var v int
	err = conn.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := conn.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return fmt.Errorf("state: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("%w: the state database has schema version %d; this myrmex knows %d", errdefs.ErrNotImplemented, v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		stmt := migrations[i].sqlite
		if s.postgres && migrations[i].pg != "" {
			stmt = migrations[i].pg
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("state: %w", err)
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			tx.Rollback()
			return fmt.Errorf("state: migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE schema_version SET version = ?`), i+1); err != nil {
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
	_, err := s.exec(ctx, `INSERT INTO tokens (name, hash, scope, created, expires) VALUES (?, ?, ?, ?, ?)`,
		name, hashToken(value), string(scope), t.Created.UnixNano(), t.Expires.UnixNano())
	if err != nil {
		if isUnique(err) {
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
	err := s.queryRow(ctx, `SELECT name, scope, created, expires, last_used FROM tokens WHERE hash = ?`, hashToken(v)).
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
		_, _ = s.exec(ctx, `UPDATE tokens SET last_used = ? WHERE name = ?`, now.UnixNano(), t.Name)
		last = now.UnixNano()
	}
	if last > 0 {
		t.LastUsed = time.Unix(0, last).UTC()
	}
	return &t, true, nil
}

// Tokens lists the tokens, by name.
func (s *Store) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := s.query(ctx, `SELECT name, scope, created, expires, last_used FROM tokens ORDER BY name`)
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
	res, err := s.exec(ctx, `DELETE FROM tokens WHERE name = ?`, name)
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
	_, err := s.exec(ctx, `INSERT INTO audit (time, token, method, path, status, outcome) VALUES (?, ?, ?, ?, ?, ?)`,
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
	rows, err := s.query(ctx, q, args...)
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
	// Runner is the server (replica) that runs or ran the job; Attempts how many times one started it (a job
	// whose replica died is taken over by another, up to MaxAttempts).
	Runner   string `json:"runner,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
}

// The job states.
const (
	JobQueued    = "queued"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
	JobCanceled  = "canceled"
)

// MaxAttempts is how many times a job is started at most: once, and once more by another replica when the first
// one's died mid-job (its lease ran out). After that it is failed.
const MaxAttempts = 2

// Done reports whether the job has ended.
func (j *Job) Done() bool {
	return j.State == JobSucceeded || j.State == JobFailed || j.State == JobCanceled
}

const jobColumns = `id, kind, subject, state, owner, created, started, finished, result, error, runner, attempts`

func scanJob(row interface{ Scan(...any) error }) (*Job, error) {
	var j Job
	var created, started, finished int64
	var result, jerr string
	if err := row.Scan(&j.ID, &j.Kind, &j.Subject, &j.State, &j.Owner, &created, &started, &finished, &result, &jerr, &j.Runner, &j.Attempts); err != nil {
		return nil, err
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

// CreateJob stores a new queued job with its request (spec), for whichever replica claims it.
func (s *Store) CreateJob(ctx context.Context, j *Job, spec []byte) error {
	_, err := s.exec(ctx, `INSERT INTO jobs (id, kind, subject, state, owner, created, spec) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		j.ID, j.Kind, j.Subject, j.State, j.Owner, j.Created.UnixNano(), string(spec))
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// ClaimJob takes the oldest queued job of one of kinds (those the runner knows: a replica of an older version
// leaves a newer kind to the others) for runner, marks it running with a lease until lease, and returns it with
// its spec; nil when none is queued. Two replicas never take the same job (on PostgreSQL the row is locked and
// skipped by the others; SQLite has one writer).
func (s *Store) ClaimJob(ctx context.Context, runner string, kinds []string, now, lease time.Time) (*Job, []byte, error) {
	if len(kinds) == 0 {
		return nil, nil, nil
	}
	lock := ""
	if s.postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	args := []any{JobRunning, runner, lease.UnixNano(), now.UnixNano(), JobQueued}
	for _, k := range kinds {
		args = append(args, k)
	}
	row := s.queryRow(ctx, `UPDATE jobs SET state = ?, runner = ?, lease = ?, started = ?, attempts = attempts + 1, cancel_requested = 0
		WHERE id = (SELECT id FROM jobs WHERE state = ? AND kind IN (?`+strings.Repeat(", ?", len(kinds)-1)+`) ORDER BY created, id LIMIT 1`+lock+`)
		RETURNING `+jobColumns+`, spec`, args...)
	var j Job
	var created, started, finished int64
	var result, jerr, spec string
	err := row.Scan(&j.ID, &j.Kind, &j.Subject, &j.State, &j.Owner, &created, &started, &finished, &result, &jerr, &j.Runner, &j.Attempts, &spec)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("state: %w", err)
	}
	j.Created, j.Started = time.Unix(0, created).UTC(), time.Unix(0, started).UTC()
	return &j, []byte(spec), nil
}

// RenewLease extends runner's lease on a running job. held is false when the job is no longer runner's (taken
// over after the lease ran out, or ended): the runner must stop it. cancel reports a cancellation asked for
// (possibly through another replica).
func (s *Store) RenewLease(ctx context.Context, id, runner string, lease time.Time) (held, cancel bool, err error) {
	var c int
	err = s.queryRow(ctx, `UPDATE jobs SET lease = ? WHERE id = ? AND runner = ? AND state = ? RETURNING cancel_requested`,
		lease.UnixNano(), id, runner, JobRunning).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, nil
	}
	if err != nil {
		return true, false, fmt.Errorf("state: %w", err)
	}
	return true, c != 0, nil
}

// FinishJob stores a job's end (state, finish time, result, error), if runner still holds it; held is false
// when it does not (another replica took it over: its end is that replica's to record).
func (s *Store) FinishJob(ctx context.Context, j *Job, runner string) (held bool, err error) {
	res, err := s.exec(ctx, `UPDATE jobs SET state = ?, finished = ?, result = ?, error = ?, lease = 0 WHERE id = ? AND runner = ? AND state = ?`,
		j.State, nanos(j.Finished), string(j.Result), string(j.Error), j.ID, runner, JobRunning)
	if err != nil {
		return true, fmt.Errorf("state: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ReleaseJob puts a running job of runner's back in the queue, for another replica or the next start (a server
// shutting down does not lose its jobs); the attempt it used is given back.
func (s *Store) ReleaseJob(ctx context.Context, id, runner string) error {
	_, err := s.exec(ctx, `UPDATE jobs SET state = ?, runner = '', lease = 0, attempts = attempts - 1 WHERE id = ? AND runner = ? AND state = ?`,
		JobQueued, id, runner, JobRunning)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// RequestCancel cancels a job: a queued one at once (it never starts), a running one by asking its runner (which
// sees it at its next lease renewal, or at once when it is this process). An ended job is ErrConflict.
func (s *Store) RequestCancel(ctx context.Context, id string, now time.Time) (*Job, error) {
	res, err := s.exec(ctx, `UPDATE jobs SET state = ?, finished = ?, error = ? WHERE id = ? AND state = ?`,
		JobCanceled, now.UnixNano(), `{"class":"Error","code":"canceled","message":"canceled before it started"}`, id, JobQueued)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	n, _ := res.RowsAffected()
	if n == 0 {
		if res, err = s.exec(ctx, `UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND state = ?`, id, JobRunning); err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
		n, _ = res.RowsAffected()
	}
	j, err := s.GetJob(ctx, id)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return j, fmt.Errorf("%w: job %s has ended (%s)", errdefs.ErrConflict, id, j.State)
	}
	return j, nil
}

// Reclaim finds the running jobs whose lease ran out before now (their replica died or lost the database): those
// started fewer than MaxAttempts times go back to the queue for any replica; the others are failed. It returns
// the jobs it requeued and failed.
func (s *Store) Reclaim(ctx context.Context, now time.Time) (requeued, failed []string, err error) {
	rows, err := s.query(ctx, `UPDATE jobs SET state = ?, runner = '', lease = 0 WHERE state = ? AND lease < ? AND attempts < ? RETURNING id`,
		JobQueued, JobRunning, now.UnixNano(), MaxAttempts)
	if err != nil {
		return nil, nil, fmt.Errorf("state: %w", err)
	}
	if requeued, err = scanIDs(rows); err != nil {
		return nil, nil, err
	}
	rows, err = s.query(ctx, `UPDATE jobs SET state = ?, finished = ?, lease = 0, error = ? WHERE state = ? AND lease < ? AND attempts >= ? RETURNING id`,
		JobFailed, now.UnixNano(), `{"class":"Error","code":"internal","message":"the server running the job stopped, and so did the one that took it over"}`,
		JobRunning, now.UnixNano(), MaxAttempts)
	if err != nil {
		return nil, nil, fmt.Errorf("state: %w", err)
	}
	if failed, err = scanIDs(rows); err != nil {
		return nil, nil, err
	}
	return requeued, failed, nil
}

func scanIDs(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	return out, nil
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// GetJob reads a job; one not there is ErrNotFound.
func (s *Store) GetJob(ctx context.Context, id string) (*Job, error) {
	j, err := scanJob(s.queryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: no job %s", errdefs.ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	return j, nil
}

// JobQuery selects the jobs [Store.Jobs] lists. The zero value is the newest 100 jobs.
type JobQuery struct {
	// Kind and Subject, when set, select the jobs of that kind, and of that subject (the image, deployment,
	// registry…), exactly.
	Kind, Subject string
	// Limit is how many at most: 1 to 1000; 0 (or out of range) means 100.
	Limit int
}

// Jobs lists the newest jobs that q selects, without their results.
func (s *Store) Jobs(ctx context.Context, q JobQuery) ([]Job, error) {
	limit := q.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	where, args := "", []any{}
	if q.Kind != "" {
		where, args = where+" AND kind = ?", append(args, q.Kind)
	}
	if q.Subject != "" {
		where, args = where+" AND subject = ?", append(args, q.Subject)
	}
	return s.jobList(ctx, `SELECT id, kind, subject, state, owner, created, started, finished, '', '', runner, attempts
		FROM jobs WHERE 1 = 1`+where+` ORDER BY created DESC, id LIMIT ?`, append(args, limit)...)
}

// JobsOfKind lists the newest jobs of one kind, at most limit (1 to 1000), with their results and errors.
func (s *Store) JobsOfKind(ctx context.Context, kind string, limit int) ([]Job, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return s.jobList(ctx, `SELECT `+jobColumns+` FROM jobs WHERE kind = ? ORDER BY created DESC, id LIMIT ?`, kind, limit)
}

// jobList runs a query of jobs' columns (as scanJob reads them) and returns its rows as jobs.
func (s *Store) jobList(ctx context.Context, query string, args ...any) ([]Job, error) {
	rows, err := s.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	defer rows.Close()
	out := []Job{}
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
		out = append(out, *j)
	}
	return out, rows.Err()
}

// PruneJobs deletes the ended jobs (and their events) beyond the newest keep, and those that ended before
// olderThan; it returns how many it deleted.
func (s *Store) PruneJobs(ctx context.Context, keep int, olderThan time.Time) (int, error) {
	var cut int64
	err := s.queryRow(ctx, `SELECT created FROM jobs ORDER BY created DESC, id LIMIT 1 OFFSET ?`, keep).Scan(&cut)
	if errors.Is(err, sql.ErrNoRows) {
		cut = 0
	} else if err != nil {
		return 0, fmt.Errorf("state: %w", err)
	}
	ended := `state IN ('` + JobSucceeded + `', '` + JobFailed + `', '` + JobCanceled + `')`
	where := ended + ` AND (finished < ? OR created <= ?)`
	if _, err := s.exec(ctx, `DELETE FROM job_events WHERE job IN (SELECT id FROM jobs WHERE `+where+`)`, olderThan.UnixNano(), cut); err != nil {
		return 0, fmt.Errorf("state: %w", err)
	}
	res, err := s.exec(ctx, `DELETE FROM jobs WHERE `+where, olderThan.UnixNano(), cut)
	if err != nil {
		return 0, fmt.Errorf("state: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// AddEvent appends one event (JSON) to a job's log, at seq, while runner holds the job; an event of a runner that
// lost the job is dropped (held false).
func (s *Store) AddEvent(ctx context.Context, job, runner string, seq int, event []byte) (held bool, err error) {
	res, err := s.exec(ctx, `INSERT INTO job_events (job, seq, event) SELECT ?, ?, ? WHERE EXISTS
		(SELECT 1 FROM jobs WHERE id = ? AND runner = ? AND state = ?)`, job, seq, string(event), job, runner, JobRunning)
	if err != nil {
		return true, fmt.Errorf("state: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// NextEvent is the sequence number a job's next event takes (a job taken over goes on after its first runner's).
func (s *Store) NextEvent(ctx context.Context, job string) (int, error) {
	var n int
	if err := s.queryRow(ctx, `SELECT COALESCE(MAX(seq) + 1, 0) FROM job_events WHERE job = ?`, job).Scan(&n); err != nil {
		return 0, fmt.Errorf("state: %w", err)
	}
	return n, nil
}

// Events returns a job's events from seq on, in order, at most limit (1 to 10000).
func (s *Store) Events(ctx context.Context, job string, from, limit int) ([]json.RawMessage, error) {
	if limit <= 0 || limit > 10000 {
		limit = 1000
	}
	rows, err := s.query(ctx, `SELECT event FROM job_events WHERE job = ? AND seq >= ? ORDER BY seq LIMIT ?`, job, from, limit)
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

// ClaimSchedule records that runner does the scheduled work name for the time slot (its Unix second); false
// when another replica (or an earlier run) has it already: each slot is done once across replicas.
func (s *Store) ClaimSchedule(ctx context.Context, name string, slot time.Time, runner string, now time.Time) (bool, error) {
	_, err := s.exec(ctx, `INSERT INTO schedule_runs (name, slot, runner, started) VALUES (?, ?, ?, ?)`, name, slot.Unix(), runner, now.UnixNano())
	if isUnique(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("state: %w", err)
	}
	return true, nil
}
