package registry_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/registry"
)

const fuzzDigest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// fuzzRegistryURLs are registry URLs as users write them, and ones that must be refused.
var fuzzRegistryURLs = []string{
	"", "docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/", "https://docker.io/v2/",
	"registry.example.com:5000", "https://harbor.example.com", "http://127.0.0.1:5000", "http://[::1]:5000",
	"[::1]:5000", "localhost:5000", "123456789012.dkr.ecr.us-east-1.amazonaws.com",
	"123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", "myreg.azurecr.io", "gcr.io", "eu.gcr.io",
	"europe-west1-docker.pkg.dev", "  quay.io  ", "HTTPS://Quay.IO", "http://user:pass@host:5000/",
	"https://host/path", "host/path", "ftp://host", "http://", "http://:5000", "https://host:99999",
	"host:port", "http://a b", "%zz", "http://host?query#frag", "ghcr.io:443", "10.0.0.1:5000",
}

// fuzzImages are image references, docker's short forms and malformed ones.
var fuzzImages = []string{
	"nginx", "nginx:1.27", "library/nginx", "docker.io/library/nginx:latest", "index.docker.io/nginx",
	"nginx@" + fuzzDigest, "ghcr.io/org/app:v1.2.3", "localhost:5000/app", "127.0.0.1:5000/team/app:dev",
	"[::1]:5000/app:1", "registry.example.com:5000/a/b/c:tag@" + fuzzDigest, "http://127.0.0.1:5000/app:1",
	"https://ghcr.io/org/app", "oci:/tmp/layout:tag", "docker-archive:/tmp/x.tar", "docker-daemon:app:1",
	"", " ", "UPPER/case", "app:", "app@sha256:short", "a:b:c", "app:" + strings.Repeat("t", 129),
	"harbor.example.com/project/repo:1", "harbor.example.com/repo:1", "app:tag@" + fuzzDigest, "-app", "a//b",
}

var fuzzKinds = []string{"", "dockerhub", "ecr", "acr", "gcr", "harbor", "generic", "GENERIC", "quay"}

// fuzzWantInvalid fails t unless err wraps errdefs.ErrInvalidArgument.
func fuzzWantInvalid(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("%s: error %v does not wrap ErrInvalidArgument", what, err)
	}
}

// fuzzCheckEndpoint checks an endpoint that ParseEndpoint accepted: it has a host and a known kind, and its String
// parses back to the same endpoint.
func fuzzCheckEndpoint(t *testing.T, what string, ep registry.Endpoint) {
	t.Helper()
	if ep.Host == "" {
		t.Fatalf("%s: endpoint %+v has no host", what, ep)
	}
	if !slices.Contains(registry.Kinds, ep.Kind) {
		t.Fatalf("%s: endpoint %+v has unknown kind %q", what, ep, ep.Kind)
	}
	again, err := registry.ParseEndpoint(ep.String(), ep.Kind)
	if err != nil {
		t.Fatalf("%s: endpoint %+v: ParseEndpoint(%q, %q) = %v", what, ep, ep.String(), ep.Kind, err)
	}
	if again != ep {
		t.Fatalf("%s: ParseEndpoint(%q, %q) = %+v, want %+v", what, ep.String(), ep.Kind, again, ep)
	}
}

// fuzzCheckReference checks a reference that Normalize (or Resolve) returned for ep: it lives in ep's registry,
// and both its String and its fully qualified Name normalize again to the same reference.
func fuzzCheckReference(t *testing.T, what string, ref name.Reference, ep registry.Endpoint) {
	t.Helper()
	if ref == nil {
		t.Fatalf("%s: nil reference without an error", what)
	}
	if ep.Host != "" && ref.Context().RegistryStr() != ep.Host {
		t.Fatalf("%s: %s is in registry %s, want %s", what, ref.Name(), ref.Context().RegistryStr(), ep.Host)
	}
	if ep.Kind == registry.Harbor && !strings.Contains(ref.Context().RepositoryStr(), "/") {
		t.Fatalf("%s: Harbor reference %s has no project", what, ref.Name())
	}
	for _, s := range []string{ref.String(), ref.Name()} {
		again, err := registry.Normalize(s, ep)
		if err != nil {
			t.Fatalf("%s: %s does not normalize again in %+v: %v", what, s, ep, err)
		}
		if again.Name() != ref.Name() || again.Identifier() != ref.Identifier() {
			t.Fatalf("%s: %s normalizes to %s, want %s", what, s, again.Name(), ref.Name())
		}
	}
	if s := ref.String(); s != ref.Name() {
		// The form the caller wrote must still print as it was written.
		if again, _ := registry.Normalize(s, ep); again.String() != s {
			t.Fatalf("%s: %s normalizes to one printed %s", what, s, again.String())
		}
	}
}

