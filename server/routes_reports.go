package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/report"
	"github.com/codomyrmex/containerization/server/state"
)

// ReportRequest is POST /v1/reports's body: the image to report on, and how to scan it.
type ReportRequest struct {
	ImageName string `json:"image_name"`
	// ScanType is full (the default), quick or compliance.
	ScanType string `json:"scan_type,omitempty"`
	// SeverityThreshold makes findings this severe or worse fail the report's verdict.
	SeverityThreshold string   `json:"severity_threshold,omitempty"`
	IgnoreRules       []string `json:"ignore_rules,omitempty"`
	// Gate is the policy's gate the image is held at (default: apply for an image in a registry, else create).
	Gate string `json:"gate,omitempty"`
	// Keys are public keys (PKIX PEM text, as cosign.pub holds) whose signatures are verified.
	Keys []string `json:"keys,omitempty"`
}

// RenderRequest is POST /v1/reports/render's body (generate_security_report): a scan result, or a scan of the
// history by its id, and the format of the document.
type RenderRequest struct {
	ScanResult *containerization.SecurityScanResult `json:"scan_result,omitempty"`
	// ScanID is a scan of the history (GET /v1/scans) to render instead.
	ScanID string `json:"scan_id,omitempty"`
	// Format is html (the default), pdf or json.
	Format string `json:"format,omitempty"`
}

// Bounds of the report routes: a render's body (a scan result), the keys of a report, the documents rendered at
// once (each PDF is a browser of its own), and how long one may take.
const (
	maxRenderBody   = 16 << 20
	maxReportKeys   = 10
	maxReportKey    = 16 << 10
	maxRenders      = 2
	maxRenderQueue  = 8 // renders and the requests waiting for one (a body of up to maxRenderBody each)
	maxRenderTime   = 2 * time.Minute
	reportJobKind   = "report"
	reportFileLimit = 80
)

func (s *Server) reportRoutes() []route {
	format := param{"format", "string", "html (the default), pdf or json"}
	return []route{
		{method: "POST", path: "/v1/reports", scope: state.ScopeOperate, id: "report",
			summary: "Report on an image (scan, policy verdict, signatures, evidence, optimization), as a job; GET /v1/reports/{id} renders it",
			in:      &ReportRequest{}, out: &state.Job{}, status: 202, handle: func(s *Server, c *call) (int, any, error) {
				return s.submit(c, reportJobKind)
			}},
		{method: "GET", path: "/v1/reports/{id}", scope: state.ScopeRead, id: "getReport",
			summary: "The report a report job made, as a document: html (with a strict Content-Security-Policy), pdf or json",
			query:   []param{format}, out: &report.Report{}, document: true, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				done, err := s.renderQueue()
				if err != nil {
					return 0, nil, err
				}
				defer done()
				f, err := report.CheckFormat(c.req.URL.Query().Get("format"))
				if err != nil {
					return 0, nil, err
				}
				job, err := s.cfg.State.GetJob(c.req.Context(), chi.URLParam(c.req, "id"))
				if err != nil {
					return 0, nil, err
				}
				if job.Kind != reportJobKind {
					return 0, nil, fmt.Errorf("%w: job %s is a %s job, not a report", errdefs.ErrNotFound, job.ID, job.Kind)
				}
				if job.State != state.JobSucceeded {
					return 0, nil, fmt.Errorf("%w: report job %s is %s: it has no report (GET /v1/jobs/%s says why)", errdefs.ErrConflict, job.ID, job.State, job.ID)
				}
				var r report.Report
				if err := json.Unmarshal(job.Result, &r); err != nil || r.ScanResult == nil {
					return 0, nil, fmt.Errorf("reading the report of job %s: %v", job.ID, err)
				}
				return s.writeReport(c, &r, f)
			}},
		// Read: it renders what the caller sends, or a scan the history holds, and reaches no engine or registry.
		{method: "POST", path: "/v1/reports/render", scope: state.ScopeRead, id: "renderReport",
			summary: "Render a scan result, or a scan of the history, as a report (generate_security_report): html, pdf or json",
			in:      &RenderRequest{}, out: &report.Report{}, document: true, status: 200, maxBody: maxRenderBody,
			handle: func(s *Server, c *call) (int, any, error) {
				// In the queue before the body is read: a request waiting its turn holds its body decoded.
				done, err := s.renderQueue()
				if err != nil {
					return 0, nil, err
				}
				defer done()
				var req RenderRequest
				if err := decode(c, &req); err != nil {
					return 0, nil, err
				}
				f, err := report.CheckFormat(req.Format)
				if err != nil {
					return 0, nil, err
				}
				res := req.ScanResult
				switch {
				case (res == nil) == (req.ScanID == ""):
					return 0, nil, fmt.Errorf("%w: give scan_result or scan_id", errdefs.ErrInvalidArgument)
				case res != nil:
					if err := report.Check(res); err != nil {
						return 0, nil, err
					}
				default:
					if res, err = s.historyScan(c.req.Context(), req.ScanID); err != nil {
						return 0, nil, err
					}
				}
				return s.writeReport(c, report.FromScan(res, s.cfg.Now()), f)
			}},
	}
}

