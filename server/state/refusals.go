package state

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Refusal is one request, job or admission review that the policy refused at a gate, with the rules it broke.
type Refusal struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	Gate string    `json:"gate"`
	// Source is what was refused: a request to the API, a job, or a Kubernetes admission review; Subject says
	// which ("POST /v1/containers", "push myrmex.local/app:1", "CREATE apps/Deployment shop/web").
	Source  string `json:"source"`
	Subject string `json:"subject"`
	// Token is the name of the token behind the request or job; for an admission review, the Kubernetes user.
	Token string `json:"token"`
	Job   string `json:"job,omitempty"`
	// Violations are the rules broken, for which image or container (at most [MaxRefusalViolations]).
	Violations []RefusalViolation `json:"violations"`
}

// The sources of a refusal.
const (
	RefusalRequest   = "request"
	RefusalJob       = "job"
	RefusalAdmission = "admission"
)

// RefusalViolation is one rule a refusal broke, for one image or container.
type RefusalViolation struct {
	Rule      string `json:"rule"`
	Image     string `json:"image,omitempty"`
	Digest    string `json:"digest,omitempty"`
	Container string `json:"container,omitempty"`
	Finding   string `json:"finding"`
}

// The bounds of what one refusal keeps: a verdict can list many findings of one rule (each vulnerability), and
// its texts come from images and requests.
const (
	MaxRefusalViolations = 50
	maxRefusalText       = 1024
)