// FuzzParseEndpoint checks registry.ParseEndpoint on arbitrary registry URLs and kinds: a refusal wraps
// errdefs.ErrInvalidArgument; an accepted endpoint has a host and a known kind, and Endpoint.String parsed again
// (with its kind, or with none for a kind the host tells) gives the same endpoint.
func FuzzParseEndpoint(f *testing.F) {
	for _, u := range fuzzRegistryURLs {
		for _, k := range []string{"", "generic", "dockerhub"} {
			f.Add(u, k)
		}
	}
	for _, k := range fuzzKinds {
		f.Add("myreg.azurecr.io", k)
	}
	f.Fuzz(func(t *testing.T, registryURL, kind string) {
		ep, err := registry.ParseEndpoint(registryURL, registry.Kind(kind))
		if err != nil {
			fuzzWantInvalid(t, "ParseEndpoint", err)
			return
		}
		fuzzCheckEndpoint(t, "ParseEndpoint", ep)
		if ep.Kind != registry.Harbor && ep.Kind != registry.Generic {
			if k := registry.DetectKind(ep.Host); k != ep.Kind {
				t.Fatalf("endpoint %+v, but DetectKind(%q) = %s", ep, ep.Host, k)
			}
		}
		detected, err := registry.ParseEndpoint(ep.String(), "")
		if err != nil || detected.Host != ep.Host || detected.PlainHTTP != ep.PlainHTTP {
			t.Fatalf("ParseEndpoint(%q, \"\") = %+v, %v; want host %s plain %v", ep.String(), detected, err,
				ep.Host, ep.PlainHTTP)
		}
	})
}

// FuzzNormalize checks registry.Normalize on arbitrary image names, alone and placed in an arbitrary registry:
// a refusal wraps errdefs.ErrInvalidArgument; a reference lives in the endpoint's registry, and normalizing
// its String or its Name again gives the same reference.
func FuzzNormalize(f *testing.F) {
	for _, img := range fuzzImages {
		f.Add(img, "", "")
		f.Add(img, "http://127.0.0.1:5000", "")
		f.Add(img, "harbor.example.com", "harbor")
	}
	f.Add("nginx", "docker.io", "")
	f.Add("ghcr.io/org/app:v1", "index.docker.io", "")
	f.Add("localhost/foo", "docker.io", "dockerhub")
	f.Add("team/app:1", "myregistry", "") // a host without a dot or port, such as a compose service name
	f.Fuzz(func(t *testing.T, image, registryURL, kind string) {
		// Without a registry: docker's defaults.
		ref, err := registry.Normalize(image, registry.Endpoint{})
		if err != nil {
			fuzzWantInvalid(t, "Normalize", err)
		} else {
			fuzzCheckReference(t, "Normalize", ref, registry.Endpoint{})
		}

		ep, err := registry.ParseEndpoint(registryURL, registry.Kind(kind))
		if err != nil {
			return
		}
		ref, err = registry.Normalize(image, ep)
		if err != nil {
			fuzzWantInvalid(t, "Normalize in "+ep.String(), err)
			return
		}
		fuzzCheckReference(t, "Normalize in "+ep.String(), ref, ep)
	})
}

