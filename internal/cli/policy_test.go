package cli_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
)

func writePolicy(t *testing.T, doc string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// policy check lists a valid policy's rules and what makes it refuse everything; a bad one is exit 2 with the
// line and the field; policy schema is JSON.
func TestPolicyCheck(t *testing.T) {
	good := writePolicy(t, "version: 1\nimages:\n  registries: []\nruntime:\n  non_root: true\n")
	r := mustRun(t, "policy", "check", good)
	for _, want := range []string{"a valid policy (version 1)", "images.registries", "runtime.non_root", "warning: images.registries is empty"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("policy check printed %q, want %q in it", r.stdout, want)
		}
	}
	var js struct {
		Valid    bool     `json:"valid"`
		Problems []string `json:"problems"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "policy", "check", good, "-o", "json").stdout), &js); err != nil || !js.Valid || len(js.Problems) != 1 {
		t.Errorf("policy check -o json = %+v, %v", js, err)
	}
	bad := writePolicy(t, "version: 1\nruntime:\n  no_root: true\n")
	if r := myrmex(t, "policy", "check", bad); r.code != 2 || !strings.Contains(r.stderr, "line 3: unknown field no_root in runtime") {
		t.Errorf("policy check (unknown rule) = exit %d, %q", r.code, r.stderr)
	}
	if r := myrmex(t, "policy", "check", filepath.Join(t.TempDir(), "none.yaml")); r.code != 3 {
		t.Errorf("policy check (missing) = exit %d, %q", r.code, r.stderr)
	}
	// A broken policy in the environment stops the commands it would govern, not policy check.
	t.Setenv("MYRMEX_POLICY", bad)
	mustRun(t, "policy", "check", good)
	if r := myrmex(t, "container", "ls"); r.code != 2 || !strings.Contains(r.stderr, "no_root") {
		t.Errorf("container ls under a broken MYRMEX_POLICY = exit %d, %q", r.code, r.stderr)
	}
	var schema map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, "policy", "schema").stdout), &schema); err != nil || schema["$schema"] == nil {
		t.Errorf("policy schema = %v, %v", schema, err)
	}
}

// --policy holds container create to the policy: exit 7 naming the rule; a warning gate creates and warns.
func TestPolicyFlag(t *testing.T) {
	eng := testEngine(t)
	enforce := writePolicy(t, "version: 1\nruntime:\n  require_limits: [memory]\n")
	name := containerName(t, eng, "policy")
	r := myrmex(t, "--policy", enforce, "container", "create", name, "--image", testimages.Busybox)
	if r.code != 7 || !strings.Contains(r.stderr, "runtime.require_limits: container "+name+": no memory limit") {
		t.Errorf("create without a limit = exit %d, %q", r.code, r.stderr)
	}
	if r := myrmex(t, "container", "inspect", name); r.code != 3 {
		t.Errorf("the refused container exists: inspect = exit %d", r.code)
	}
	mustRun(t, "--policy", enforce, "container", "create", name, "--image", testimages.Busybox, "--memory", "16m")
	warn := writePolicy(t, "version: 1\nruntime:\n  require_limits: [cpu]\ngates: {create: warn}\n")
	other := containerName(t, eng, "policy-warn")
	r = mustRun(t, "--policy", warn, "container", "create", other, "--image", testimages.Busybox)
	if !strings.Contains(r.stderr, "warning: the policy (create gate, warn only): runtime.require_limits") {
		t.Errorf("a warning gate said %q", r.stderr)
	}
}

// The isolation flags of container create reach the engine; a bad one is exit 2 before anything is made.
func TestCreateIsolationFlags(t *testing.T) {
	eng := testEngine(t)
	name := containerName(t, eng, "hardened")
	create(t, name, "--image", testimages.Busybox, "--hardened", "--user", "1000", "--cap-add", "net_bind_service",
		"--tmpfs", "/run:size=8m", "--security-opt", "no-new-privileges", "--pids-limit", "128")
	var d struct {
		Config     struct{ User string }
		HostConfig struct {
			ReadonlyRootfs  bool
			CapDrop, CapAdd []string
			PidsLimit       int64
			Tmpfs           map[string]string
			SecurityOpt     []string
		}
	}
	r := mustRun(t, "container", "inspect", name, "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	x := d.HostConfig
	if d.Config.User != "1000" || !x.ReadonlyRootfs || len(x.CapDrop) != 1 || x.CapDrop[0] != "ALL" || len(x.CapAdd) != 1 || x.CapAdd[0] != "CAP_NET_BIND_SERVICE" ||
		x.PidsLimit != 128 || x.Tmpfs["/run"] != "size=8m" || len(x.Tmpfs) != 1 || len(x.SecurityOpt) != 1 {
		t.Errorf("inspect = %+v, user %q", x, d.Config.User)
	}
	other := containerName(t, eng, "bad-cap")
	if r := myrmex(t, "container", "create", other, "--image", testimages.Busybox, "--cap-add", "teleport"); r.code != 2 || !strings.Contains(r.stderr, "not a Linux capability") {
		t.Errorf("a bad capability = exit %d, %q", r.code, r.stderr)
	}
	if r := myrmex(t, "container", "create", other, "--image", testimages.Busybox, "--security-opt", "apparmor=x"); r.code != 2 {
		t.Errorf("an unknown security option = exit %d, %q", r.code, r.stderr)
	}
}

// registry push --attach-scan stores the pushed image's scan in the registry; registry scans lists it; scan
// --attach of an image in the engine is refused.
func TestAttachedScans(t *testing.T) {
	testEngine(t)
	t.Setenv("MYRMEX_CACHE_DIR", t.TempDir())
	mustRun(t, "db", "import", "../../testdata/osv")
	reg := testenv.InProcess(t)
	dest := "http://" + reg.Host + "/clitest/busybox:1"
	mustRun(t, "registry", "push", testimages.Busybox, "--to", dest, "--attach-scan")
	var list []struct {
		Digest      string            `json:"digest"`
		Annotations map[string]string `json:"annotations"`
	}
	r := mustRun(t, "registry", "scans", dest, "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 1 || list[0].Annotations["dev.codomyrmex.myrmex.scan.type"] != "full" {
		t.Errorf("registry scans = %s, %v", r.stdout, err)
	}
	if r := myrmex(t, "scan", testimages.Busybox, "--attach"); r.code != 2 || !strings.Contains(r.stderr, "needs an image read from a registry") {
		t.Errorf("scan --attach of an engine image = exit %d, %q", r.code, r.stderr)
	}
}

// A secret reaches the container's process and nothing else: not the create's output, not inspect (raw or as
// JSON), not secret ls, not an error; a missing secret is exit 3 before anything is made.
func TestSecretsNeverPrinted(t *testing.T) {
	eng := testEngine(t)
	t.Setenv("MYRMEX_CONFIG_DIR", t.TempDir())
	t.Setenv("MYRMEX_CREDENTIALS_KEY", "")
	const canary = "canary-value-4f1d9"
	var outputs []string
	keep := func(r result) result { outputs = append(outputs, r.stdout, r.stderr); return r }
	if r := keep(myrmexIn(t, strings.NewReader(canary+"\n"), "secret", "set", "db-password")); r.code != 0 {
		t.Fatalf("secret set = exit %d, %s", r.code, r.stderr)
	}
	if r := keep(mustRun(t, "secret", "ls")); strings.TrimSpace(r.stdout) != "db-password" {
		t.Errorf("secret ls = %q", r.stdout)
	}
	name := containerName(t, eng, "secret")
	keep(mustRun(t, "container", "create", name, "--image", testimages.Busybox, "--label", testLabel+"="+name, "-o", "json",
		"-e", "DB_PASSWORD=secret:db-password", "-e", "PLAIN=visible", "--", "sh", "-c", `printf %s "$DB_PASSWORD" | sha256sum`))
	keep(mustRun(t, "container", "start", name))
	waitExited(t, eng, name)
	logs := keep(mustRun(t, "container", "logs", name))
	sum := sha256.Sum256([]byte(canary))
	if !strings.Contains(logs.stdout, hex.EncodeToString(sum[:])) {
		t.Errorf("the process did not see the secret: %q", logs.stdout)
	}
	raw := keep(mustRun(t, "container", "inspect", name))
	if !strings.Contains(raw.stdout, "DB_PASSWORD=<secret>") || !strings.Contains(raw.stdout, "PLAIN=visible") {
		t.Errorf("inspect does not mask the secret: %.400s", raw.stdout)
	}
	keep(mustRun(t, "container", "ls", "-o", "json"))
	other := containerName(t, eng, "secret-missing")
	if r := keep(myrmex(t, "container", "create", other, "--image", testimages.Busybox, "-e", "X=secret:nope")); r.code != 3 || !strings.Contains(r.stderr, `secret "nope" is not in the store`) {
		t.Errorf("a missing secret = exit %d, %q", r.code, r.stderr)
	}
	if r := keep(myrmex(t, "container", "inspect", other)); r.code != 3 {
		t.Errorf("a container was made for a missing secret")
	}
	for _, o := range outputs {
		if strings.Contains(o, canary) {
			t.Errorf("the secret's value was printed: %.300q", o)
		}
	}
	keep(mustRun(t, "secret", "rm", "db-password"))
	if r := myrmex(t, "secret", "rm", "db-password"); r.code != 3 {
		t.Errorf("secret rm of a removed secret = exit %d", r.code)
	}
}