// RecordRefusal stores a refusal (its ID and, when zero, its time are set here). Its violations beyond
// [MaxRefusalViolations] are left out, and its texts cut to a bound.
func (s *Store) RecordRefusal(ctx context.Context, r *Refusal) error {
	if r.ID == "" {
		b := make([]byte, 10)
		rand.Read(b)
		r.ID = hex.EncodeToString(b)
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Time = r.Time.UTC()
	if len(r.Violations) > MaxRefusalViolations {
		r.Violations = r.Violations[:MaxRefusalViolations]
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO refusals (id, time, gate, source, subject, token, job) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		r.ID, r.Time.UnixNano(), bound(r.Gate), bound(r.Source), bound(r.Subject), bound(r.Token), bound(r.Job)); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	for i, v := range r.Violations {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO refusal_violations (refusal, seq, rule, image, digest, container, finding) VALUES (?, ?, ?, ?, ?, ?, ?)`),
			r.ID, i, bound(v.Rule), bound(v.Image), bound(v.Digest), bound(v.Container), bound(v.Finding)); err != nil {
			return fmt.Errorf("state: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// bound cuts a text kept to maxRefusalText bytes, at a character boundary.
func bound(s string) string {
	if len(s) <= maxRefusalText {
		return s
	}
	n := maxRefusalText - len("…")
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// RefusalQuery selects refusals: those that broke Rule, or refused Image, or all when both are empty; the newest
// first, at most Limit (1 to 1000, default 100).
type RefusalQuery struct {
	Rule, Image string
	Limit       int
}

// Refusals lists the refusals q selects, each with its violations.
func (s *Store) Refusals(ctx context.Context, q RefusalQuery) ([]Refusal, error) {
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 100
	}
	var conds []string
	var args []any
	if q.Rule != "" {
		conds, args = append(conds, `id IN (SELECT refusal FROM refusal_violations WHERE rule = ?)`), append(args, q.Rule)
	}
	if q.Image != "" {
		conds, args = append(conds, `id IN (SELECT refusal FROM refusal_violations WHERE image = ?)`), append(args, q.Image)
	}
	where := ""
	if len(conds) > 0 {
		where = ` WHERE ` + strings.Join(conds, ` AND `)
	}
	rows, err := s.query(ctx, `SELECT id, time, gate, source, subject, token, job FROM refusals`+where+` ORDER BY time DESC, id LIMIT ?`, append(args, q.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	out := []Refusal{}
	index := map[string]int{}
	for rows.Next() {
		var r Refusal
		var t int64
		if err := rows.Scan(&r.ID, &t, &r.Gate, &r.Source, &r.Subject, &r.Token, &r.Job); err != nil {
			rows.Close()
			return nil, fmt.Errorf("state: %w", err)
		}
		r.Time, r.Violations = time.Unix(0, t).UTC(), []RefusalViolation{}
		index[r.ID] = len(out)
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	// Their violations, in one query: at most Limit × MaxRefusalViolations rows.
	ids := make([]any, 0, len(out))
	for _, r := range out {
		ids = append(ids, r.ID)
	}
	vrows, err := s.query(ctx, `SELECT refusal, rule, image, digest, container, finding FROM refusal_violations WHERE refusal IN (?`+
		strings.Repeat(`, ?`, len(ids)-1)+`) ORDER BY refusal, seq`, ids...)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	defer vrows.Close()
	for vrows.Next() {
		var id string
		var v RefusalViolation
		if err := vrows.Scan(&id, &v.Rule, &v.Image, &v.Digest, &v.Container, &v.Finding); err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
		r := &out[index[id]]
		r.Violations = append(r.Violations, v)
	}
	return out, vrows.Err()
}

// RuleRefusals counts the refusals that broke one rule.
type RuleRefusals struct {
	Rule     string    `json:"rule"`
	Refusals int       `json:"refusals"`
	Last     time.Time `json:"last"`
}

// ImageRefusals counts the refusals of one image, and says by which rules (each with its own count).
type ImageRefusals struct {
	Image    string         `json:"image"`
	Refusals int            `json:"refusals"`
	Last     time.Time      `json:"last"`
	Rules    []RuleRefusals `json:"rules"`
}

// maxRefusalGroups bounds the rules and the images counted (the images refused most often first).
const maxRefusalGroups = 200

// RefusalCounts counts the refusals kept by rule (each refusal once per rule it broke) and by image (violations
// of no image, a container's, are not counted by image); the most frequent first, at most 200 of each.
func (s *Store) RefusalCounts(ctx context.Context) (byRule []RuleRefusals, byImage []ImageRefusals, err error) {
	rows, err := s.query(ctx, `SELECT v.rule, COUNT(DISTINCT v.refusal), MAX(r.time) FROM refusal_violations v
		JOIN refusals r ON r.id = v.refusal GROUP BY v.rule ORDER BY COUNT(DISTINCT v.refusal) DESC, v.rule LIMIT ?`, maxRefusalGroups)
	if err != nil {
		return nil, nil, fmt.Errorf("state: %w", err)
	}
	byRule = []RuleRefusals{}
	for rows.Next() {
		var c RuleRefusals
		var t int64
		if err := rows.Scan(&c.Rule, &c.Refusals, &t); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("state: %w", err)
		}
		c.Last = time.Unix(0, t).UTC()
		byRule = append(byRule, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("state: %w", err)
	}

	rows, err = s.query(ctx, `SELECT v.image, COUNT(DISTINCT v.refusal), MAX(r.time) FROM refusal_violations v
		JOIN refusals r ON r.id = v.refusal WHERE v.image <> '' GROUP BY v.image ORDER BY COUNT(DISTINCT v.refusal) DESC, v.image LIMIT ?`, maxRefusalGroups)
	if err != nil {
		return nil, nil, fmt.Errorf("state: %w", err)
	}
	byImage = []ImageRefusals{}
	index := map[string]int{}
	for rows.Next() {
		var c ImageRefusals
		var t int64
		if err := rows.Scan(&c.Image, &c.Refusals, &t); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("state: %w", err)
		}
		c.Last, c.Rules = time.Unix(0, t).UTC(), []RuleRefusals{}
		index[c.Image] = len(byImage)
		byImage = append(byImage, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("state: %w", err)
	}
	if len(byImage) == 0 {
		return byRule, byImage, nil
	}
	images := make([]any, 0, len(byImage))
	for _, c := range byImage {
		images = append(images, c.Image)
	}
	rows, err = s.query(ctx, `SELECT v.image, v.rule, COUNT(DISTINCT v.refusal), MAX(r.time) FROM refusal_violations v
		JOIN refusals r ON r.id = v.refusal WHERE v.image IN (?`+strings.Repeat(`, ?`, len(images)-1)+`) GROUP BY v.image, v.rule`, images...)
	if err != nil {
		return nil, nil, fmt.Errorf("state: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var img string
		var c RuleRefusals
		var t int64
		if err := rows.Scan(&img, &c.Rule, &c.Refusals, &t); err != nil {
			return nil, nil, fmt.Errorf("state: %w", err)
		}
		c.Last = time.Unix(0, t).UTC()
		byImage[index[img]].Rules = append(byImage[index[img]].Rules, c)
	}
	for i := range byImage {
		slices.SortFunc(byImage[i].Rules, func(a, b RuleRefusals) int {
			return cmp.Or(b.Refusals-a.Refusals, strings.Compare(a.Rule, b.Rule))
		})
	}
	return byRule, byImage, rows.Err()
}

// PruneRefusals deletes the refusals beyond the newest keep, and those older than olderThan (their violations
// with them, by the foreign key); it returns how many it deleted.
func (s *Store) PruneRefusals(ctx context.Context, keep int, olderThan time.Time) (int, error) {
	res, err := s.exec(ctx, `DELETE FROM refusals WHERE time < ? OR id NOT IN (SELECT id FROM refusals ORDER BY time DESC, id LIMIT ?)`,
		olderThan.UnixNano(), keep)
	if err != nil {
		return 0, fmt.Errorf("state: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
