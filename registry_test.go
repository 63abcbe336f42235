package containerization_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	containerization "github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/registry"
)

func TestManageContainerRegistryRejectsBadInputBeforeAnyRequest(t *testing.T) {
	tests := []struct {
		name, op, image, url string
		opts                 containerization.RegistryOptions
	}{
		{"unknown operation", "mirror", "app:1", "", containerization.RegistryOptions{}},
		{"empty image", containerization.RegistryPush, "", "", containerization.RegistryOptions{}},
		{"bad reference", containerization.RegistryPull, "App:1", "registry.invalid", containerization.RegistryOptions{}},
		{"bad type", containerization.RegistryList, "app", "registry.invalid", containerization.RegistryOptions{Type: "quay"}},
		{"type disagrees with host", containerization.RegistryList, "app", "docker.io", containerization.RegistryOptions{Type: "ecr"}},
		{"registry URL with a path", containerization.RegistryList, "app", "registry.invalid/team", containerization.RegistryOptions{}},
		{"harbor without a project", containerization.RegistryPull, "app:1", "harbor.invalid", containerization.RegistryOptions{Type: "harbor"}},
		{"missing CA file", containerization.RegistryList, "app", "registry.invalid", containerization.RegistryOptions{CAFile: "/nonexistent/ca.pem"}},
		{"bad platform", containerization.RegistryPull, "app:1", "registry.invalid", containerization.RegistryOptions{Platform: "linux/"}},
		{"bad pull via", containerization.RegistryPull, "app:1", "registry.invalid", containerization.RegistryOptions{PullVia: "pigeon"}},
		{"copy without destination", containerization.RegistryCopy, "app:1", "registry.invalid", containerization.RegistryOptions{}},
		{"tag without tags", containerization.RegistryTag, "app:1", "registry.invalid", containerization.RegistryOptions{}},
		{"bad new tag", containerization.RegistryTag, "app:1", "registry.invalid", containerization.RegistryOptions{PushOptions: registry.PushOptions{Tags: []string{"no spaces"}}}},
		{"layout push without destination", containerization.RegistryPush, "oci:/tmp/x", "registry.invalid", containerization.RegistryOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := containerization.ManageContainerRegistry(context.Background(), tt.op, tt.image, tt.url, tt.opts)
			if !errors.Is(err, containerization.ErrInvalidArgument) {
				t.Fatalf("ManageContainerRegistry(%q, %q, %q) error = %v, want ErrInvalidArgument", tt.op, tt.image, tt.url, err)
			}
			var re *containerization.RegistryError
			if !errors.As(err, &re) || re.Op != tt.op {
				t.Errorf("error = %T, want *RegistryError with Op %q", err, tt.op)
			}
			if res == nil || res.Success || res.ErrorMessage == "" {
				t.Errorf("result = %+v, want success false and an error message", res)
			}
		})
	}
}

