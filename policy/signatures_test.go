package policy_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/policy"
)

// images.signatures: keys read with the policy, relative to its file; what is wrong names the line.
func TestParseSignatures(t *testing.T) {
	p, err := policy.Load("testdata/signatures.yaml")
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	sg := p.Images.Signatures
	if len(sg.PublicKeys()) != 1 || sg.PublicKeys()[0].Source != "release.pub" || sg.Need() != 1 || !p.NeedsSignatures() {
		t.Fatalf("signatures = %+v, keys %+v", sg, sg.PublicKeys())
	}
	release, err := os.ReadFile("testdata/release.pub")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.pub")
	if err := os.WriteFile(filepath.Join(dir, "copy.pub"), release, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := mkfifo(fifo); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, doc, want string }{
		{"no keys", "keys: []", "line 4: images.signatures.keys is empty"},
		{"keys missing", "min_keys: 1", "images.signatures.keys is empty"},
		{"a file that is not there", "keys: [nosuch.pub]", "line 4: images.signatures.keys: key file"},
		{"a FIFO", "keys: [" + fifo + "]", "not a regular file"},
		{"not a key", "keys: [\"-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----\"]", "line 4: images.signatures.keys: public key inline"},
		{"the same key twice", "keys: [" + filepath.Join(dir, "copy.pub") + ", " + filepath.Join(dir, "..", filepath.Base(dir), "copy.pub") + "]", "the same key"},
		{"more keys needed than listed", "keys: [" + filepath.Join(dir, "copy.pub") + "]\n    min_keys: 2", "line 5: images.signatures.min_keys 2"},
		{"an unknown field", "keys: [" + filepath.Join(dir, "copy.pub") + "]\n    required: true", "unknown field required in images.signatures"},
	} {
		doc := "version: 1\nimages:\n  signatures:\n    " + c.doc + "\n"
		_, err := policy.Parse([]byte(doc), filepath.Join(dir, "p.yaml"))
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Parse = %v, want ErrInvalidArgument saying %q", c.name, err, c.want)
		}
	}
}

func TestEvaluateSignatures(t *testing.T) {
	p, err := policy.Load("testdata/signatures.yaml")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	ref := "registry.example.com/team/app:1"
	for _, c := range []struct {
		name    string
		gate    string
		check   *policy.SignatureCheck
		finding string // "" when allowed
	}{
		{"signed", policy.GateCreate, &policy.SignatureCheck{Signed: []string{"sha256:ab"}}, ""},
		{"unsigned", policy.GateApply, &policy.SignatureCheck{}, "not signed: no signature is stored for its digest"},
		{"by another key", policy.GateCreate, &policy.SignatureCheck{Refused: []string{"signature 1: made by none of the keys"}},
			"not signed by any of the policy's keys: signature 1: made by none of the keys"},
		{"only in the engine", policy.GateCreate, &policy.SignatureCheck{Unverifiable: "the image has no digest in a registry"}, "the image has no digest in a registry"},
		{"not verified where it runs", policy.GateApply, nil, "not verified"},
		{"a pipeline's image, before its push and signature, is not held", policy.GatePipeline, nil, ""},
		{"a push from the engine is not held", policy.GatePush, nil, ""},
		{"a copy is", policy.GatePush, &policy.SignatureCheck{}, "not signed"},
		{"nor a build", policy.GateBuild, nil, ""},
	} {
		v := p.Evaluate(c.gate, []policy.Image{{Reference: ref, Digest: digest, Signatures: c.check}}, nil, now)
		switch {
		case c.finding == "" && !v.Allowed:
			t.Errorf("%s: violations %+v, want none", c.name, v.Violations)
		case c.finding != "" && (len(v.Violations) != 1 || v.Violations[0].Rule != "images.signatures" || !strings.Contains(v.Violations[0].Finding, c.finding)):
			t.Errorf("%s: violations %+v, want images.signatures saying %q", c.name, v.Violations, c.finding)
		case c.finding != "" && !strings.Contains(v.Err().Error(), "images.signatures: "+ref+"@"+digest):
			t.Errorf("%s: Err = %v, want the rule and the image by digest", c.name, v.Err())
		}
	}
}
