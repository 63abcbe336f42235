package optimize

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// R2-9. hardening (optimize.go:413) takes a compliance detail's path up to its first space: a flagged file whose
// path holds a space ("/srv/my app/id_rsa (secret file name)") becomes "/srv/my", so the secret stays, and
// whatever "/srv/my" is (a directory: all of it the profile did not see) is removed instead.
func TestHostileHardeningPathsWithSpaces(t *testing.T) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range []struct{ name, body string }{
		{"srv/", ""}, {"srv/my/", ""}, {"srv/my/app.py", "print()"}, {"srv/my app/", ""}, {"srv/my app/id_rsa", "key"},
		{"srv/old data/", ""}, {"srv/old data/x.bak", "bak"},
	} {
		h := &tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(e.body))}
		if e.name[len(e.name)-1] == '/' {
			h = &tar.Header{Name: e.name, Typeflag: tar.TypeDir, Mode: 0o755}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(e.body))
	}
	_ = tw.Close()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	h, err := (&Optimizer{}).hardening(context.Background(), img, Request{Image: img}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"/srv/my app/id_rsa", "/srv/old data/x.bak"} {
		if _, ok := h.Remove[want]; !ok {
			t.Errorf("%s is flagged but not removed; Remove = %v", want, h.Remove)
		}
	}
	if _, ok := h.Remove["/srv/my"]; ok {
		t.Errorf("/srv/my (the application) is to be removed: %v", h.Remove)
	}
}
