"""The kind provider for real: the host is as it was after a session, whether it got a cluster.

Needs a container engine (docker, podman or nerdctl) and kind (on PATH or built by ``make``);
the cluster test also needs the node image. Each test skips saying which is missing.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
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


def test_a_created_cluster_is_ready_then_gone_with_the_host_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _engine_or_skip()
    if not kind.image_present(engine, kind.DEFAULT_NODE_IMAGE):
        pytest.skip(f"the node image {kind.DEFAULT_NODE_IMAGE} is not in {engine} (docs/kind.md)")
    monkeypatch.setenv("PYTEST_CHAOS_STATE_DIR", str(tmp_path))
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
