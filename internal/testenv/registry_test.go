package testenv_test

import (
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/codomyrmex/containerization/internal/testenv"
)

// clientOptions are the options of a client that trusts reg and logs in to it.
func clientOptions(t testing.TB, reg *testenv.Registry) []remote.Option {
	return []remote.Option{
		remote.WithContext(t.Context()),
		remote.WithTransport(reg.Transport()),
		remote.WithAuth(login(reg.Username, reg.Password)),
	}
}

func login(user, password string) authn.Authenticator {
	if user == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: user, Password: password}
}

func randomImage(t testing.TB, layerSize, layers int64) (v1.Image, v1.Hash) {
	t.Helper()
	img, err := random.Image(layerSize, layers)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return img, digest
}

func parseRef(t testing.TB, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// statusCode is the HTTP status of a registry error, or 0 when err is not one.
func statusCode(err error) int {
	var terr *transport.Error
	if errors.As(err, &terr) {
		return terr.StatusCode
	}
	return 0
}

// pushReadDelete pushes an image to reg, reads it back, deletes it by digest and checks that it is gone.
func pushReadDelete(t *testing.T, reg *testenv.Registry, repoAndTag string) name.Reference {
	t.Helper()
	opts := clientOptions(t, reg)
	img, want := randomImage(t, 1024, 2)
	ref := parseRef(t, reg.Ref(repoAndTag))
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatalf("remote.Write(%q) = %v, want nil", ref, err)
	}
	got, err := remote.Image(ref, opts...)
	if err != nil {
		t.Fatalf("remote.Image(%q) = %v, want nil", ref, err)
	}
	if d, _ := got.Digest(); d != want {
		t.Errorf("remote.Image(%q).Digest() = %v, want %v", ref, d, want)
	}
	byDigest := ref.Context().Digest(want.String())
	if err := remote.Delete(byDigest, opts...); err != nil {
		t.Fatalf("remote.Delete(%q) = %v, want nil", byDigest, err)
	}
	if _, err := remote.Image(byDigest, opts...); statusCode(err) != http.StatusNotFound {
		t.Errorf("remote.Image(%q) after delete = %v, want a 404 registry error", byDigest, err)
	}
	return ref
}

func TestInProcessRegistry(t *testing.T) {
	t.Parallel()
	reg := testenv.InProcess(t)
	if reg.Scheme != "http" || reg.Username != "" || reg.RootCAs != nil {
		t.Errorf("InProcess() = %+v, want plain HTTP without authentication", reg)
	}
	pushReadDelete(t, reg, "myrmex/inprocess:v1")
}

func TestDistributionRegistry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		opts       testenv.DistributionOptions
		wantScheme string
		wantUser   string
	}{
		{"tls and auth", testenv.DistributionOptions{}, "https", testenv.DistributionUser},
		{"http and auth", testenv.DistributionOptions{PlainHTTP: true, Password: "s3cret"}, "http", testenv.DistributionUser},
		{"http", testenv.DistributionOptions{PlainHTTP: true, NoAuth: true}, "http", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := testenv.Distribution(t, tc.opts)
			if reg.Scheme != tc.wantScheme || reg.Username != tc.wantUser {
				t.Errorf("Distribution(%+v) = %s://%s@%s, want scheme %s and user %q",
					tc.opts, reg.Scheme, reg.Username, reg.Host, tc.wantScheme, tc.wantUser)
			}
			if tc.opts.Password != "" && reg.Password != tc.opts.Password {
				t.Errorf("Distribution(%+v).Password = %q, want %q", tc.opts, reg.Password, tc.opts.Password)
			}
			if tc.wantScheme == "https" {
				if _, err := os.Stat(reg.CAFile); err != nil || reg.RootCAs == nil {
					t.Errorf("Distribution(%+v) CA = %q (%v), %v; want a CA file and pool", tc.opts, reg.CAFile, err, reg.RootCAs)
				}
			}

			ref := pushReadDelete(t, reg, "myrmex/distribution:v1")
			repo := ref.Context().RepositoryStr()
			registry, err := name.NewRegistry(reg.Host)
			if err != nil {
				t.Fatal(err)
			}
			repos, err := remote.Catalog(t.Context(), registry, clientOptions(t, reg)...)
			if err != nil || !slices.Contains(repos, repo) {
				t.Errorf("remote.Catalog(%q) = %q, %v; want it to list %q", registry, repos, err, repo)
			}
		})
	}

	t.Run("refusals", func(t *testing.T) {
		t.Parallel()
		reg := testenv.Distribution(t, testenv.DistributionOptions{})
		img, _ := randomImage(t, 256, 1)
		ref := parseRef(t, reg.Ref("myrmex/refused:v1"))
		for _, tc := range []struct {
			name   string
			opts   []remote.Option
			wantOK func(error) bool
			want   string
		}{
			{
				name:   "wrong password",
				opts:   []remote.Option{remote.WithTransport(reg.Transport()), remote.WithAuth(login(reg.Username, "wrong"))},
				wantOK: func(err error) bool { return statusCode(err) == http.StatusUnauthorized },
				want:   "a 401 registry error",
			},
			{
				name:   "no credentials",
				opts:   []remote.Option{remote.WithTransport(reg.Transport())},
				wantOK: func(err error) bool { return statusCode(err) == http.StatusUnauthorized },
				want:   "a 401 registry error",
			},
			{
				name:   "unknown CA",
				opts:   []remote.Option{remote.WithAuth(login(reg.Username, reg.Password))},
				wantOK: func(err error) bool { return errors.As(err, new(x509.UnknownAuthorityError)) },
				want:   "an x509.UnknownAuthorityError",
			},
		} {
			t.Run(tc.name, func(t *testing.T) {
				opts := append([]remote.Option{remote.WithContext(t.Context())}, tc.opts...)
				if err := remote.Write(ref, img, opts...); !tc.wantOK(err) {
					t.Errorf("remote.Write(%q) = %v, want %s", ref, err, tc.want)
				}
			})
		}
	})
}

