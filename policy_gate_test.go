package containerization_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/build"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/optimize"
	"github.com/codomyrmex/containerization/policy"
)

func mustPolicy(t *testing.T, doc string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(doc), "test-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func rules(v *policy.Verdict) []string {
	var out []string
	if v == nil {
		return nil
	}
	for _, x := range v.Violations {
		out = append(out, x.Rule)
	}
	return out
}

const highIsRefused = "version: 1\nimages:\n  vulnerabilities:\n    max_severity: medium\n"

// One policy at the create, start, push and build gates, on the real engine and a registry: a vulnerable image
// (two high findings) is refused at each, naming the rule, the image by digest and the finding, and nothing is
// created, started or pushed (a refused build stays in the engine, unpushed); an image without them passes; ignores with a statement
// accept findings; a gate set to warn goes on with the verdict in the result.
func TestPolicyGates(t *testing.T) {
	eng := testenv.Engine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := testimages.EnsureUpgradable(ctx, eng, testimages.DebianOptions{}); err != nil {
		t.Fatalf("EnsureUpgradable = %v", err)
	}
	const clean = "myrmex.local/debian-base:test"
	db := upgradeDB(t)
	client := func(doc string) *containerization.Client {
		c, err := containerization.New(ctx, containerization.Config{Engine: eng, Policy: mustPolicy(t, doc),
			PolicyScan: containerization.ScanOptions{DBDir: db, Cache: t.TempDir()}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	strict := client(highIsRefused)
	run := testenv.NewRun(t, eng)
	opts := containerization.ManageOptions{Engine: eng}

	// create: refused before the engine makes anything.
	name := run.Name("vulnerable")
	cfg := run.Config(testimages.Upgradable)
	res, err := strict.ManageContainers(ctx, containerization.OpCreate, name, &cfg, opts)
	if !errors.Is(err, containerization.ErrPolicyViolation) {
		t.Fatalf("create of the vulnerable image = %v, want ErrPolicyViolation", err)
	}
	for _, want := range []string{"at the create gate", "images.vulnerabilities", "myrmex.local/upgradable:test@sha256:", "DEBIAN-CVE-2099-0001 (high, above medium) in myrmex-demo 1.0-1, fixed in 1.0-2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal %q does not say %q", err, want)
		}
	}
	if v := res.PolicyVerdict; v == nil || v.Allowed || len(v.Violations) != 2 || v.Policy != "test-policy.yaml" || containerization.PolicyVerdict(err) != v {
		t.Errorf("verdict = %+v", v)
	}
	if _, err := strict.ManageContainers(ctx, containerization.OpInspect, name, nil, opts); !errors.Is(err, containerization.ErrNotFound) {
		t.Errorf("the refused container exists: inspect = %v", err)
	}
	okName := run.Name("clean")
	okCfg := run.Config(clean, "sleep", "600")
	if res, err := strict.ManageContainers(ctx, containerization.OpCreate, okName, &okCfg, opts); err != nil || res.PolicyVerdict == nil || !res.PolicyVerdict.Allowed {
		t.Fatalf("create of the clean image = %+v, %v", res, err)
	}

	// Ignores with a statement and an expiry accept the findings; they are listed.
	ignoring := client(highIsRefused + "    ignore:\n" +
		"      - {id: CVE-2099-0001, statement: the demo package is never run, expires: 2099-01-01}\n" +
		"      - {id: DEBIAN-CVE-2099-0002, package: myrmex-stuck, statement: no fix yet, expires: 2099-01-01}\n")
	accepted := run.Name("accepted")
	acceptedCfg := run.Config(testimages.Upgradable)
	if res, err := ignoring.ManageContainers(ctx, containerization.OpCreate, accepted, &acceptedCfg, opts); err != nil || len(res.PolicyVerdict.Ignored) != 2 {
		t.Errorf("create with the findings ignored = %+v, %v", res.PolicyVerdict, err)
	}

	// start: a container made before (here, without a policy) is held to it when it starts, and stays stopped.
	if _, err := strict.ManageContainers(ctx, containerization.OpStart, accepted, nil, opts); !errors.Is(err, containerization.ErrPolicyViolation) {
		t.Errorf("start of a vulnerable container = %v, want ErrPolicyViolation", err)
	}
	if r, err := strict.ManageContainers(ctx, containerization.OpInspect, accepted, nil, opts); err != nil || r.Status != "created" {
		t.Errorf("after the refused start: %+v, %v", r, err)
	}

	// An image named by its ID is scanned as itself (the start gate reads the container's image so).
	ins, err := eng.API().ImageInspect(ctx, testimages.Upgradable)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{ins.ID, strings.TrimPrefix(ins.ID, "sha256:")[:12]} {
		if sr, err := strict.ScanContainerSecurity(ctx, id, "full", containerization.ScanOptions{Engine: eng, DBDir: db, Cache: t.TempDir()}); err != nil || len(sr.Vulnerabilities) != 2 {
			t.Errorf("scan of %s = %v", id, err)
		}
	}

	// Runtime rules, and a gate that warns.
	runtime := client("version: 1\nruntime:\n  require_limits: [memory]\n  non_root: true\n  host_paths: {allow: [/srv/myrmex-allowed]}\ngates: {create: warn}\n")
	hostDir := t.TempDir()
	warned := run.Name("warned")
	warnedCfg := run.Config(clean, "sleep", "600")
	warnedCfg.Volumes = map[string]containerization.VolumeMount{hostDir: {Bind: "/data"}}
	res, err = runtime.ManageContainers(ctx, containerization.OpCreate, warned, &warnedCfg, opts)
	if err != nil || res.PolicyVerdict == nil || res.PolicyVerdict.Allowed || res.PolicyVerdict.Mode != policy.Warn {
		t.Fatalf("create under a warning gate = %+v, %v", res, err)
	}
	if got := rules(res.PolicyVerdict); !slices.Equal(got, []string{"runtime.require_limits", "runtime.non_root", "runtime.host_paths"}) {
		t.Errorf("runtime violations = %q", got)
	}

	// push: nothing reaches the registry.
	reg := testenv.InProcess(t)
	ro := containerization.RegistryOptions{Engine: eng, Transport: reg.Transport()}
	pres, err := strict.ManageContainerRegistry(ctx, containerization.RegistryPush, testimages.Upgradable, "http://"+reg.Host, ro)
	if !errors.Is(err, containerization.ErrPolicyViolation) || pres.PolicyVerdict == nil || !strings.Contains(err.Error(), "at the push gate") {
		t.Errorf("push of the vulnerable image = %+v, %v", pres, err)
	}
	pres, err = strict.ManageContainerRegistry(ctx, containerization.RegistryPush, clean, "http://"+reg.Host, ro)
	if err != nil || !pres.PolicyVerdict.Allowed {
		t.Fatalf("push of the clean image = %+v, %v", pres, err)
	}
	catalog := func() []string {
		l, err := strict.ManageContainerRegistry(ctx, containerization.RegistryList, "", "http://"+reg.Host, ro)
		if err != nil {
			t.Fatal(err)
		}
		return l.Repositories
	}
	if repos := catalog(); len(repos) != 1 || !strings.Contains(pres.Reference, repos[0]) {
		t.Errorf("the registry holds %q; want only the clean image (%s)", repos, pres.Reference)
	}

	// build: the image built on the vulnerable one is refused before its push; the result keeps the verdict.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+testimages.Upgradable+"\nLABEL purpose=policy-test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	built := "myrmex.local/policy-built:test"
	t.Cleanup(func() { (&optimize.Optimizer{Engine: eng}).Remove(built) })
	bres, err := strict.BuildContainers(ctx, built, containerization.BuildOptions{Options: build.Options{ContextPath: dir}, Engine: eng, Scan: "off",
		PushToRegistry: true, Registry: "http://" + reg.Host, RegistryOptions: ro})
	var be *containerization.ContainerBuildError
	if !errors.As(err, &be) || be.Op != "policy" || !errors.Is(err, containerization.ErrPolicyViolation) || bres == nil || bres.PolicyVerdict == nil || bres.PushedTo != "" {
		t.Errorf("build on the vulnerable image = %+v, %v", bres, err)
	}
	if repos := catalog(); len(repos) != 1 {
		t.Errorf("the refused build reached the registry: %q", repos)
	}
}
