package containerization_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/policy"
)

// Registries as objects on a real distribution registry (TLS, basic auth): a wrong login or a bad retention
// policy saves nothing; a saved registry's login is encrypted and never printed; its name stands for its URL,
// type, CA and login in every operation; scan-on-push refuses a vulnerable image before anything is written,
// attaches the scan and SBOM of what it lets through (marked with the verdict, "refused" when the push gate only
// warns); show reads the repositories from the catalog; retention run plans, then applies, the saved policy.
func TestSavedRegistries(t *testing.T) {
	eng := testenv.Engine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := testimages.EnsureUpgradable(ctx, eng, testimages.DebianOptions{}); err != nil {
		t.Fatalf("EnsureUpgradable = %v", err)
	}
	const clean = "myrmex.local/debian-base:test"
	reg := testenv.Distribution(t, testenv.DistributionOptions{Password: "canary-s3cret-pw"})
	store := tempStore(t)
	db := upgradeDB(t)
	client := func(doc string) *containerization.Client {
		c, err := containerization.New(ctx, containerization.Config{Engine: eng, Registries: store, Policy: mustPolicy(t, doc),
			PolicyScan: containerization.ScanOptions{DBDir: db, Cache: t.TempDir()}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	strict := client(highIsRefused)
	var outputs []string
	keep := func(v any, err error) {
		b, _ := json.Marshal(v)
		outputs = append(outputs, string(b))
		if err != nil {
			outputs = append(outputs, err.Error())
		}
	}
	login := containerization.RegistryCredentials{Username: reg.Username, Password: containerization.Secret(reg.Password)}
	want := containerization.ContainerRegistry{URL: reg.URL(), Credentials: login, CAFile: reg.CAFile, SecurityScanEnabled: true,
		RetentionPolicy: map[string]any{"rules": []any{map[string]any{"repositories": map[string]any{"pattern": "**"}, "tags": map[string]any{"pattern": "**"},
			"retain": map[string]any{"most_recently_pushed": 1}}}}}

	// Refused before anything is saved: a wrong password, a bad retention policy, a bad name, a URL with a path.
	wrong := want
	wrong.Credentials.Password = "canary-wrong-pw"
	r, err := strict.AddRegistry(ctx, "sec", wrong, containerization.AddRegistryOptions{})
	keep(r, err)
	if !errors.Is(err, containerization.ErrUnauthorized) {
		t.Errorf("add with a wrong password = %v, want ErrUnauthorized", err)
	}
	badRetention := want
	badRetention.RetentionPolicy = map[string]any{"rules": []any{map[string]any{"retain": map[string]any{"most_recently_pushed": -1}}}}
	for _, c := range []struct {
		name string
		reg  containerization.ContainerRegistry
	}{{"sec", badRetention}, {"a.b", want}, {"localhost", want}, {"sec", containerization.ContainerRegistry{URL: reg.URL() + "/team"}}, {"sec", containerization.ContainerRegistry{}}} {
		if _, err := strict.AddRegistry(ctx, c.name, c.reg, containerization.AddRegistryOptions{}); !errors.Is(err, containerization.ErrInvalidArgument) {
			t.Errorf("add %s %+v = %v, want ErrInvalidArgument", c.name, c.reg.RetentionPolicy, err)
		}
	}
	if list, err := strict.Registries(ctx); err != nil || len(list) != 0 {
		t.Fatalf("after refused adds: %+v, %v; want none saved", list, err)
	}

	added, err := strict.AddRegistry(ctx, "sec", want, containerization.AddRegistryOptions{})
	keep(added, err)
	if err != nil || added.Name != "sec" || added.URL != reg.Host || added.Type != "generic" || !added.SecurityScanEnabled {
		t.Fatalf("add = %+v, %v", added, err)
	}
	if _, err := strict.AddRegistry(ctx, "sec", want, containerization.AddRegistryOptions{}); !errors.Is(err, containerization.ErrAlreadyExists) {
		t.Errorf("adding sec again = %v, want ErrAlreadyExists", err)
	}
	raw, err := os.ReadFile(store.RegistriesPath())
	if err != nil || bytes.Contains(raw, []byte("canary-")) || bytes.Contains(raw, []byte(reg.Host)) {
		t.Errorf("the saved registry is not encrypted (%v)", err)
	}

	// scan-on-push: the vulnerable image is refused at the push gate, and nothing reaches the registry.
	ro := containerization.RegistryOptions{Engine: eng}
	res, err := strict.ManageContainerRegistry(ctx, containerization.RegistryPush, testimages.Upgradable, "sec", ro)
	keep(res, err)
	if !errors.Is(err, containerization.ErrPolicyViolation) || !strings.Contains(err.Error(), "at the push gate") || res.PolicyVerdict == nil {
		t.Fatalf("push of the vulnerable image to sec = %v", err)
	}
	if s, err := strict.Registry(ctx, "sec", true); err != nil || len(s.Repositories) != 0 {
		t.Errorf("after the refused push the registry holds %+v (%v); want nothing", s, err)
	}

	// The clean image goes through, its scan and SBOM attached and marked allowed.
	res, err = strict.ManageContainerRegistry(ctx, containerization.RegistryPush, clean, "sec", ro)
	keep(res, err)
	if err != nil || res.Evidence == nil || res.RegistryURL != reg.Host || res.Reference != reg.Host+"/debian-base:test" {
		t.Fatalf("push of the clean image to sec = %+v, %v", res, err)
	}
	cleanDigest := res.ImageDigest
	scanOpts := containerization.RegistryOptions{Credentials: login, CAFile: reg.CAFile}
	ev, err := strict.AttachedScans(ctx, reg.Host+"/debian-base@"+cleanDigest, scanOpts)
	if err != nil || len(ev) != 1 || ev[0].Annotations[policy.AnnotationVerdict] != "allowed" {
		t.Errorf("scans attached to the clean image = %+v, %v; want one, marked allowed", ev, err)
	}

	// A push gate that only warns lets the vulnerable image through, its scan marked refused.
	warn := client(highIsRefused + "gates: {push: warn}\n")
	wo := ro
	wo.Destination = "upgradable:warned"
	res, err = warn.ManageContainerRegistry(ctx, containerization.RegistryPush, testimages.Upgradable, "sec", wo)
	keep(res, err)
	if err != nil || res.PolicyVerdict == nil || res.PolicyVerdict.Allowed || res.Evidence == nil {
		t.Fatalf("push under a warning gate = %+v, %v", res, err)
	}
	ev, err = warn.AttachedScans(ctx, reg.Host+"/upgradable:warned", scanOpts)
	if err != nil || len(ev) != 1 || ev[0].Annotations[policy.AnnotationVerdict] != "refused (images.vulnerabilities)" {
		t.Errorf("scans attached to the warned image = %+v, %v; want one, marked refused", ev, err)
	}

	// show reads the catalog; ls and the JSON never show the login.
	s, err := strict.Registry(ctx, "sec", true)
	keep(s, err)
	if err != nil || !slices.Equal(s.Repositories, []string{"debian-base", "upgradable"}) || s.Credentials.Username != reg.Username {
		t.Errorf("show = %+v, %v; want repositories debian-base and upgradable", s, err)
	}
	list, err := strict.Registries(ctx)
	keep(list, err)
	if err != nil || len(list) != 1 || list[0].Name != "sec" {
		t.Errorf("ls = %+v, %v", list, err)
	}

	// retention run: a dry run first, then apply keeps the newest artifact of each repository (by its config's
	// time: clean was built before upgradable) and what is attached to it; what is attached to the other goes
	// with it.
	wo.Destination = "upgradable:older"
	if _, err := warn.ManageContainerRegistry(ctx, containerization.RegistryPush, clean, "sec", wo); err != nil {
		t.Fatal(err)
	}
	plan, err := strict.RunRetention(ctx, "sec", []string{"upgradable"}, false, 0)
	keep(plan, err)
	if err != nil || !plan.DryRun || plan.Deleted != 2 || plan.Kept != 2 {
		t.Fatalf("retention plan = %+v, %v; want a dry run keeping 2 (the image and its evidence) and deleting 2", plan, err)
	}
	applied, err := strict.RunRetention(ctx, "sec", []string{"upgradable"}, true, 0)
	if err != nil || applied.Deleted != 2 {
		t.Fatalf("retention apply = %+v, %v", applied, err)
	}
	lres, err := strict.ManageContainerRegistry(ctx, containerization.RegistryList, "upgradable", "sec", containerization.RegistryOptions{})
	if err != nil || !slices.Contains(lres.Tags, "warned") || slices.Contains(lres.Tags, "older") || len(lres.Tags) != 2 {
		t.Errorf("tags after retention = %v, %v; want warned and its evidence kept, older deleted", lres.Tags, err)
	}
	if ev, err := warn.AttachedScans(ctx, reg.Host+"/upgradable:warned", scanOpts); err != nil || len(ev) != 1 {
		t.Errorf("after retention the kept image's scans = %+v, %v", ev, err)
	}

	// rm forgets it; the name is then a host again, and unknown.
	if err := strict.RemoveRegistry(ctx, "sec"); err != nil {
		t.Fatal(err)
	}
	if err := strict.RemoveRegistry(ctx, "sec"); !errors.Is(err, containerization.ErrNotFound) {
		t.Errorf("rm of a registry not saved = %v, want ErrNotFound", err)
	}
	if _, err := strict.RunRetention(ctx, "sec", nil, false, 0); !errors.Is(err, containerization.ErrNotFound) {
		t.Errorf("retention run of a registry not saved = %v, want ErrNotFound", err)
	}
	for _, out := range outputs {
		if strings.Contains(out, "canary-") {
			t.Errorf("an output shows a password: %s", out)
		}
	}
}
