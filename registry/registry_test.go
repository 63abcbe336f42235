package registry_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/registry"
)

func TestDetectKind(t *testing.T) {
	tests := map[string]registry.Kind{
		"docker.io":            registry.DockerHub,
		"index.docker.io":      registry.DockerHub,
		"registry-1.docker.io": registry.DockerHub,
		"123456789012.dkr.ecr.eu-west-1.amazonaws.com":     registry.ECR,
		"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn": registry.ECR,
		"myreg.azurecr.io":            registry.ACR,
		"gcr.io":                      registry.GCR,
		"eu.gcr.io":                   registry.GCR,
		"europe-west1-docker.pkg.dev": registry.GCR,
		"harbor.example.com":          registry.Generic,
		"127.0.0.1:5000":              registry.Generic,
	}
	for host, want := range tests {
		if got := registry.DetectKind(host); got != want {
			t.Errorf("DetectKind(%q) = %q, want %q", host, got, want)
		}
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		image, registryURL string
		kind               registry.Kind
		want               string
		wantErr            error
	}{
		{"nginx", "", "", "index.docker.io/library/nginx:latest", nil},
		{"nginx:1.27", "docker.io", "", "index.docker.io/library/nginx:1.27", nil},
		{"team/app:1", "", "", "index.docker.io/team/app:1", nil},
		{"nginx:1.27", "registry.example.com:5000", "", "registry.example.com:5000/nginx:1.27", nil},
		{"team/app:1", "https://registry.example.com", "", "registry.example.com/team/app:1", nil},
		{"other.example.com/team/app:1", "registry.example.com", "", "registry.example.com/team/app:1", nil},
		{"app@sha256:" + strings.Repeat("a", 64), "registry.example.com", "", "registry.example.com/app@sha256:" + strings.Repeat("a", 64), nil},
		{"app:1", "123456789012.dkr.ecr.us-east-1.amazonaws.com", "", "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1", nil},
		{"project/app:1", "harbor.example.com", registry.Harbor, "harbor.example.com/project/app:1", nil},
		{"app:1", "harbor.example.com", registry.Harbor, "", errdefs.ErrInvalidArgument},
		{"app:1", "docker.io", registry.ECR, "", errdefs.ErrInvalidArgument},
		{"App:1", "", "", "", errdefs.ErrInvalidArgument},
		{"", "", "", "", errdefs.ErrInvalidArgument},
		{"app:1", "registry.example.com/path", "", "", errdefs.ErrInvalidArgument},
		{"app:1", "ftp://registry.example.com", "", "", errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		ep, err := registry.ParseEndpoint(tt.registryURL, tt.kind)
		var ref name.Reference
		if err == nil {
			ref, err = registry.Normalize(tt.image, ep)
		}
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Normalize(%q, %q) error = %v, want %v", tt.image, tt.registryURL, err, tt.wantErr)
			}
			continue
		}
		if err != nil || ref.Name() != tt.want {
			t.Errorf("Normalize(%q, %q) = %v, %v; want %s", tt.image, tt.registryURL, ref, err, tt.want)
		}
	}
	ep, _ := registry.ParseEndpoint("http://127.0.0.1:5000", "")
	if !ep.PlainHTTP || ep.Host != "127.0.0.1:5000" {
		t.Errorf("ParseEndpoint(http://127.0.0.1:5000) = %+v, want plain HTTP on 127.0.0.1:5000", ep)
	}
}

// endpoint describes a test registry for the package's calls.
func endpoint(t *testing.T, r *testenv.Registry) (registry.Endpoint, registry.Options) {
	t.Helper()
	ep, err := registry.ParseEndpoint(r.URL(), "")
	if err != nil {
		t.Fatal(err)
	}
	opts := registry.Options{Transport: r.Transport(), Keychain: authn.NewMultiKeychain()}
	if r.Username != "" {
		opts.Auth = &authn.AuthConfig{Username: r.Username, Password: r.Password}
	}
	return ep, opts
}