func TestManageContainerRegistryEveryOperation(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	reg := testenv.Distribution(t, testenv.DistributionOptions{Password: "canary-s3cret-pw"})
	mirror := testenv.InProcess(t)
	opts := containerization.RegistryOptions{
		Engine:      eng,
		CAFile:      reg.CAFile,
		Credentials: containerization.RegistryCredentials{Username: reg.Username, Password: containerization.Secret(reg.Password)},
	}
	var outputs []string
	do := func(op, image, url string, o containerization.RegistryOptions) *containerization.RegistryResult {
		t.Helper()
		res, err := containerization.ManageContainerRegistry(ctx, op, image, url, o)
		b, _ := json.Marshal(res)
		outputs = append(outputs, string(b))
		if err != nil {
			outputs = append(outputs, err.Error())
			t.Fatalf("ManageContainerRegistry(%s, %s) = %v", op, image, err)
		}
		if !res.Success || res.Operation != op || res.ImageName != image || res.RegistryType != "generic" {
			t.Errorf("ManageContainerRegistry(%s, %s) = %+v, want success, echoed operation and image, type generic", op, image, res)
		}
		return res
	}

	push := do(containerization.RegistryPush, testimages.Web, reg.URL(), withTags(opts, "v1"))
	if !strings.HasPrefix(push.ImageDigest, "sha256:") || push.SizeMB < 0.5 || !slices.Equal(push.Tags, []string{"test", "v1"}) ||
		push.Reference != reg.Host+"/web:test" {
		// myrmex.local is the image's registry by Docker's rule; pushing retargets it, keeping the repository.
		t.Errorf("push = %+v, want digest, size, tags test and v1 at %s/web:test", push, reg.Host)
	}
	image := reg.Host + "/web"
	if got := do(containerization.RegistryTag, image+":v1", "", withTags(opts, "stable")); got.ImageDigest != push.ImageDigest {
		t.Errorf("tag digest = %s, want %s", got.ImageDigest, push.ImageDigest)
	}
	if got := do(containerization.RegistryList, image, "", opts); !slices.Equal(got.Tags, []string{"stable", "test", "v1"}) {
		t.Errorf("list tags = %v, want [stable test v1]", got.Tags)
	}
	if got := do(containerization.RegistryList, "", reg.URL(), opts); !slices.Contains(got.Repositories, "web") {
		t.Errorf("list catalog = %v, want web", got.Repositories)
	}
	if got := do(containerization.RegistryDelete, image+":test", "", opts); !slices.Equal(got.Tags, []string{"test"}) {
		t.Errorf("delete tag = %v, want [test]", got.Tags)
	}
	if got := do(containerization.RegistryList, image, "", opts); !slices.Equal(got.Tags, []string{"stable", "v1"}) {
		t.Errorf("list after deleting a tag = %v, want [stable v1]", got.Tags)
	}
	cp := opts
	cp.Destination = "http://" + mirror.Host + "/mirror/web:v1"
	if got := do(containerization.RegistryCopy, image+":v1", "", cp); got.ImageDigest != push.ImageDigest || got.Reference != mirror.Host+"/mirror/web:v1" {
		t.Errorf("copy = %+v, want %s at %s/mirror/web:v1", got, push.ImageDigest, mirror.Host)
	}
	pulled := do(containerization.RegistryPull, image+":stable", "", opts)
	t.Cleanup(func() { _, _ = eng.API().ImageRemove(context.Background(), image+":stable", imageRemoveForce()) })
	if ok, _ := eng.ImageExists(ctx, image+":stable"); !ok || pulled.ImageDigest != push.ImageDigest {
		t.Errorf("pull = %+v, want %s:stable in the engine with digest %s", pulled, image, push.ImageDigest)
	}
	if got := do(containerization.RegistryDelete, image+"@"+push.ImageDigest, "", opts); !slices.Equal(got.Tags, []string{"stable", "v1"}) {
		t.Errorf("delete digest removed tags %v, want [stable v1]", got.Tags)
	}

	// Each operation that fails at the registry says so, typed.
	for _, op := range []string{containerization.RegistryPull, containerization.RegistryTag, containerization.RegistryDelete, containerization.RegistryCopy} {
		o := withTags(cp, "again")
		if res, err := containerization.ManageContainerRegistry(ctx, op, image+":missing", "", o); !errors.Is(err, containerization.ErrNotFound) || res.Success {
			t.Errorf("%s of a missing tag = %+v, %v; want ErrNotFound and no success", op, res, err)
		}
	}

	wrong := opts
	wrong.Credentials.Password = "canary-wrong-pw"
	res, err := containerization.ManageContainerRegistry(ctx, containerization.RegistryList, image, "", wrong)
	if !errors.Is(err, containerization.ErrUnauthorized) {
		t.Errorf("list with a wrong password error = %v, want ErrUnauthorized", err)
	}
	b, _ := json.Marshal(res)
	outputs = append(outputs, string(b), err.Error())
	for _, out := range outputs {
		if strings.Contains(out, "canary-") {
			t.Errorf("an output shows a password: %s", out)
		}
	}
}

func withTags(o containerization.RegistryOptions, tags ...string) containerization.RegistryOptions {
	o.Tags = tags
	return o
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
