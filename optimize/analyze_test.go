package optimize_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/optimize"
)

// wasteful is an image with one of each kind of waste, its figures worked out by hand below.
func wasteful(t testing.TB) []step {
	return []step{
		{[]ent{file("bin/sh", 100, 'S'), file("etc/conf", 10, 'c'), dirEnt("tmp"), file("data/big", 1000, 'b')}, "ADD rootfs.tar /"},
		{nil, "ENV A=1"},
		{[]ent{
			file("etc/conf", 20, 'C'),    // overwrites 10 bytes
			{name: "data/.wh.big"},       // deletes 1000 bytes
			file("tmp/scratch", 50, 't'), // a temporary file
			file("var/lib/apt/lists/x", 30, 'l'),
			{name: "var/lib/apt/lists/lock"},
			file("app/a", 40, 'A'),
			file("app/b", 40, 'A'), // the same content as app/a
		}, "RUN make"},
	}
}

func TestAnalyzeFigures(t *testing.T) {
	a, err := optimize.Analyze(context.Background(), imageOf(t, wasteful(t)...), optimize.AnalyzeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Layers) != 2 || a.Layers[0].SizeBytes != 1110 || a.Layers[1].SizeBytes != 180 ||
		a.Layers[0].CreatedBy != "ADD rootfs.tar /" || a.Layers[1].CreatedBy != "RUN make" || a.Layers[1].Entries != 7 {
		t.Fatalf("layers = %+v", a.Layers)
	}
	// dive: leaves of layer 0: /bin/sh 100, /etc/conf 10, /tmp 0, /data/big 1000; of layer 1: /etc/conf 20,
	// /data/big 0 (a whiteout of a file), /tmp/scratch 50, lists/x 30, lists/lock 0, /app/a 40, /app/b 40.
	// Smallest sizes 270 over all sizes 1290; /etc/conf (30) and /data/big (1000) are in two layers.
	if want := 270.0 / 1290.0; a.Efficiency != want {
		t.Errorf("efficiency = %v, want %v", a.Efficiency, want)
	}
	if a.SizeBytes != 1290 || a.UserSizeBytes != 180 || a.WastedBytes != 1030 || a.UserWastedPercent != 1030.0/180.0 {
		t.Errorf("size %d, user size %d, wasted %d, user wasted %v; want 1290, 180, 1030, %v",
			a.SizeBytes, a.UserSizeBytes, a.WastedBytes, a.UserWastedPercent, 1030.0/180.0)
	}
	if a.InefficientCount != 2 || len(a.Inefficient) != 2 || a.Inefficient[0] != (optimize.InefficientPath{Path: "/data/big", Count: 2, TotalBytes: 1000}) ||
		a.Inefficient[1] != (optimize.InefficientPath{Path: "/etc/conf", Count: 2, TotalBytes: 30}) {
		t.Errorf("inefficient files = %+v", a.Inefficient)
	}
	want := optimize.Waste{Overwritten: 10, Deleted: 1000, PackageCaches: 30, Temporary: 50, Duplicates: 40, Total: 1130}
	if a.Waste != want {
		t.Errorf("waste = %+v, want %+v", a.Waste, want)
	}
	if a.Layers[0].WastedBytes != 1010 || a.Layers[1].WastedBytes != 120 {
		t.Errorf("wasted per layer = %d, %d; want 1010, 120", a.Layers[0].WastedBytes, a.Layers[1].WastedBytes)
	}
	items := map[string]optimize.WastedItem{}
	for _, it := range a.Items {
		items[it.Kind+" "+it.Path] = it
	}
	for key, w := range map[string]optimize.WastedItem{
		"deleted /data/big":                {Kind: "deleted", Path: "/data/big", Layer: 0, Bytes: 1000, Files: 1},
		"overwritten /etc/conf":            {Kind: "overwritten", Path: "/etc/conf", Layer: 0, Bytes: 10, Files: 1},
		"temporary /tmp":                   {Kind: "temporary", Path: "/tmp", Layer: 1, Bytes: 50, Files: 1},
		"package_cache /var/lib/apt/lists": {Kind: "package_cache", Path: "/var/lib/apt/lists", Layer: 1, Bytes: 30, Files: 1},
		"duplicate /app/b":                 {Kind: "duplicate", Path: "/app/b", Layer: 1, Bytes: 40, Files: 1},
	} {
		got, ok := items[key]
		got.Reason = ""
		if !ok || got != w {
			t.Errorf("item %s = %+v, want %+v", key, got, w)
		}
	}
	if len(a.Items) != 5 || a.Items[0].Path != "/data/big" || !strings.Contains(items["duplicate /app/b"].Reason, "/app/a") {
		t.Errorf("items = %+v, want 5, largest first, the duplicate naming its original", a.Items)
	}
	if a.Files != 7 || a.ContentBytes != 100+20+50+30+40+40 {
		t.Errorf("files %d of %d bytes, want 7 of 280", a.Files, a.ContentBytes)
	}
}

