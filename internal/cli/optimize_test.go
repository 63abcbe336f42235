package cli_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/internal/cli"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
)

// wastefulArchive writes a docker save tarball of two layers: the second overwrites a file of the first and
// deletes another, so that dive's efficiency is 30/1030 = 0.029.
func wastefulArchive(t *testing.T) string {
	t.Helper()
	layer := func(files map[string]string) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, n := range []string{"etc/conf", "data/big", "data/.wh.big"} {
			body, ok := files[n]
			if !ok {
				continue
			}
			if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(body))}); err != nil {
				t.Fatal(err)
			}
			tw.Write([]byte(body))
		}
		tw.Close()
		return b.Bytes()
	}
	img := empty.Image
	for _, l := range [][]byte{
		layer(map[string]string{"etc/conf": strings.Repeat("c", 10), "data/big": strings.Repeat("b", 1000)}),
		layer(map[string]string{"etc/conf": strings.Repeat("C", 20), "data/.wh.big": ""}),
	} {
		tl, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(l)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, tl); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), "wasteful.tar")
	tag, _ := name.NewTag("myrmex.test/wasteful:1")
	if err := tarball.WriteToFile(p, tag, img); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOptimizeAnalyze(t *testing.T) {
	src := "docker-archive:" + wastefulArchive(t)
	r := mustRun(t, "optimize", "analyze", src, "-o", "json")
	var got struct {
		Image      string  `json:"image"`
		Efficiency float64 `json:"efficiency"`
		Wasted     int64   `json:"wasted_bytes"`
		Passed     bool    `json:"passed"`
		Waste      struct {
			Overwritten, Deleted, Total int64
		} `json:"waste"`
		Layers []struct {
			SizeBytes int64 `json:"size_bytes"`
		} `json:"layers"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("-o json: %v\n%s", err, r.stdout)
	}
	// dive: /etc/conf 10 then 20, /data/big 1000 then a whiteout (0): smallest 10+0 over 30+1000.
	if got.Image != src || got.Efficiency != 10.0/1030.0 || got.Wasted != 1030 || !got.Passed ||
		got.Waste.Overwritten != 10 || got.Waste.Deleted != 1000 || got.Waste.Total != 1010 || len(got.Layers) != 2 {
		t.Errorf("analysis = %+v", got)
	}

	r = myrmex(t, "optimize", "analyze", src, "--lowest-efficiency", "0.9")
	if r.code != cli.ExitPolicy || !strings.Contains(r.stdout, "FAIL lowestEfficiency") || !strings.Contains(r.stderr, "lowestEfficiency") {
		t.Errorf("a failed gate: exit %d, want %d, the analysis printed and the rule named\nstdout:\n%s\nstderr:\n%s", r.code, cli.ExitPolicy, r.stdout, r.stderr)
	}
	if r := myrmex(t, "optimize", "analyze", src, "--lowest-efficiency", "0.9", "--exit-code", "0"); r.code != 0 {
		t.Errorf("--exit-code 0: exit %d", r.code)
	}
	if r := myrmex(t, "optimize", "analyze", src, "--highest-wasted-bytes", "1030", "--highest-user-wasted-percent", "1"); r.code != cli.ExitPolicy ||
		strings.Contains(r.stdout, "FAIL highestWastedBytes") || !strings.Contains(r.stdout, "FAIL highestUserWastedPercent") {
		t.Errorf("wasted bytes at the threshold pass, 1030/20 of user bytes fails: exit %d\n%s", r.code, r.stdout)
	}

	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"optimize", "analyze", src, "--lowest-efficiency", "1.5"}, cli.ExitUsage, "between 0 and 1"},
		{[]string{"optimize", "analyze", src, "--highest-wasted-bytes", "-1"}, cli.ExitUsage, "negative"},
		{[]string{"optimize", "analyze"}, cli.ExitUsage, "IMAGE"},
		{[]string{"optimize", "analyze", "docker-archive:" + filepath.Join(t.TempDir(), "absent.tar")}, cli.ExitNotFound, "absent.tar"},
		{[]string{"optimize", "analyse", src}, cli.ExitUsage, "unknown command"},
	} {
		r := myrmex(t, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.says) || r.stdout != "" {
			t.Errorf("myrmex %q: exit %d, stderr %q, stdout %q; want exit %d saying %q", c.args, r.code, r.stderr, r.stdout, c.code, c.says)
		}
	}
}

// myrmex optimize on the Go test app: the result as JSON with the specification's fields, the optimized image
// in the engine; a removal the probe needs exits 7 with the result on stdout; an image from an archive (not in
// the engine) is optimized losslessly without a probe; bad input exits 2, an unbuilt type 8.
func TestOptimizeCommand(t *testing.T) {
	eng := testEngine(t)
	apps, err := testimages.EnsureApps(t.Context(), eng, testimages.DebianOptions{})
	if err != nil {
		t.Fatalf("EnsureApps = %v", err)
	}
	app := apps[2]
	sensor := testenv.Sensor(t)
	target := app.Ref + "-cli"
	remove := func(ref string) {
		t.Cleanup(func() { eng.API().ImageRemove(context.Background(), ref, client.ImageRemoveOptions{}) })
	}
	remove(target)
	r := mustRun(t, "optimize", app.Ref, "--probe-http", "8000/", "--probe-http", "8000/second", "--probe-status", "200",
		"-t", target, "--sensor", sensor, "-o", "json")
	var res map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
	}
	for _, k := range []string{"original_image", "optimized_image", "optimization_type", "size_reduction_mb", "performance_improvement", "security_improvements", "layers_reduced", "build_time", "probe_optimized", "verified"} {
		if _, ok := res[k]; !ok {
			t.Errorf("the JSON result lacks %s", k)
		}
	}
	if res["optimized_image"] != target || res["verified"] != true || res["size_reduction_mb"].(float64) < 100 {
		t.Errorf("result = %s", r.stdout)
	}
	if ok, _ := eng.ImageExists(t.Context(), target); !ok {
		t.Errorf("%s is not in the engine", target)
	}

	broken := app.Ref + "-cli-broken"
	remove(broken)
	r = myrmex(t, "optimize", app.Ref, "--probe-http", "8000/second", "--drop", "/app/data", "-t", broken, "--sensor", sensor, "-o", "json")
	if r.code != cli.ExitPolicy || !strings.Contains(r.stderr, "GET :8000/second") || !strings.Contains(r.stdout, `"verified": false`) {
		t.Errorf("optimize dropping what the probe needs: exit %d, stderr %q, stdout %q; want exit %d naming the check", r.code, r.stderr, r.stdout, cli.ExitPolicy)
	}

	archived := "myrmex.test/wasteful:1-optimized"
	remove(archived)
	r = mustRun(t, "optimize", "docker-archive:"+wastefulArchive(t), "-t", archived, "--no-scan")
	if !strings.Contains(r.stdout, "Layers:") || !strings.Contains(r.stdout, "2 → 1") || !strings.Contains(r.stdout, "only lossless") {
		t.Errorf("lossless optimize of an archive: %s", r.stdout)
	}

	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"optimize", app.Ref, "--probe-http", "x/"}, cli.ExitUsage, "PORT/PATH"},
		{[]string{"optimize", app.Ref, "--type", "fast"}, cli.ExitUsage, "want size"},
		{[]string{"optimize", app.Ref, "--type", "performance", "--probe-http", "8000/"}, cli.ExitUsage, "measure-repository"},
		{[]string{"optimize", app.Ref, "-t", app.Ref}, cli.ExitUsage, "cannot replace the original"},
		{[]string{"optimize", app.Ref, "--probe-http", "8000/", "--sensor", "/nonexistent"}, cli.ExitNotFound, "sensor"},
		{[]string{"optimize", app.Ref, "--probe-http", "8000/", "--keep", "relative", "--sensor", sensor}, cli.ExitUsage, "absolute"},
		{[]string{"optimize", "docker-archive:" + wastefulArchive(t)}, cli.ExitUsage, "name the optimized image"},
	} {
		r := myrmex(t, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.says) || r.stdout != "" {
			t.Errorf("myrmex %q: exit %d, stderr %q, stdout %q; want exit %d saying %q", c.args, r.code, r.stderr, r.stdout, c.code, c.says)
		}
	}
}
