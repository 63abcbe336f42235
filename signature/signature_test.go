package signature_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/registry"
	"github.com/codomyrmex/containerization/signature"
)

// pushImage writes a random image to repo:tag in r and returns it by digest.
func pushImage(t *testing.T, r *testenv.Registry, repoTag string) name.Digest {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.Ref(repoTag))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithTransport(r.Transport())); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return ref.Context().Digest(d.String())
}

func options(t *testing.T, r *testenv.Registry) signature.Options {
	t.Helper()
	ep, err := registry.ParseEndpoint(r.URL(), "")
	if err != nil {
		t.Fatal(err)
	}
	return signature.Options{Registry: registry.Options{Transport: r.Transport(), Retries: -1}, Endpoint: ep}
}

func newSigner(t *testing.T) (*signature.Signer, *signature.Key) {
	t.Helper()
	priv, pub, err := signature.GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := signature.ParsePrivateKey(priv, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := signature.ParsePublicKey(pub, "test.pub")
	if err != nil {
		t.Fatal(err)
	}
	if k.Fingerprint != s.PublicKey().Fingerprint {
		t.Fatalf("fingerprints of the pair differ: %s, %s", k.Fingerprint, s.PublicKey().Fingerprint)
	}
	return s, k
}

func TestSignVerify(t *testing.T) {
	ctx := context.Background()
	r := testenv.InProcess(t)
	opts := options(t, r)
	img := pushImage(t, r, "app:1")
	s1, k1 := newSigner(t)
	s2, k2 := newSigner(t)
	_, stranger := newSigner(t)

	if _, err := signature.Verify(ctx, img, []*signature.Key{k1}, opts); !errors.Is(err, errdefs.ErrPolicyViolation) {
		t.Fatalf("Verify(unsigned) = %v, want ErrPolicyViolation", err)
	} else if se := (*signature.Error)(nil); !errors.As(err, &se) || se.Signatures != 0 {
		t.Fatalf("Verify(unsigned) = %#v, want a *signature.Error with no signatures", err)
	}

	signed, err := signature.Sign(ctx, img, s1, opts)
	if err != nil {
		t.Fatalf("Sign = %v", err)
	}
	if want := img.Context().String() + ":" + strings.Replace(img.DigestStr(), ":", "-", 1) + ".sig"; signed.Tag != want || signed.Signatures != 1 || signed.Existing {
		t.Fatalf("Sign = %+v, want tag %s, 1 signature", signed, want)
	}
	v, err := signature.Verify(ctx, img, []*signature.Key{k1}, opts)
	if err != nil || len(v.Verified) != 1 || v.Verified[0].Key != k1.Fingerprint || v.Verified[0].DockerReference != img.Context().Name() {
		t.Fatalf("Verify(k1) = %+v, %v; want verified by %s", v, err, k1.Fingerprint)
	}
	_, err = signature.Verify(ctx, img, []*signature.Key{stranger}, opts)
	var se *signature.Error
	if !errors.As(err, &se) || se.Signatures != 1 || !strings.Contains(err.Error(), "made by none of the keys") {
		t.Fatalf("Verify(another key) = %v, want a *signature.Error naming the key", err)
	}

	// The same key again: nothing written, as cosign does. Another key: a second layer.
	if again, err := signature.Sign(ctx, img, s1, opts); err != nil || !again.Existing || again.Signatures != 1 {
		t.Fatalf("Sign(same key again) = %+v, %v; want existing, 1 signature", again, err)
	}
	if second, err := signature.Sign(ctx, img, s2, opts); err != nil || second.Signatures != 2 {
		t.Fatalf("Sign(second key) = %+v, %v; want 2 signatures", second, err)
	}
	for _, keys := range [][]*signature.Key{{k1}, {k2}, {stranger, k2}} {
		if v, err := signature.Verify(ctx, img, keys, opts); err != nil || len(v.Verified) != 1 || v.Signatures != 2 {
			t.Fatalf("Verify(%s) = %+v, %v; want one of two verified", keys[len(keys)-1].Fingerprint, v, err)
		}
	}

	// An image the registry does not have is not signed.
	missing := img.Context().Digest("sha256:" + strings.Repeat("0", 64))
	if _, err := signature.Sign(ctx, missing, s1, opts); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Sign(missing image) = %v, want ErrNotFound", err)
	}
}

