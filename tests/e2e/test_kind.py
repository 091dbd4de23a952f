"""The kind provider for real: the host is as it was after a session, whether it got a cluster.

Needs a container engine (docker, podman or nerdctl) and kind (on PATH or built by ``make``);
the cluster test also needs the node image. Each test skips saying which is missing.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_chaos.cluster import kind, kind_host
from pytest_chaos.cluster.binaries import binary
from pytest_chaos.errors import ClusterError

pytestmark = pytest.mark.solo


def _engine_or_skip() -> str:
    try:
        engine = kind.detect_engine()
        kind.find_kind()
    except ClusterError as exc:
        pytest.skip(str(exc))
    return engine


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The engine, with kind and our node image (else the test skips, saying which is missing);
    the session's state goes under tmp_path."""
    found = _engine_or_skip()
    if not kind.image_present(found, kind.DEFAULT_NODE_IMAGE):
        pytest.skip(f"the node image {kind.DEFAULT_NODE_IMAGE} is not in {found} (docs/kind.md)")
    monkeypatch.setenv("PYTEST_CHAOS_STATE_DIR", str(tmp_path / "state"))
    return found


def _host() -> dict[str, str]:
    """What a kind cluster on podman could change: both firewalls, the sysctl, /lib/modules."""
    state = {}
    for tool in kind_host.TOOLS:
        if shutil.which(tool):
            saved = subprocess.run(
                [f"{tool}-save"], capture_output=True, text=True, check=False
            ).stdout
            state[tool] = "\n".join(line for line in saved.splitlines() if line[:1] not in "#:")
    forwarding = kind_host.IPV6_FORWARDING
    state["ipv6_forwarding"] = forwarding.read_text() if forwarding.exists() else ""
    state["lib_modules"] = str(kind_host.LIB_MODULES.exists())
    state["netns_mounted"] = str(kind_host.netns_mounted())
    for engine in ("podman", "docker"):  # kind's network and node containers
        if shutil.which(engine) and kind._engine_works(engine):
            for what in (["network", "ls", "-q"], ["ps", "-aq"]):
                listed = subprocess.run(
                    [engine, *what], capture_output=True, text=True, check=False
                )
                state[f"{engine} {what[0]}"] = " ".join(sorted(listed.stdout.split()))
    return state


def test_a_session_refused_for_a_missing_node_image_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _engine_or_skip()
    monkeypatch.setenv("PYTEST_CHAOS_STATE_DIR", str(tmp_path))
    before = _host()
    provider = kind.KindClusterProvider(
        f"absent-{secrets.token_hex(3)}", 0, "localhost/pytest-chaos/no-such-node:v0", False
    )
    with pytest.raises(ClusterError, match=rf"no-such-node:v0 is not in {engine}.*docs/kind.md"):
        provider.acquire()
    provider.release()
    assert not list((tmp_path / "kind").glob("*.json"))  # nothing recorded: nothing was made
    assert _host() == before


def test_a_created_cluster_is_ready_then_gone_with_the_host_as_before(engine: str) -> None:
    before = _host()
    name = f"e2e-{secrets.token_hex(3)}"
    provider = kind.KindClusterProvider(name, 0, kind.DEFAULT_NODE_IMAGE, False)
    handle = provider.acquire()
    try:
        nodes = subprocess.run(
            [
                str(binary("kubectl")),
                "--kubeconfig",
                str(handle.kubeconfig),
                "get",
                "nodes",
                "-o",
                "name",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert nodes == [f"node/{name}-control-plane"]
    finally:
        provider.release()
    assert name not in kind.Kind(engine).clusters()
    assert _host() == before


WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      topologySpreadConstraints:  # one replica per worker
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule,
         labelSelector: {matchLabels: {app: web}}}
      containers:
      - name: demo
        image: localhost/pytest-chaos/demo:1.0
        imagePullPolicy: Never
        env: [{name: RELEASE, value: kind}]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /ready, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: probe}
