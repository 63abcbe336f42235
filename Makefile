# Myrmex — the two commands: `make demo` and `make test`. Both bring up what they need (a private engine in a
# network namespace of its own, see docs/test-environment.md; the local test images) and stop what they started.

SHELL := /bin/bash
# The tests, the demo and the benchmarks talk to the private engine, never to an engine an inherited DOCKER_HOST
# names; MYRMEX_DOCKER_HOST chooses another engine on purpose (scripts/engine.sh then starts nothing).
export DOCKER_HOST := $(or $(MYRMEX_DOCKER_HOST),unix:///run/myrmex-test/docker.sock)
# Each command that starts the engine or the control plane stops it after, and only if it started it: an engine
# that `make engine-up` or another command started is left running (scripts/engine.sh, scripts/kube.sh).
OWN = export MYRMEX_OWNER=make-$@-$$$$
GO ?= go
# -p 1: one package's tests at a time. They share one engine, one BuildKit and one control plane; run side by side,
# one package's builds and image removals were seen to empty another's build cache mid-test (the build cache tests
# failed about one full run in two); one after the other the suite takes about a minute more.
# TestReliability*: the fault tests that take over a minute, run by `make reliability`.
GOTESTFLAGS ?= -count=1 -p 1 -timeout 30m -skip ^TestReliability

.PHONY: all build image test demo kube-up kube-down bench bench-registry bench-scan bench-build bench-kube bench-client bench-optimize bench-serve vet engine-up engine-down images fuzz reliability clean

all: build

# myrmex-sensor is copied into the containers `myrmex optimize` profiles: static, so that it runs in any image.
build:
	$(GO) build -o bin/myrmex ./cmd/myrmex
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o bin/myrmex-sensor ./cmd/myrmex-sensor

# image: the container image of `myrmex serve` (deploy/Dockerfile, docs/deploy.md), built by myrmex itself on the
# engine's BuildKit, FROM scratch with the static binary: nothing is pulled. IMAGE names it; IMAGE_FLAGS go to
# myrmex build (--push, --scan full, …).
IMAGE ?= myrmex.local/myrmex:dev
image: build engine-up
	GO=$(GO) scripts/image.sh build $(IMAGE) $(IMAGE_FLAGS)

vet:
	$(GO) vet ./...

engine-up:
	scripts/engine.sh up

engine-down:
	MYRMEX_OWNER= scripts/engine.sh down

kube-up:
	scripts/kube.sh up

kube-down:
	MYRMEX_OWNER= scripts/kube.sh down

images: engine-up
	$(GO) run ./internal/tools/seedimages

# test: install and start what the tests need (the engine; a Kubernetes control plane built once from its Go
# modules into ~/.cache/myrmex, about 7 minutes cold; cosign, built the same way, about 8 minutes cold; Debian's
# PostgreSQL on loopback, for the server's state; Debian's Chromium and poppler-utils, and axe-core from the npm
# registry, for the dashboard's and the report's tests), vet, run
# every test against the real engine and registries (the output is searched for canary secrets, see
# scripts/test.sh), stop what it started.
test:
	@$(OWN); trap 'scripts/postgres.sh down; scripts/kube.sh down; scripts/engine.sh down' EXIT; \
	  scripts/engine.sh up && \
	  GO=$(GO) scripts/kube.sh up && \
	  GO=$(GO) scripts/cosign.sh build && \
	  scripts/postgres.sh up && eval "$$(scripts/postgres.sh env)" && \
	  scripts/browser.sh install && eval "$$(scripts/browser.sh env)" && \
	  GO=$(GO) GOTESTFLAGS="$(GOTESTFLAGS)" scripts/test.sh

# demo: the main job end to end, as a pipeline run (examples/pipeline.yaml): the vulnerable app refused at its scan
# stage, then the fixed one built, tested, scanned, optimized, pushed with its evidence and deployed; then run it.
demo: build
	@$(OWN); trap 'scripts/engine.sh down' EXIT; \
	  scripts/engine.sh up && \
	  $(GO) run ./internal/tools/seedimages && \
	  scripts/demo.sh bin/myrmex

# bench: lifecycle and stats against the docker CLI and the raw Engine API; results in bench/results/.
bench: build
	@$(OWN); trap 'scripts/engine.sh down' EXIT; \
	  scripts/engine.sh up && \
	  $(GO) run ./internal/tools/seedimages && \
	  $(GO) run ./bench/lifecycle

# bench-registry: push, pull and copy of a 300 MB image against docker and crane; results in bench/results/.
bench-registry:
	@$(OWN); trap 'scripts/engine.sh down' EXIT; \
	  scripts/engine.sh up && \
	  $(GO) run ./bench/registry

# bench-scan: cold and warm scans of the Debian test image against Syft and Grype (54,014 generated OSV advisories); results in bench/results/
bench-scan:
	@$(OWN); trap 'scripts/engine.sh down' EXIT; \
	  scripts/engine.sh up && \
	  $(GO) run ./bench/scan

# bench-optimize: the test apps optimized by Myrmex (probed and lossless) against docker export | import and crane
# flatten: sizes, dive's efficiency, start to ready; results in bench/results/.
bench-optimize:
	@$(OWN); trap 'scripts/engine.sh down' EXIT; \
	  scripts/engine.sh up && \
	  $(GO) run ./internal/tools/seedimages && \
	  $(GO) run ./bench/optimize

# bench-build: cold and warm multi-stage builds against docker build and buildctl; results in bench/results/.
bench-build:
	@$(OWN); trap 'scripts/engine.sh down' EXIT; \
	  scripts/engine.sh up && \
	  $(GO) run ./bench/build

# bench-kube: 50 Deployments applied and waited for, against kubectl apply + rollout status; results in bench/results/.
# Starts the test control plane (scripts/kube.sh up) when none answers, and stops it after only in that case.
bench-kube:
	@$(OWN); trap 'scripts/kube.sh down' EXIT; \
	  kubectl=$$(scripts/kube.sh bin)/kubectl; eval "$$(scripts/kube.sh env)"; \
	  scripts/kube.sh up && \
	  $(GO) run ./bench/kube -kubeconfig "$$KUBECONFIG" -kubectl "$$kubectl"

# bench-client: one containerization.Client against the package functions (a client per call), for 50 container
# inspects and 50 Kubernetes reads; results in bench/results/. Starts the engine and the control plane when needed.
bench-client:
	@$(OWN); trap 'scripts/kube.sh down; scripts/engine.sh down' EXIT; \
	  scripts/engine.sh up && GO=$(GO) scripts/kube.sh up && \
	  $(GO) run ./internal/tools/seedimages && \
	  $(GO) run ./bench/client -kubeconfig /run/myrmex-test/kube/kubeconfig

# bench-serve: `myrmex serve` (bin/myrmex, built by the run) on loopback: the API's overhead over the library for a
# container inspect and a metrics read (p50, p99, ratio), then 100 clients for 30 s, twice: throughput, errors, p50
# and p99, the server's memory before and after; results in bench/results/. A quick run while developing:
# go run ./bench/serve -duration 3s -out ''
bench-serve:
	@$(OWN); trap 'scripts/engine.sh down' EXIT; \
	  scripts/engine.sh up && \
	  $(GO) run ./internal/tools/seedimages && \
	  GO=$(GO) $(GO) run ./bench/serve

# fuzz: every fuzz target for FUZZTIME each (default 30s); the table goes to bin/fuzz.md (FUZZ_OUT to move it).
# Needs no engine: the targets parse bytes. See docs/reliability.md.
fuzz:
	GO=$(GO) scripts/fuzz.sh

# reliability: the fault-injection tests, the long ones included (make test runs those that take under a minute).
reliability:
	@$(OWN); trap 'scripts/kube.sh down; scripts/engine.sh down' EXIT; \
	  scripts/engine.sh up && GO=$(GO) scripts/kube.sh up && \
	  $(GO) run ./internal/tools/seedimages && \
	  MYRMEX_REQUIRE_ENGINE=1 MYRMEX_RELIABILITY=1 $(GO) test -count=1 -p 1 -timeout 60m \
	    -run 'Fault|Killed|FullDisk|BadAnswers|Restart|TestReliability' ./...

clean:
	rm -rf bin