// FuzzResolve checks registry.Resolve on arbitrary names, registry URLs and kinds: a refusal wraps
// errdefs.ErrInvalidArgument; an accepted name gives an endpoint that parses back to itself and a reference in
// it that normalizes to itself, and the resolved name written in full (with its scheme) resolves, with no
// registry URL, to the same reference and endpoint.
func FuzzResolve(f *testing.F) {
	for _, img := range fuzzImages {
		f.Add(img, "", "")
	}
	for _, u := range fuzzRegistryURLs {
		f.Add("team/app:1", u, "")
	}
	f.Add("http://127.0.0.1:5000/app:1", "http://127.0.0.1:5000", "")
	f.Add("http://127.0.0.1:5000/app:1", "https://127.0.0.1:5000", "")
	f.Add("https://harbor.example.com/p/app:1", "", "harbor")
	f.Add("nginx", "123456789012.dkr.ecr.us-east-1.amazonaws.com", "ecr")
	f.Fuzz(func(t *testing.T, image, registryURL, kind string) {
		ref, ep, err := registry.Resolve(image, registryURL, registry.Kind(kind))
		if err != nil {
			fuzzWantInvalid(t, "Resolve", err)
			return
		}
		fuzzCheckEndpoint(t, "Resolve", ep)
		fuzzCheckReference(t, "Resolve", ref, ep)

		if !strings.ContainsAny(ep.Host, ".:") && ep.Host != "localhost" {
			// Without a registry URL, "host/team/app" names Docker Hub's namespace "host" (docker's rule for a
			// first component without a dot or a port): the full name does not resolve back on its own.
			return
		}
		scheme := ""
		if ep.PlainHTTP {
			scheme = "http://"
		}
		ref2, ep2, err := registry.Resolve(scheme+ref.Name(), "", ep.Kind)
		if err != nil {
			t.Fatalf("Resolve(%q, \"\", %q) = %v", scheme+ref.Name(), ep.Kind, err)
		}
		if ep2 != ep || ref2.Name() != ref.Name() {
			t.Fatalf("Resolve(%q) = %s in %+v, want %s in %+v", scheme+ref.Name(), ref2.Name(), ep2, ref.Name(), ep)
		}
	})
}

// FuzzResolvePush checks registry.ResolvePush on arbitrary sources, registry URLs and destinations: a refusal
// wraps errdefs.ErrInvalidArgument; an image on disk without a destination is refused; an accepted push goes
// to a reference in the endpoint's registry that normalizes to itself.
func FuzzResolvePush(f *testing.F) {
	for _, img := range fuzzImages {
		f.Add(img, "", "")
		f.Add(img, "http://127.0.0.1:5000", "")
		f.Add("oci:/tmp/layout", "", img)
	}
	f.Add("docker-daemon:app:1", "ghcr.io", "org/app:2")
	f.Add("docker-archive:/tmp/x.tar", "", "")
	f.Add("app:1", "https://harbor.example.com", "")
	f.Add("app:1", "http://registry", "")
	f.Fuzz(func(t *testing.T, src, registryURL, destination string) {
		for _, kind := range []registry.Kind{"", registry.Generic} {
			ref, ep, err := registry.ResolvePush(src, registryURL, destination, kind)
			if err != nil {
				fuzzWantInvalid(t, "ResolvePush", err)
				continue
			}
			if destination == "" && registry.IsLocalSource(src) {
				t.Fatalf("ResolvePush(%q) of an image on disk without a destination = %s", src, ref.Name())
			}
			fuzzCheckEndpoint(t, "ResolvePush", ep)
			fuzzCheckReference(t, "ResolvePush", ref, ep)
		}
	})
}

// FuzzSplitScheme checks registry.SplitScheme: the scheme is "", "http://" or "https://", scheme + rest is
// the input, and a scheme is split off exactly when the input starts with one.
func FuzzSplitScheme(f *testing.F) {
	for _, s := range append(slices.Clone(fuzzImages), fuzzRegistryURLs...) {
		f.Add(s)
	}
	f.Add("http://https://x")
	f.Add("HTTP://x")
	f.Fuzz(func(t *testing.T, s string) {
		scheme, rest := registry.SplitScheme(s)
		if scheme+rest != s {
			t.Fatalf("SplitScheme(%q) = %q + %q", s, scheme, rest)
		}
		switch scheme {
		case "":
			if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
				t.Fatalf("SplitScheme(%q) kept its scheme", s)
			}
		case "http://", "https://":
		default:
			t.Fatalf("SplitScheme(%q) scheme = %q", s, scheme)
		}
	})
}