func ref(t *testing.T, ep registry.Endpoint, s string) name.Reference {
	t.Helper()
	r, err := registry.Normalize(s, ep)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func remoteOpts(r *testenv.Registry) []remote.Option {
	o := []remote.Option{remote.WithTransport(r.Transport())}
	if r.Username != "" {
		o = append(o, remote.WithAuth(&authn.Basic{Username: r.Username, Password: r.Password}))
	}
	return o
}

func digestAt(t *testing.T, r *testenv.Registry, ep registry.Endpoint, s string) (v1.Hash, error) {
	t.Helper()
	d, err := remote.Head(ref(t, ep, s), remoteOpts(r)...)
	if err != nil {
		return v1.Hash{}, err
	}
	return d.Digest, nil
}

func TestPushFromEngineAndPullBack(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	reg := testenv.InProcess(t)
	ep, opts := endpoint(t, reg)

	dst := ref(t, ep, "myrmex/busybox:1")
	res, err := registry.Push(ctx, eng, testimages.Busybox, dst, ep, registry.PushOptions{Tags: []string{"stable", "1.0"}}, opts)
	if err != nil {
		t.Fatalf("Push(%s) = %v", testimages.Busybox, err)
	}
	if !strings.HasPrefix(res.Digest, "sha256:") || res.Size < 500_000 || !slices.Equal(res.Tags, []string{"1", "stable", "1.0"}) {
		t.Errorf("Push() = %+v, want a digest, the busybox size and tags 1, stable, 1.0", res)
	}
	for _, tag := range []string{"1", "stable", "1.0"} {
		if d, err := digestAt(t, reg, ep, "myrmex/busybox:"+tag); err != nil || d.String() != res.Digest {
			t.Errorf("tag %s = %v, %v; want %s", tag, d, err, res.Digest)
		}
	}
	list, err := registry.ListTags(ctx, dst.Context(), ep, opts)
	if err != nil || !slices.Equal(list.Tags, []string{"1", "1.0", "stable"}) {
		t.Errorf("ListTags() = %v, %v; want [1 1.0 stable]", list.Tags, err)
	}

	// Pull lands it in the engine under the registry's name, with the same content.
	pulled, err := registry.Pull(ctx, eng, ref(t, ep, "myrmex/busybox:stable"), ep, opts)
	if err != nil {
		t.Fatalf("Pull() = %v", err)
	}
	local := ep.Host + "/myrmex/busybox:stable"
	t.Cleanup(func() { _, _ = eng.API().ImageRemove(context.Background(), local, imageRemove()) })
	if ok, err := eng.ImageExists(ctx, local); !ok || err != nil {
		t.Fatalf("ImageExists(%s) after Pull = %v, %v; want true", local, ok, err)
	}
	if pulled.Digest != res.Digest {
		t.Errorf("Pull() digest = %s, want %s", pulled.Digest, res.Digest)
	}
	// Pushing the pulled image again changes nothing: same digest.
	again, err := registry.Push(ctx, eng, local, ref(t, ep, "myrmex/busybox:again"), ep, registry.PushOptions{}, opts)
	if err != nil || again.Digest != res.Digest {
		t.Errorf("Push(pulled) = %s, %v; want %s", again.Digest, err, res.Digest)
	}

	if _, err := registry.Push(ctx, eng, "myrmex.local/no-such-image:1", dst, ep, registry.PushOptions{}, opts); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Push(missing image) error = %v, want ErrNotFound", err)
	}
	if _, err := registry.Pull(ctx, eng, ref(t, ep, "myrmex/busybox:missing"), ep, opts); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Pull(missing tag) error = %v, want ErrNotFound", err)
	}
}

