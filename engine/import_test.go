package engine_test

import (
	"archive/tar"
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/internal/testenv"
)

// An import answers the new image's ID, read from the engine's progress stream, and the engine holds it under
// that ID with the changes applied; a rootfs that is not a tar stream is refused with the engine's message.
func TestImportImage(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	var rootfs bytes.Buffer
	tw := tar.NewWriter(&rootfs)
	if err := tw.WriteHeader(&tar.Header{Name: "hello", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("hi"))
	tw.Close()
	ref := "myrmex.local/import-test:1"
	id, err := eng.ImportImage(ctx, &rootfs, ref, []string{"LABEL dev.codomyrmex.test=import"})
	t.Cleanup(func() {
		_, _ = eng.API().ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true})
	})
	if err != nil || !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("ImportImage = %q, %v; want an image ID", id, err)
	}
	info, err := eng.InspectImage(ctx, ref)
	if err != nil || info.ID != id || info.Labels["dev.codomyrmex.test"] != "import" {
		t.Errorf("the engine's %s = %+v, %v; want ID %s with the label", ref, info, err, id)
	}
	if _, err := eng.ImportImage(ctx, strings.NewReader("not a tar stream at all, not even close"), "myrmex.local/import-test:bad", nil); err == nil {
		t.Error("ImportImage(junk) succeeded")
	}
}
