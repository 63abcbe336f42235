package containerization

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/codomyrmex/containerization/policy"
	"github.com/codomyrmex/containerization/scan/vulndb"
)

// review3DB is an advisory database of one record, and when it was last updated.
func review3DB(t *testing.T) (string, time.Time) {
	t.Helper()
	src := t.TempDir()
	rec := `{"schema_version":"1.6.0","id":"DEBIAN-CVE-2099-0001","aliases":["CVE-2099-0001"],"modified":"2026-11-01T00:00:00Z",
"affected":[{"package":{"ecosystem":"Debian:12","name":"x"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2"}]}]}]}`
	if err := os.WriteFile(filepath.Join(src, "a.json"), []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := vulndb.Import(context.Background(), src, vulndb.Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	c := newClient(Config{})
	defer c.Close()
	db, err := c.advisoryDB(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, db.Status().Updated.UTC()
}

// Evidence the gate reuses is judged by what its payload says, not by the annotations beside it (which whoever
// attached it wrote, and which a referrers tag index may rewrite): a full scan, against this very database, of
// this very digest, not dated in the future. And a registry listing many candidates makes it read a few, not
// a thousand payloads of up to 64 MiB each.
func TestReview3AttachedScanTrustsThePayload(t *testing.T) {
	ctx := context.Background()
	var blobGets atomic.Int64
	reg := ggcrregistry.New(ggcrregistry.WithReferrersSupport(true), ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			blobGets.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	dbDir, updated := review3DB(t)
	c := newClient(Config{PolicyScan: ScanOptions{DBDir: dbDir}})
	t.Cleanup(func() { c.Close() })
	age := policy.Duration(24 * time.Hour)
	pol := &policy.Policy{Version: 1, Images: &policy.Images{MaxScanAge: &age}}

	push := func(repo string) name.Digest {
		img, err := random.Image(64, 1)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := name.ParseReference(host + "/" + repo + ":1")
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		return ref.Context().Digest(d.String())
	}
	attach := func(subject name.Digest, res SecurityScanResult) {
		body, _ := json.Marshal(res)
		anns := map[string]string{policy.AnnotationScanType: "full", policy.AnnotationDBUpdated: updated.Format(time.RFC3339Nano)}
		if _, err := policy.Attach(ctx, subject, policy.ScanArtifactType, body, anns); err != nil {
			t.Fatal(err)
		}
	}
	genuine := func(subject name.Digest) SecurityScanResult {
		return SecurityScanResult{ImageDigest: subject.DigestStr(), ScanType: "full", ScanTimestamp: time.Now().UTC(),
			Database: &DatabaseStatus{UpdatedAt: updated}}
	}
	lookup := func(subject name.Digest) *SecurityScanResult {
		subject2, ropts, ep, err := c.registryDigest(subject.Context().Name()+":1", subject.DigestStr(), RegistryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return c.attachedScan(ctx, pol, subject2, ropts, ep)
	}

	ok := push("team/ok")
	attach(ok, genuine(ok))
	if lookup(ok) == nil {
		t.Fatal("a genuine attached scan is not reused")
	}
	for what, mutate := range map[string]func(*SecurityScanResult){
		"another database":  func(r *SecurityScanResult) { r.Database.UpdatedAt = updated.Add(-time.Hour) },
		"no database":       func(r *SecurityScanResult) { r.Database = nil },
		"a quick scan":      func(r *SecurityScanResult) { r.ScanType = "quick" },
		"dated in a year":   func(r *SecurityScanResult) { r.ScanTimestamp = time.Now().AddDate(1, 0, 0) },
		"older than allows": func(r *SecurityScanResult) { r.ScanTimestamp = time.Now().AddDate(0, 0, -2) },
	} {
		subject := push("team/" + strings.ReplaceAll(what, " ", "-"))
		res := genuine(subject)
		mutate(&res)
		attach(subject, res)
		if got := lookup(subject); got != nil {
			t.Errorf("evidence of %s (annotated full, this database) is reused", what)
		}
	}

	many := push("team/many")
	other := push("team/other")
	for range 20 {
		attach(many, genuine(other)) // each claims another image: read, refused, next
	}
	blobGets.Store(0)
	if lookup(many) != nil {
		t.Fatal("evidence of another image reused")
	}
	if n := blobGets.Load(); n > 5 {
		t.Errorf("%d payloads read for one image, want a few", n)
	}
}

// An image whose manifest declares a huge configuration is not read whole to learn its USER: the registry is
// not trusted to bound it.
func TestReview3ResolveImageBoundsTheConfig(t *testing.T) {
	const declared = int64(1) << 34
	const served = int64(96) << 20
	cfgDigest := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Size: declared, Digest: cfgDigest}, Layers: []v1.Descriptor{}}
	body, _ := json.Marshal(m)
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
			w.WriteHeader(http.StatusOK)
		case strings.Contains(r.URL.Path, "/manifests/"):
			w.Header().Set("Content-Type", string(types.OCIManifestSchema1))
			h, _, _ := v1.SHA256(strings.NewReader(string(body)))
			w.Header().Set("Docker-Content-Digest", h.String())
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			if r.Method == http.MethodGet {
				_, _ = w.Write(body)
			}
		case strings.Contains(r.URL.Path, "/blobs/"):
			buf := make([]byte, 1<<20)
			for sent.Load() < served {
				if _, err := w.Write(buf); err != nil {
					return
				}
				sent.Add(int64(len(buf)))
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	c := newClient(Config{})
	t.Cleanup(func() { c.Close() })
	r, err := c.resolveImage(context.Background(), strings.TrimPrefix(srv.URL, "http://")+"/team/app:1", RegistryOptions{})
	if err != nil {
		t.Fatalf("resolveImage = %v", err)
	}
	if r.user != "" {
		t.Errorf("user %q", r.user)
	}
	if n := sent.Load(); n > maxImageConfig {
		t.Errorf("%d bytes of the configuration read, more than %d", n, maxImageConfig)
	}
}
