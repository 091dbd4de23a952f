# Two commands on a fresh machine:
#   make demo   installs everything, builds and starts the local cluster, runs the example suite
#   make test   installs everything, runs lint, types, layering and the whole test suite
# Everything is installed from PyPI, the Go module proxy and Debian's packages; nothing else.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test deps system-deps venv cluster-binaries lint type layers unit plugin e2e \
        istio-binaries kind-binaries benchmarks cluster-up cluster-down clean

# The real-node examples run on a cluster of their own: three real nodes, no fake ones.
REAL_NODES := --chaos-local-real-nodes=3 --chaos-local-nodes=0 --chaos-local-real-node=no \
              --chaos-local-name=examples

demo: deps
	$(BIN)/pytest -m chaos examples/ -p no:cacheprovider --ignore=examples/real_nodes --ignore=examples/kind
	$(BIN)/pytest -m chaos examples/real_nodes -p no:cacheprovider $(REAL_NODES)

# The solo tests start a real node of their own (one per machine): they run after the main
# suite, whose session cluster is gone by then; the real-node examples last, on three real nodes.
test: deps istio-binaries kind-binaries lint type layers
	$(BIN)/pytest -n 2 --dist loadfile -p no:cacheprovider -m "not solo" --ignore=examples/real_nodes \
	  --ignore=examples/kind
	$(BIN)/pytest -p no:cacheprovider -m solo -rs --ignore=examples/real_nodes --ignore=examples/kind
	$(BIN)/pytest -p no:cacheprovider -m chaos -rs examples/real_nodes $(REAL_NODES)

deps: system-deps venv cluster-binaries

# Debian packages the project needs; installed only when something is missing.
system-deps:
	@bash scripts/install-system-deps.sh

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Builds the cluster's binaries through the Go module proxy into the per-user cache (once per
# machine; again only when a version in tools/ changes). The cold build takes many minutes.
cluster-binaries: venv
	PATH="$$(bash scripts/install-go.sh):$$PATH" $(BIN)/pytest-chaos cluster build

# istiod and pilot-agent (istio.io/istio, ~11 min cold, ~2.8 GB RAM): `make test` builds them for
# the Istio data-plane e2e test; `make demo` does not wait for them. A failed build does not fail
# `make test` (the leading `-`): the test skips, saying why, where they are not built.
istio-binaries: venv
	-PATH="$$(bash scripts/install-go.sh):$$PATH" $(BIN)/pytest-chaos cluster build --istio

# kind v0.33.0, kubeadm, CoreDNS and the kind node image for --chaos-cluster=kind (seconds warm;
# the image ~4 min cold: mmdebstrap, podman build): optional like istio-binaries, a failed build
# does not fail `make test` (the kind tests skip, naming what is missing); `make demo` skips it.
kind-binaries: venv
	-PATH="$$(bash scripts/install-go.sh):$$PATH" $(BIN)/pytest-chaos cluster build --kind --kind-node-image

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

type: venv
	$(BIN)/mypy

layers: venv
	$(BIN)/lint-imports

unit: venv
	$(BIN)/pytest tests/unit

plugin: venv
	$(BIN)/pytest tests/plugin

e2e: deps
	$(BIN)/pytest tests/e2e -m "not solo"
	$(BIN)/pytest tests/e2e -m solo -rs

benchmarks: deps
	$(BIN)/python benchmarks/cluster.py

cluster-up: deps
	$(BIN)/pytest-chaos cluster up

cluster-down: venv
	$(BIN)/pytest-chaos cluster down

clean:
	-$(BIN)/pytest-chaos cluster down
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache
