package registry_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/registry"
)

// A pull the engine can make itself is the engine's (docker pull's own path: layers unpacked as they arrive): by
// the digest Myrmex read, with Myrmex's credentials, then tagged. The engine records where it pulled from (its
// RepoDigests), which a load never does: that is how the test tells the two apart, besides Result.Via.
func TestPullByTheEngine(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	// Plain HTTP on loopback: an engine trusts 127.0.0.0/8 without TLS, and the test engine reaches the machine's
	// loopback. Basic authentication: the engine must be given the credentials.
	reg := testenv.Distribution(t, testenv.DistributionOptions{PlainHTTP: true})
	ep, opts := endpoint(t, reg)
	pushed, err := registry.Push(ctx, eng, testimages.Busybox, ref(t, ep, "e/busybox:1"), ep, registry.PushOptions{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	configName := func(r string) string {
		info, err := eng.InspectImage(ctx, r)
		if err != nil {
			t.Fatalf("the engine does not hold %s: %v", r, err)
		}
		return info.ID
	}
	want := configName(testimages.Busybox)

	for _, tc := range []struct{ name, ref, local string }{
		{"by tag", "e/busybox:1", reg.Host + "/e/busybox:1"},
		{"by digest", "e/busybox@" + pushed.Digest, reg.Host + "/e/busybox:" + strings.TrimPrefix(pushed.Digest, "sha256:")[:12]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() {
				_, _ = eng.API().ImageRemove(context.Background(), tc.local, imageRemove())
				_, _ = eng.API().ImageRemove(context.Background(), reg.Host+"/e/busybox@"+pushed.Digest, imageRemove())
			})
			res, err := registry.Pull(ctx, eng, ref(t, ep, tc.ref), ep, opts)
			if err != nil || res.Via != "engine" || res.Digest != pushed.Digest {
				t.Fatalf("Pull(%s) = %+v, %v; want the engine's pull of %s", tc.ref, res, err, pushed.Digest)
			}
			if got := configName(tc.local); got != want {
				t.Errorf("%s is %s in the engine, want %s", tc.local, got, want)
			}
			info, _ := eng.InspectImage(ctx, tc.local)
			if !slices.Contains(info.RepoDigests, reg.Host+"/e/busybox@"+pushed.Digest) {
				t.Errorf("the engine's RepoDigests %v do not say it pulled %s itself", info.RepoDigests, pushed.Digest)
			}
		})
	}
}

// publicEngine is the real engine, said to be reached over a connection that is neither local nor TLS.
type publicEngine struct{ *engine.Client }

func (publicEngine) Private() bool { return false }

// Credentials go to the engine for its own pull only over a local or TLS connection, unless the engine's pull
// was asked for: else the image is fetched and loaded, and they stay in this process.
func TestPullKeepsCredentialsFromAPublicEngine(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	reg := testenv.Distribution(t, testenv.DistributionOptions{PlainHTTP: true})
	ep, opts := endpoint(t, reg)
	if _, err := registry.Push(ctx, eng, testimages.Busybox, ref(t, ep, "c/busybox:1"), ep, registry.PushOptions{}, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = eng.API().ImageRemove(context.Background(), reg.Host+"/c/busybox:1", imageRemove()) })
	for via, want := range map[registry.PullVia]string{registry.PullAuto: "load", registry.PullEngine: "engine"} {
		o := opts
		o.PullVia = via
		res, err := registry.Pull(ctx, publicEngine{eng}, ref(t, ep, "c/busybox:1"), ep, o)
		if err != nil || res.Via != want {
			t.Errorf("Pull via %q from a public engine = %+v, %v; want it via %s", via, res, err, want)
		}
	}
}

// A registry only Myrmex reaches (here a name only its transport resolves, as a registry behind a proxy or a VPN
// the engine is not on): the default pull falls back to Myrmex's fetch and load; a pull that must be the engine's
// fails with ErrUnavailable from the engine and names nothing.
func TestPullFallsBackWhenTheEngineCannot(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	reg := testenv.Distribution(t, testenv.DistributionOptions{PlainHTTP: true, NoAuth: true})
	_, port, _ := net.SplitHostPort(reg.Host)
	host := "myrmex-only.invalid:" + port
	dialer := &net.Dialer{}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == host {
			addr = reg.Host
		}
		return dialer.DialContext(ctx, network, addr)
	}
	ep, err := registry.ParseEndpoint("http://"+host, "")
	if err != nil {
		t.Fatal(err)
	}
	opts := registry.Options{Transport: tr, Keychain: authn.NewMultiKeychain()}
	if _, err := registry.Push(ctx, eng, testimages.Busybox, ref(t, ep, "f/busybox:1"), ep, registry.PushOptions{}, opts); err != nil {
		t.Fatal(err)
	}
	local := host + "/f/busybox:1"
	t.Cleanup(func() { _, _ = eng.API().ImageRemove(context.Background(), local, imageRemove()) })

	o := opts
	o.PullVia = registry.PullEngine
	res, err := registry.Pull(ctx, eng, ref(t, ep, "f/busybox:1"), ep, o)
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "engine") {
		t.Errorf("Pull via the engine = %+v, %v; want ErrUnavailable from the engine", res, err)
	}
	if ok, _ := eng.ImageExists(ctx, local); ok {
		t.Errorf("the engine holds %s after a failed pull", local)
	}

	res, err = registry.Pull(ctx, eng, ref(t, ep, "f/busybox:1"), ep, opts)
	if err != nil || res.Via != "load" {
		t.Fatalf("Pull = %+v, %v; want success by load", res, err)
	}
	if ok, _ := eng.ImageExists(ctx, local); !ok {
		t.Errorf("the engine does not hold %s after the pull", local)
	}

	o.PullVia = "pigeon"
	if _, err := registry.Pull(ctx, eng, ref(t, ep, "f/busybox:1"), ep, o); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Pull via pigeon = %v, want ErrInvalidArgument", err)
	}
}
