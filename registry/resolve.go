package registry

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/codomyrmex/containerization/errdefs"
)

// SplitScheme splits "http://host/repo:tag" into the scheme of its registry ("http://") and the reference.
func SplitScheme(s string) (scheme, rest string) {
	for _, p := range []string{"http://", "https://"} {
		if strings.HasPrefix(s, p) {
			return p, strings.TrimPrefix(s, p)
		}
	}
	return "", s
}

// IsLocalSource reports whether src is an image on disk, an OCI layout or a docker save tarball, rather than a
// reference.
func IsLocalSource(src string) bool {
	return strings.HasPrefix(src, SourceOCI) || strings.HasPrefix(src, SourceArchive)
}

// inferURL is the registry a name designates when no registry URL is given: its own (with its scheme), or ""
// (Docker Hub) when it names none or cannot be read — Normalize then says what is wrong with it.
func inferURL(named string) string {
	scheme, rest := SplitScheme(named)
	if rest == "" || IsLocalSource(named) {
		return ""
	}
	if ref, err := name.ParseReference(rest); err == nil {
		return scheme + ref.Context().RegistryStr()
	}
	return ""
}

// Resolve works out what an image name in a registry designates, the way docker reads "docker pull": the
// registry is registryURL when given, else the one the name names (Docker Hub when it names none), of kind
// (detected from the host when empty). The name may carry its registry's scheme ("http://127.0.0.1:5000/app:1"
// is plain HTTP), which must then agree with registryURL's. A name in another registry than registryURL is
// placed in registryURL (see [Normalize]).
func Resolve(image, registryURL string, kind Kind) (name.Reference, Endpoint, error) {
	scheme, bare := SplitScheme(image)
	if registryURL == "" {
		registryURL = inferURL(image)
	}
	ep, err := ParseEndpoint(registryURL, kind)
	if err != nil {
		return nil, ep, err
	}
	if scheme != "" && !strings.HasPrefix(registryURL, scheme) {
		return nil, ep, fmt.Errorf("%w: %s names %s, but the registry URL is %s", errdefs.ErrInvalidArgument, image, scheme, registryURL)
	}
	ref, err := Normalize(bare, ep)
	return ref, ep, err
}

// ResolvePush works out where a push of src goes: destination (a reference, which may carry a scheme) when
// given, else src's own repository and tag; in registryURL when given, else in the registry that reference
// names. An image on disk (oci:, docker-archive:) has no name of its own and needs a destination.
func ResolvePush(src, registryURL, destination string, kind Kind) (name.Reference, Endpoint, error) {
	named := destination
	if named == "" && !IsLocalSource(src) {
		named = strings.TrimPrefix(src, SourceDaemon)
	}
	if registryURL == "" {
		registryURL = inferURL(named)
	}
	ep, err := ParseEndpoint(registryURL, kind)
	if err != nil {
		return nil, ep, err
	}
	if named == "" {
		return nil, ep, fmt.Errorf("%w: pushing %s needs a destination repository and tag", errdefs.ErrInvalidArgument, src)
	}
	_, bare := SplitScheme(named)
	ref, err := Normalize(bare, ep)
	return ref, ep, err
}
