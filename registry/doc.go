// Package registry pushes, pulls, tags, copies, lists and deletes images in OCI distribution registries, through
// github.com/google/go-containerregistry: daemonless where it can be. Tag and copy go from registry to registry
// without touching an engine, and keep multi-platform indexes whole; push reads an image from the engine's store,
// an OCI layout or a docker-save tarball; pull lands an image in the engine.
//
// References are go-containerregistry's name.Reference. [Normalize] applies Docker's rules (nginx →
// index.docker.io/library/nginx:latest) and retargets an image to a registry; [DetectKind] tells Docker Hub, ECR,
// ACR, GCR/Artifact Registry and Harbor apart by host.
//
// Credentials come from an authn.Keychain: by default Myrmex's own encrypted store, then the Docker config
// (~/.docker/config.json or $DOCKER_CONFIG, with its credential helpers, as docker does), then the cloud's
// credential helper for ECR, ACR and GCR hosts when it is installed. Secrets never appear in errors or results.
//
// Every error wraps one sentinel of package errdefs: ErrUnauthorized for refused credentials, ErrNotFound for a
// missing repository, tag or digest, ErrUnavailable for an unknown host or a registry that does not answer,
// ErrTLS for a certificate that is not trusted, ErrInvalidArgument for a bad reference.
package registry
