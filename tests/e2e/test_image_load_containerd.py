"""load_archives against a real containerd of its own (Debian's), without a kubelet.

A private containerd (own root, state and socket under a temporary directory, laid out where
``node_runtimes`` looks for a real node's) receives a podman-built image as docker-archive and
as OCI archive; containerd itself then lists and unpacks them. A load that fails half-way in
containerd (a layer that is no tar) leaves no image, nor the CRI's ``sha256:`` name, behind.
Runs where the real node's ports are taken too: this containerd serves no kubelet.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_chaos.cluster import processes
from pytest_chaos.cluster.image_load import listed, load_archives
from pytest_chaos.cluster.node_runtimes import NodeRuntime, node_runtimes
from pytest_chaos.errors import ClusterError
from pytest_chaos.kube.deadline import Deadline
from tests.e2e.test_load_image import broken_layer_archive
from tests.e2e.user_image import build_and_save, have_podman

pytestmark = pytest.mark.skipif(
    not (have_podman() and shutil.which("containerd") and shutil.which("ctr")),
    reason="needs podman, containerd and ctr (apt-get install -y podman containerd)",
)


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A state dir whose one "real node" is a private containerd."""
    state = tmp_path_factory.mktemp("cs")
    base = state / "realnode" / "containerd"
    base.mkdir(parents=True)
    (base / "config.toml").write_text(
        f'version = 2\nroot = "{base / "root"}"\nstate = "{base / "state"}"\n'
        f'[grpc]\n  address = "{base / "containerd.sock"}"\n'
        f'[ttrpc]\n  address = "{base / "containerd.sock"}.ttrpc"\n'
    )
    record = processes.spawn(
        "containerd",
        ["containerd", "--config", str(base / "config.toml")],
        state / "containerd.log",
        cwd=state,
    )
    try:
        [node] = node_runtimes(state)
        assert Deadline(30).poll(lambda: answers(node), every=0.1), state / "containerd.log"
        yield state
    finally:
        assert processes.terminate([record.pid]) == []
        subprocess.run(["umount", "-R", str(base / "state")], check=False, capture_output=True)


def answers(node: NodeRuntime) -> bool:
    try:
        listed(node)
    except ClusterError:
        return False
    return True


def test_both_archive_formats_load_under_their_names(state_dir: Path, tmp_path: Path) -> None:
    built = build_and_save(tmp_path / "podman", "localhost/ctd-app")
    result = load_archives(state_dir, [path for _, path in built.values()])
    [node] = node_runtimes(state_dir)
    assert set(result.references) == {"localhost/ctd-app:docker", "localhost/ctd-app:oci"}
    assert set(result.references) <= listed(node)


def test_a_half_way_failure_removes_what_the_load_added(state_dir: Path, tmp_path: Path) -> None:
    built = build_and_save(tmp_path / "podman", "localhost/ctd-good")
    _, good = built["docker-archive"]
    bad = broken_layer_archive(tmp_path / "bad.tar", "localhost/ctd-broken:1")
    [node] = node_runtimes(state_dir)
    before = listed(node)
    with pytest.raises(ClusterError, match=rf"loading {bad} into real-node-0 failed; every"):
        load_archives(state_dir, [good, bad])
    assert listed(node) == before
