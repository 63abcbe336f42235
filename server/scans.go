package server

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/go-chi/chi/v5"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/policy"
	"github.com/codomyrmex/containerization/registry"
	"github.com/codomyrmex/containerization/server/state"
)

// ScanList is GET /v1/scans's answer: the history's scans, newest first.
type ScanList struct {
	Scans []state.Scan `json:"scans"`
}

// ScanDetail is GET /v1/scans/{id}'s answer: the history's entry, and the scan's full SecurityScanResult as its
// job returned it.
type ScanDetail struct {
	Scan   state.Scan                          `json:"scan"`
	Result containerization.SecurityScanResult `json:"result"`
}

// ScannedImageList is GET /v1/scans/images's answer.
type ScannedImageList struct {
	Images []state.ScannedImage `json:"images"`
}

var digestRE = regexp.MustCompile(`^sha(256:[a-f0-9]{64}|512:[a-f0-9]{128})$`)

// maxImageRef bounds an image reference in a query.
const maxImageRef = 1024

func (s *Server) scanRoutes() []route {
	return []route{
		{method: "GET", path: "/v1/scans", scope: state.ScopeRead, id: "listScans",
			summary: "The scans the server ran (scan, build and pipeline jobs), newest first: of an image, of a digest, or all",
			query: []param{{"image", "string", "an image reference (compared normalised: busybox is docker.io/library/busybox:latest)"},
				{"digest", "string", "a manifest digest (sha256:…)"}, {"limit", "integer", "at most this many (1 to 1000, default 100)"}},
			out: &ScanList{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				q := c.req.URL.Query()
				limit, err := intParam(c, "limit", 1, 1000)
				if err != nil {
					return 0, nil, err
				}
				sq := state.ScanQuery{Limit: limit, Digest: q.Get("digest")}
				if sq.Digest != "" && !digestRE.MatchString(sq.Digest) {
					return 0, nil, fmt.Errorf("%w: digest=%q: want sha256:<64 hex digits>", errdefs.ErrInvalidArgument, sq.Digest)
				}
				if img := q.Get("image"); img != "" {
					if sq.Image, err = normaliseImage(img); err != nil {
						return 0, nil, err
					}
				}
				list, err := s.cfg.State.Scans(c.req.Context(), sq)
				if err != nil {
					return 0, nil, err
				}
				return 200, ScanList{Scans: list}, nil
			}},
		{method: "GET", path: "/v1/scans/images", scope: state.ScopeRead, id: "listScannedImages",
			summary: "The images of the scan history, each with its latest scan and how many scans of it the history holds; the most recently scanned first",
			query:   []param{{"limit", "integer", "at most this many images (1 to 1000, default 100)"}},
			out:     &ScannedImageList{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				limit, err := intParam(c, "limit", 1, 1000)
				if err != nil {
					return 0, nil, err
				}
				list, err := s.cfg.State.ScannedImages(c.req.Context(), limit)
				if err != nil {
					return 0, nil, err
				}
				return 200, ScannedImageList{Images: list}, nil
			}},
		{method: "GET", path: "/v1/scans/{id}", scope: state.ScopeRead, id: "getScan",
			summary: "A scan of the history with its full SecurityScanResult (kept as long as the job that ran it)",
			out:     &ScanDetail{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				ctx := c.req.Context()
				sc, err := s.cfg.State.GetScan(ctx, chi.URLParam(c.req, "id"))
				if err != nil {
					return 0, nil, err
				}
				job, err := s.cfg.State.GetJob(ctx, sc.ID)
				if err != nil {
					return 0, nil, err
				}
				found, ok := scanIn(job)
				if !ok {
					return 0, nil, fmt.Errorf("%w: job %s holds no scan result", errdefs.ErrNotFound, job.ID)
				}
				var res containerization.SecurityScanResult
				if err := json.Unmarshal(found.scan, &res); err != nil {
					return 0, nil, fmt.Errorf("reading the scan of job %s: %w", job.ID, err)
				}
				return 200, ScanDetail{Scan: *sc, Result: res}, nil
			}},
	}
}

