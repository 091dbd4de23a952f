#!/usr/bin/env bash
# The per-PR chaos gate: start a throw-away cluster, build the application's image and load it,
# deploy the application with kubectl, run `pytest -m chaos` against it, and always tear the
# cluster down. The CI files beside this script (github-workflow.yml, gitlab-ci.yml) only call
# it, so the gate runs the same on a laptop, on GitHub Actions and on GitLab CI:
#
#   examples/ci/gate.sh deps    once per machine: Debian packages, the venv, the cluster's binaries
#   examples/ci/gate.sh         the gate; its exit status is pytest's (or the first failed step's)
#
# Results land in $GATE_OUT (default: chaos-results/): junit.xml (for the CI's test report) and
# chaos-report.html (every fault, its targets and timeline). The run needs root (real nodes are
# network namespaces with their own containerd and kubelet); it re-runs itself with sudo when
# started as another user.
#
# Settings (environment): GATE_CLUSTER (cluster name, default gate), GATE_OUT, GATE_REAL_NODES
# (default 3), GATE_API_REPLICAS (scale the API to this many instances before the suite; 1
# makes the gate fail, as it should), KUBECTL (default: kubectl on PATH; `pytest-chaos cluster up` prints where the
# cluster's own kubectl is), and podman's own CONTAINERS_CONF / CONTAINERS_STORAGE_CONF.
#
# kind instead of the embedded cluster, where Docker (or podman) is: replace step (a) with
# `kind create cluster --name gate`, load the image with `kind load image-archive` in step (b),
# run pytest with `--chaos-context=kind-gate` and tear down with `kind delete cluster --name
# gate` in step (e). pytest-chaos has no kind provider yet; against a kind cluster it works as
# against any existing cluster (`--chaos-cluster=existing`), which is not tested here.
set -euo pipefail

cd "$(dirname "$0")/../.."   # the repository's root: the paths below are relative to it

NAME=${GATE_CLUSTER:-gate}
OUT=${GATE_OUT:-chaos-results}
REAL_NODES=${GATE_REAL_NODES:-3}
IMAGE=localhost/go-demo-8:0.0.1        # the image the manifests name
MANIFESTS=examples/go-demo-8/          # plain YAML, applied as is
NAMESPACE=go-demo-8
SUITE=examples/test_go_demo_8.py

if [ -d .venv/bin ]; then PATH="$PWD/.venv/bin:$PATH"; fi

if [ "$(id -u)" != 0 ]; then
  exec sudo --preserve-env env "PATH=$PATH" "$0" "$@"
fi

if [ "${1:-}" = deps ]; then
  # This repository's `make deps`; in your project: `pip install pytest-chaos`, the Debian
  # packages of the real nodes (containerd, runc, containernetworking-plugins, iptables...)
  # and `pytest-chaos cluster build` (cache ~/.cache/pytest-chaos between runs).
  command -v podman >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman
  }
  exec make deps
fi

KUBECTL=${KUBECTL:-$(command -v kubectl || true)}
if [ -z "$KUBECTL" ]; then
  echo "gate.sh: no kubectl on PATH: set KUBECTL (\`pytest-chaos cluster up\` prints the" \
    "path of the cluster's own kubectl)" >&2
  exit 2
fi
work=$(mktemp -d)

cleanup() {
  status=$?
  # (e) always: stop every process of the cluster and undo every change on this host.
  pytest-chaos cluster down --name "$NAME" || status=1
  rm -rf "$work" "${runroot:-}"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# (a) the embedded cluster: real nodes, untainted, zones a/b/c; plain manifests run there.
exports=$(pytest-chaos cluster up --name "$NAME" --real-nodes "$REAL_NODES" --nodes 0)
eval "$exports"   # export KUBECONFIG=...

# (b) the application's image: built with podman, loaded into every node's containerd. (Or push
# it to the cluster's registry: `podman push --tls-verify=false $IMAGE
# docker://localhost:5001/...`, with that name in the manifests.)
PATH="$(bash scripts/install-go.sh):$PATH"
mkdir -p "$work/context"
(cd tools/images/demo && CGO_ENABLED=0 GOWORK=off go build -trimpath -buildvcs=false \
  -o "$work/context/app" .)
# podman with storage and containers.conf of its own under $work (nothing outside is touched);
# runc and lower ulimits suit older hosts (cgroup v1). The run root must be short.
cat >"$work/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]
[engine]
runtime = "runc"
CONF
runroot=$(mktemp -d /tmp/gatepod.XXXXXX)
podman() {
  CONTAINERS_CONF=${CONTAINERS_CONF:-$work/containers.conf} command podman \
    --root "$work/storage" --runroot "$runroot" --storage-driver vfs "$@"
}
podman build --quiet --tag "$IMAGE" --file examples/go-demo-8/Containerfile "$work/context" \
  >/dev/null
podman save --quiet --output "$work/image.tar" "$IMAGE"
pytest-chaos cluster load-image --name "$NAME" "$work/image.tar"

# (c) deploy as is, and wait until every Deployment is available.
"$KUBECTL" create namespace "$NAMESPACE"
"$KUBECTL" --namespace "$NAMESPACE" apply --filename "$MANIFESTS"
if [ -n "${GATE_API_REPLICAS:-}" ]; then   # e.g. 1: the gate must fail (tests/e2e/test_ci_gate.py)
  "$KUBECTL" --namespace "$NAMESPACE" scale deployment go-demo-8 --replicas "$GATE_API_REPLICAS"
fi
"$KUBECTL" --namespace "$NAMESPACE" wait --for=condition=Available deployment --all \
  --timeout=120s

# (d) the chaos suite, against the cluster KUBECONFIG names.
mkdir -p "$OUT"
pytest -m chaos "$SUITE" -p no:cacheprovider --chaos-cluster=existing \
  --junitxml="$OUT/junit.xml" --chaos-report="$OUT/chaos-report.html"
