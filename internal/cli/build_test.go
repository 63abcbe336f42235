package cli_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/internal/cli"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
)

// buildName returns an image name unique to this test and removes the image it names, with its untagged
// parents, when the test ends. A name the test never built is left alone.
func buildName(t *testing.T, eng *engine.Client) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ref := "myrmex.local/clibuild-" + hex.EncodeToString(b) + ":1"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := eng.API().ImageInspect(ctx, ref); err != nil {
			return
		}
		if _, err := eng.API().ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Errorf("cleanup: removing image %s: %v", ref, err)
		}
	})
	return ref
}

// buildContext writes files (path to content) into a new directory and returns it.
func buildContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func buildResult(t *testing.T, r result) containerization.BuildResult {
	t.Helper()
	var res containerization.BuildResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("build -o json: %v\n%s", err, r.stdout)
	}
	return res
}

func TestBuild(t *testing.T) {
	eng := testEngine(t)
	ref := buildName(t, eng)
	dir := buildContext(t, map[string]string{
		"Dockerfile": "FROM " + testimages.Busybox + "\nARG GREETING=none\nRUN echo \"$GREETING\" > /greeting\nCMD [\"cat\", \"/greeting\"]\n",
	})

	r := expect(t, 0, "build", "-t", ref, "--build-arg", "GREETING=hello", "--label", testLabel+"=build", "--scan", "off", "-o", "json", dir)
	var fields map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &fields); err != nil {
		t.Fatalf("build -o json: %v\n%s", err, r.stdout)
	}
	for _, f := range []string{"image_name", "image_id", "build_time", "size_mb", "layers", "security_scan_passed",
		"vulnerabilities_found", "optimization_applied"} {
		if _, ok := fields[f]; !ok {
			t.Errorf("build -o json has no field %q: %s", f, r.stdout)
		}
	}
	res := buildResult(t, r)
	if res.ImageName != ref || !strings.HasPrefix(res.ImageID, "sha256:") || res.Layers < 2 || res.SizeMB <= 0 ||
		!slices.Contains(res.Tags, ref) || res.Scan != nil || !res.SecurityScanPassed {
		t.Errorf("build -o json = %+v, want %s with an id, layers, a size, no scan and passed", res, ref)
	}
	if r.stderr != "" {
		t.Errorf("build -o json stderr = %q, want nothing (not a terminal)", r.stderr)
	}
	ins, err := eng.API().ImageInspect(t.Context(), ref)
	if err != nil {
		t.Fatalf("ImageInspect(%q) = %v, want the built image", ref, err)
	}
	if ins.ID != res.ImageID || ins.Config.Labels[testLabel] != "build" {
		t.Errorf("ImageInspect(%q) = id %s labels %v, want id %s and label %s=build", ref, ins.ID, ins.Config.Labels, res.ImageID, testLabel)
	}

	// Again, as a table: served from the cache, with the summary on stdout.
	r = expect(t, 0, "build", "-t", ref, "--build-arg", "GREETING=hello", "--label", testLabel+"=build", "--scan", "off", dir)
	for _, want := range []string{ref, strings.TrimPrefix(res.ImageID, "sha256:")[:12], "Scan:", "off", "Lint:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("build stdout = %q, want %q in it", r.stdout, want)
		}
	}
	if !regexp.MustCompile(`Cache:\s+[1-9]\d* of \d+ steps cached`).MatchString(r.stdout) {
		t.Errorf("second build stdout = %q, want its steps served from the cache", r.stdout)
	}
}

func TestBuildFailingStep(t *testing.T) {
	eng := testEngine(t)
	ref := buildName(t, eng)
	dir := buildContext(t, map[string]string{
		"build/Dockerfile.fail": "FROM " + testimages.Busybox + "\nRUN echo building\nRUN echo about to fail && exit 3\n",
	})
	// -f is read from the current directory, as docker build reads it.
	t.Chdir(dir)
	r := expect(t, cli.ExitError, "build", "-t", ref, "-f", "build/Dockerfile.fail", "--scan", "off", ".")
	for _, want := range []string{"build failed at line 3: RUN echo about to fail && exit 3", "about to fail"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("failing build stderr = %q, want %q in it", r.stderr, want)
		}
	}
	if r.stdout != "" {
		t.Errorf("failing build stdout = %q, want nothing", r.stdout)
	}
}