func TestPushFromLayoutAndArchiveKeepsIndexWhole(t *testing.T) {
	ctx := context.Background()
	reg := testenv.InProcess(t)
	ep, opts := endpoint(t, reg)

	idx, err := random.Index(1024, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := layout.Write(dir, idx); err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	res, err := registry.Push(ctx, nil, "oci:"+dir, ref(t, ep, "multi/app:1"), ep, registry.PushOptions{}, opts)
	if err != nil {
		t.Fatalf("Push(oci:%s) = %v", dir, err)
	}
	if res.Digest != want.String() || !types.MediaType(res.MediaType).IsIndex() {
		t.Errorf("Push(oci layout) = %s %s, want the index %s whole", res.Digest, res.MediaType, want)
	}

	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	file := t.TempDir() + "/image.tar"
	if err := tarball.WriteToFile(file, name.MustParseReference("archive/app:1"), img); err != nil {
		t.Fatal(err)
	}
	wantImg, _ := img.Digest()
	res, err = registry.Push(ctx, nil, "docker-archive:"+file, ref(t, ep, "archive/app:1"), ep, registry.PushOptions{}, opts)
	if err != nil || res.Digest != wantImg.String() {
		t.Errorf("Push(docker-archive) = %s, %v; want %s", res.Digest, err, wantImg)
	}
	if _, err := registry.Push(ctx, nil, "oci:"+t.TempDir()+"/none", ref(t, ep, "x/y:1"), ep, registry.PushOptions{}, opts); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Push(missing layout) error = %v, want ErrNotFound", err)
	}
}

func TestTagAndCopyBetweenRegistries(t *testing.T) {
	ctx := context.Background()
	src := testenv.InProcess(t)
	dst := testenv.Distribution(t, testenv.DistributionOptions{})
	sep, sopts := endpoint(t, src)
	dep, dopts := endpoint(t, dst)

	idx, err := random.Index(1024, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref(t, sep, "team/app:1"), idx, remoteOpts(src)...); err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()

	tagged, err := registry.Tag(ctx, ref(t, sep, "team/app:1"), []string{"stable", "prod"}, sep, sopts)
	if err != nil || !slices.Equal(tagged.Tags, []string{"stable", "prod"}) || tagged.Digest != want.String() {
		t.Fatalf("Tag() = %+v, %v; want tags stable, prod on %s", tagged, err, want)
	}
	for _, tag := range []string{"stable", "prod"} {
		if d, err := digestAt(t, src, sep, "team/app:"+tag); err != nil || d != want {
			t.Errorf("after Tag, %s = %v, %v; want the index %s", tag, d, err, want)
		}
	}

	copied, err := registry.Copy(ctx, ref(t, sep, "team/app:stable"), sep, sopts, ref(t, dep, "mirror/app:stable"), dep, dopts)
	if err != nil {
		t.Fatalf("Copy() = %v", err)
	}
	if copied.Digest != want.String() || !types.MediaType(copied.MediaType).IsIndex() {
		t.Errorf("Copy() = %s %s, want the index %s whole", copied.Digest, copied.MediaType, want)
	}
	got, err := remote.Index(ref(t, dep, "mirror/app:stable"), remoteOpts(dst)...)
	if err != nil {
		t.Fatalf("reading the copy: %v", err)
	}
	if d, _ := got.Digest(); d != want {
		t.Errorf("copied index digest = %s, want %s", d, want)
	}
	im, _ := got.IndexManifest()
	for _, m := range im.Manifests {
		if _, err := got.Image(m.Digest); err != nil {
			t.Errorf("copied index lacks image %s: %v", m.Digest, err)
		}
	}
	cat, err := registry.Catalog(ctx, dep, dopts)
	if err != nil || !slices.Contains(cat.Repositories, "mirror/app") {
		t.Errorf("Catalog() = %v, %v; want mirror/app", cat.Repositories, err)
	}
	if _, err := registry.Tag(ctx, ref(t, sep, "team/app:nope"), []string{"x"}, sep, sopts); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Tag(missing) error = %v, want ErrNotFound", err)
	}
	if _, err := registry.Tag(ctx, ref(t, sep, "team/app:1"), []string{"bad tag"}, sep, sopts); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Tag(bad tag) error = %v, want ErrInvalidArgument", err)
	}
}

