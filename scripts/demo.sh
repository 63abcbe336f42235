#!/usr/bin/env bash
# demo.sh MYRMEX — the main job end to end, as a pipeline (examples/pipeline.yaml): build the example app
# (examples/app) on BuildKit, test it, scan it and hold it to the policy (examples/policy.yaml) — which refuses it
# for a critical advisory — then fix the dependency and run the pipeline again: built, tested, scanned, optimized,
# pushed with its scan and SBOM attached, and deployed pinned to its digest. Then run the shipped image from a
# ContainerConfig file, read its health, metrics and logs, manage the deployment, and clean up. Each step is a
# myrmex command, shown before it runs. A local CNCF distribution
# registry (Debian's docker-registry) is started on loopback for the demo and stopped after it. The machine is
# offline, so the advisory database is imported from the repository's real advisory fixtures; where there is a
# network, `myrmex db update` fetches osv.dev's exports instead.
set -euo pipefail
myrmex=${1:-bin/myrmex}
name=myrmex-demo-web
port=${MYRMEX_DEMO_PORT:-18080}
regport=${MYRMEX_DEMO_REGISTRY_PORT:-15000}
registry=127.0.0.1:$regport
image=myrmex.local/demo/app:1

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

# The control plane this script starts is stopped at the end; one that another command started is left running.
export MYRMEX_OWNER=${MYRMEX_OWNER:-demo-$$}
regdir=$(mktemp -d)
regpid=
kube_started=
servepid=
cleanup() {
  [ -n "$servepid" ] && kill "$servepid" 2>/dev/null || true
  [ -n "$kube_started" ] && scripts/kube.sh down || true
  "$myrmex" container rm --force "$name" >/dev/null 2>&1 || true
  docker rmi "$image" "$image-optimized" "$registry/demo/app:1" >/dev/null 2>&1 || true
  [ -n "$regpid" ] && kill "$regpid" 2>/dev/null || true
  rm -rf "$regdir"
}
trap cleanup EXIT
"$myrmex" container rm --force "$name" >/dev/null 2>&1 || true

cat >"$regdir/config.yml" <<CFG
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $regdir/data}
  delete: {enabled: true}
http: {addr: $registry}
CFG
docker-registry serve "$regdir/config.yml" >"$regdir/registry.log" 2>&1 &
regpid=$!
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$regport") 2>/dev/null && break; sleep 0.1; done

get() { # a plain HTTP GET through bash's /dev/tcp, so the demo needs no curl
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
  local body; body=$(cat <&3); exec 3<&-
  printf '%s\n' "$body" | tail -n 1
}

step "$myrmex" version

# The demo's own configuration (its saved registry) and a copy of the examples it edits.
export MYRMEX_CONFIG_DIR=$regdir/config MYRMEX_CACHE_DIR=$regdir/cache
cp -r examples "$regdir/examples"
work=$regdir/examples

