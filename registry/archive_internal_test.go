package registry

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/codomyrmex/containerization/errdefs"
)

// An archive's layers read directly give go-containerregistry's bytes, diff IDs and digests: for gzip layers (as
// go-containerregistry writes archives, config sha256:HEX) and for plain ones (as docker save does, HEX.json and
// HEX/layer.tar), and for layer paths that are links to blobs (docker 25).
func TestReadableArchiveMatchesGoContainerRegistry(t *testing.T) {
	ctx := context.Background()
	var layers []v1.Layer
	for _, mt := range []types.MediaType{types.DockerLayer, types.OCIUncompressedLayer} {
		for range 2 {
			l, err := random.Layer(32<<10, mt)
			if err != nil {
				t.Fatal(err)
			}
			layers = append(layers, l)
		}
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag("myrmex.local/archive:1")
	dir := t.TempDir()
	gz := filepath.Join(dir, "ggcr.tar")
	if err := tarball.WriteToFile(gz, tag, img); err != nil {
		t.Fatal(err)
	}
	linked := filepath.Join(dir, "linked.tar")
	relink(t, gz, linked)

	for _, file := range []string{gz, linked} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			ref, err := tarball.ImageFromPath(file, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := readableArchive(ctx, ref, file)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := got.(*archiveImage); !ok {
				t.Fatalf("readableArchive(%s) = %T, want the archive read directly", file, got)
			}
			gl, _ := got.Layers()
			wl, _ := ref.Layers()
			if len(gl) != len(wl) {
				t.Fatalf("%d layers, want %d", len(gl), len(wl))
			}
			for i := range wl {
				gd, _ := gl[i].DiffID()
				wd, _ := wl[i].DiffID()
				gdig, err1 := gl[i].Digest()
				wdig, err2 := wl[i].Digest()
				if gd != wd || gdig != wdig || err1 != nil || err2 != nil {
					t.Errorf("layer %d: diff ID %s digest %s (%v), want %s %s (%v)", i, gd, gdig, err1, wd, wdig, err2)
				}
				if g, w := content(t, gl[i]), content(t, wl[i]); !bytes.Equal(g, w) {
					t.Errorf("layer %d: %d bytes read directly, %d through go-containerregistry, not the same", i, len(g), len(w))
				}
			}
		})
	}
}

// relink copies the archive src to dst with every layer's entry moved under blobs/ and a symbolic link in its
// place, as docker 25's archives have.
func relink(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tr, tw := tar.NewReader(in), tar.NewWriter(out)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := h.Name
		if filepath.Ext(name) == ".gz" || filepath.Ext(name) == ".tar" {
			if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: "blobs/" + name, Mode: 0o644}); err != nil {
				t.Fatal(err)
			}
			h.Name = "blobs/" + name
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

