package policy_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/policy"
)

// Evidence attached to an image's digest is listed and read back, on a registry with the referrers API, on one
// without it (the tag-schema fallback), and on the real distribution 2.8, which has none.
func TestEvidenceRoundTrip(t *testing.T) {
	ctx := context.Background()
	withAPI := httptest.NewServer(registry.New(registry.WithReferrersSupport(true)))
	t.Cleanup(withAPI.Close)
	dist := testenv.Distribution(t, testenv.DistributionOptions{PlainHTTP: true, NoAuth: true})
	for _, c := range []struct {
		name, host string
		fallback   bool
	}{
		{"referrers API", strings.TrimPrefix(withAPI.URL, "http://"), false},
		{"tag fallback (in-process)", testenv.InProcess(t).Host, true},
		{"distribution 2.8", dist.Host, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			img, err := random.Image(512, 1)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := name.ParseReference(c.host+"/team/app:1", name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(ref, img); err != nil {
				t.Fatal(err)
			}
			d, _ := img.Digest()
			subject := ref.Context().Digest(d.String())
			payload := []byte(`{"image_name":"team/app:1","vulnerabilities":[]}`)
			e, err := policy.Attach(ctx, subject, policy.ScanArtifactType, payload, map[string]string{policy.AnnotationScanner: "myrmex test"})
			if err != nil {
				t.Fatalf("Attach = %v", err)
			}
			if _, err := policy.Attach(ctx, subject, policy.SBOMArtifactType, []byte(`{"bomFormat":"CycloneDX"}`), nil); err != nil {
				t.Fatal(err)
			}
			list, err := policy.List(ctx, subject, []string{policy.ScanArtifactType})
			if err != nil || len(list) != 1 || list[0].Digest != e.Digest || list[0].Annotations[policy.AnnotationScanner] != "myrmex test" || list[0].Created.IsZero() {
				t.Fatalf("List = %+v, %v", list, err)
			}
			all, _ := policy.List(ctx, subject, nil)
			if len(all) != 2 {
				t.Errorf("all evidence: %+v", all)
			}
			body, got, err := policy.Fetch(ctx, ref.Context(), e.Digest)
			if err != nil || !bytes.Equal(body, payload) || got.Subject != d.String() || got.ArtifactType != policy.ScanArtifactType {
				t.Errorf("Fetch = %q, %+v, %v", body, got, err)
			}
			_, err = remote.Head(ref.Context().Tag("sha256-" + d.Hex))
			if (err == nil) != c.fallback {
				t.Errorf("fallback tag present: %v, want %v", err == nil, c.fallback)
			}
			// Something that is not evidence is refused when read as such.
			if _, _, err := policy.Fetch(ctx, ref.Context(), d.String()); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("Fetch(an image) = %v, want ErrInvalidArgument", err)
			}
		})
	}
}
