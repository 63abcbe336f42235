package cli_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/codomyrmex/containerization/internal/cli"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/signature"
)

// myrmex key generate, sign and verify, end to end on an in-process registry; cosign verifies what the commands
// made, with the key they made.
func TestKeySignVerify(t *testing.T) {
	s := newRegistrySession(t)
	dir := t.TempDir()
	r := testenv.InProcess(t)
	img, _ := random.Image(128, 1)
	ref, _ := name.ParseReference(r.Ref("web:1.4"))
	if err := remote.Write(ref, img, remote.WithTransport(r.Transport())); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	image := "http://" + r.Ref("web:1.4")
	release, ci := filepath.Join(dir, "release"), filepath.Join(dir, "ci")

	t.Setenv("COSIGN_PASSWORD", "")
	os.Unsetenv("COSIGN_PASSWORD")
	t.Setenv("MYRMEX_KEY_PASSWORD", "")
	os.Unsetenv("MYRMEX_KEY_PASSWORD")
	s.expect(cli.ExitUsage, "", "key", "generate", "--output-key-prefix", release) // no password given: myrmex does not prompt
	t.Setenv("MYRMEX_KEY_PASSWORD", "s3cret-pw")
	var pair struct {
		PrivateKey  string `json:"private_key"`
		PublicKey   string `json:"public_key"`
		Fingerprint string `json:"fingerprint"`
	}
	res := s.expect(0, "", "key", "generate", "--output-key-prefix", release, "-o", "json")
	if err := json.Unmarshal([]byte(res.stdout), &pair); err != nil || pair.PublicKey != release+".pub" || !strings.HasPrefix(pair.Fingerprint, "sha256:") {
		t.Fatalf("key generate -o json = %s (%v), want the files and the fingerprint", res.stdout, err)
	}
	if st, err := os.Stat(release + ".key"); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the private key's mode = %v, %v; want 0600", st.Mode(), err)
	}
	s.expect(cli.ExitConflict, "", "key", "generate", "--output-key-prefix", release) // not overwritten
	t.Setenv("MYRMEX_KEY_PASSWORD", "")
	s.expect(0, "", "key", "generate", "--output-key-prefix", ci, "--force")

	// Unsigned: exit 7, and -o json says policy_violation.
	res = s.expect(cli.ExitPolicy, "", "verify", image, "--key", release+".pub", "-o", "json")
	if !strings.Contains(res.stderr, `"code":"policy_violation"`) || !strings.Contains(res.stderr, "not signed") {
		t.Fatalf("verify (unsigned) stderr = %s, want a policy_violation saying not signed", res.stderr)
	}
	// A wrong password, and a key that is not there: exit 2 before anything is sent.
	t.Setenv("MYRMEX_KEY_PASSWORD", "wrong")
	s.expect(cli.ExitUsage, "", "sign", image, "--key", release+".key")
	s.expect(cli.ExitUsage, "", "sign", image, "--key", filepath.Join(dir, "nosuch.key"))
	s.expect(cli.ExitUsage, "", "verify", image, "--key", release+".key") // a private key is no public key

	t.Setenv("MYRMEX_KEY_PASSWORD", "s3cret-pw")
	res = s.expect(0, "", "sign", image, "--key", release+".key", "-a", "built-by=ci", "-o", "json")
	var signed signature.Signed
	if err := json.Unmarshal([]byte(res.stdout), &signed); err != nil || signed.Image != r.Ref("web@"+d.String()) || signed.Signatures != 1 {
		t.Fatalf("sign -o json = %s (%v), want the image by digest, 1 signature", res.stdout, err)
	}
	s.expect(0, "", "verify", image, "--key", release+".pub")
	res = s.expect(cli.ExitPolicy, "", "verify", image, "--key", ci+".pub")
	if !strings.Contains(res.stderr, "made by none of the keys") {
		t.Fatalf("verify (another key) stderr = %s, want why the signature was refused", res.stderr)
	}
	res = s.expect(0, "", "verify", image, "--key", ci+".pub", "--key", release+".pub", "-o", "json")
	var v signature.Verification
	if err := json.Unmarshal([]byte(res.stdout), &v); err != nil || len(v.Verified) != 1 || v.Verified[0].Key != pair.Fingerprint ||
		v.Verified[0].Annotations["built-by"] != "ci" {
		t.Fatalf("verify -o json = %s (%v), want verified by %s with the annotation", res.stdout, err, pair.Fingerprint)
	}

	t.Run("cosign verifies", func(t *testing.T) {
		cosign := testenv.Cosign(t)
		cmd := exec.Command(cosign, "verify", "--key", release+".pub", "--insecure-ignore-tlog=true", "--allow-http-registry", r.Ref("web:1.4"))
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cosign verify of myrmex sign: %v\n%s", err, out)
		}
	})
}

// --policy with images.signatures: policy check lists the rule with its key; a container of an image only in the
// engine is refused (exit 7), saying why.
func TestPolicySignaturesCLI(t *testing.T) {
	eng := testEngine(t)
	dir := t.TempDir()
	_, pub, err := signature.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "release.pub"), pub, 0o644); err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte("version: 1\nimages:\n  signatures:\n    keys: [release.pub]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := mustRun(t, "policy", "check", pol); !strings.Contains(r.stdout, "images.signatures") || !strings.Contains(r.stdout, "release.pub (sha256:") {
		t.Errorf("policy check = %s, want the rule and its key", r.stdout)
	}
	name := containerName(t, eng, "unsigned")
	r := myrmex(t, "--policy", pol, "container", "create", name, "--image", testimages.Busybox, "--label", testLabel+"="+name)
	if r.code != cli.ExitPolicy || !strings.Contains(r.stderr, "images.signatures") || !strings.Contains(r.stderr, "only in the engine") {
		t.Errorf("create under the policy = exit %d, %s; want 7, images.signatures, only in the engine", r.code, r.stderr)
	}
}