// normaliseImage is an image reference as the history keeps it: go-containerregistry's full name (registry,
// repository, tag or digest), without a scheme; a name that is not a reference (an OCI layout, an archive) as it
// is.
func normaliseImage(img string) (string, error) {
	if len(img) > maxImageRef {
		return "", fmt.Errorf("%w: image: %d characters, at most %d", errdefs.ErrInvalidArgument, len(img), maxImageRef)
	}
	if registry.IsLocalSource(img) {
		return img, nil
	}
	_, bare := registry.SplitScheme(img)
	ref, err := name.ParseReference(bare)
	if err != nil {
		return "", fmt.Errorf("%w: image %q: %v", errdefs.ErrInvalidArgument, img, err)
	}
	return ref.Name(), nil
}

// foundScan is the scan a job's result holds, with what the job says of it.
type foundScan struct {
	scan    json.RawMessage
	digest  string          // the pushed digest, when what was pushed is what was scanned
	verdict *policy.Verdict // the policy's, at the job's gate
}

// scanIn finds the scan in an ended job's result: a scan job's result, a build's scan, a pipeline's scan stage, a
// report's scan_result.
func scanIn(job *state.Job) (foundScan, bool) {
	if len(job.Result) == 0 {
		return foundScan{}, false
	}
	var r struct {
		Scan         json.RawMessage `json:"scan"`
		ScanResult   json.RawMessage `json:"scan_result"` // a report's
		ImageDigest  string          `json:"image_digest"`
		Optimization json.RawMessage `json:"optimization"`
		Verdict      *policy.Verdict `json:"policy_verdict"`
		Stages       []struct {
			Stage  string          `json:"stage"`
			Status string          `json:"status"`
			Result json.RawMessage `json:"result"`
		} `json:"stages"`
	}
	switch job.Kind {
	case "scan":
		return foundScan{scan: job.Result}, true
	case "build", "pipeline":
		if err := json.Unmarshal(job.Result, &r); err != nil {
			return foundScan{}, false
		}
	case reportJobKind:
		if err := json.Unmarshal(job.Result, &r); err != nil || len(r.ScanResult) == 0 || string(r.ScanResult) == "null" {
			return foundScan{}, false
		}
		return foundScan{scan: r.ScanResult, digest: r.ImageDigest, verdict: r.Verdict}, true
	default:
		return foundScan{}, false
	}
	f := foundScan{scan: r.Scan, verdict: r.Verdict}
	optimized := len(r.Optimization) > 0 && string(r.Optimization) != "null"
	for _, st := range r.Stages {
		switch st.Stage {
		case "scan":
			f.scan = st.Result
		case "optimize":
			optimized = optimized || st.Status == containerization.StagePassed
		}
	}
	if !optimized {
		f.digest = r.ImageDigest // what was pushed is the image scanned
	}
	if len(f.scan) == 0 || string(f.scan) == "null" {
		return foundScan{}, false
	}
	return f, true
}

// recordScan puts the scan a job ran, if any, in the history, as the job ends (its result and finish time set).
func (j *jobs) recordScan(ctx context.Context, job *state.Job) {
	f, ok := scanIn(job)
	if !ok {
		return
	}
	var res containerization.SecurityScanResult
	if err := json.Unmarshal(f.scan, &res); err != nil || res.ImageName == "" {
		return
	}
	sc := &state.Scan{ID: job.ID, JobKind: job.Kind, ImageName: res.ImageName, ImageDigest: res.ImageDigest,
		ScanTimestamp: res.ScanTimestamp, ScanType: res.ScanType, CriticalCount: res.CriticalCount, HighCount: res.HighCount,
		MediumCount: res.MediumCount, LowCount: res.LowCount, UnknownCount: res.UnknownCount, PolicyPassed: res.PolicyPassed,
		PolicyVerdict: verdictWord(f.verdict)}
	if sc.ImageDigest == "" {
		sc.ImageDigest = f.digest
	}
	var err error
	if sc.Image, err = normaliseImage(res.ImageName); err != nil {
		sc.Image = res.ImageName
	}
	if sc.ScanTimestamp.IsZero() {
		sc.ScanTimestamp = job.Finished
	}
	if err := j.st.RecordScan(ctx, sc); err != nil {
		j.log.Error("recording a scan", "job", job.ID, "err", err)
	}
}

// verdictWord says a verdict in a word: allowed, refused, or warned (refused at a gate that only warns).
func verdictWord(v *policy.Verdict) string {
	switch {
	case v == nil:
		return ""
	case v.Allowed:
		return "allowed"
	case v.Mode == policy.Warn:
		return "warned"
	}
	return "refused"
}