// A payload signed by the right key for another image, put where this image's signatures are, is refused.
func TestVerifyPayloadForAnotherDigest(t *testing.T) {
	ctx := context.Background()
	r := testenv.InProcess(t)
	opts := options(t, r)
	a := pushImage(t, r, "app:a")
	b := pushImage(t, r, "app:b")
	s, k := newSigner(t)
	if _, err := signature.Sign(ctx, a, s, opts); err != nil {
		t.Fatal(err)
	}
	// Copy a's signature manifest to b's signature tag.
	tr := remote.WithTransport(r.Transport())
	desc, err := remote.Get(signature.Tag(a), tr)
	if err != nil {
		t.Fatal(err)
	}
	img, err := desc.Image()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(signature.Tag(b), img, tr); err != nil {
		t.Fatal(err)
	}
	_, err = signature.Verify(ctx, b, []*signature.Key{k}, opts)
	if !errors.Is(err, errdefs.ErrPolicyViolation) || !strings.Contains(err.Error(), "names "+a.DigestStr()+", another image") {
		t.Fatalf("Verify(b, a's signature) = %v, want refused: the payload names a", err)
	}
}

// Signers racing on one image each keep their signature (a registry has no compare-and-swap: the appends are
// serialized in the process and checked after writing).
func TestSignConcurrently(t *testing.T) {
	ctx := context.Background()
	r := testenv.InProcess(t)
	opts := options(t, r)
	img := pushImage(t, r, "app:1")
	const n = 6
	var keys []*signature.Key
	var signers []*signature.Signer
	for range n {
		s, k := newSigner(t)
		signers, keys = append(signers, s), append(keys, k)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = signature.Sign(ctx, img, signers[i], opts) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Sign %d = %v", i, err)
		}
	}
	v, err := signature.Verify(ctx, img, keys, opts)
	if err != nil || v.Signatures != n || len(v.Verified) != n {
		t.Fatalf("Verify = %+v, %v; want %d signatures, all verified", v, err, n)
	}
}

// Hostile signature manifests: too many layers, too large, a payload declared too large, a layer of another type,
// a signature that is not base64. Each is refused, none is read past its bound.
func TestVerifyHostileManifests(t *testing.T) {
	ctx := context.Background()
	r := testenv.InProcess(t)
	opts := options(t, r)
	_, k := newSigner(t)
	tr := remote.WithTransport(r.Transport())
	layer := static.NewLayer([]byte(`{}`), signature.PayloadMediaType)
	if err := remote.WriteLayer(mustRepo(t, r), layer, tr); err != nil {
		t.Fatal(err)
	}
	ld, _ := layer.Digest()
	desc := func(size int64, mt string, ann map[string]string) v1.Descriptor {
		return v1.Descriptor{MediaType: types.MediaType(mt), Size: size, Digest: ld, Annotations: ann}
	}
	good := map[string]string{signature.AnnotationSignature: "c2ln"}
	manyLayers := make([]v1.Descriptor, signature.MaxLayers+1)
	for i := range manyLayers {
		manyLayers[i] = desc(2, signature.PayloadMediaType, good)
	}
	bigAnn := map[string]string{signature.AnnotationSignature: strings.Repeat("A", signature.MaxManifest)}
	var manyPayloads []v1.Descriptor // 101 payloads, each its own blob
	for i := range 101 {
		l := static.NewLayer(fmt.Appendf(nil, `{"n":%d}`, i), signature.PayloadMediaType)
		if err := remote.WriteLayer(mustRepo(t, r), l, tr); err != nil {
			t.Fatal(err)
		}
		d, _ := l.Digest()
		n, _ := l.Size()
		manyPayloads = append(manyPayloads, v1.Descriptor{MediaType: signature.PayloadMediaType, Size: n, Digest: d, Annotations: good})
	}
	for _, tc := range []struct {
		name   string
		layers []v1.Descriptor
		want   error
		reason string
	}{
		{"too many layers", manyLayers, errdefs.ErrInvalidArgument, "signatures, more than"},
		{"too large", []v1.Descriptor{desc(2, signature.PayloadMediaType, bigAnn)}, errdefs.ErrInvalidArgument, "bytes"},
		{"payload declared too large", []v1.Descriptor{desc(signature.MaxPayload+1, signature.PayloadMediaType, good)}, errdefs.ErrPolicyViolation, "more than"},
		{"another media type", []v1.Descriptor{desc(2, "application/octet-stream", good)}, errdefs.ErrPolicyViolation, "not a simple-signing payload"},
		{"not base64", []v1.Descriptor{desc(2, signature.PayloadMediaType, map[string]string{signature.AnnotationSignature: "%%%"})}, errdefs.ErrPolicyViolation, "not base64"},
		{"more payloads than are read", manyPayloads, errdefs.ErrPolicyViolation, "signatures 101 to 101: not read"},
		{"payload size lies", []v1.Descriptor{desc(1, signature.PayloadMediaType, good)}, errdefs.ErrPolicyViolation, "the manifest says"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := pushImage(t, r, "app:"+strings.ReplaceAll(tc.name, " ", "-"))
			m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
				Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Size: 2, Digest: ld}, Layers: tc.layers}
			body, _ := json.Marshal(m)
			putManifest(t, r, signature.Tag(img), body)
			start := time.Now()
			_, err := signature.Verify(ctx, img, []*signature.Key{k}, opts)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("Verify = %v, want %v saying %q", err, tc.want, tc.reason)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("Verify took %s", d)
			}
		})
	}
}

