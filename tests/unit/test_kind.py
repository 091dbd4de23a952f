"""The kind provider's pure parts: version check, engine choice, its config, its records."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_chaos.cluster import kind, kind_host
from pytest_chaos.errors import ClusterError


def _fake_kind(directory: Path, version: str) -> None:
    script = directory / "kind"
    script.write_text(f"#!/bin/sh\necho 'kind {version} go1.24.0 linux/amd64'\n")
    script.chmod(0o755)


def test_the_kind_version_is_read_from_its_output() -> None:
    assert kind.parse_kind_version("kind v0.33.0 go1.24.4 linux/amd64") == (0, 33, 0)
    assert kind.parse_kind_version("garbage") is None


def test_a_kind_on_path_of_v0_20_or_newer_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_kind(tmp_path, "v0.20.0")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert kind.find_kind() == tmp_path / "kind"


def test_an_older_kind_is_refused_naming_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_kind(tmp_path, "v0.17.0")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTEST_CHAOS_CACHE_DIR", str(tmp_path / "empty-cache"))
    with pytest.raises(ClusterError, match=r"is kind 0\.17\.0.*cluster build --kind"):
        kind.find_kind()


def test_an_unknown_experimental_provider_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIND_EXPERIMENTAL_PROVIDER", "lxc")
    with pytest.raises(ClusterError, match="KIND_EXPERIMENTAL_PROVIDER='lxc'"):
        kind.detect_engine()


def test_no_engine_says_which_were_looked_for_and_how_to_install_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KIND_EXPERIMENTAL_PROVIDER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ClusterError, match=r"docker, podman, nerdctl.*apt-get install podman"):
        kind.detect_engine()


def test_workers_are_spread_over_zones_a_b_c() -> None:
    config = kind.cluster_config(4, kind.DEFAULT_NODE_IMAGE)
    roles = [n["role"] for n in config["nodes"]]
    zones = [n.get("labels", {}).get(kind.ZONE_LABEL) for n in config["nodes"]]
    assert roles == ["control-plane", "worker", "worker", "worker", "worker"]
    assert zones == [None, "a", "b", "c", "a"]
    assert config["networking"] == {"disableDefaultCNI": True}  # our image brings its own CNI


def test_the_upstream_node_image_keeps_kinds_own_cni() -> None:
    assert "networking" not in kind.cluster_config(0, "kindest/node:v1.32.5")


def test_podman_gets_a_private_containers_conf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_CHAOS_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("CONTAINERS_CONF", raising=False)
    env = kind.Kind("podman", kind=tmp_path / "kind").env()
    assert env["KIND_EXPERIMENTAL_PROVIDER"] == "podman"
    assert 'runtime = "runc"' in Path(env["CONTAINERS_CONF"]).read_text()


def test_a_record_survives_a_round_trip_and_a_dead_owner_is_an_orphan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_CHAOS_STATE_DIR", str(tmp_path))
    before = kind_host.HostState({"iptables": ["filter/NETAVARK_FORWARD"]}, "0", False, False)
    record = kind.KindRecord("ci", "podman", 1, 12345, before)  # pid 1 never started at 12345
    record.write()
    again = kind.KindRecord.read(record.path())
    assert again == record
    assert not again.owner_alive()
    assert kind.cleanup_orphans(dry_run=True) == ["would delete orphaned kind cluster 'ci'"]


def test_an_orphan_still_used_by_a_live_session_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_CHAOS_STATE_DIR", str(tmp_path))
    before = kind_host.HostState({}, None, False, True)
    kind.KindRecord("shared", "podman", 1, 12345, before).write()  # its creator is gone
    provider = kind.KindClusterProvider("shared", 0, kind.DEFAULT_NODE_IMAGE, False)
    (tmp_path / "kind" / "shared.users").write_text(provider.user + "\n")  # this process uses it
    assert kind.cleanup_orphans(dry_run=True) == []