mkdir -p "$regdir/osv"
cp scan/match/testdata/*.json testdata/osv/*.json "$regdir/osv/"
step "$myrmex" db import "$regdir/osv"
step "$myrmex" registry add demo --url "http://$registry" --scan-on-push
export MYRMEX_KEY_PASSWORD=demo-only-password
step "$myrmex" key generate --output-key-prefix "$work/release"
# The policy also requires the pipeline's signature where the image runs (the deploy's apply gate verifies it).
step sed -i '/^images:/a\  signatures: {keys: [release.pub]}' "$work/policy.yaml"
step "$myrmex" policy check "$work/policy.yaml"

# Deploy: to the cluster of KUBECONFIG or ~/.kube/config when one is configured, else to the local test control
# plane (scripts/kube.sh: Kubernetes built from its modules once, about 7 minutes cold, then ready in seconds;
# KWOK nodes), which MYRMEX_DEMO_KUBE=local also picks when a cluster is configured; MYRMEX_DEMO_KUBE=off skips the
# pipeline's deploy stage.
kube_mode=${MYRMEX_DEMO_KUBE:-auto}
kube_ns=myrmex-demo
skip=()
if [ "$kube_mode" = auto ]; then
  if [ -n "${KUBECONFIG:-}" ] || [ -f "$HOME/.kube/config" ]; then kube_mode=configured; else kube_mode=local; fi
fi
case "$kube_mode" in
  local)
    kube_started=1
    scripts/kube.sh up
    export KUBECONFIG=/run/myrmex-test/kube/kubeconfig
    ;;
  configured) ;;
  off) skip=(--skip deploy) ;;
  *)
    echo "demo.sh: MYRMEX_DEMO_KUBE must be auto, local, configured or off" >&2
    exit 2
    ;;
esac

printf '\nThe app ships minimist 1.2.5, which has a critical advisory: the pipeline stops at its scan stage (exit 7).\n'
set +e
step "$myrmex" pipeline run "$work/pipeline.yaml" "${skip[@]}"
code=$?
set -e
if [ "$code" != 7 ]; then
  echo "demo.sh: the vulnerable app's pipeline exited $code, not 7 (refused by the policy)" >&2
  exit 1
fi

printf '\nThe fix: minimist 1.2.6. The same pipeline now ships the app.\n'
step sed -i 's/"version": "1.2.5"/"version": "1.2.6"/' "$work/app/node_modules/minimist/package.json"
step "$myrmex" pipeline run "$work/pipeline.yaml" "${skip[@]}"
step "$myrmex" registry show demo
step "$myrmex" registry scans "http://$registry/demo/app:1"
step "$myrmex" verify "$registry/demo/app:1" --key "$work/release.pub"

# The shipped image, pulled back from the registry and run from a ContainerConfig file.
step "$myrmex" registry pull "$registry/demo/app:1" --registry demo
printf '\nThe create gate holds the pulled image to the same policy: its signature verified, the scan attached at push reused.\n'
step "$myrmex" --policy "$work/policy.yaml" container create -f examples/web.yaml --image "$registry/demo/app:1" -p "8080/tcp=127.0.0.1:$port"
step "$myrmex" container start "$name"
for _ in $(seq 1 50); do get >/dev/null 2>&1 && break; sleep 0.1; done
printf '\n\033[1m$ GET http://127.0.0.1:%s/ (x5)\033[0m\n' "$port"
for _ in 1 2 3 4 5; do get; done
for _ in $(seq 1 30); do "$myrmex" container stats "$name" -o json | grep -q '"health_status": "healthy"' && break; sleep 0.5; done
step "$myrmex" container ls
step "$myrmex" container stats "$name"
step "$myrmex" container logs --tail 3 "$name"
step "$myrmex" container stop --timeout 2s "$name"
step "$myrmex" container rm "$name"

if [ "$kube_mode" != off ]; then
  step "$myrmex" kube status myrmex-demo-web -n "$kube_ns"
  step "$myrmex" kube scale myrmex-demo-web 3 -n "$kube_ns"
  step "$myrmex" kube status myrmex-demo-web -n "$kube_ns" --wait
  step "$myrmex" kube delete myrmex-demo-web -n "$kube_ns" --wait
fi

# The same functions from Python, through the HTTP API: a server on loopback, a token, the client (standard
# library only) scanning the shipped image as a job.
apiport=${MYRMEX_DEMO_API_PORT:-18765}
printf '\n\033[1m$ %s serve token create demo --scope operate --expires 1h\033[0m\n' "$myrmex"
"$myrmex" serve token create demo --scope operate --expires 1h --state "$regdir/server.db" >"$regdir/token"
"$myrmex" serve --listen "127.0.0.1:$apiport" --state "$regdir/server.db" 2>"$regdir/serve.log" &
servepid=$!
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$apiport") 2>/dev/null && break; sleep 0.1; done
printf '\n\033[1m$ python3 (clients/python): scan_container_security and manage_containers over the API\033[0m\n'
MYRMEX_URL="http://127.0.0.1:$apiport" MYRMEX_TOKEN=$(cat "$regdir/token") PYTHONPATH=clients/python PYTHONDONTWRITEBYTECODE=1 \
  /usr/bin/python3 - "$registry/demo/app:1" <<'PY'
import sys
import myrmex
res = myrmex.scan_container_security(sys.argv[1], scan_type="full")
print("scanned %s: %d vulnerabilities, compliance score %.0f" % (res["image_name"], len(res["vulnerabilities"]), res["compliance_score"]))
print("containers:", [c["name"] for c in myrmex.manage_containers("list", "").get("containers", [])])
try:
    myrmex.manage_containers("inspect", "no-such-container")
except myrmex.ContainerManagementError as e:
    print("ContainerManagementError:", e.code, e.status)
PY
kill "$servepid" && wait "$servepid" || true

step "$myrmex" registry delete "$registry/demo/app:1" --registry demo
if [ "$kube_mode" != off ]; then
  printf '\nDemo done: refused, fixed, then built, tested, scanned, optimized, pushed with its evidence, signed, deployed, run, measured and scanned again from Python; the container, the deployment and the registry are gone.\n'
else
  printf '\nDemo done: refused, fixed, then built, tested, scanned, optimized, pushed with its evidence, signed, run, measured and scanned again from Python; the container is gone, the registry is stopped.\n'
fi
