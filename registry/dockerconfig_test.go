package registry_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/registry"
)

// TestCredentialsFromTheDockerConfig reads the login from $DOCKER_CONFIG/config.json, as docker does, when the
// call is given no credentials.
func TestCredentialsFromTheDockerConfig(t *testing.T) {
	ctx := context.Background()
	reg := testenv.Distribution(t, testenv.DistributionOptions{})
	ep, _ := registry.ParseEndpoint(reg.URL(), "")
	opts := registry.Options{Transport: reg.Transport(), Retries: -1}

	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	dst := ref(t, ep, "cfg/app:1")
	// No login anywhere: refused.
	if err := remote.Write(dst, img, opts.RemoteOptions(ctx, ep)...); !errors.Is(registry.Classify(err, ep.Host, "x"), errdefs.ErrUnauthorized) {
		t.Fatalf("push without credentials = %v, want ErrUnauthorized", err)
	}
	auth := base64.StdEncoding.EncodeToString([]byte(reg.Username + ":" + reg.Password))
	cfg := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, reg.Host, auth)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(dst, img, opts.RemoteOptions(ctx, ep)...); err != nil {
		t.Fatalf("push with the Docker config's login = %v", err)
	}
	res, err := registry.ListTags(ctx, dst.Context(), ep, opts)
	if err != nil || len(res.Tags) != 1 || res.Tags[0] != "1" {
		t.Errorf("ListTags() with the Docker config's login = %v, %v; want [1]", res.Tags, err)
	}
}
