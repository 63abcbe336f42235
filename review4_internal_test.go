package containerization

import (
	"context"
	"io"
	"log"
	"path/filepath"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"encoding/base64"
	"errors"
	"fmt"
	"github.com/codomyrmex/containerization/pipeline"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/codomyrmex/containerization/registry"
	"github.com/codomyrmex/containerization/registry/credstore"
)

// The deploy stage's apply gate reads every image the manifests run: the login the push used (a saved registry's)
// goes to the registry pushed to, never to another registry a sidecar's image names.
func TestReview4PipelineLoginStaysWithItsRegistry(t *testing.T) {
	var mu sync.Mutex
	got := map[string][]string{} // host → the Authorization headers it received
	handler := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Host] = append(got[r.Host], r.Header.Get("Authorization"))
		mu.Unlock()
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNotFound)
	}
	pushedTo := httptest.NewServer(http.HandlerFunc(handler))
	defer pushedTo.Close()
	other := httptest.NewServer(http.HandlerFunc(handler))
	defer other.Close()
	hostOf := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

	c := newClient(Config{})
	r := &pipelineRun{c: c}
	ro := r.loginFor(RegistryOptions{Credentials: RegistryCredentials{Username: "ci", Password: "canary-review4-login"}}, hostOf(pushedTo))
	ctx := context.Background()
	_, _ = c.resolveImage(ctx, hostOf(other)+"/sidecar:1", ro)
	_, _ = c.resolveImage(ctx, hostOf(pushedTo)+"/shop/web:1", ro)

	canary := base64.StdEncoding.EncodeToString([]byte("ci:canary-review4-login"))
	mu.Lock()
	defer mu.Unlock()
	for _, h := range got[hostOf(other)] {
		if strings.Contains(h, canary) {
			t.Errorf("the other registry received the login: %s", h)
		}
	}
	if !strings.Contains(strings.Join(got[hostOf(pushedTo)], " "), canary) {
		t.Errorf("the registry pushed to never received its login: %q", got[hostOf(pushedTo)])
	}
}

// A registry URL shaped like a saved registry's name ("prod": no dot, no port, not localhost) names a saved
// registry only: with a store and no registry saved as it (a typo, a machine where it was never added), it is
// refused before any request, never read as the host "prod" (whatever that resolves to).
func TestReview4UnsavedNameIsNoHost(t *testing.T) {
	key := make([]byte, credstore.KeySize)
	store, err := credstore.Open(credstore.Options{Dir: t.TempDir(), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int32
	tr := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		requests.Add(1)
		return nil, fmt.Errorf("no request should be made (%s)", r.URL)
	})
	c := newClient(Config{Registries: store})
	for _, op := range []string{RegistryPull, RegistryList, RegistryDelete, RegistryTag} {
		res, err := c.ManageContainerRegistry(context.Background(), op, "team/web:1", "prod", RegistryOptions{Transport: tr, PushOptions: registry.PushOptions{Tags: []string{"2"}}})
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no registry is saved as prod") {
			t.Errorf("%s to the unsaved name prod = %v (%+v), want ErrNotFound naming it", op, err, res)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests were made", n)
	}
	// A host stays a host: with a dot, a port or a scheme.
	for _, url := range []string{"prod.example.com", "prod:5000", "https://prod", "http://prod"} {
		if got, _, ok, err := c.namedRegistry(url, &RegistryOptions{}); ok || err != nil || got != url {
			t.Errorf("%s read as a saved registry's name: %v, %v", url, ok, err)
		}
	}
}

// A pipeline's push to a saved registry with scan-on-push attaches the scan even when the file says no_attach: the
// registry's rule is not the pipeline file's to lift (without an advisory database the attach, and so the push
// stage, fails; before, the image went in with no scan).
func TestReview4PipelineKeepsScanOnPush(t *testing.T) {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := layout.Write(filepath.Join(dir, "oci"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	store, err := credstore.Open(credstore.Options{Dir: t.TempDir(), Key: make([]byte, credstore.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(Config{Registries: store, PolicyScan: ScanOptions{DBDir: filepath.Join(dir, "no-db"), Cache: "-"}})
	ctx := context.Background()
	if _, err := c.AddRegistry(ctx, "prod", ContainerRegistry{URL: "http://" + host, SecurityScanEnabled: true}, AddRegistryOptions{NoCheck: true}); err != nil {
		t.Fatal(err)
	}
	p := &pipeline.Pipeline{Name: "web", Image: "registry.example.com/shop/web:1", Push: &pipeline.Push{Registry: "prod", NoAttach: true}}
	r := &pipelineRun{c: c, p: p, res: &PipelineResult{}, image: "oci:" + filepath.Join(dir, "oci")}
	_, out, err := r.push(ctx)
	res, _ := out.(*RegistryResult)
	if err == nil && (res == nil || res.Evidence == nil) {
		t.Errorf("pushed to a scan-on-push registry with no scan attached: %+v", res)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
