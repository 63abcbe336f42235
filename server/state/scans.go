package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/codomyrmex/containerization/errdefs"
)

// Scan is one scan the server ran, as its history lists it: the image, when, the findings by severity, and the
// policy's verdict on it. Its full result is its job's (GET /v1/scans/{id}). A job runs one scan at most, so a
// scan's ID is its job's.
type Scan struct {
	ID      string `json:"id"`
	JobKind string `json:"job_kind"` // scan, build or pipeline
	// ImageName is the image as the scan named it; Image the same reference normalised (registry, repository,
	// tag), what the history is looked up by.
	ImageName string `json:"image_name"`
	Image     string `json:"image"`
	// ImageDigest is the manifest digest of the image scanned, when it was read from a registry or pushed.
	ImageDigest   string    `json:"image_digest,omitempty"`
	ScanTimestamp time.Time `json:"scan_timestamp"`
	ScanType      string    `json:"scan_type"`
	CriticalCount int       `json:"critical_count"`
	HighCount     int       `json:"high_count"`
	MediumCount   int       `json:"medium_count"`
	LowCount      int       `json:"low_count"`
	UnknownCount  int       `json:"unknown_count"`
	// PolicyPassed is the scan's own threshold (severity_threshold, scan_threshold): false when a finding
	// reached it.
	PolicyPassed bool `json:"policy_passed"`
	// PolicyVerdict is the policy's verdict on the image where a gate held it: allowed, refused, or warned (refused
	// at a gate that only warns); empty when no policy held it.
	PolicyVerdict string `json:"policy_verdict,omitempty"`
}

// RecordScan stores a scan of job, once: a scan recorded already for the job is left as it is.
func (s *Store) RecordScan(ctx context.Context, sc *Scan) error {
	passed := 0
	if sc.PolicyPassed {
		passed = 1
	}
	_, err := s.exec(ctx, `INSERT INTO scans (job, kind, image, image_name, digest, time, scan_type, critical, high, medium, low, unknown, passed, verdict)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ?)
		ON CONFLICT (job) DO NOTHING`,
		sc.ID, sc.JobKind, sc.Image, sc.ImageName, sc.ImageDigest, sc.ScanTimestamp.UnixNano(), sc.ScanType,
		sc.CriticalCount, sc.HighCount, sc.MediumCount, sc.LowCount, sc.UnknownCount, passed, sc.PolicyVerdict, sc.ID)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// ScanQuery selects scans from the history: of an image (its normalised reference), of a digest, or every one
// when both are empty; the newest first, at most Limit (1 to 1000, default 100).
type ScanQuery struct {
	Image, Digest string
	Limit         int
}

const scanColumns = `job, kind, image, image_name, digest, time, scan_type, critical, high, medium, low, unknown, passed, verdict`

// scanScan reads a row of scanColumns, then of more.
func scanScan(row interface{ Scan(...any) error }, more ...any) (*Scan, error) {
	var sc Scan
	var t int64
	var passed int
	if err := row.Scan(append([]any{&sc.ID, &sc.JobKind, &sc.Image, &sc.ImageName, &sc.ImageDigest, &t, &sc.ScanType,
		&sc.CriticalCount, &sc.HighCount, &sc.MediumCount, &sc.LowCount, &sc.UnknownCount, &passed, &sc.PolicyVerdict}, more...)...); err != nil {
		return nil, err
	}
	sc.ScanTimestamp, sc.PolicyPassed = time.Unix(0, t).UTC(), passed != 0
	return &sc, nil
}

// Scans lists the scans q selects.
func (s *Store) Scans(ctx context.Context, q ScanQuery) ([]Scan, error) {
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 100
	}
	where, args := "", []any{}
	switch {
	case q.Image != "" && q.Digest != "":
		where, args = ` WHERE image = ? AND digest = ?`, []any{q.Image, q.Digest}
	case q.Image != "":
		where, args = ` WHERE image = ?`, []any{q.Image}
	case q.Digest != "":
		where, args = ` WHERE digest = ?`, []any{q.Digest}
	}
	rows, err := s.query(ctx, `SELECT `+scanColumns+` FROM scans`+where+` ORDER BY time DESC, job LIMIT ?`, append(args, q.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	defer rows.Close()
	out := []Scan{}
	for rows.Next() {
		sc, err := scanScan(rows)
		if err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
		out = append(out, *sc)
	}
	return out, rows.Err()
}

// GetScan reads the scan id of the history; one not there (never recorded, or pruned with its job) is
// ErrNotFound.
func (s *Store) GetScan(ctx context.Context, id string) (*Scan, error) {
	sc, err := scanScan(s.queryRow(ctx, `SELECT `+scanColumns+` FROM scans WHERE job = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: no scan %s", errdefs.ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	return sc, nil
}

// ScannedImage is an image of the history: its latest scan, and how many scans of it the history holds.
type ScannedImage struct {
	Image  string `json:"image"`
	Scans  int    `json:"scans"`
	Latest Scan   `json:"latest"`
}

// ScannedImages lists the images of the history (by normalised reference), each with its latest scan, the most
// recently scanned first, at most limit (1 to 1000, default 100).
func (s *Store) ScannedImages(ctx context.Context, limit int) ([]ScannedImage, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	cols := "s." + strings.ReplaceAll(scanColumns, ", ", ", s.")
	// The latest scan of an image is the first in the history's order (time DESC, job): no other scan of the
	// image comes before it.
	rows, err := s.query(ctx, `SELECT `+cols+`, (SELECT COUNT(*) FROM scans c WHERE c.image = s.image) FROM scans s
		WHERE NOT EXISTS (SELECT 1 FROM scans t WHERE t.image = s.image AND (t.time > s.time OR (t.time = s.time AND t.job < s.job)))
		ORDER BY s.time DESC, s.job LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	defer rows.Close()
	out := []ScannedImage{}
	for rows.Next() {
		var n int
		sc, err := scanScan(rows, &n)
		if err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
		out = append(out, ScannedImage{Image: sc.Image, Scans: n, Latest: *sc})
	}
	return out, rows.Err()
}
