package registry

import (
	"fmt"
	"net/url"
	"os/exec"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/codomyrmex/containerization/errdefs"
)

// Kind is the kind of registry, as the specification's ContainerRegistry.type names them.
type Kind string

// The kinds of registry. Generic is any other OCI distribution registry (CNCF distribution, Zot, Quay…).
const (
	DockerHub Kind = "dockerhub"
	ECR       Kind = "ecr"
	ACR       Kind = "acr"
	GCR       Kind = "gcr"
	Harbor    Kind = "harbor"
	Generic   Kind = "generic"
)

// Kinds lists the kinds a caller may name.
var Kinds = []Kind{DockerHub, ECR, ACR, GCR, Harbor, Generic}

var (
	ecrHost = regexp.MustCompile(`^\d{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$`)
	acrHost = regexp.MustCompile(`^[a-z0-9]+\.azurecr\.(io|cn|us)$`)
	garHost = regexp.MustCompile(`^[a-z0-9-]+-docker\.pkg\.dev$`)
)

// DetectKind tells the kind of a registry from its host. Harbor runs on any host and cannot be told from it:
// a Harbor registry is Generic unless the caller names its kind.
func DetectKind(host string) Kind {
	host = strings.ToLower(host)
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	switch {
	case host == "docker.io" || host == name.DefaultRegistry || host == "registry-1.docker.io":
		return DockerHub
	case ecrHost.MatchString(host):
		return ECR
	case acrHost.MatchString(host):
		return ACR
	case host == "gcr.io" || strings.HasSuffix(host, ".gcr.io") || garHost.MatchString(host):
		return GCR
	}
	return Generic
}

// ParseKind reads a kind name; empty means "detect from the host".
func ParseKind(s string) (Kind, error) {
	if s == "" {
		return "", nil
	}
	for _, k := range Kinds {
		if string(k) == strings.ToLower(s) {
			return k, nil
		}
	}
	return "", fmt.Errorf("%w: registry type %q: want one of dockerhub, ecr, acr, gcr, harbor, generic", errdefs.ErrInvalidArgument, s)
}

// Endpoint is a registry to talk to: its host, whether it speaks plain HTTP, and its kind.
type Endpoint struct {
	Host      string // host[:port]; index.docker.io for Docker Hub
	PlainHTTP bool
	Kind      Kind
}

// ParseEndpoint reads a registry URL: "registry.example.com:5000", "https://harbor.example.com",
// "http://127.0.0.1:5000" (plain HTTP), "docker.io". A path after the host is refused: it belongs in the image
// name. kind is checked against the host: an ECR kind for a Docker Hub host is an error.
func ParseEndpoint(registryURL string, kind Kind) (Endpoint, error) {
	raw := strings.TrimSpace(registryURL)
	ep := Endpoint{}
	if raw == "" {
		raw = name.DefaultRegistry
	}
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return ep, fmt.Errorf("%w: registry URL %q", errdefs.ErrInvalidArgument, registryURL)
		}
		switch u.Scheme {
		case "http":
			ep.PlainHTTP = true
		case "https":
		default:
			return ep, fmt.Errorf("%w: registry URL %q: scheme must be http or https", errdefs.ErrInvalidArgument, registryURL)
		}
		if p := strings.Trim(u.Path, "/"); p != "" && p != "v2" && p != "v1" {
			return ep, fmt.Errorf("%w: registry URL %q: a path (%q) belongs in the image name, not the registry", errdefs.ErrInvalidArgument, registryURL, p)
		}
		raw = u.Host
	} else if strings.Contains(raw, "/") {
		return ep, fmt.Errorf("%w: registry URL %q: a path belongs in the image name, not the registry", errdefs.ErrInvalidArgument, registryURL)
	}
	reg, err := name.NewRegistry(raw)
	if err != nil {
		return ep, fmt.Errorf("%w: registry %q: %v", errdefs.ErrInvalidArgument, registryURL, err)
	}
	ep.Host = reg.RegistryStr()
	detected := DetectKind(ep.Host)
	switch {
	case kind == "":
		ep.Kind = detected
	case kind == Harbor || kind == Generic:
		if detected != Generic {
			return ep, fmt.Errorf("%w: %s is a %s registry, not %s", errdefs.ErrInvalidArgument, ep.Host, detected, kind)
		}
		ep.Kind = kind
	case kind != detected:
		return ep, fmt.Errorf("%w: %s is not a %s registry (its host says %s)", errdefs.ErrInvalidArgument, ep.Host, kind, detected)
	default:
		ep.Kind = kind
	}
	return ep, nil
}