func pushRandom(t *testing.T, r *testenv.Registry, ep registry.Endpoint, s string) v1.Hash {
	t.Helper()
	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, ep, s), img, remoteOpts(r)...); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d
}

func TestDeleteOneTagAloneThenTheManifest(t *testing.T) {
	for _, tt := range []struct {
		name string
		reg  func(t *testing.T) *testenv.Registry
	}{
		{"distribution", func(t *testing.T) *testenv.Registry { return testenv.Distribution(t, testenv.DistributionOptions{}) }},
		{"in-process", func(t *testing.T) *testenv.Registry { return testenv.InProcess(t) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			reg := tt.reg(t)
			ep, opts := endpoint(t, reg)
			d := pushRandom(t, reg, ep, "app/web:a")
			if _, err := registry.Tag(ctx, ref(t, ep, "app/web:a"), []string{"b", "c"}, ep, opts); err != nil {
				t.Fatal(err)
			}
			res, err := registry.Delete(ctx, ref(t, ep, "app/web:a"), ep, opts)
			if err != nil || !slices.Equal(res.Tags, []string{"a"}) || res.Digest != d.String() {
				t.Fatalf("Delete(tag a) = %+v, %v; want tag a of %s removed", res, err, d)
			}
			if _, err := digestAt(t, reg, ep, "app/web:a"); err == nil {
				t.Errorf("tag a still resolves after Delete(tag a)")
			}
			for _, tag := range []string{"b", "c"} {
				if got, err := digestAt(t, reg, ep, "app/web:"+tag); err != nil || got != d {
					t.Errorf("tag %s after Delete(tag a) = %v, %v; want %s kept", tag, got, err, d)
				}
			}
			list, _ := registry.ListTags(ctx, ref(t, ep, "app/web:b").Context(), ep, opts)
			if !slices.Equal(list.Tags, []string{"b", "c"}) {
				t.Errorf("ListTags() after Delete(tag a) = %v, want [b c]", list.Tags)
			}

			byDigest := ref(t, ep, "app/web@"+d.String())
			if res, err := registry.Delete(ctx, byDigest, ep, opts); err != nil || !slices.Equal(res.Tags, []string{"b", "c"}) {
				t.Fatalf("Delete(digest) = %v, %v; want tags b and c removed with the manifest", res.Tags, err)
			}
			if _, err := digestAt(t, reg, ep, "app/web:b"); err == nil {
				t.Errorf("tag b still resolves after Delete(digest)")
			}
			for _, gone := range []name.Reference{byDigest, ref(t, ep, "app/web:a"), ref(t, ep, "app/web:zzz")} {
				if _, err := registry.Delete(ctx, gone, ep, opts); !errors.Is(err, errdefs.ErrNotFound) {
					t.Errorf("Delete(%s) error = %v, want ErrNotFound", gone, err)
				}
			}
		})
	}
}

func TestDeleteTagLeavesItAsItWasWhenTheRegistryRefuses(t *testing.T) {
	ctx := context.Background()
	target := testenv.Distribution(t, testenv.DistributionOptions{})
	tep, _ := endpoint(t, target)
	d := pushRandom(t, target, tep, "app/web:keep")
	// Every DELETE fails: the tag, pointed at the placeholder, must be put back on the image.
	proxy := testenv.FaultProxy(t, target, testenv.Faults{
		Match:   func(r *http.Request) bool { return r.Method == http.MethodDelete },
		Fail503: 100,
	})
	ep, opts := endpoint(t, proxy)
	opts.Retries = -1
	_, err := registry.Delete(ctx, ref(t, ep, "app/web:keep"), ep, opts)
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "left as it was") {
		t.Errorf("Delete(tag, deletes fail) error = %v, want ErrUnavailable, tag left as it was", err)
	}
	if n, _ := proxy.Injected(); n == 0 {
		t.Fatalf("no DELETE failed: the fault was not injected")
	}
	if got, err := digestAt(t, target, tep, "app/web:keep"); err != nil || got != d {
		t.Errorf("tag after the failed delete = %v, %v; want %s", got, err, d)
	}
}

