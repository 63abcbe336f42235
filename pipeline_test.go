package containerization_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/pipeline"
	"github.com/codomyrmex/containerization/policy"
	"github.com/codomyrmex/containerization/signature"
)

// The pipeline on the real engine, BuildKit, a registry and the control plane: an app with a critical finding is
// built and tested, then refused at the scan stage (nothing pushed, nothing deployed); the fixed app goes through
// push (scan and SBOM attached) and deploy, where the apply gate reuses the attached scan and the applied template
// names the pushed digest; a failing test stops the run at the test stage.
func TestPipeline(t *testing.T) {
	eng := testenv.Engine(t)
	kubeconfig, kc := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, kc)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	if err := testimages.Ensure(ctx, eng); err != nil {
		t.Fatal(err)
	}
	reg := testenv.InProcess(t)
	db := advisoryDB(t, nil)
	dir := buildContext(t, "FROM "+testimages.Web+"\nCOPY node_modules /app/node_modules\nUSER nobody\n", map[string]string{
		"node_modules/minimist/package.json": `{"name": "minimist", "version": "1.2.5"}`,
		"k8s/web.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: placeholder.example/web:1}
`,
		"policy.yaml": highIsRefused,
	})
	priv, pub, err := signature.GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "release.key"), priv, 0o600); err != nil {
		t.Fatal(err)
	}
	image := reg.Host + "/shop/web:" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	t.Cleanup(func() { _, _ = eng.API().ImageRemove(context.Background(), image, imageRemoveForce()) })
	write := func(test string) string {
		doc := fmt.Sprintf(`version: 1
name: web
image: %s
build: {context: .}
test:
%s
scan: {type: full}
push: {registry: "http://%s"}
sign: {key: release.key}
deploy: {name: web, manifests: k8s, namespace: %s, container: web}
policy: policy.yaml
`, image, test, reg.Host, ns)
		f := filepath.Join(dir, "pipeline.yaml")
		if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	const good = "  http: [{port: 8080, path: /, status: 200}]\n  beside: {image: " + testimages.Busybox + ", command: [wget, -q, -O, /dev/null, \"http://127.0.0.1:8080/\"]}\n  timeout: 20s"
	c, err := containerization.New(ctx, containerization.Config{Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	run := func(file string) (*containerization.PipelineResult, []containerization.Event, error) {
		p, err := pipeline.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		var events []containerization.Event
		res, err := c.RunPipeline(ctx, p, containerization.PipelineOptions{
			Scan:   containerization.ScanOptions{DBDir: db, Cache: t.TempDir()},
			Sensor: testenv.Sensor(t), KeyPassword: []byte("pw"),
			Kubernetes: containerization.KubernetesOptions{Kubeconfig: kubeconfig},
			Progress: func(e containerization.Event) {
				if e.Op == "pipeline" {
					events = append(events, e)
				}
			},
		})
		return res, events, err
	}
	statuses := func(res *containerization.PipelineResult) []string {
		var out []string
		for _, s := range res.Stages {
			out = append(out, s.Stage+":"+s.Status)
		}
		return out
	}
	deployed := func() (string, error) {
		d, err := kc.Typed().AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		return d.Spec.Template.Spec.Containers[0].Image, nil
	}

	// The vulnerable app: built and tested, then refused by the policy at the scan stage.
	res, events, err := run(write(good))
	var pe *containerization.PipelineError
	if !errors.Is(err, containerization.ErrPolicyViolation) || !errors.As(err, &pe) || pe.Stage != pipeline.StageScan || res.Success || res.FailedStage != "scan" {
		t.Fatalf("the vulnerable pipeline = %v (%+v), want a PipelineError at the scan stage wrapping ErrPolicyViolation", err, res)
	}
	if got := statuses(res); !slices.Equal(got, []string{"build:passed", "test:passed", "scan:failed"}) {
		t.Errorf("stages = %q", got)
	}
	if v := res.Verdict; v == nil || v.Allowed || v.Gate != policy.GatePipeline || !strings.Contains(err.Error(), "GHSA-xvch-5gv4-984h") {
		t.Errorf("verdict = %+v; error %v", v, err)
	}
	if len(events) != 6 || events[0].Status != "started" || events[5].Status != containerization.StageFailed {
		t.Errorf("progress events = %+v", events)
	}
	if tags, err := containerization.ManageContainerRegistry(ctx, containerization.RegistryList, "", "http://"+reg.Host, containerization.RegistryOptions{}); err != nil || len(tags.Repositories) != 0 {
		t.Errorf("the refused image reached the registry: %+v, %v", tags, err)
	}
	if _, err := deployed(); err == nil {
		t.Fatal("the refused image was deployed")
	}
	b, _ := json.Marshal(res)
	if !strings.Contains(string(b), `"failed_stage":"scan"`) {
		t.Errorf("the JSON result does not name the failed stage: %s", b)
	}

	// The fix: minimist 1.2.6. Every stage passes; the apply gate reuses the scan attached at push.
	if err := os.WriteFile(filepath.Join(dir, "node_modules/minimist/package.json"), []byte(`{"name": "minimist", "version": "1.2.6"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	res, _, err = run(write(good))
	if err != nil || !res.Success {
		t.Fatalf("the fixed pipeline = %v\n%+v", err, statuses(res))
	}
	if got := statuses(res); !slices.Equal(got, []string{"build:passed", "test:passed", "scan:passed", "optimize:skipped", "push:passed", "sign:passed", "deploy:passed"}) {
		t.Errorf("stages = %q", got)
	}
	if v, err := c.VerifyImage(ctx, image, containerization.VerifyOptions{Keys: []string{string(pub)}}); err != nil || len(v.Verified) != 1 {
		t.Errorf("the pushed image's signature = %+v, %v", v, err)
	}
	if !strings.HasPrefix(res.ImageDigest, "sha256:") {
		t.Fatalf("image digest = %q", res.ImageDigest)
	}
	got, err := deployed()
	if err != nil || got != image+"@"+res.ImageDigest {
		t.Errorf("the deployed image = %q (%v), want the pushed digest %s@%s", got, err, image, res.ImageDigest)
	}
	d, ok := res.Stages[6].Result.(*containerization.KubernetesDeployment)
	if !ok || d.PolicyVerdict == nil || len(d.PolicyVerdict.Images) != 1 || !strings.HasPrefix(d.PolicyVerdict.Images[0].Scan, "attached ") {
		t.Errorf("the apply gate did not reuse the attached scan: %+v", d)
	}

	// The engine's image is the pushed one (the same configuration): the create gate takes the scan attached to
	// it in the registry instead of scanning again; a tag moved to another image there is not taken.
	gated, err := containerization.New(ctx, containerization.Config{Engine: eng, Policy: mustPolicy(t, highIsRefused),
		PolicyScan: containerization.ScanOptions{DBDir: db, Cache: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	defer gated.Close()
	crun := testenv.NewRun(t, eng)
	cfg := crun.Config(image)
	cres, err := gated.ManageContainers(ctx, containerization.OpCreate, crun.Name("twin"), &cfg, containerization.ManageOptions{Engine: eng})
	if err != nil || cres.PolicyVerdict == nil || len(cres.PolicyVerdict.Images) != 1 || !strings.HasPrefix(cres.PolicyVerdict.Images[0].Scan, "attached ") {
		t.Errorf("the create gate of the pushed image = %+v, %v; want the attached scan reused", cres, err)
	}
	other := reg.Host + "/shop/web:moved"
	if _, err := eng.API().ImageTag(ctx, client.ImageTagOptions{Source: testimages.Web, Target: other}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = eng.API().ImageRemove(context.Background(), other, imageRemoveForce()) })
	if _, err := containerization.ManageContainerRegistry(ctx, containerization.RegistryTag, image, "", withTags(containerization.RegistryOptions{}, "moved")); err != nil {
		t.Fatal(err)
	}
	cfg = crun.Config(other, "sleep", "60")
	cres, err = gated.ManageContainers(ctx, containerization.OpCreate, crun.Name("moved"), &cfg, containerization.ManageOptions{Engine: eng})
	if err != nil || cres.PolicyVerdict == nil || cres.PolicyVerdict.Images[0].Scan != "scanned" {
		t.Errorf("the create gate of an image whose tag names another in the registry = %+v, %v; want it scanned", cres, err)
	}

	// A test that fails stops the run there.
	res, _, err = run(write("  http: [{port: 8080, path: /missing, status: 200}]\n  timeout: 10s"))
	if !errors.Is(err, containerization.ErrTestFailed) || res.FailedStage != pipeline.StageTest || !strings.Contains(err.Error(), "GET :8080/missing") {
		t.Errorf("a failing test = %v (%v)", err, statuses(res))
	}
}
