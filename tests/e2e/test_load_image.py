"""``pytest-chaos cluster load-image``: a user's podman-built image runs on the real node.

The image is built here from a Containerfile with podman (no Docker, no registry), saved both
as a docker-archive and as an OCI archive, loaded with the command a user runs, and deployed
with the default pull policy: the pod can only start if the node's containerd has the image
under the name the archive gave it. Bad archives fail naming the file, and a load that fails
half-way leaves no image behind on the node.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos import Kube, eventually
from pytest_chaos.chaos import Chaos
from pytest_chaos.cluster import ClusterHandle
from pytest_chaos.cluster.image_load import listed
from pytest_chaos.cluster.images import ctr
from pytest_chaos.cluster.node_runtimes import node_runtimes
from pytest_chaos.steady import Steady
from tests.e2e.realnode_manifests import PORT, create_service, deploy, get_text, service
from tests.e2e.user_image import build_and_save, have_podman

pytestmark = [
    pytest.mark.real_node,
    pytest.mark.skipif(not have_podman(), reason="podman is not installed"),
]


@pytest.fixture
def state_dir(chaos_cluster: ClusterHandle, real_node: str) -> Path:
    """The local cluster's state directory (the test skips without a real node)."""
    return chaos_cluster.kubeconfig.parent


@pytest.fixture
def user_images(tmp_path: Path, state_dir: Path) -> Iterator[dict[str, tuple[str, Path]]]:
    """The user's app, podman-built under a fresh name; its references removed afterwards."""
    repository = f"localhost/user-app-{uuid.uuid4().hex[:8]}"
    built = build_and_save(tmp_path / "podman", repository)
    yield built
    for node in node_runtimes(state_dir):
        for reference in {r for r, _ in built.values()} & listed(node):
            ctr(node.containerd_socket, "images", "remove", reference)


def load_image(state_dir: Path, *archives: Path) -> subprocess.CompletedProcess[str]:
    """Run ``pytest-chaos cluster load-image`` as a user would."""
    env = {**os.environ, "PYTEST_CHAOS_STATE_DIR": str(state_dir.parent)}
    return subprocess.run(
        [sys.executable, "-m", "pytest_chaos", "cluster", "load-image", "--name", state_dir.name,
         *map(str, archives)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def app(
    name: str,
    image: str,
    *,
    replicas: int = 1,
    pre_stop_sleep: int | None = None,
    warm_up: int = 0,
) -> dict[str, Any]:
    """A plain Deployment of the user's image: default pull policy, pinned to the real node."""
    from pytest_chaos.cluster.realnode import ON_REAL_NODE

    container: dict[str, Any] = {
        "name": "app",
        "image": image,
        "ports": [{"name": "http", "containerPort": PORT}],
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": PORT},
            "initialDelaySeconds": warm_up,
            "periodSeconds": 1,
            "failureThreshold": 1,
        },
    }
    if pre_stop_sleep is not None:
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": pre_stop_sleep}}}
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {**ON_REAL_NODE, "containers": [container]},
            },
        },
    }


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_a_podman_built_image_loads_and_serves_through_its_service(
    kube: Kube,
    chaos_namespace: str,
    state_dir: Path,
    user_images: dict[str, tuple[str, Path]],
    fmt: str,
) -> None:
    reference, archive = user_images[fmt]
    result = load_image(state_dir, archive)
    assert result.returncode == 0, result.stderr
    assert f"loaded {reference} into real-node-0" in result.stderr
    for node in node_runtimes(state_dir):
        assert reference in listed(node)

    deploy(kube, chaos_namespace, app("user-app", reference))
    ip = create_service(kube, chaos_namespace, service("user-app", port=80))

    def answers() -> str:
        try:
            status, body = get_text(f"http://{ip}/", timeout=2)
        except OSError as exc:  # kube-proxy has not programmed the Service yet
            raise AssertionError(f"no answer from the Service: {exc}") from exc
        assert status == 200, body
        return body

    assert "Release: user-built" in eventually(answers, within=30)  # the Containerfile's ENV


