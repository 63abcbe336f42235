package containerization

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
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
