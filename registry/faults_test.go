package registry_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/registry"
)

// Answers a real registry gives only when something is broken — a 500, a blob cut short, a blob whose bytes do
// not match its digest — injected between Myrmex and a real distribution registry. Each operation ends in
// success with the right digest or in a typed error, and never leaves a name pointing at a partial image: not
// a tag in the engine after a pull, not a tag in the destination after a copy.
func TestBadAnswersNeverLeaveAPartialImage(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	target := testenv.Distribution(t, testenv.DistributionOptions{})
	tep, topts := endpoint(t, target)
	src := ref(t, tep, "app/busybox:src")
	// The pulls without faults below land in the engine under the target's name: not left behind.
	t.Cleanup(func() { _, _ = eng.API().ImageRemove(context.Background(), src.String(), imageRemove()) })
	pushed, err := registry.Push(ctx, eng, testimages.Busybox, src, tep, registry.PushOptions{}, topts)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		faults testenv.Faults
		// mayFail: the fault is one retries can carry an operation through (a 500, a cut body), or not.
		mayFail bool
	}{
		{"a 500 on a blob read", testenv.Faults{Match: testenv.IsBlobRead, Fail500: 1}, true},
		{"a blob cut short", testenv.Faults{Match: testenv.IsBlobRead, TruncateBody: 1}, true},
		{"a blob with the wrong bytes", testenv.Faults{Match: testenv.IsBlobRead, CorruptBody: 100}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Pull into the engine, under a name of the test's own, through a proxy of its own.
			proxy := testenv.FaultProxy(t, target, tc.faults)
			pep, popts := endpoint(t, proxy)
			popts.PullVia = registry.PullLoad // Myrmex's own fetch (the engine's pull would go through the proxy too)
			pref := ref(t, pep, "app/busybox:src")
			name := pref.Context().Tag("src").String()
			t.Cleanup(func() { _, _ = eng.API().ImageRemove(context.Background(), name, imageRemove()) })
			res, err := registry.Pull(ctx, eng, pref, pep, popts)
			if a, b, c := proxy.InjectedAnswers(); a+b+c == 0 {
				t.Fatalf("no fault was injected into the pull")
			}
			t.Logf("Pull = %v", err)
			checkOutcome(t, "Pull", err, tc.mayFail)
			if err != nil && strings.Contains(err.Error(), "engine") {
				t.Errorf("Pull = %v, want the registry's bad answer as the cause, not the engine", err)
			}
			held, _ := eng.ImageExists(ctx, name)
			switch {
			case err == nil && (res.Digest != pushed.Digest || !held):
				t.Errorf("Pull succeeded with digest %s, image in the engine %v; want %s there", res.Digest, held, pushed.Digest)
			case err != nil && held:
				t.Errorf("Pull failed (%v), yet the engine holds %s", err, name)
			}

			// Copy to another registry, reading through a fresh proxy: every blob is streamed through the faults.
			proxy = testenv.FaultProxy(t, target, tc.faults)
			pep, popts = endpoint(t, proxy)
			mirror := testenv.InProcess(t)
			mep, mopts := endpoint(t, mirror)
			dst := ref(t, mep, "app/copy:1")
			cres, err := registry.Copy(ctx, ref(t, pep, "app/busybox:src"), pep, popts, dst, mep, mopts)
			if a, b, c := proxy.InjectedAnswers(); a+b+c == 0 {
				t.Fatalf("no fault was injected into the copy")
			}
			t.Logf("Copy = %v", err)
			checkOutcome(t, "Copy", err, tc.mayFail)
			if err != nil && !strings.Contains(err.Error(), proxy.Host) {
				t.Errorf("Copy = %v, want the error to name the source registry %s, which sent the bad answer", err, proxy.Host)
			}
			d, herr := remote.Head(dst, remoteOpts(mirror)...)
			switch {
			case err == nil && (herr != nil || d.Digest.String() != cres.Digest):
				t.Errorf("Copy succeeded, destination %v %v, want digest %s", d, herr, cres.Digest)
			case err != nil && herr == nil:
				t.Errorf("Copy failed (%v), yet %s names %s", err, dst, d.Digest)
			}

			// Without the faults the same pull completes.
			if res, err := registry.Pull(ctx, eng, ref(t, tep, "app/busybox:src"), tep, topts); err != nil || res.Digest != pushed.Digest {
				t.Errorf("Pull again without faults = %v, %v; want %s", res.Digest, err, pushed.Digest)
			}
		})
	}
}

