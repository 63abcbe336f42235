package registry_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/registry"
)

// ListTags with TagDetails, on the distribution registry and the in-process one: each tag's digest, media type
// and size as the manifests say (an index summed over its images, with their platforms), two tags of one image
// alike; an index too large to size has its error and does not fail the listing; without TagDetails no manifest
// is read.
func TestListTagsWithDetails(t *testing.T) {
	for _, tt := range []struct {
		name string
		reg  func(t *testing.T) *testenv.Registry
	}{
		{"distribution", func(t *testing.T) *testenv.Registry { return testenv.Distribution(t, testenv.DistributionOptions{}) }},
		{"in-process", func(t *testing.T) *testenv.Registry { return testenv.InProcess(t) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			r := tt.reg(t)
			ep, opts := endpoint(t, r)

			img, err := random.Image(3000, 3)
			if err != nil {
				t.Fatal(err)
			}
			for _, tag := range []string{"1.0", "stable"} {
				if err := remote.Write(ref(t, ep, "team/app:"+tag), img, remoteOpts(r)...); err != nil {
					t.Fatal(err)
				}
			}
			var adds []mutate.IndexAddendum
			for _, arch := range []string{"amd64", "arm64"} {
				img, err := random.Image(1000, 1)
				if err != nil {
					t.Fatal(err)
				}
				adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
			}
			idx := mutate.AppendManifests(empty(), adds...)
			if err := remote.WriteIndex(ref(t, ep, "team/app:multi"), idx, remoteOpts(r)...); err != nil {
				t.Fatal(err)
			}
			huge, err := random.Index(16, 1, 65)
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.WriteIndex(ref(t, ep, "team/app:huge"), huge, remoteOpts(r)...); err != nil {
				t.Fatal(err)
			}

			repo := ref(t, ep, "team/app:1.0").Context()
			plain, err := registry.ListTags(ctx, repo, ep, opts)
			if err != nil || plain.Details != nil {
				t.Fatalf("ListTags() without TagDetails = %+v, %v; want no details", plain, err)
			}
			opts.TagDetails = true
			res, err := registry.ListTags(ctx, repo, ep, opts)
			if err != nil {
				t.Fatalf("ListTags(TagDetails) = %v", err)
			}
			if want := []string{"1.0", "huge", "multi", "stable"}; !slices.Equal(res.Tags, want) || len(res.Details) != len(want) {
				t.Fatalf("ListTags(TagDetails) = %v with %d details, want %v with one each", res.Tags, len(res.Details), want)
			}
			byTag := map[string]registry.TagDetail{}
			for i, d := range res.Details {
				if d.Tag != res.Tags[i] {
					t.Errorf("detail %d is of %q, want %q (the tags' order)", i, d.Tag, res.Tags[i])
				}
				byTag[d.Tag] = d
			}

			digest, _ := img.Digest()
			size := manifestSize(t, img)
			for _, tag := range []string{"1.0", "stable"} {
				if d := byTag[tag]; d.Digest != digest.String() || d.Size != size || !types.MediaType(d.MediaType).IsImage() || d.Error != "" || d.Platforms != nil {
					t.Errorf("detail of %s = %+v, want digest %s, size %d, an image", tag, d, digest, size)
				}
			}
			idxDigest, _ := idx.Digest()
			im, _ := idx.IndexManifest()
			var idxSize int64
			var platforms []string
			for _, m := range im.Manifests {
				child, err := idx.Image(m.Digest)
				if err != nil {
					t.Fatal(err)
				}
				idxSize += manifestSize(t, child)
				if m.Platform != nil {
					platforms = append(platforms, m.Platform.String())
				}
			}
			if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) {
				t.Fatalf("the test's index has the platforms %v", platforms)
			}
			if d := byTag["multi"]; d.Digest != idxDigest.String() || d.Size != idxSize || !types.MediaType(d.MediaType).IsIndex() ||
				!slices.Equal(d.Platforms, platforms) || d.Error != "" {
				t.Errorf("detail of the index = %+v, want digest %s, size %d, platforms %v", d, idxDigest, idxSize, platforms)
			}
			if d := byTag["huge"]; d.Error == "" || d.Digest != "" || !strings.Contains(d.Error, "65 manifests") {
				t.Errorf("detail of an index of 65 images = %+v, want its error and nothing else", d)
			}
		})
	}
}

// ListTags reads the details of MaxTagDetails tags at most; the others are listed.
func TestListTagsDetailsAreBounded(t *testing.T) {
	ctx := context.Background()
	r := testenv.InProcess(t)
	ep, opts := endpoint(t, r)
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	src := ref(t, ep, "many/app:t0000")
	if err := remote.Write(src, img, remoteOpts(r)...); err != nil {
		t.Fatal(err)
	}
	n := registry.MaxTagDetails + 5
	var tags []string
	for i := 1; i < n; i++ {
		tags = append(tags, fmt.Sprintf("t%04d", i))
	}
	if _, err := registry.Tag(ctx, src, tags, ep, opts); err != nil {
		t.Fatal(err)
	}
	opts.TagDetails = true
	res, err := registry.ListTags(ctx, src.Context(), ep, opts)
	if err != nil || len(res.Tags) != n || len(res.Details) != registry.MaxTagDetails {
		t.Fatalf("ListTags(%d tags) = %d tags, %d details, %v; want %d details", n, len(res.Tags), len(res.Details), err, registry.MaxTagDetails)
	}
	digest, _ := img.Digest()
	if last := res.Details[len(res.Details)-1]; last.Tag != res.Tags[registry.MaxTagDetails-1] || last.Digest != digest.String() {
		t.Errorf("the last detail = %+v, want %s naming %s", last, res.Tags[registry.MaxTagDetails-1], digest)
	}
}

// manifestSize is what an image takes in a registry by its manifest: config and layers.
func manifestSize(t *testing.T, img v1.Image) int64 {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}