// String is the endpoint as a registry URL: its host, after "http://" for a plain-HTTP registry.
func (e Endpoint) String() string {
	if e.PlainHTTP {
		return "http://" + e.Host
	}
	return e.Host
}

// nameOptions parse references with Docker's defaults (Docker Hub, library/, latest); Normalize then rebases
// them on the endpoint. A default registry of the endpoint's own would make references print without it.
func (e Endpoint) nameOptions() []name.Option {
	if e.PlainHTTP {
		return []name.Option{name.Insecure}
	}
	return nil
}

// Normalize reads an image reference the way docker does (nginx → index.docker.io/library/nginx:latest,
// repo@sha256:… by digest) and, when a registry is given, places the image in it: a name without a registry
// goes to that registry, and a name that names another registry is retargeted (what docker tag + push does).
// Harbor references need a project: harbor.example.com/PROJECT/repo.
func Normalize(image string, ep Endpoint) (name.Reference, error) {
	if strings.TrimSpace(image) == "" {
		return nil, fmt.Errorf("%w: an image name is required", errdefs.ErrInvalidArgument)
	}
	var ref name.Reference
	var err error
	if h := ep.Host; h != "" && !strings.ContainsAny(h, ".:") && h != "localhost" && strings.HasPrefix(image, h+"/") {
		// A registry host without a dot or a port ("myregistry", a service name) reads as a Docker Hub namespace
		// in "myregistry/team/app:1": in that registry, everything after it is the repository, read as such
		// (behind a placeholder registry, so that neither "library/" nor a dotted first component is taken for
		// Docker Hub's or another registry's).
		ref, err = name.ParseReference("registry.invalid/"+strings.TrimPrefix(image, h+"/"), ep.nameOptions()...)
	} else {
		ref, err = name.ParseReference(image, ep.nameOptions()...)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: image %q: %v", errdefs.ErrInvalidArgument, image, err)
	}
	if ep.Host != "" && ref.Context().RegistryStr() != ep.Host {
		// Keep the repository path; change only the registry.
		repo := ref.Context().RepositoryStr()
		if ref.Context().RegistryStr() == name.DefaultRegistry {
			repo = strings.TrimPrefix(repo, "library/")
		}
		// Built from the registry itself, not parsed from "host/repo": a host without a dot or a port
		// ("myregistry", a compose or cluster service name) would be read as a Docker Hub namespace.
		// The repository comes from a reference already parsed: only the registry is checked here.
		reg, err := name.NewRegistry(ep.Host, ep.nameOptions()...)
		if err != nil {
			return nil, fmt.Errorf("%w: image %q in %s: %v", errdefs.ErrInvalidArgument, image, ep.Host, err)
		}
		r := reg.Repo(repo)
		if d, ok := ref.(name.Digest); ok {
			ref = r.Digest(d.DigestStr())
		} else {
			ref = r.Tag(ref.Identifier())
		}
	}
	if ep.Kind == Harbor && !strings.Contains(ref.Context().RepositoryStr(), "/") {
		return nil, fmt.Errorf("%w: Harbor images live in a project: %s/PROJECT/%s", errdefs.ErrInvalidArgument,
			ep.Host, ref.Context().RepositoryStr())
	}
	return ref, nil
}

// cloudHelpers are the Docker credential helpers of the clouds, by kind, used when they are on PATH.
var cloudHelpers = map[Kind]string{
	ECR: "docker-credential-ecr-login",
	ACR: "docker-credential-acr-env",
	GCR: "docker-credential-gcr",
}

// cloudKeychain returns a keychain over the cloud's credential helper for kind, or nil when it is not
// installed.
func cloudKeychain(kind Kind) authn.Keychain {
	helper, ok := cloudHelpers[kind]
	if !ok {
		return nil
	}
	if _, err := exec.LookPath(helper); err != nil {
		return nil
	}
	return authn.NewKeychainFromHelper(helperClient{strings.TrimPrefix(helper, "docker-credential-")})
}