// checkOutcome: an operation through a fault either succeeds (when retries may carry it) or fails with a typed
// error — one of errdefs' categories, not an unclassified one.
func checkOutcome(t *testing.T, op string, err error, mayFail bool) {
	t.Helper()
	if err == nil {
		if !mayFail {
			t.Errorf("%s succeeded through a fault no retry can cure", op)
		}
		return
	}
	if errdefs.KindOf(err).Code == "internal" {
		t.Errorf("%s = %v: an unclassified error, want one of errdefs' categories", op, err)
	}
}

// A real registry killed (SIGKILL) in the middle of a push, and in the middle of a copy into it: the operation
// fails with a typed error, the tag it was writing still names the image it named before (the manifest is written
// last), and once the registry is back the same operation completes with an image whose every blob is whole.
func TestRegistryKilledMidTransfer(t *testing.T) {
	ctx := context.Background()
	target := testenv.Distribution(t, testenv.DistributionOptions{})
	tep, topts := endpoint(t, target)
	src := testenv.InProcess(t)
	sep, sopts := endpoint(t, src)

	// Random layers do not compress: 3 × 4 MiB is enough bytes in flight to be killed under.
	img, err := random.Image(4<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	file := t.TempDir() + "/image.tar"
	if err := tarball.WriteToFile(file, name.MustParseReference("x/y:1"), img); err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, sep, "app/big:1"), img, remoteOpts(src)...); err != nil {
		t.Fatal(err)
	}

	for _, op := range []string{"push", "copy"} {
		t.Run(op, func(t *testing.T) {
			dst := ref(t, tep, "app/"+op+":live")
			old := pushRandom(t, target, tep, "app/"+op+":live")
			var killed atomic.Bool
			opts := topts
			opts.Retries = -1 // the registry is gone: retries would only wait for it
			opts.Progress = func(tr registry.Transfer) {
				if tr.Done > 0 && tr.Done < tr.Total && killed.CompareAndSwap(false, true) {
					target.Kill()
				}
			}
			transfer := func(o registry.Options) (registry.Result, error) {
				if op == "push" {
					return registry.Push(ctx, nil, registry.SourceArchive+file, dst, tep, registry.PushOptions{}, o)
				}
				return registry.Copy(ctx, ref(t, sep, "app/big:1"), sep, sopts, dst, tep, o)
			}
			_, err := transfer(opts)
			if !killed.Load() {
				t.Fatalf("%s = %v before any byte was reported: the registry was not killed", op, err)
			}
			if !errors.Is(err, errdefs.ErrUnavailable) {
				t.Errorf("%s with the registry killed = %v, want ErrUnavailable", op, err)
			}
			target.Restart()
			if got, err := digestAt(t, target, tep, "app/"+op+":live"); err != nil || got != old {
				t.Errorf("after the killed %s the tag names %v (%v), want the old image %s", op, got, err, old)
			}

			res, err := transfer(topts)
			if err != nil {
				t.Fatalf("%s again once the registry is back = %v", op, err)
			}
			want, _ := img.Digest()
			if res.Digest != want.String() {
				t.Errorf("%s again = digest %s, want %s", op, res.Digest, want)
			}
			got, err := remote.Image(dst, remoteOpts(target)...)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(got); err != nil {
				t.Errorf("the image the registry holds after the %s is not whole: %v", op, err)
			}
		})
	}
}