// Directories: a whiteout of a directory counts, in dive's figures, what the directory held; an opaque
// directory hides what the layers below put in it (dive leaves it out), while what its own layer puts there stays.
func TestAnalyzeDirectories(t *testing.T) {
	img := imageOf(t,
		step{[]ent{file("a/x", 100, 'x'), file("a/sub/y", 200, 'y'), file("o/old", 300, 'o')}, "ADD"},
		step{[]ent{{name: ".wh.a"}, file("o/new", 5, 'n'), {name: "o/.wh..wh..opq"}}, "RUN rm -rf /a /o/*"},
	)
	a, err := optimize.Analyze(context.Background(), img, optimize.AnalyzeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Waste.Deleted != 600 || a.Waste.Total != 600 || a.Files != 1 || a.ContentBytes != 5 {
		t.Errorf("waste %+v, %d files of %d bytes; want 600 deleted, o/new alone left", a.Waste, a.Files, a.ContentBytes)
	}
	// dive: layer 0 leaves /a/x 100, /a/sub/y 200, /o/old 300; layer 1: /a 0 (a directory only implied by its
	// files in layer 0, so no directory in dive's view), /o/new 5.
	if a.WastedBytes != 0 || a.Efficiency != 1 {
		// /a is a leaf of layer 1 only (in layer 0 it has children): no path is in two layers.
		t.Errorf("dive wasted %d, efficiency %v; want 0, 1", a.WastedBytes, a.Efficiency)
	}
	if want := int64(100 + 200 + 300 + 5); a.SizeBytes != want {
		t.Errorf("size %d, want %d", a.SizeBytes, want)
	}
}

// A file replaced by a directory, and a directory by a file: what was replaced is overwritten waste.
func TestAnalyzeReplacedTypes(t *testing.T) {
	img := imageOf(t,
		step{[]ent{file("p", 7, 'p'), file("d/f", 11, 'f')}, "ADD"},
		step{[]ent{file("p/inside", 3, 'i'), file("d", 2, 'd')}, "RUN swap"},
	)
	a, err := optimize.Analyze(context.Background(), img, optimize.AnalyzeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Waste.Overwritten != 18 || a.Files != 2 || a.ContentBytes != 5 {
		t.Errorf("waste %+v, %d files of %d bytes; want 18 overwritten, 2 files of 5 bytes", a.Waste, a.Files, a.ContentBytes)
	}
}

func TestGate(t *testing.T) {
	a, err := optimize.Analyze(context.Background(), imageOf(t, wasteful(t)...), optimize.AnalyzeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := func(v float64) *float64 { return &v }
	i := func(v int64) *int64 { return &v }
	if v := (optimize.Gate{}).Check(a); len(v) != 0 {
		t.Errorf("an empty gate fails: %v", v)
	}
	if v := (optimize.Gate{LowestEfficiency: f(0.2), HighestWastedBytes: i(1030), HighestUserWastedPercent: f(1)}).Check(a); len(v) != 1 || v[0].Rule != "highestUserWastedPercent" {
		t.Errorf("gate at the figures = %v, want only highestUserWastedPercent (5.72 > 1)", v)
	}
	v := (optimize.Gate{LowestEfficiency: f(0.9), HighestWastedBytes: i(1029)}).Check(a)
	if len(v) != 2 || v[0].Rule != "lowestEfficiency" || v[1].Rule != "highestWastedBytes" || !strings.Contains(v[1].Message, "1030") {
		t.Errorf("violations = %v", v)
	}
	for _, g := range []optimize.Gate{{LowestEfficiency: f(1.5)}, {HighestUserWastedPercent: f(-0.1)}, {HighestWastedBytes: i(-1)}} {
		if err := g.Validate(); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidArgument", g, err)
		}
	}
}

// Hostile layers: every bound refuses with a typed error, a layer that is not a tar stream is bad input, and a
// cancelled context stops the reading.
func TestAnalyzeBounds(t *testing.T) {
	ctx := context.Background()
	many := make([]ent, 20)
	for i := range many {
		many[i] = file("f"+strings.Repeat("x", i), 1, 'x')
	}
	deep := strings.Repeat("d/", optimize.MaxNameDepth) + "f"
	cases := []struct {
		name string
		img  []step
		opts optimize.AnalyzeOptions
		want error
	}{
		{"entries per layer", []step{{many, "ADD"}}, optimize.AnalyzeOptions{MaxEntries: 10}, optimize.ErrLimitExceeded},
		{"entries per image", []step{{many[:10], "ADD"}, {many[10:], "ADD"}}, optimize.AnalyzeOptions{MaxImageEntries: 15}, optimize.ErrLimitExceeded},
		{"layers", []step{{many[:1], "ADD"}, {many[1:2], "ADD"}, {many[2:3], "ADD"}}, optimize.AnalyzeOptions{MaxLayers: 2}, optimize.ErrLimitExceeded},
		{"layer bytes", []step{{[]ent{file("big", 4097, 'b')}, "ADD"}}, optimize.AnalyzeOptions{MaxLayerSize: 4096}, optimize.ErrLimitExceeded},
		{"image bytes", []step{{[]ent{file("a", 3000, 'a')}, "ADD"}, {[]ent{file("b", 3000, 'b')}, "ADD"}}, optimize.AnalyzeOptions{MaxImageSize: 5000}, optimize.ErrLimitExceeded},
		{"deep name", []step{{[]ent{file(deep, 1, 'x')}, "ADD"}}, optimize.AnalyzeOptions{}, errdefs.ErrInvalidArgument},
		{"long name", []step{{[]ent{file(strings.Repeat("n", optimize.MaxNameBytes), 1, 'x')}, "ADD"}}, optimize.AnalyzeOptions{}, errdefs.ErrInvalidArgument},
		{"negative limit", []step{{many[:1], "ADD"}}, optimize.AnalyzeOptions{MaxItems: -1}, errdefs.ErrInvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := optimize.Analyze(ctx, imageOf(t, c.img...), c.opts); !errors.Is(err, c.want) {
				t.Fatalf("Analyze() = %v, want %v", err, c.want)
			}
		})
	}

	notTar := imageOfLayer(t, bytes.Repeat([]byte("not a tar stream "), 100))
	if _, err := optimize.Analyze(ctx, notTar, optimize.AnalyzeOptions{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("a layer that is not tar: %v, want ErrInvalidArgument", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := optimize.Analyze(cancelled, imageOf(t, wasteful(t)...), optimize.AnalyzeOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled context: %v, want context.Canceled", err)
	}
}

// Found by a hostile-input review: directories implied by deep names count against MaxImageEntries (20,000 names
// 120 deep took 33 s and 2 GB before); a declared size past the bounds, or a body hidden behind records that only
// look sparse, is refused, as every byte of the stream counts; whiteouts of "", "." or ".." are refused.
func TestAnalyzeHostileShapes(t *testing.T) {
	ctx := context.Background()
	var deep []ent
	for i := range 50 {
		deep = append(deep, ent{name: fmt.Sprintf("%03d/%sf", i, strings.Repeat("a/", 100))})
	}
	_, err := optimize.Analyze(ctx, imageOf(t, step{deep, "ADD"}), optimize.AnalyzeOptions{MaxImageEntries: 4000})
	if !errors.Is(err, optimize.ErrLimitExceeded) || !strings.Contains(err.Error(), "MaxImageEntries") {
		t.Errorf("50 names 100 deep under a bound of 4000: %v, want ErrLimitExceeded (MaxImageEntries)", err)
	}
	if _, err := optimize.Analyze(ctx, imageOf(t, step{deep, "ADD"}), optimize.AnalyzeOptions{MaxImageEntries: 20000}); err != nil {
		t.Errorf("the same under 20000: %v", err)
	}

	raw := func(hdrs ...*tar.Header) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range hdrs {
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			if h.Typeflag == tar.TypeReg {
				tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
			}
		}
		tw.Close()
		return b.Bytes()
	}
	huge := raw(&tar.Header{Name: "d/", Typeflag: tar.TypeDir, Size: math.MaxInt64, Format: tar.FormatPAX})
	if _, err := optimize.Analyze(ctx, imageOfLayer(t, huge), optimize.AnalyzeOptions{}); !errors.Is(err, optimize.ErrLimitExceeded) {
		t.Errorf("a directory declaring MaxInt64 bytes: %v, want ErrLimitExceeded", err)
	}
	// tar.Writer drops GNU.sparse.* records: write look-alikes and rename them in the bytes.
	fake := raw(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Size: 2 << 20, Format: tar.FormatPAX, PAXRecords: map[string]string{"GNU.sparsX.hello": "1"}})
	fake = bytes.ReplaceAll(fake, []byte("GNU.sparsX"), []byte("GNU.sparse"))
	if _, err := optimize.Analyze(ctx, imageOfLayer(t, fake), optimize.AnalyzeOptions{MaxLayerSize: 1 << 20}); !errors.Is(err, optimize.ErrLimitExceeded) {
		t.Errorf("2 MiB behind a record that only looks sparse, bound 1 MiB: %v, want ErrLimitExceeded", err)
	}
	for _, name := range []string{"a/b/.wh.", "a/b/.wh..", "a/b/.wh..."} {
		img := imageOf(t, step{[]ent{file("a/keep", 100, 'k'), file("a/b/x", 2, 'x')}, "ADD"}, step{[]ent{{name: name}}, "RUN"})
		if _, err := optimize.Analyze(ctx, img, optimize.AnalyzeOptions{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("whiteout %q: %v, want ErrInvalidArgument", name, err)
		}
	}
}

// Hard links are names of one body: counted once in the image, never duplicates of each other, and waste only when
// the last name goes (found by the hostile-input review: a file deleted while a link to it remained counted as
// 1000 bytes deleted although they stay).
func TestAnalyzeHardLinks(t *testing.T) {
	linked := func(extra ...*tar.Header) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		tw.WriteHeader(&tar.Header{Name: "bin/a", Typeflag: tar.TypeReg, Size: 1000, Mode: 0o755})
		tw.Write(bytes.Repeat([]byte("a"), 1000))
		tw.WriteHeader(&tar.Header{Name: "bin/b", Typeflag: tar.TypeLink, Linkname: "bin/a"})
		for _, h := range extra {
			tw.WriteHeader(h)
		}
		tw.Close()
		return b.Bytes()
	}
	wh := func(names ...string) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, n := range names {
			tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg})
		}
		tw.Close()
		return b.Bytes()
	}
	for _, c := range []struct {
		name           string
		layers         [][]byte
		files          int
		content, waste int64
	}{
		{"two names", [][]byte{linked()}, 2, 1000, 0},
		{"one name deleted", [][]byte{linked(), wh("bin/.wh.a")}, 1, 1000, 0},
		{"both deleted", [][]byte{linked(), wh("bin/.wh.a", "bin/.wh.b")}, 0, 0, 1000},
		{"the link overwritten", [][]byte{linked(&tar.Header{Name: "bin/b", Typeflag: tar.TypeSymlink, Linkname: "a"})}, 1, 1000, 0},
	} {
		img, err := mutate.AppendLayers(empty.Image)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range c.layers {
			if img, err = mutate.AppendLayers(img, layerOf(t, l)); err != nil {
				t.Fatal(err)
			}
		}
		a, err := optimize.Analyze(context.Background(), img, optimize.AnalyzeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if a.Files != c.files || a.ContentBytes != c.content || a.Waste.Total != c.waste || a.Waste.Duplicates != 0 {
			t.Errorf("%s: %d files of %d bytes, waste %+v; want %d files of %d bytes, %d wasted", c.name, a.Files, a.ContentBytes, a.Waste, c.files, c.content, c.waste)
		}
	}
}