spec:
  containers:
  - name: toolbox
    image: localhost/pytest-chaos/toolbox:1.0
    imagePullPolicy: Never
    command: [sleep, "600"]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 10Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  containers:
  - name: toolbox
    image: localhost/pytest-chaos/toolbox:1.0
    imagePullPolicy: Never
    command: [sh, -c, "echo kept > /data/file && sleep 600"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
"""


@pytest.mark.timeout(600)  # three nodes: create ~1-2 min on 2 cores
def test_pods_on_two_workers_reach_each_other_and_a_service_by_name(engine: str) -> None:
    """The node image's pod network spans nodes; CoreDNS and kube-proxy serve Services; a
    claim binds."""
    before = _host()
    name = f"e2e-{secrets.token_hex(3)}"
    provider = kind.KindClusterProvider(name, 2, kind.DEFAULT_NODE_IMAGE, False)
    handle = provider.acquire()

    def kubectl(*args: str, stdin: str | None = None) -> str:
        command = [str(binary("kubectl")), "--kubeconfig", str(handle.kubeconfig), *args]
        done = subprocess.run(
            command, input=stdin, capture_output=True, text=True, timeout=180, check=False
        )
        assert done.returncode == 0, f"{' '.join(args)}: {done.stderr}"
        return done.stdout

    try:
        kubectl("apply", "-f", "-", stdin=WEB)
        kubectl("rollout", "status", "deployment/web", "--timeout=150s")
        kubectl("wait", "pod/probe", "--for=condition=Ready", "--timeout=120s")
        pods = json.loads(kubectl("get", "pods", "-l", "app=web", "-o", "json"))["items"]
        workers = {p["spec"]["nodeName"] for p in pods}
        assert workers == {f"{name}-worker", f"{name}-worker2"}
        zones = kubectl("get", "nodes", "-L", kind.ZONE_LABEL, "--no-headers")
        assert sorted(line.split()[-1] for line in zones.splitlines() if "worker" in line) == [
            "a",
            "b",
        ]
        urls = [f"http://{p['status']['podIP']}:8080/" for p in pods]
        urls.append("http://web.default.svc.cluster.local/")  # CoreDNS, then kube-proxy
        for url in urls:
            body = kubectl("exec", "probe", "--", "curl", "-sS", "--max-time", "5", url)
            assert "Release: kind" in body, url
        # The default StorageClass binds a claim (local-path-provisioner, built here).
        kubectl("wait", "pod/writer", "--for=condition=Ready", "--timeout=120s")
        assert kubectl("get", "pvc", "data", "-o", "jsonpath={.status.phase}") == "Bound"
        assert kubectl("exec", "writer", "--", "cat", "/data/file").strip() == "kept"
    finally:
        provider.release()
    assert name not in kind.Kind(engine).clusters()
    assert _host() == before


@pytest.mark.timeout(960)
def test_the_kind_examples_pass_on_two_workers_and_leave_nothing(engine: str) -> None:
    """``examples/kind`` as a user runs it: a session that creates its kind cluster, then none."""
    before = _host()
    name = f"examples-{secrets.token_hex(3)}"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "chaos", "examples/kind", "-p", "no:cacheprovider",
         "--chaos-cluster=kind", f"--chaos-kind-name={name}", "--chaos-kind-workers=2", "-q"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "2 passed" in run.stdout, run.stdout[-2000:]
    assert name not in kind.Kind(engine).clusters()
    assert _host() == before


SLEEPER = """
import os, pathlib, time

def test_holds_the_cluster(kube):
    pathlib.Path(os.environ["KIND_E2E_MARK"]).write_text("up")
    time.sleep(600)  # until the test kills this session
"""


@pytest.mark.timeout(600)
def test_a_session_killed_with_sigkill_is_cleaned_up_by_cleanup(
    engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 of a session that created its kind cluster; ``pytest-chaos cleanup`` finishes."""
    mark = tmp_path / "up"
    monkeypatch.setenv("KIND_E2E_MARK", str(mark))
    (tmp_path / "test_sleeper.py").write_text(SLEEPER)
    before = _host()
    name = f"killed-{secrets.token_hex(3)}"
    session = subprocess.Popen(
        [sys.executable, "-m", "pytest", "test_sleeper.py", "-p", "no:cacheprovider", "-q",
         "--chaos-cluster=kind", f"--chaos-kind-name={name}"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not mark.exists():
            assert session.poll() is None, "the session ended before its cluster was up"
            assert time.monotonic() < deadline, "no cluster within 300 s"
            time.sleep(0.2)
        assert name in kind.Kind(engine).clusters()
    finally:
        session.kill()  # SIGKILL: no teardown, no release
        session.wait()
    assert name in kind.Kind(engine).clusters()  # left behind by the killed session

    cleanup = subprocess.run(
        [sys.executable, "-m", "pytest_chaos", "cleanup"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert f"deleted kind cluster {name!r}" in cleanup.stdout, cleanup.stdout + cleanup.stderr
    assert name not in kind.Kind(engine).clusters()
    assert _host() == before
