package registry

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// TestCloudHelperIsAskedForItsKind puts a stand-in for the ECR credential helper on PATH (no cloud is reachable
// here) and checks that an ECR host gets its answer, and that other hosts do not ask it.
func TestCloudHelperIsAskedForItsKind(t *testing.T) {
	dir := t.TempDir()
	script := "#!/bin/sh\nread server\necho '{\"ServerURL\":\"'$server'\",\"Username\":\"AWS\",\"Secret\":\"ecr-token\"}'\n"
	if err := os.WriteFile(filepath.Join(dir, "docker-credential-ecr-login"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // an empty Docker config: nothing else answers

	ecr := name.MustParseReference("123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1").Context()
	auth, err := Options{}.keychain(ECR).Resolve(ecr)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := auth.Authorization()
	if err != nil || cfg.Username != "AWS" || cfg.Password != "ecr-token" {
		t.Errorf("ECR credentials = %+v, %v; want the helper's AWS login", cfg, err)
	}
	other := name.MustParseReference("registry.example.com/app:1").Context()
	if auth, _ := (Options{}).keychain(Generic).Resolve(other); auth != authn.Anonymous {
		t.Errorf("generic registry credentials = %v, want anonymous: the ECR helper is for ECR hosts", auth)
	}
}