def test_a_wrong_file_is_named_and_nothing_is_imported(state_dir: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image\n" * 100)
    before = {n.name: listed(n) for n in node_runtimes(state_dir)}
    result = load_image(state_dir, notes)
    assert result.returncode == 1
    assert f"image archive {notes}: not a complete tar" in result.stderr
    assert {n.name: listed(n) for n in node_runtimes(state_dir)} == before


def broken_layer_archive(path: Path, reference: str) -> Path:
    """A docker-archive that is whole and well-formed, but whose layer is no tar: the archive
    checks pass, containerd fails while unpacking."""
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]},
    }).encode()  # fmt: skip
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [reference], "Layers": ["l/layer.tar"]}]
    members = {"manifest.json": json.dumps(manifest).encode(), config_name: config,
               "l/layer.tar": os.urandom(4096)}  # fmt: skip
    with tarfile.open(path, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_load_failing_half_way_leaves_no_image_behind(
    state_dir: Path, tmp_path: Path, user_images: dict[str, tuple[str, Path]]
) -> None:
    good_ref, good = user_images["docker-archive"]
    bad = broken_layer_archive(tmp_path / "bad.tar", "localhost/broken:1")
    before = {n.name: listed(n) for n in node_runtimes(state_dir)}
    result = load_image(state_dir, good, bad)
    assert result.returncode == 1
    assert f"loading {bad} into real-node-0 failed" in result.stderr
    assert f"importing {good}" in result.stderr  # the good one was imported first...
    after = {n.name: listed(n) for n in node_runtimes(state_dir)}
    assert after == before  # ...and removed again, with the broken one's leftovers
    assert all(good_ref not in refs for refs in after.values())


def test_chaos_local_image_loads_at_session_start(
    pytester: pytest.Pytester, state_dir: Path, user_images: dict[str, tuple[str, Path]]
) -> None:
    reference, archive = user_images["oci-archive"]
    pytester.makepyfile(
        test_inner="""
        def test_uses_the_cluster(chaos_cluster):
            print("CLUSTER", chaos_cluster.description)
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-s", "--chaos-cluster=local",
        f"--chaos-local-name={state_dir.name}", "--chaos-local-real-node=yes",
        f"--chaos-local-image={archive}",
    )  # fmt: skip
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([f"*CLUSTER *loaded {reference}*"])
    for node in node_runtimes(state_dir):
        assert reference in listed(node)


@pytest.fixture
def pushed_image(tmp_path: Path, state_dir: Path, user_images: dict[str, tuple[str, Path]]) -> str:
    """The user's image pushed with podman to the cluster's registry: ``localhost:PORT/...``."""
    from pytest_chaos.cluster.local import LocalCluster
    from tests.e2e.user_image import Podman

    address = LocalCluster(state_dir.name, root=state_dir.parent).registry_address()
    if address is None:
        pytest.skip("this cluster was started without a registry: `cluster down`, then up")
    reference, _ = user_images["oci-archive"]
    target = f"{address}/user-app:pr-{uuid.uuid4().hex[:6]}"
    Podman(tmp_path / "podman").run("push", "--tls-verify=false", reference, f"docker://{target}")
    return target


@pytest.mark.parametrize(
    ("replicas", "pre_stop_sleep", "grace_period", "warm_up"),
    [
        pytest.param(1, None, 0, 4, id="1-replica-has-an-outage"),
        pytest.param(2, 3, None, 2, id="2-graceful-replicas-stay-available"),
    ],
)
def test_an_image_pulled_from_the_local_registry_under_a_pod_kill(
    kube: Kube,
    chaos: Chaos,
    steady: Steady,
    chaos_namespace: str,
    pushed_image: str,
    replicas: int,
    pre_stop_sleep: int | None,
    grace_period: int | None,
    warm_up: int,
) -> None:
    """Pushed, not loaded: the node pulls ``localhost:PORT/user-app`` itself, then the app
    survives or fails a pod kill under an HTTP monitor as its replicas dictate: the only
    replica crashed is an outage, two graceful replicas are not (see test_real_node)."""
    cluster_ip = create_service(kube, chaos_namespace, service("user-app"))
    manifest = app(
        "user-app", pushed_image, replicas=replicas, pre_stop_sleep=pre_stop_sleep, warm_up=warm_up
    )
    deploy(kube, chaos_namespace, manifest)
    url = f"http://{cluster_ip}/"
    steady.http(url).assert_ok(within=15, consecutive=5, every=0.05)

    with steady.http(url, body="Release: user-built", timeout=1).monitor(every=0.05) as traffic:
        chaos.pods.kill("app=user-app", namespace=chaos_namespace, grace_period=grace_period)
        steady.pods("app=user-app", namespace=chaos_namespace).assert_count(replicas, within=30)
        steady.http(url).assert_ok(within=15, consecutive=10, every=0.05)

    assert traffic.recovered, str(traffic)
    if replicas == 1:
        assert traffic.availability < 1, str(traffic)
        assert traffic.outages, str(traffic)
    else:
        assert traffic.availability >= 0.99, str(traffic)