func TestBuildLintGate(t *testing.T) {
	eng := testEngine(t)
	ref := buildName(t, eng)
	dir := buildContext(t, map[string]string{"Dockerfile": "FROM " + testimages.Busybox + "\nWORKDIR app\n"})

	r := expect(t, cli.ExitPolicy, "build", "-t", ref, "--lint-threshold", "error", "--scan", "off", "-o", "json", dir)
	res := buildResult(t, r)
	if res.ImageID != "" || len(res.Lint) != 1 || res.Lint[0].Rule != "DL3000" || res.Lint[0].Line != 2 {
		t.Errorf("build --lint-threshold error = %+v, want no image and one DL3000 finding on line 2", res)
	}
	if _, err := eng.API().ImageInspect(t.Context(), ref); err == nil {
		t.Errorf("ImageInspect(%q) found an image, want none: the lint gate stops before the build", ref)
	}

	// Below the threshold, the finding is reported and the build goes on.
	r = expect(t, 0, "build", "-t", ref, "--lint-threshold", "error", "--lint-ignore", "DL3000", "--scan", "off", dir)
	if !strings.Contains(r.stdout, "0 findings") {
		t.Errorf("build --lint-ignore DL3000 stdout = %q, want 0 findings", r.stdout)
	}
}

func TestBuildPush(t *testing.T) {
	eng := testEngine(t)
	ref := buildName(t, eng)
	reg := testenv.InProcess(t)
	dir := buildContext(t, map[string]string{"Dockerfile": "FROM " + testimages.Busybox + "\nRUN echo pushed > /pushed\n"})

	r := expect(t, 0, "build", "-t", ref, "--scan", "off", "--push", "--registry", reg.URL(), "-o", "json", dir)
	res := buildResult(t, r)
	if !strings.HasPrefix(res.ImageDigest, "sha256:") || !strings.HasPrefix(res.PushedTo, reg.Host+"/") {
		t.Fatalf("build --push = digest %q pushed to %q, want a digest in %s", res.ImageDigest, res.PushedTo, reg.Host)
	}
	pushed, err := name.ParseReference(res.PushedTo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(pushed, remote.WithTransport(reg.Transport()), remote.WithContext(t.Context()))
	if err != nil || desc.Digest.String() != res.ImageDigest {
		t.Errorf("remote.Head(%s) = %v, %v; want digest %s", pushed, desc, err, res.ImageDigest)
	}
}

func TestBuildScanGate(t *testing.T) {
	eng := testEngine(t)
	ref := buildName(t, eng)
	src, _ := advisoryFixtures(t)
	db := t.TempDir()
	mustRun(t, "db", "import", src, "--db-dir", db)
	t.Setenv("MYRMEX_CACHE_DIR", t.TempDir())
	dir := buildContext(t, map[string]string{
		"Dockerfile":                         "FROM " + testimages.Busybox + "\nCOPY node_modules/minimist/package.json /app/node_modules/minimist/package.json\n",
		"node_modules/minimist/package.json": `{"name": "minimist", "version": "1.2.5"}`,
	})

	r := expect(t, cli.ExitPolicy, "build", "-t", ref, "--scan", "full", "--scan-threshold", "critical", "--db-dir", db, "-o", "json", dir)
	res := buildResult(t, r)
	if res.SecurityScanPassed || res.VulnerabilitiesFound == 0 || res.Scan == nil || res.ImageDigest != "" {
		t.Errorf("build --scan-threshold critical = passed %v, %d found, scan %v, digest %q; want failed with findings and nothing pushed",
			res.SecurityScanPassed, res.VulnerabilitiesFound, res.Scan != nil, res.ImageDigest)
	}
	found := false
	for _, v := range res.Scan.Vulnerabilities {
		found = found || (v.Package == "minimist" && v.CVEID != "")
	}
	if !found {
		t.Errorf("build scan findings = %+v, want minimist's", res.Scan.Vulnerabilities)
	}

	// The table says the gate failed.
	r = expect(t, cli.ExitPolicy, "build", "-t", ref, "--scan", "full", "--scan-threshold", "critical", "--db-dir", db, dir)
	if !strings.Contains(r.stdout, "failed (full, threshold critical") || !strings.Contains(r.stderr, "policy violation") {
		t.Errorf("build table stdout = %q, stderr = %q; want the failed gate", r.stdout, r.stderr)
	}
}

func TestBuildInvalid(t *testing.T) {
	dir := buildContext(t, map[string]string{"Dockerfile": "FROM " + testimages.Busybox + "\n"})
	for _, args := range [][]string{
		{"build", dir},
		{"build", "-t", "x:1", dir, dir},
		{"build", "-t", "x:1", "--secret", "id=a", dir},
		{"build", "-t", "x:1", "--secret", "id=a,src=f,mode=0400", dir},
		{"build", "-t", "x:1", "--label", "novalue", dir},
		{"build", "-t", "x:1", "--registry", "localhost:5000", dir},
		{"build", "-t", "x:1", "--scan", "deep", dir},
		{"build", "-t", "x:1", "--lint-threshold", "fatal", dir},
		{"build", "-t", "Not A Name", dir},
		{"build", "-t", "x:1", "-f", "missing.Dockerfile", dir},
	} {
		if r := myrmex(t, args...); r.code != cli.ExitUsage {
			t.Errorf("myrmex %q = exit %d, want %d; stderr:\n%s", args, r.code, cli.ExitUsage, r.stderr)
		}
	}
}