// historyScan is the full scan result of a scan in the history.
func (s *Server) historyScan(ctx context.Context, id string) (*containerization.SecurityScanResult, error) {
	sc, err := s.cfg.State.GetScan(ctx, id)
	if err != nil {
		return nil, err
	}
	job, err := s.cfg.State.GetJob(ctx, sc.ID)
	if err != nil {
		return nil, err
	}
	found, ok := scanIn(job)
	if !ok {
		return nil, fmt.Errorf("%w: job %s holds no scan result", errdefs.ErrNotFound, job.ID)
	}
	return report.ParseScan(found.scan)
}

func (s *Server) prepareReport(spec json.RawMessage) (string, work, error) {
	var req ReportRequest
	if err := decodeSpec(spec, &req); err != nil {
		return "", nil, err
	}
	switch {
	case req.ImageName == "":
		return "", nil, fmt.Errorf("%w: image_name is required", errdefs.ErrInvalidArgument)
	case len(req.ImageName) > maxImageRef:
		return "", nil, fmt.Errorf("%w: image_name: %d characters, at most %d", errdefs.ErrInvalidArgument, len(req.ImageName), maxImageRef)
	case len(req.Keys) > maxReportKeys:
		return "", nil, fmt.Errorf("%w: %d keys, at most %d", errdefs.ErrInvalidArgument, len(req.Keys), maxReportKeys)
	}
	for _, k := range req.Keys {
		// PEM text only: a path would make the server read its own files for the caller.
		if len(k) > maxReportKey || !strings.HasPrefix(strings.TrimSpace(k), "-----BEGIN ") {
			return "", nil, fmt.Errorf("%w: keys: each is a public key's PEM text, at most %d bytes", errdefs.ErrInvalidArgument, maxReportKey)
		}
	}
	scanType := req.ScanType
	if scanType == "" {
		scanType = "full"
	}
	if !slices.Contains([]string{"full", "quick", "compliance"}, scanType) {
		return "", nil, fmt.Errorf("%w: scan_type %q: want full, quick or compliance", errdefs.ErrInvalidArgument, scanType)
	}
	if req.Gate != "" && !slices.Contains(containerization.PolicyGates, req.Gate) {
		return "", nil, fmt.Errorf("%w: gate %q: want one of %s", errdefs.ErrInvalidArgument, req.Gate, strings.Join(containerization.PolicyGates, ", "))
	}
	opts := report.Options{ScanType: scanType, Keys: req.Keys, Gate: req.Gate,
		ScanOptions: containerization.ScanOptions{SeverityThreshold: req.SeverityThreshold, IgnoreRules: req.IgnoreRules}}
	return req.ImageName, func(ctx context.Context, progress func(containerization.Event)) (any, error) {
		opts.Progress = progress
		return report.Build(ctx, s.cfg.Client, req.ImageName, opts)
	}, nil
}

// renderQueue takes a place among the reports being rendered or waiting their turn, or refuses at once
// (ErrUnavailable) when there is none: the requests waiting are bounded as the renders are.
func (s *Server) renderQueue() (done func(), err error) {
	select {
	case s.renderQueued <- struct{}{}:
		return func() { <-s.renderQueued }, nil
	default:
		return nil, fmt.Errorf("%w: %d reports are being rendered or wait their turn: try again", errdefs.ErrUnavailable, maxRenderQueue)
	}
}

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// writeReport renders r in format and writes it: its media type, a file name, and for HTML the report's
// Content-Security-Policy with a sandbox besides. Renders beyond maxRenders wait their turn.
func (s *Server) writeReport(c *call, r *report.Report, format string) (int, any, error) {
	ctx, cancel := context.WithTimeout(c.req.Context(), maxRenderTime)
	defer cancel()
	select {
	case s.renders <- struct{}{}:
		defer func() { <-s.renders }()
	case <-ctx.Done():
		return 0, nil, fmt.Errorf("%w: too many reports are being rendered: try again", errdefs.ErrUnavailable)
	}
	doc, err := report.Render(ctx, r, format)
	if err != nil {
		return 0, nil, err
	}
	name := strings.Trim(unsafeFileChars.ReplaceAllString(r.ImageName, "_"), "_.")
	if len(name) > reportFileLimit {
		name = name[:reportFileLimit]
	}
	disposition := "inline"
	if format == report.FormatPDF {
		disposition = "attachment"
	}
	w := c.req.Context().Value(writerKey{}).(http.ResponseWriter)
	h := w.Header()
	h.Set("Content-Type", report.ContentType(format))
	h.Set("Content-Disposition", fmt.Sprintf(`%s; filename="report-%s.%s"`, disposition, name, format))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if format == report.FormatHTML {
		h.Set("Content-Security-Policy", report.ContentSecurityPolicy+"; sandbox")
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(doc)
	return 200, nil, nil
}
