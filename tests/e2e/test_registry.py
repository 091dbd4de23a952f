"""The local cluster's OCI registry: up starts it, a user pushes, it serves, down removes it.

A cluster of its own (fake nodes only: the registry does not need the real node), a user image
built with podman and pushed with ``podman push`` and with ``crane push``, then read back the
way a puller does (the distribution API: manifest, then blobs). ``down`` stops the process and
removes its storage. Pulling into the real node's containerd is in test_load_image.py.
"""

from __future__ import annotations

import secrets
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_chaos.cluster import binaries, processes, registry
from pytest_chaos.cluster.local import LocalCluster
from tests.e2e.user_image import Podman, build_and_save, have_podman

pytestmark = pytest.mark.skipif(not have_podman(), reason="podman is not installed")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(f"reg-{secrets.token_hex(2)}", root=tmp_path_factory.mktemp("state"))
    try:
        cluster.up(nodes=1, timeout=180)
        yield cluster
    finally:
        cluster.down()


def port_of(cluster: LocalCluster) -> int:
    address = cluster.registry_address()
    assert address is not None, "the cluster has no registry"
    return int(address.rsplit(":", 1)[1])


def manifest(port: int, repository: str, tag: str) -> dict[str, object]:
    import json

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v2/{repository}/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                 "application/vnd.docker.distribution.manifest.v2+json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=5) as reply:
        document: dict[str, object] = json.loads(reply.read())
    return document


def blob_size(port: int, repository: str, digest: str) -> int:
    url = f"http://127.0.0.1:{port}/v2/{repository}/blobs/{digest}"
    with urllib.request.urlopen(url, timeout=10) as reply:
        return len(reply.read())


def test_up_starts_the_registry_and_status_names_it(cluster: LocalCluster) -> None:
    port = port_of(cluster)
    assert registry.answers(port)
    components = {c.component: c.running for c in cluster.status().components}
    assert components.get("registry") is True
    assert registry.storage(cluster.state_dir).is_dir()
    again = cluster.up(nodes=1)  # a cluster with its registry is healthy: reused as it is
    assert again.reused
    assert cluster.registry_address() == f"localhost:{port}"


def test_a_podman_pushed_image_is_pullable(cluster: LocalCluster, tmp_path: Path) -> None:
    port = port_of(cluster)
    built = build_and_save(tmp_path / "podman", "localhost/pushed")
    reference, _ = built["oci-archive"]
    _, archive = built["docker-archive"]  # crane push reads docker-archives
    target = f"localhost:{port}/app:pr-1"
    Podman(tmp_path / "podman").run("push", "--tls-verify=false", reference, f"docker://{target}")
    crane = binaries.component_dir(binaries.REGISTRY) / "crane"
    pushed = subprocess.run(
        [str(crane), "push", "--insecure", str(archive), f"localhost:{port}/app:pr-2"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    for tag in ("pr-1", "pr-2"):
        document = manifest(port, "app", tag)
        layers = document["layers"]
        assert isinstance(layers, list)
        assert layers
        for layer in layers:
            assert blob_size(port, "app", layer["digest"]) == layer["size"]


def test_down_stops_the_registry_and_removes_its_storage(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    port_of_module = port_of(cluster)
    cluster = LocalCluster(f"regdown-{secrets.token_hex(2)}", root=tmp_path)
    try:
        result = cluster.up(nodes=1, timeout=180)  # 5001 is the other cluster's: another port
        port = port_of(cluster)
        record = next(c for c in cluster.status().components if c.component == "registry")
        assert registry.answers(port)
    finally:
        survivors = cluster.down()
    assert port != port_of_module, result.notes
    assert any(f"the registry listens on {port} instead" in note for note in result.notes)
    assert survivors == []
    assert not registry.answers(port)
    assert not processes.is_alive(record.pid)
    assert not registry.storage(cluster.state_dir).exists()