func mustRepo(t *testing.T, r *testenv.Registry) name.Repository {
	repo, err := name.NewRepository(r.Ref("app"))
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

type rawManifest []byte

func (r rawManifest) RawManifest() ([]byte, error)        { return r, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

func putManifest(t *testing.T, r *testenv.Registry, tag name.Tag, body []byte) {
	t.Helper()
	if err := remote.Put(tag, rawManifest(body), remote.WithTransport(r.Transport())); err != nil {
		t.Fatal(err)
	}
}

func TestKeys(t *testing.T) {
	priv, pub, err := signature.GenerateKeyPair([]byte("right"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(priv, []byte("BEGIN "+signature.SigstorePrivateKeyType)) || !bytes.Contains(pub, []byte("BEGIN PUBLIC KEY")) {
		t.Fatalf("GenerateKeyPair = %s, %s; want cosign's PEM types", priv, pub)
	}
	if _, err := signature.ParsePrivateKey(priv, []byte("wrong")); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("ParsePrivateKey(wrong password) = %v, want ErrInvalidArgument", err)
	}
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.pub")
	if err := exec.Command("mkfifo", fifo).Run(); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.pub")
	if err := os.WriteFile(big, bytes.Repeat([]byte("A"), signature.MaxPEM+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, key string }{
		{"not PEM", "hello"},
		{"a private key", string(priv)},
		{"a FIFO", fifo},
		{"too large", big},
		{"missing", filepath.Join(dir, "nosuch.pub")},
		{"PEM garbage", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"},
	} {
		if _, err := signature.ReadPublicKey(tc.key, ""); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ReadPublicKey(%s) = %v, want ErrInvalidArgument", tc.name, err)
		}
	}
	if _, err := signature.ReadPublicKey(string(pub), ""); err != nil {
		t.Errorf("ReadPublicKey(inline PEM) = %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "k.pub"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	if k, err := signature.ReadPublicKey("k.pub", dir); err != nil || k.Source != "k.pub" {
		t.Errorf("ReadPublicKey(relative to dir) = %+v, %v", k, err)
	}
}

// cosign, built from its Go module (scripts/cosign.sh), verifies what Myrmex signs, and Myrmex verifies what
// cosign signs, each with the other's keys too: offline, no transparency log.
func TestCosignInterop(t *testing.T) {
	cosign := testenv.Cosign(t)
	ctx := context.Background()
	r := testenv.InProcess(t)
	opts := options(t, r)
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, cosign, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=pw", "HOME="+dir, "TUF_ROOT="+filepath.Join(dir, "tuf"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	verifyArgs := func(pub string, img name.Digest) []string {
		return []string{"verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry", "--output", "json", img.String()}
	}

	// Myrmex's key pair, written as `myrmex key generate` writes it.
	priv, pub, err := signature.GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "myrmex.key"), priv)
	writeFile(t, filepath.Join(dir, "myrmex.pub"), pub)
	mySigner, err := signature.ParsePrivateKey(priv, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	myKey, _ := signature.ParsePublicKey(pub, "myrmex.pub")

	// cosign's key pair.
	if out, err := run("generate-key-pair", "--output-key-prefix", "cosign"); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	cosignPriv, err := os.ReadFile(filepath.Join(dir, "cosign.key"))
	if err != nil {
		t.Fatal(err)
	}
	cosignSigner, err := signature.ParsePrivateKey(cosignPriv, []byte("pw"))
	if err != nil {
		t.Fatalf("ParsePrivateKey(cosign's key) = %v", err)
	}
	cosignKey, err := signature.ReadPublicKey("cosign.pub", dir)
	if err != nil {
		t.Fatalf("ReadPublicKey(cosign's public key) = %v", err)
	}
	if cosignKey.Fingerprint != cosignSigner.PublicKey().Fingerprint {
		t.Fatal("cosign's key pair does not match as Myrmex reads it")
	}

	t.Run("myrmex signs, cosign verifies", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			signer *signature.Signer
			pub    string
		}{{"myrmex's key", mySigner, "myrmex.pub"}, {"cosign's key", cosignSigner, "cosign.pub"}} {
			img := pushImage(t, r, "app:"+strings.NewReplacer("'", "", " ", "-").Replace(tc.name))
			if _, err := signature.Sign(ctx, img, tc.signer, opts); err != nil {
				t.Fatalf("Sign = %v", err)
			}
			out, err := run(verifyArgs(tc.pub, img)...)
			if err != nil {
				t.Fatalf("cosign verify (%s) of Myrmex's signature: %v\n%s", tc.name, err, out)
			}
			if !strings.Contains(out, img.DigestStr()) {
				t.Fatalf("cosign verify printed %s, want the digest %s", out, img.DigestStr())
			}
			// and cosign refuses it with the other key.
			other := map[string]string{"myrmex.pub": "cosign.pub", "cosign.pub": "myrmex.pub"}[tc.pub]
			if out, err := run(verifyArgs(other, img)...); err == nil {
				t.Fatalf("cosign verify with another key accepted Myrmex's signature:\n%s", out)
			}
		}
	})

	t.Run("cosign signs, myrmex verifies", func(t *testing.T) {
		for _, tc := range []struct {
			name, key string
			pub       *signature.Key
			other     *signature.Key
		}{{"cosigns key", "cosign.key", cosignKey, myKey}, {"myrmexs key", "myrmex.key", myKey, cosignKey}} {
			img := pushImage(t, r, "signed-by-cosign:"+strings.ReplaceAll(tc.name, " ", "-"))
			if out, err := run("sign", "--key", tc.key, "--tlog-upload=false", "--allow-http-registry", "-y", img.String()); err != nil {
				t.Fatalf("cosign sign with %s: %v\n%s", tc.key, err, out)
			}
			v, err := signature.Verify(ctx, img, []*signature.Key{tc.pub}, opts)
			if err != nil || len(v.Verified) != 1 {
				t.Fatalf("Verify(cosign's signature with %s) = %+v, %v", tc.name, v, err)
			}
			if _, err := signature.Verify(ctx, img, []*signature.Key{tc.other}, opts); !errors.Is(err, errdefs.ErrPolicyViolation) {
				t.Fatalf("Verify(cosign's signature, another key) = %v, want ErrPolicyViolation", err)
			}
			// Myrmex appends its own signature to cosign's; cosign still verifies both.
			if s, err := signature.Sign(ctx, img, map[bool]*signature.Signer{true: mySigner, false: cosignSigner}[tc.key == "cosign.key"], opts); err != nil || s.Signatures != 2 {
				t.Fatalf("Sign after cosign = %+v, %v; want 2 signatures", s, err)
			}
			for _, pub := range []string{"cosign.pub", "myrmex.pub"} {
				if out, err := run(verifyArgs(pub, img)...); err != nil {
					t.Fatalf("cosign verify --key %s after Myrmex appended: %v\n%s", pub, err, out)
				}
			}
		}
	})

	t.Run("cosign refuses a payload for another image", func(t *testing.T) {
		a := pushImage(t, r, "tampered:a")
		b := pushImage(t, r, "tampered:b")
		if _, err := signature.Sign(ctx, a, mySigner, opts); err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Get(signature.Tag(a), remote.WithTransport(r.Transport()))
		if err != nil {
			t.Fatal(err)
		}
		putManifest(t, r, signature.Tag(b), desc.Manifest)
		if out, err := run(verifyArgs("myrmex.pub", b)...); err == nil {
			t.Fatalf("cosign verify accepted a payload for another image:\n%s", out)
		}
		if _, err := signature.Verify(ctx, b, []*signature.Key{myKey}, opts); !errors.Is(err, errdefs.ErrPolicyViolation) {
			t.Fatalf("Verify = %v, want ErrPolicyViolation", err)
		}
	})
}

func writeFile(t *testing.T, file string, data []byte) {
	t.Helper()
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Sign an image and verify it, in a registry (go-containerregistry's own, in process, plain HTTP).
func ExampleSign() {
	ctx := context.Background()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	img, _ := random.Image(64, 1)
	ref, _ := name.ParseReference(host + "/team/web:1.4")
	_ = remote.Write(ref, img)
	d, _ := img.Digest()
	image := ref.Context().Digest(d.String())

	priv, pub, _ := signature.GenerateKeyPair([]byte("a password")) // cosign.key and cosign.pub, as cosign writes them
	signer, _ := signature.ParsePrivateKey(priv, []byte("a password"))
	key, _ := signature.ParsePublicKey(pub, "cosign.pub")
	opts := signature.Options{Endpoint: registry.Endpoint{Host: host, PlainHTTP: true}}

	signed, err := signature.Sign(ctx, image, signer, opts)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(signed.Tag == signature.Tag(image).String(), signed.Signatures)
	v, err := signature.Verify(ctx, image, []*signature.Key{key}, opts)
	fmt.Println(len(v.Verified), err)

	_, stranger, _ := signature.GenerateKeyPair(nil)
	other, _ := signature.ParsePublicKey(stranger, "other.pub")
	_, err = signature.Verify(ctx, image, []*signature.Key{other}, opts)
	fmt.Println(errors.Is(err, errdefs.ErrPolicyViolation))
	// Output:
	// true 1
	// 1 <nil>
	// true
}

// On the real distribution registry (Debian's docker-registry: TLS with a test CA, basic authentication), Myrmex
// signs and verifies, and cosign verifies Myrmex's signature there with the same CA and login.
func TestSignVerifyDistribution(t *testing.T) {
	r := testenv.Distribution(t, testenv.DistributionOptions{})
	ctx := context.Background()
	ep, err := registry.ParseEndpoint(r.Host, "")
	if err != nil {
		t.Fatal(err)
	}
	auth := &authn.AuthConfig{Username: r.Username, Password: r.Password}
	opts := signature.Options{Registry: registry.Options{Transport: r.Transport(), Auth: auth}, Endpoint: ep}
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(r.Ref("app:1"))
	if err := remote.Write(ref, img, remote.WithTransport(r.Transport()), remote.WithAuth(authn.FromConfig(*auth))); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	digest := ref.Context().Digest(d.String())
	s, k := newSigner(t)
	_, stranger := newSigner(t)
	if _, err := signature.Verify(ctx, digest, []*signature.Key{k}, opts); !errors.Is(err, errdefs.ErrPolicyViolation) {
		t.Fatalf("Verify(unsigned) = %v, want ErrPolicyViolation", err)
	}
	if _, err := signature.Sign(ctx, digest, s, opts); err != nil {
		t.Fatalf("Sign = %v", err)
	}
	if v, err := signature.Verify(ctx, digest, []*signature.Key{stranger, k}, opts); err != nil || len(v.Verified) != 1 {
		t.Fatalf("Verify = %+v, %v", v, err)
	}
	noAuth := opts
	noAuth.Registry.Auth = &authn.AuthConfig{Username: r.Username, Password: "wrong"}
	if _, err := signature.Verify(ctx, digest, []*signature.Key{k}, noAuth); !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Fatalf("Verify with a wrong password = %v, want ErrUnauthorized", err)
	}

	cosign := testenv.Cosign(t)
	dir := t.TempDir()
	pub, _ := k.PEM()
	writeFile(t, filepath.Join(dir, "k.pub"), pub)
	cmd := exec.Command(cosign, "verify", "--key", filepath.Join(dir, "k.pub"), "--insecure-ignore-tlog=true",
		"--registry-cacert", r.CAFile, "--registry-username", r.Username, "--registry-password", r.Password, digest.String())
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cosign verify on the distribution registry: %v\n%s", err, out)
	}
}

// FuzzParseKeys: any bytes given as a key are a key or an ErrInvalidArgument, never a panic or a hang.
func FuzzParseKeys(f *testing.F) {
	priv, pub, _ := signature.GenerateKeyPair([]byte("pw"))
	f.Add(priv)
	f.Add(pub)
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+Dmq7Bxm0X7oXa4S4jSg1+0SaeHSHn8S5cK8Q3+XO1\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\neyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjoxMDczNzQxODI0LCJyIjo4LCJwIjoxfX19\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := signature.ParsePrivateKey(data, []byte("pw")); err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("ParsePrivateKey = %v, want ErrInvalidArgument", err)
		}
		if _, err := signature.ParsePublicKey(data, "fuzz"); err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("ParsePublicKey = %v, want ErrInvalidArgument", err)
		}
	})
}

