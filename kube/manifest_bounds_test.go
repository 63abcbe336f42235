package kube

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unicode/utf16"

	"github.com/codomyrmex/containerization/errdefs"
)

// endless is a reader that never ends: blank lines, again and again.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '\n'
	}
	return len(p), nil
}

// A manifest stream past the bounds is refused with ErrLimitExceeded (an ErrInvalidArgument) naming the bound,
// and an endless stream ends in that refusal instead of filling memory.
func TestReadManifestsBounds(t *testing.T) {
	cm := func(name string) string {
		return fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q}}`, name)
	}
	many := func(n int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString(cm(fmt.Sprintf("c%d", i)))
		}
		return b.String()
	}
	items := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"apiVersion":"v1","kind":"List","items":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(cm(fmt.Sprintf("c%d", i)))
		}
		b.WriteString("]}")
		return b.String()
	}
	big := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"k":%q}}`, strings.Repeat("x", MaxObjectBytes))
	yamlMany := strings.Repeat("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n", MaxObjects+1)

	cases := []struct {
		name string
		in   io.Reader
		says string
	}{
		{"endless stdin", endless{}, "MaxManifestBytes"},
		{"JSON stream of too many objects", strings.NewReader(many(MaxObjects + 1)), "MaxObjects"},
		{"YAML stream of too many objects", strings.NewReader(yamlMany), "MaxObjects"},
		{"List of too many items", strings.NewReader(items(MaxObjects + 1)), "MaxObjects"},
		{"object larger than the API server takes", strings.NewReader(big), "MaxObjectBytes"},
		{"List holding an object larger than the API server takes",
			strings.NewReader(`{"apiVersion":"v1","kind":"List","items":[` + cm("small") + "," + big + "]}"), "MaxObjectBytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			objs, err := ReadManifests("-", c.in)
			if !errors.Is(err, ErrLimitExceeded) || !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("error = %v, want ErrLimitExceeded naming %s", err, c.says)
			}
			if objs != nil {
				t.Fatalf("%d objects returned with the refusal", len(objs))
			}
		})
	}

	// Exactly at the bounds is accepted.
	objs, err := ReadManifests("-", strings.NewReader(many(MaxObjects)))
	if err != nil || len(objs) != MaxObjects {
		t.Fatalf("%d objects: %d read, %v", MaxObjects, len(objs), err)
	}
	objs, err = ReadManifests("-", strings.NewReader(items(10)+many(MaxObjects-10)))
	if err != nil || len(objs) != MaxObjects {
		t.Fatalf("%d objects with a List: %d read, %v", MaxObjects, len(objs), err)
	}

	// Nesting and aliases are bounded by the parsers: refusals, not a stack overflow or a billion laughs.
	deepJSON := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"x":` + strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000) + "}"
	deepYAML := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nx: " + strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000) + "\n"
	var laughs strings.Builder
	laughs.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&laughs, "a%d: &a%d [%s*a%d]\n", i, i, strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 9), i-1)
	}
	laughs.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
	for name, in := range map[string]string{"deep JSON": deepJSON, "deep YAML": deepYAML, "YAML aliases": laughs.String()} {
		if _, err := ReadManifests("-", strings.NewReader(in)); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: error = %v, want ErrInvalidArgument", name, err)
		}
	}
}

// The byte bound counts every file of a directory together, and a directory holding more files than
// MaxManifestFiles is refused before any is read.
func TestReadManifestsBoundsAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	half := strings.Repeat("\n", MaxManifestBytes/2+1) // a little over half the bound, as blank lines
	write(t, dir, "a.json", half+`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}`)
	write(t, dir, "b.json", half+`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}`)
	if objs, err := ReadManifests(filepath.Join(dir, "a.json"), nil); err != nil || len(objs) != 1 {
		t.Fatalf("one file under the bound: %d objects, %v", len(objs), err)
	}
	_, err := ReadManifests(dir, nil)
	if !errors.Is(err, ErrLimitExceeded) || !strings.Contains(err.Error(), "MaxManifestBytes") || !strings.Contains(err.Error(), "b.json") {
		t.Fatalf("two files together over the bound: error = %v, want ErrLimitExceeded naming b.json", err)
	}

	many := t.TempDir()
	for i := range MaxManifestFiles + 1 {
		if err := os.WriteFile(filepath.Join(many, fmt.Sprintf("%05d.yaml", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err = ReadManifests(many, nil)
	if !errors.Is(err, ErrLimitExceeded) || !strings.Contains(err.Error(), "MaxManifestFiles") {
		t.Fatalf("%d files: error = %v, want ErrLimitExceeded naming MaxManifestFiles", MaxManifestFiles+1, err)
	}
}

// Found in a directory, only regular files (or links to one) are read: a pipe named like a manifest would block
// the read forever and a link to a device would never end. A pipe given by name is read (-f <(helm template …)).
func TestReadManifestsSkipsSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "real.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: real}\n")
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero.yaml")); err != nil {
		t.Fatal(err)
	}
	target := write(t, t.TempDir(), "linked.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: linked}\n")
	if err := os.Symlink(target, filepath.Join(dir, "link.yaml")); err != nil {
		t.Fatal(err)
	}
	objs, err := ReadManifests(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.GetName())
	}
	if strings.Join(names, ",") != "linked,real" {
		t.Fatalf("objects read = %v, want linked (through the link) and real, nothing from the pipe or the device", names)
	}

	pipe := filepath.Join(t.TempDir(), "p")
	if err := syscall.Mkfifo(pipe, 0o644); err != nil {
		t.Fatal(err)
	}
	go func() {
		w, err := os.OpenFile(pipe, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer w.Close()
		_, _ = io.Copy(w, bytes.NewReader([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: piped}\n")))
	}()
	objs, err = ReadManifests(pipe, nil)
	if err != nil || len(objs) != 1 || objs[0].GetName() != "piped" {
		t.Fatalf("a pipe given by name: %v, %v", objs, err)
	}
}

// A manifest file saved as UTF-16 (Windows PowerShell's >), little- or big-endian, reads as the same objects as
// in UTF-8: before, the stream was split on UTF-8 "---" lines and a file of several documents gave its first only.
func TestReadManifestsUTF16(t *testing.T) {
	text := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n"
	units := utf16.Encode([]rune("\ufeff" + text))
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		b := make([]byte, 2*len(units))
		for i, u := range units {
			order.PutUint16(b[2*i:], u)
		}
		objs, err := ReadManifests("-", bytes.NewReader(b))
		if err != nil || len(objs) != 2 || objs[0].GetName() != "a" || objs[1].GetName() != "b" || objs[1].Source != "stdin:5" {
			t.Fatalf("%v: %d objects, %v", order, len(objs), err)
		}
		if _, err := ReadManifests("-", bytes.NewReader(b[:len(b)-1])); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%v, odd length: %v, want ErrInvalidArgument", order, err)
		}
	}
}
