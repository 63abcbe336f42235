package report_test

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/policy"
	"github.com/codomyrmex/containerization/report"
	"github.com/codomyrmex/containerization/scan/vulndb"
	"github.com/codomyrmex/containerization/signature"
)

// advisoryDB imports the real advisories of the fixtures (the Debian test image's known vulnerabilities).
func advisoryDB(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	for _, dir := range []string{"../scan/match/testdata", "../testdata/osv"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		if len(files) == 0 {
			t.Fatalf("no advisories in %s", dir)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(src, filepath.Base(f)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	dir := t.TempDir()
	if _, err := vulndb.Import(context.Background(), src, vulndb.Options{Dir: dir}); err != nil {
		t.Fatalf("vulndb.Import() = %v", err)
	}
	return dir
}

// The report of the real Debian test image (known vulnerabilities), pushed to a registry, scanned there with the
// scan attached, signed, and held to a policy that refuses critical findings: every section from the real
// components, the PDF printed by Chromium read back by its text and by a picture of its first page.
func TestReportOfAVulnerableSignedImage(t *testing.T) {
	testenv.Browser(t)
	eng := testenv.Engine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	deb, err := testimages.EnsureDebian(ctx, eng, testimages.DebianOptions{})
	if errors.Is(err, errdefs.ErrUnavailable) && !testenv.Required() {
		t.Skipf("cannot build the Debian test image here: %v", err)
	}
	if err != nil {
		t.Fatalf("EnsureDebian() = %v", err)
	}
	reg := testenv.InProcess(t)
	run := testenv.NewRun(t, eng)
	dbDir := advisoryDB(t)

	keyDir := t.TempDir()
	priv, pub, err := signature.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	keyFile, pubFile := filepath.Join(keyDir, "release.key"), filepath.Join(keyDir, "release.pub")
	_ = os.WriteFile(keyFile, priv, 0o600)
	_ = os.WriteFile(pubFile, pub, 0o644)
	pol, err := policy.Parse([]byte("version: 1\nimages:\n  vulnerabilities:\n    max_severity: high\n"), "no-critical.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := containerization.New(ctx, containerization.Config{Engine: eng, Policy: pol,
		PolicyScan: containerization.ScanOptions{DBDir: dbDir, Cache: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The image is pushed, scanned and signed without the policy, which would refuse it at the push gate: the
	// report is where the policy judges it.
	setup, err := containerization.New(ctx, containerization.Config{Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Close()

	ro := containerization.RegistryOptions{Engine: eng, Transport: reg.Transport()}
	push := ro
	push.Destination = reg.Ref(run.ID + "/app:1")
	pushed, err := setup.ManageContainerRegistry(ctx, containerization.RegistryPush, deb.Ref, reg.URL(), push)
	if err != nil {
		t.Fatalf("push = %v", err)
	}
	image := "docker://" + reg.Ref(run.ID+"/app:1")
	so := containerization.ScanOptions{DBDir: dbDir, Cache: t.TempDir(), Registry: ro, Attach: true}
	if _, err := setup.ScanContainerSecurity(ctx, image, "full", so); err != nil {
		t.Fatalf("scan --attach = %v", err)
	}
	if _, err := setup.SignImage(ctx, reg.Ref(run.ID+"/app:1"), containerization.SignOptions{Key: keyFile, Registry: ro}); err != nil {
		t.Fatalf("sign = %v", err)
	}

	so.Attach = false
	var phases []string
	r, err := report.Build(ctx, c, image, report.Options{ScanOptions: so, Keys: []string{pubFile},
		Progress: func(e containerization.Event) {
			if e.Status == "done" {
				phases = append(phases, e.Phase)
			}
		}})
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	s := r.ScanResult
	if r.ImageDigest != pushed.ImageDigest || s.CriticalCount < 1 || r.Verdict != report.VerdictFailed {
		t.Errorf("Build = digest %s, %d critical, verdict %s; want %s, some critical, failed", r.ImageDigest, s.CriticalCount, r.Verdict, pushed.ImageDigest)
	}
	if v := r.PolicyVerdict; v == nil || v.Allowed || v.Gate != policy.GateApply || len(v.Violations) == 0 || v.Violations[0].Rule != "images.vulnerabilities" {
		t.Errorf("PolicyVerdict = %+v, want refused at apply by images.vulnerabilities", v)
	}
	if r.Signatures == nil || !r.Signatures.Verified || len(r.Signatures.Verification.Verified) != 1 {
		t.Errorf("Signatures = %+v, want one verified", r.Signatures)
	}
	types := map[string]string{}
	for _, e := range r.Evidence {
		types[e.ArtifactType] = e.Digest
	}
	if types[policy.ScanArtifactType] == "" || types[policy.SBOMArtifactType] == "" {
		t.Errorf("Evidence = %+v, want the scan and the SBOM attached", r.Evidence)
	}
	if len(s.PackageEcosystems) < 2 || s.PackageEcosystems["npm"] == 0 {
		t.Errorf("PackageEcosystems = %v, want Debian's and npm's", s.PackageEcosystems)
	}
	if strings.Join(phases, ",") != "scan,policy,signatures,evidence,optimization" {
		t.Errorf("phases = %v", phases)
	}

	pdf, err := report.PDF(ctx, r)
	if err != nil {
		t.Fatalf("PDF = %v", err)
	}
	text := testenv.PDFText(t, pdf)
	flat := strings.Join(strings.Fields(text), " ")
	var remediation string
	for _, ch := range s.Compliance {
		if !ch.Passed && !ch.Ignored && ch.Remediation != "" {
			remediation = strings.Join(strings.Fields(ch.Remediation), " ")
			remediation = remediation[:min(len(remediation), 30)]
			break
		}
	}
	if remediation == "" {
		t.Fatal("the scan failed no compliance check with a remediation: the test image changed?")
	}
	for _, want := range []string{reg.Ref(run.ID + "/app:1"), r.ImageDigest, "CVE-2021-44906", "minimist", remediation,
		"refused", "images.vulnerabilities", "VERIFIED", types[policy.ScanArtifactType][:40], "Debian:12"} {
		if !strings.Contains(flat, want) {
			t.Errorf("the PDF's text lacks %q:\n%s", want, text)
		}
	}
	// The counts by severity, as the chart labels them.
	if !regexp.MustCompile(`Critical\s+` + strconv.Itoa(s.CriticalCount) + `\b`).MatchString(text) {
		t.Errorf("the PDF's chart does not say %d critical:\n%s", s.CriticalCount, text)
	}
	checkFirstPage(t, pdf)
}

// checkFirstPage renders the PDF's first page (pdftoppm, poppler-utils) and checks it is an A4 portrait page
// with something printed on it; with MYRMEX_REPORT_PICTURE set, the picture is kept there (docs/img/report.png).
func checkFirstPage(t *testing.T, pdf []byte) {
	t.Helper()
	if _, err := exec.LookPath("pdftoppm"); err != nil {
		if testenv.Required() {
			t.Fatal("the tests need pdftoppm (poppler-utils)")
		}
		t.Skip("no pdftoppm")
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "report.pdf")
	if err := os.WriteFile(in, pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("pdftoppm", "-png", "-f", "1", "-l", "1", "-r", "60", "-singlefile", in, filepath.Join(dir, "page")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v: %s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "page.png"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	if ratio := float64(h) / float64(w); ratio < 1.38 || ratio > 1.45 { // A4: 297/210 = 1.414
		t.Errorf("the first page is %d×%d (ratio %.3f), want A4 portrait", w, h, ratio)
	}
	ink, colour := 0, 0
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r < 0xc000 || g < 0xc000 || bl < 0xc000 {
				ink++
			}
			if r > 0x6000 && g < 0x3000 && bl < 0x3000 { // the red of the verdict and the critical bar
				colour++
			}
		}
	}
	if frac := float64(ink) / float64(w*h); frac < 0.02 {
		t.Errorf("the first page is nearly blank: %.3f of it inked", frac)
	}
	if colour == 0 {
		t.Error("the first page has no red: the failed verdict and the critical bar did not print in colour")
	}
	if p := os.Getenv("MYRMEX_REPORT_PICTURE"); p != "" {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", p)
	}
}

// The report of an image myrmex optimize made shows the before and after its labels record; the original's has
// no optimization section.
func TestReportOfAnOptimizedImage(t *testing.T) {
	eng := testenv.Engine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := testimages.Ensure(ctx, eng); err != nil {
		t.Fatal(err)
	}
	run := testenv.NewRun(t, eng)
	c, err := containerization.New(ctx, containerization.Config{Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	target := "myrmex.local/report-optimized:" + run.ID
	t.Cleanup(func() {
		_, _ = eng.API().ImageRemove(context.Background(), target, client.ImageRemoveOptions{Force: true})
	})
	res, err := c.OptimizeContainers(ctx, testimages.Busybox, "size", containerization.OptimizeOptions{OptimizedImage: target, NoScan: true})
	if err != nil {
		t.Fatalf("OptimizeContainers = %v", err)
	}
	opts := report.Options{ScanType: "compliance", ScanOptions: containerization.ScanOptions{Cache: t.TempDir()}}
	r, err := report.Build(ctx, c, target, opts)
	if err != nil {
		t.Fatalf("Build(%s) = %v", target, err)
	}
	o := r.Optimization
	if o == nil || o.Source != testimages.Busybox || o.Type != "size" || o.LayersBefore != res.LayersBefore || o.LayersAfter != 1 ||
		o.FilesAfter != res.FilesAfter || o.ContentAfter == 0 || o.ContentAfter > o.ContentBefore {
		t.Errorf("Optimization = %+v, want busybox's size optimization (result %+v)", o, res.Result)
	}
	if r.ImageID == "" || r.Verdict != report.VerdictNone || len(r.Notes) == 0 {
		t.Errorf("Build = image ID %q, verdict %s, notes %q; want an ID, none, notes on what an engine image lacks", r.ImageID, r.Verdict, r.Notes)
	}
	doc, err := report.HTML(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), `id="optimization"`) || !strings.Contains(string(doc), testimages.Busybox) {
		t.Errorf("the HTML has no optimization section naming %s", testimages.Busybox)
	}
	orig, err := report.Build(ctx, c, testimages.Busybox, opts)
	if err != nil || orig.Optimization != nil {
		t.Errorf("Build(%s) = optimization %+v, %v; want none", testimages.Busybox, orig.Optimization, err)
	}
}