// Copy takes an image's signatures to the same digest in another registry, appending to those there, once.
func TestCopy(t *testing.T) {
	ctx := context.Background()
	a, b := testenv.InProcess(t), testenv.InProcess(t)
	src := pushImage(t, a, "app:1")
	desc, err := remote.Get(src, remote.WithTransport(a.Transport()))
	if err != nil {
		t.Fatal(err)
	}
	img, _ := desc.Image()
	dstRef, _ := name.ParseReference(b.Ref("mirror/app:1"))
	if err := remote.Write(dstRef, img, remote.WithTransport(b.Transport())); err != nil {
		t.Fatal(err)
	}
	dst := dstRef.Context().Digest(src.DigestStr())
	s1, k1 := newSigner(t)
	s2, k2 := newSigner(t)
	s3, k3 := newSigner(t)
	for _, s := range []*signature.Signer{s1, s2} {
		if _, err := signature.Sign(ctx, src, s, options(t, a)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := signature.Sign(ctx, dst, s3, options(t, b)); err != nil {
		t.Fatal(err)
	}
	if n, err := signature.Copy(ctx, src, options(t, a), dst, options(t, b)); err != nil || n != 2 {
		t.Fatalf("Copy = %d, %v; want 2 copied", n, err)
	}
	v, err := signature.Verify(ctx, dst, []*signature.Key{k1, k2, k3}, options(t, b))
	if err != nil || v.Signatures != 3 || len(v.Verified) != 3 {
		t.Fatalf("Verify after Copy = %+v, %v; want 3 signatures, all verified", v, err)
	}
	if n, err := signature.Copy(ctx, src, options(t, a), dst, options(t, b)); err != nil || n != 0 {
		t.Fatalf("Copy again = %d, %v; want none copied", n, err)
	}
	unsigned := pushImage(t, a, "app:2")
	if n, err := signature.Copy(ctx, unsigned, options(t, a), dstRef.Context().Digest(unsigned.DigestStr()), options(t, b)); err != nil || n != 0 {
		t.Fatalf("Copy of an unsigned image = %d, %v; want none copied", n, err)
	}
	if _, err := signature.Copy(ctx, src, options(t, a), unsigned, options(t, a)); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("Copy to another digest = %v, want ErrInvalidArgument", err)
	}
}