// recorder records what the client underneath go-containerregistry's retries sees.
type recorder struct {
	inner http.RoundTripper

	mu       sync.Mutex
	statuses []int
	errs     []error
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.inner.RoundTrip(req)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs = append(r.errs, err)
	} else {
		r.statuses = append(r.statuses, resp.StatusCode)
	}
	return resp, err
}

// droppedConnection reports whether err is what a client sees when the server drops the connection mid-request:
// which one it sees depends on whether it was writing or reading, and on whether its transport closed the
// connection first.
func droppedConnection(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func TestFaultProxy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		target func(testing.TB) *testenv.Registry
	}{
		{"in-process", testenv.InProcess},
		{"distribution", func(t testing.TB) *testenv.Registry {
			return testenv.Distribution(t, testenv.DistributionOptions{})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target := tc.target(t)
			proxy := testenv.FaultProxy(t, target, testenv.Faults{Fail503: 1, CutUpload: 1})
			if proxy.Scheme != "http" || proxy.Username != target.Username || proxy.Password != target.Password {
				t.Errorf("FaultProxy() = %s://%s@%s, want http with the target's credentials",
					proxy.Scheme, proxy.Username, proxy.Host)
			}

			img, want := randomImage(t, 1<<20, 3) // random bytes do not compress: the cut falls inside a layer
			ref := parseRef(t, proxy.Ref("myrmex/faults:v1"))
			rec := &recorder{inner: proxy.Transport()}
			werr := remote.Write(ref, img, remote.WithContext(t.Context()), remote.WithTransport(rec),
				remote.WithAuth(login(proxy.Username, proxy.Password)))
			t.Logf("remote.Write through the proxy = %v; the client saw statuses %v and errors %q", werr, rec.statuses, rec.errs)

			if fail503, cut := proxy.Injected(); fail503 != 1 || cut != 1 {
				t.Errorf("Injected() = %d, %d; want 1, 1", fail503, cut)
			}
			if !slices.Contains(rec.statuses, http.StatusServiceUnavailable) {
				t.Errorf("statuses the client saw = %v, want a 503 among them", rec.statuses)
			}
			if !slices.ContainsFunc(rec.errs, droppedConnection) {
				t.Errorf("errors the client saw = %q, want a dropped connection among them", rec.errs)
			}

			if werr != nil {
				return // a failed write is a sane end too; the registry owes nothing
			}
			direct := parseRef(t, target.Ref("myrmex/faults:v1"))
			got, err := remote.Image(direct, clientOptions(t, target)...)
			if err != nil {
				t.Fatalf("remote.Image(%q) = %v, want nil", direct, err)
			}
			if d, _ := got.Digest(); d != want {
				t.Errorf("remote.Image(%q).Digest() = %v, want %v", direct, d, want)
			}
		})
	}
}
