// Package engine drives a container engine through the Docker Engine API: container lifecycle, logs, metrics and
// the local image store. It speaks to Docker 20.10 and later, and to Podman's Docker-compatible socket, through
// github.com/moby/moby/client with API version negotiation.
//
// Every container, network and volume that this package creates carries the label [ManagedLabel], so that
// Myrmex can list, measure and clean up what is its own and nothing else.
//
// The package is silent: it logs only through the *slog.Logger given in [Options], which discards by default.
package engine
