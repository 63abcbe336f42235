package optimize_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/optimize"
)

// diveBinary builds dive from its Go module (scripts/dive.sh), once.
func diveBinary(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("../scripts/dive.sh").Output()
	if err != nil {
		msg := err.Error()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			msg += ": " + string(ee.Stderr)
		}
		if !testenv.Required() {
			t.Skipf("cannot build dive here: %s", msg)
		}
		t.Fatalf("building dive: %s", msg)
	}
	return strings.TrimSpace(string(out))
}

// diveExport is the part of dive's JSON export compared.
type diveExport struct {
	Layer []struct {
		SizeBytes int64 `json:"sizeBytes"`
	} `json:"layer"`
	Image struct {
		SizeBytes        int64   `json:"sizeBytes"`
		InefficientBytes int64   `json:"inefficientBytes"`
		EfficiencyScore  float64 `json:"efficiencyScore"`
		FileReference    []struct {
			Count     int    `json:"count"`
			SizeBytes int64  `json:"sizeBytes"`
			File      string `json:"file"`
		} `json:"fileReference"`
	} `json:"image"`
}

func runDive(t *testing.T, dive, archive string) diveExport {
	t.Helper()
	out := filepath.Join(t.TempDir(), "dive.json")
	cmd := exec.Command(dive, "--source", "docker-archive", archive, "--json", out)
	cmd.Env = append(os.Environ(), "CI=") // the JSON export, not CI mode's rule check
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dive: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var e diveExport
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("dive's export: %v", err)
	}
	return e
}

// TestAnalyzeAgreesWithDive runs dive itself, built from its Go module, on the same images as Analyze, and
// compares every figure: the layers' sizes, the image's size, the efficiency score, the wasted bytes and each
// inefficient file. The images are the hand-built ones of the other tests (without opaque markers, which dive
// ignores: see the package doc) and real ones from the engine (busybox, the Debian test image).
func TestAnalyzeAgreesWithDive(t *testing.T) {
	dive := diveBinary(t)
	ctx := context.Background()
	dir := t.TempDir()

	type subject struct {
		name    string
		archive string
	}
	var subjects []subject
	for n, steps := range map[string][]step{
		"wasteful": wasteful(t),
		"directory whiteout": {
			{[]ent{file("a/x", 100, 'x'), file("a/sub/y", 200, 'y'), dirEnt("e")}, "ADD"},
			{[]ent{{name: ".wh.a"}, file("e/z", 9, 'z'), file("b", 4, 'b')}, "RUN rm -rf /a"},
			{[]ent{file("a/x", 50, 'X'), file("b", 4, 'b')}, "COPY a /a"},
		},
		"explicit directory whiteout": {
			{[]ent{dirEnt("a"), file("a/x", 100, 'x'), dirEnt("a/sub"), file("a/sub/y", 200, 'y')}, "ADD"},
			{[]ent{{name: ".wh.a"}}, "RUN rm -rf /a"},
			{[]ent{dirEnt("a"), file("a/x", 50, 'X')}, "COPY a /a"},
		},
		"directory made implicit by a later layer": {
			{[]ent{dirEnt("a"), file("a/x", 100, 'x')}, "ADD"},
			{[]ent{file("a/new", 1, 'n')}, "RUN touch /a/new"},
			{[]ent{{name: ".wh.a"}}, "RUN rm -rf /a"},
		},
		"replaced types": {
			{[]ent{file("p", 7, 'p'), file("d/f", 11, 'f')}, "ADD"},
			{[]ent{file("p/inside", 3, 'i'), file("d", 2, 'd')}, "RUN swap"},
		},
	} {
		img := imageOf(t, steps...)
		p := filepath.Join(dir, strings.ReplaceAll(n, " ", "-")+".tar")
		tag, err := name.NewTag("myrmex.test/" + strings.ReplaceAll(n, " ", "-") + ":1")
		if err != nil {
			t.Fatal(err)
		}
		if err := tarball.WriteToFile(p, tag, img); err != nil {
			t.Fatal(err)
		}
		subjects = append(subjects, subject{n, p})
	}
	eng := testenv.Engine(t)
	refs := []string{testimages.Busybox}
	deb, err := testimages.EnsureDebian(ctx, eng, testimages.DebianOptions{})
	switch {
	case err == nil:
		refs = append(refs, deb.Ref)
	case errors.Is(err, errdefs.ErrUnavailable) && !testenv.Required():
		t.Logf("no Debian test image here: %v", err)
	default:
		t.Fatalf("EnsureDebian() = %v", err)
	}
	for _, ref := range refs {
		p := filepath.Join(dir, filepath.Base(strings.ReplaceAll(ref, ":", "_"))+".tar")
		if err := eng.SaveImageFile(ctx, ref, p); err != nil {
			t.Fatal(err)
		}
		subjects = append(subjects, subject{ref, p})
	}

	for _, s := range subjects {
		t.Run(s.name, func(t *testing.T) {
			img, err := tarball.ImageFromPath(s.archive, nil)
			if err != nil {
				t.Fatal(err)
			}
			a, err := optimize.Analyze(ctx, img, optimize.AnalyzeOptions{MaxItems: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			d := runDive(t, dive, s.archive)
			var layers []int64
			for _, l := range d.Layer {
				layers = append(layers, l.SizeBytes)
			}
			var ours []int64
			for _, l := range a.Layers {
				ours = append(ours, l.SizeBytes)
			}
			if !slices.Equal(layers, ours) {
				t.Errorf("layer sizes: dive %v, Analyze %v", layers, ours)
			}
			if d.Image.SizeBytes != a.SizeBytes || d.Image.InefficientBytes != a.WastedBytes || d.Image.EfficiencyScore != a.Efficiency {
				t.Errorf("dive: size %d, wasted %d, efficiency %v; Analyze: %d, %d, %v", d.Image.SizeBytes, d.Image.InefficientBytes,
					d.Image.EfficiencyScore, a.SizeBytes, a.WastedBytes, a.Efficiency)
			}
			type ref struct {
				path  string
				count int
				size  int64
			}
			var theirs, mine []ref
			for _, f := range d.Image.FileReference {
				theirs = append(theirs, ref{f.File, f.Count, f.SizeBytes})
			}
			for _, f := range a.Inefficient {
				mine = append(mine, ref{f.Path, f.Count, f.TotalBytes})
			}
			byPath := func(x, y ref) int { return strings.Compare(x.path, y.path) }
			slices.SortFunc(theirs, byPath)
			slices.SortFunc(mine, byPath)
			if !slices.Equal(theirs, mine) {
				t.Errorf("inefficient files:\ndive    %v\nAnalyze %v", theirs, mine)
			}
			t.Logf("%s: %d layers, %d bytes, efficiency %.4f, wasted %d, %d inefficient files; waste by Myrmex's account %+v",
				s.name, len(a.Layers), a.SizeBytes, a.Efficiency, a.WastedBytes, a.InefficientCount, a.Waste)
		})
	}
}
