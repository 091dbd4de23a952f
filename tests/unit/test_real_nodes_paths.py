"""The real nodes' files live in a short directory, so their unix sockets fit any state path."""

from __future__ import annotations

from pathlib import Path

from pytest_chaos.cluster.realnodes.node import layout
from pytest_chaos.cluster.realnodes.plan import REAL_NODES_ROOT, nodes_dir, plan

#: containerd refuses socket paths over 104 bytes (sun_path holds 108 on Linux).
SOCKET_PATH_MAX = 104


def sockets(state_dir: Path) -> list[Path]:
    """The longest unix socket paths of the last node of a cluster of 99 real nodes."""
    where = layout(state_dir, plan(99).nodes[-1])
    return [
        where.socket.with_name(where.socket.name + ".ttrpc"),
        where.kubelet_root / "pod-resources" / "kubelet.sock",
        where.kubelet_root / "device-plugins" / "kubelet.sock",
        where.kubelet_root / "plugins_registry" / "csi.example.com-reg.sock",
    ]


def test_sockets_fit_whatever_the_state_directory() -> None:
    for state_dir in (
        Path("/root/.local/state/pytest-chaos/clusters/local"),
        Path("/home/runner/.local/state/pytest-chaos/clusters/local"),  # GitHub Actions
        Path("/home/gitlab-runner/.local/state/pytest-chaos/clusters/my-feature-branch"),
        Path("/srv") / ("deep" * 60) / "clusters" / "local",
    ):
        for socket in sockets(state_dir):
            assert len(str(socket)) < SOCKET_PATH_MAX, socket


def test_each_state_directory_has_its_own_nodes_directory() -> None:
    one = nodes_dir(Path("/tmp/a/clusters/local"))
    other = nodes_dir(Path("/tmp/b/clusters/local"))
    assert one != other
    assert one.parent == other.parent == REAL_NODES_ROOT
    assert nodes_dir(Path("/tmp/a/clusters/local")) == one  # stable: cleanup finds it later