func content(t *testing.T, l v1.Layer) []byte {
	t.Helper()
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

// An archive of more entries than an image's archive holds is refused before its layers are read, and one whose
// layer entries cannot be matched is read through go-containerregistry as before.
func TestReadableArchiveBounds(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	many := filepath.Join(dir, "many.tar")
	f, err := os.Create(many)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for i := 0; i <= maxArchiveEntries+1; i++ {
		if err := tw.WriteHeader(&tar.Header{Name: "x", Typeflag: tar.TypeReg, Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(tw.Close(), f.Close()); err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readableArchive(ctx, img, many); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("readableArchive(%d entries) = %v, want ErrInvalidArgument", maxArchiveEntries+2, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := readableArchive(cancelled, img, many); !errors.Is(err, context.Canceled) {
		t.Errorf("readableArchive(cancelled) = %v, want context.Canceled", err)
	}

	// A manifest.json that names no entry of the archive: go-containerregistry's image, unchanged.
	odd := filepath.Join(dir, "odd.tar")
	f, err = os.Create(odd)
	if err != nil {
		t.Fatal(err)
	}
	cfgName, _ := img.ConfigName()
	manifest := []byte(`[{"Config":"` + cfgName.Hex + `.json","Layers":["nowhere/layer.tar"]}]`)
	tw = tar.NewWriter(f)
	if err := tw.WriteHeader(&tar.Header{Name: "manifest.json", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(manifest))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(manifest); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(tw.Close(), f.Close()); err != nil {
		t.Fatal(err)
	}
	if got, err := readableArchive(ctx, img, odd); err != nil || got != img {
		t.Errorf("readableArchive(odd) = %T, %v; want the image given, unchanged", got, err)
	}
}

// The index follows docker load's reading of an archive: a name given twice is its last entry's, links are
// followed through other links, sparse files and overlong names are left out (go-containerregistry's tar reader
// reads those layers).
func TestIndexArchiveAsDockerLoadReadsIt(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a.tar")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	add := func(h *tar.Header, body string) {
		h.Mode, h.Size = 0o644, int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	long := strings.Repeat("n", maxArchiveName+1)
	add(&tar.Header{Name: "benign", Typeflag: tar.TypeReg}, "benign")
	add(&tar.Header{Name: "x/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../benign"}, "")
	add(&tar.Header{Name: "x/layer.tar", Typeflag: tar.TypeReg}, "last")
	add(&tar.Header{Name: "chain1", Typeflag: tar.TypeSymlink, Linkname: "chain2"}, "")
	add(&tar.Header{Name: "chain2", Typeflag: tar.TypeSymlink, Linkname: "/benign"}, "")
	add(&tar.Header{Name: "loop", Typeflag: tar.TypeSymlink, Linkname: "loop"}, "")
	add(&tar.Header{Name: "gone", Typeflag: tar.TypeReg}, "gone")
	add(&tar.Header{Name: "gone", Typeflag: tar.TypeDir}, "")
	add(&tar.Header{Name: long, Typeflag: tar.TypeReg}, "long")
	if err := errors.Join(tw.Close(), f.Close()); err != nil {
		t.Fatal(err)
	}
	entries, err := indexArchive(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(file)
	read := func(name string) string {
		e, ok := entries[name]
		if !ok {
			return "(absent)"
		}
		return string(raw[e.offset : e.offset+e.size])
	}
	for name, want := range map[string]string{"x/layer.tar": "last", "chain1": "benign", "benign": "benign",
		"loop": "(absent)", "gone": "(absent)", long: "(absent)"} {
		if got := read(name); got != want {
			t.Errorf("entry %.20s = %q, want %q", name, got, want)
		}
	}
	if !sparse(&tar.Header{PAXRecords: map[string]string{"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}}) ||
		sparse(&tar.Header{PAXRecords: map[string]string{"path": "x"}}) {
		t.Error("sparse() does not tell a PAX sparse header from another")
	}
}

// The names an archive's index keeps are bounded in bytes, not only in number.
func TestIndexArchiveBoundsItsNames(t *testing.T) {
	file := filepath.Join(t.TempDir(), "names.tar")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for i := 0; i <= maxArchiveNames/maxArchiveName+1; i++ {
		name := fmt.Sprintf("%06d-%s", i, strings.Repeat("n", maxArchiveName-7))
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(tw.Close(), f.Close()); err != nil {
		t.Fatal(err)
	}
	if _, err := indexArchive(context.Background(), file); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("indexArchive(%d bytes of names) = %v, want ErrInvalidArgument", maxArchiveNames+2*maxArchiveName, err)
	}
}

// A file that is not a docker save archive is bad input, said so before anything is read from it.
func TestOpenImageOfAFileThatIsNotAnArchive(t *testing.T) {
	junk := filepath.Join(t.TempDir(), "junk.tar")
	if err := os.WriteFile(junk, bytes.Repeat([]byte{0xa5}, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenImage(context.Background(), nil, SourceArchive+junk, Options{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("OpenImage(junk) = %v, want ErrInvalidArgument", err)
	}
}
