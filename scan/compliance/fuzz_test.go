package compliance

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/codomyrmex/containerization/errdefs"
)

// FuzzCheck runs the compliance checks on a one-layer image made of arbitrary bytes (a hostile tar stream):
// every input ends in a report or in an error wrapping ErrInvalidArgument; a report holds every check exactly
// once with a score from 0 to 100, and checking the same image twice gives the same report.
func FuzzCheck(f *testing.F) {
	for _, seed := range [][]file{
		{reg("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"), reg("etc/shadow", "root::1:0:99999:7:::\n")},
		{dir("etc"), whiteout("etc", "passwd"), reg("etc/.wh..wh..opq", ""), exe("usr/bin/su", 0o4755)},
		{reg("root/.ssh/id_rsa", "-----BEGIN RSA PRIVATE KEY-----\n"), reg("app/.env", "AWS_SECRET=1")},
		{reg(strings.Repeat("a/", 300)+"f", "x"), reg("/../escape", "x")},
		{{name: "l", typ: '1', link: "etc/passwd"}, {name: "s", typ: '2', link: "/etc/shadow"}},
	} {
		f.Add(tarBytes(f, seed...))
	}
	f.Add([]byte("not a tar stream"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
			tarball.WithCompressionLevel(0))
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.AppendLayers(empty.Image, l)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Check(context.Background(), img, "example.com/app:1", Options{MaxFileSize: 4096})
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Check = %v, want a report or an error wrapping ErrInvalidArgument", err)
			}
			return
		}
		if rep.Score < 0 || rep.Score > 100 {
			t.Fatalf("score %v out of 0-100", rep.Score)
		}
		seen := map[string]bool{}
		for _, c := range rep.Checks {
			if seen[c.ID] {
				t.Fatalf("check %s reported twice", c.ID)
			}
			seen[c.ID] = true
		}
		again, err := Check(context.Background(), img, "example.com/app:1", Options{MaxFileSize: 4096})
		if err != nil || !reflect.DeepEqual(rep.Checks, again.Checks) {
			t.Fatalf("a second check of the same image differs: %v", err)
		}
	})
}

// tarBytes is layer's tar stream.
func tarBytes(t testing.TB, files ...file) []byte {
	l := layer(t, files...)
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