func TestPushSurvivesFaultsOrLeavesTheOldTag(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	target := testenv.Distribution(t, testenv.DistributionOptions{})
	tep, _ := endpoint(t, target)
	old := pushRandom(t, target, tep, "app/busybox:live")

	// A 503 and an upload cut part-way: retries carry the push through, with the right digest.
	proxy := testenv.FaultProxy(t, target, testenv.Faults{Fail503: 1, CutUpload: 1})
	ep, opts := endpoint(t, proxy)
	res, err := registry.Push(ctx, eng, testimages.Busybox, ref(t, ep, "app/busybox:live"), ep, registry.PushOptions{}, opts)
	n503, cut := proxy.Injected()
	if n503 != 1 || cut != 1 {
		t.Fatalf("faults injected = %d 503s and %d cuts, want 1 and 1", n503, cut)
	}
	if err != nil {
		t.Fatalf("Push(through faults) = %v, want retries to carry it through", err)
	}
	if got, err := digestAt(t, target, tep, "app/busybox:live"); err != nil || got.String() != res.Digest {
		t.Errorf("tag after Push = %v, %v; want %s", got, err, res.Digest)
	}

	// Faults beyond the retries: a typed error, and the tag still names the image it named before.
	if err := remote.Write(ref(t, tep, "app/busybox:live"), mustRandom(t), remoteOpts(target)...); err != nil {
		t.Fatal(err)
	}
	old, _ = digestAt(t, target, tep, "app/busybox:live")
	hard := testenv.FaultProxy(t, target, testenv.Faults{Fail503: 1000})
	hep, hopts := endpoint(t, hard)
	hopts.Retries = 2
	_, err = registry.Push(ctx, eng, testimages.Web, ref(t, hep, "app/busybox:live"), hep, registry.PushOptions{}, hopts)
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("Push(registry keeps failing) error = %v, want ErrUnavailable", err)
	}
	if got, err := digestAt(t, target, tep, "app/busybox:live"); err != nil || got != old {
		t.Errorf("tag after the failed push = %v, %v; want the old %s intact", got, err, old)
	}
}

func mustRandom(t *testing.T) v1.Image {
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestErrorsSayWhatWentWrong(t *testing.T) {
	ctx := context.Background()
	reg := testenv.Distribution(t, testenv.DistributionOptions{})
	ep, opts := endpoint(t, reg)
	pushRandom(t, reg, ep, "app/web:1")

	wrong := opts
	wrong.Auth = &authn.AuthConfig{Username: reg.Username, Password: "canary-wrong-password"}
	noCA := opts
	noCA.Transport = nil
	unknown, _ := registry.ParseEndpoint("registry.invalid:5000", "")

	tests := []struct {
		name string
		ep   registry.Endpoint
		opts registry.Options
		ref  string
		want error
	}{
		{"wrong password", ep, wrong, "app/web:1", errdefs.ErrUnauthorized},
		{"unknown host", unknown, opts, "app/web:1", errdefs.ErrUnavailable},
		{"untrusted certificate", ep, noCA, "app/web:1", errdefs.ErrTLS},
		{"missing repository", ep, opts, "nope/nothing:1", errdefs.ErrNotFound},
		{"missing tag", ep, opts, "app/web:2", errdefs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Retries = -1
			_, err := registry.ListTags(ctx, ref(t, tt.ep, tt.ref).Context(), tt.ep, tt.opts)
			if tt.name == "missing tag" {
				_, err = registry.Tag(ctx, ref(t, tt.ep, tt.ref), []string{"x"}, tt.ep, tt.opts)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("%s: error = %v, want %v", tt.name, err, tt.want)
			}
			if strings.Contains(err.Error(), "canary-wrong-password") {
				t.Errorf("%s: error %q shows the password", tt.name, err)
			}
		})
	}
}
