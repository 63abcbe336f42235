package registry_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/registry"
)

// uncompressedArchive writes a docker save archive (uncompressed layer, as the engine writes it) whose one layer
// holds compressible text.
func uncompressedArchive(t *testing.T) string {
	t.Helper()
	var text bytes.Buffer
	for i := range 40000 {
		fmt.Fprintf(&text, "line %d of a log that compresses, value %d\n", i, i*7%1000)
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	if err := tw.WriteHeader(&tar.Header{Name: "app/log.txt", Mode: 0o644, Size: int64(text.Len()), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(text.Bytes())
	tw.Close()
	sum := sha256.Sum256(layer.Bytes())
	config, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(sum[:])}}})
	manifest, _ := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": []string{"gz/app:1"}, "Layers": []string{"layer.tar"}}})
	var out bytes.Buffer
	aw := tar.NewWriter(&out)
	for _, f := range []struct {
		name string
		data []byte
	}{{"config.json", config}, {"layer.tar", layer.Bytes()}, {"manifest.json", manifest}} {
		if err := aw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		aw.Write(f.data)
	}
	aw.Close()
	path := filepath.Join(t.TempDir(), "image.tar")
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// A push compresses the layers of an uncompressed archive at the level asked for: 1 by default (fastest), 9 the
// smallest; a level outside 0-9 is refused before anything is read.
func TestPushGzipLevel(t *testing.T) {
	ctx := context.Background()
	reg := testenv.InProcess(t)
	ep, opts := endpoint(t, reg)
	file := uncompressedArchive(t)
	layerSize := map[int]int64{}
	for _, level := range []int{0, 9} {
		dst := ref(t, ep, fmt.Sprintf("gz/level%d:1", level))
		if _, err := registry.Push(ctx, nil, "docker-archive:"+file, dst, ep, registry.PushOptions{GzipLevel: level}, opts); err != nil {
			t.Fatalf("Push(level %d) = %v", level, err)
		}
		img, err := remote.Image(dst, remote.WithTransport(reg.Transport()))
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.Manifest()
		if err != nil || len(m.Layers) != 1 {
			t.Fatalf("manifest %+v, %v", m, err)
		}
		layerSize[level] = m.Layers[0].Size
		// What was pushed reads back as the same files.
		if _, err := img.Layers(); err != nil {
			t.Fatal(err)
		}
	}
	if layerSize[9] >= layerSize[0] {
		t.Errorf("layer at gzip level 9 is %d bytes, at the default (1) %d: want it smaller", layerSize[9], layerSize[0])
	}
	for _, bad := range []int{-1, 10} {
		if _, err := registry.Push(ctx, nil, "docker-archive:"+file, ref(t, ep, "gz/bad:1"), ep, registry.PushOptions{GzipLevel: bad}, opts); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Push(level %d) = %v, want ErrInvalidArgument", bad, err)
		}
	}
}
