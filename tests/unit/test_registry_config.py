"""registry: the containerd host config and the addresses the local registry listens on."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pytest_chaos.cluster import registry
from pytest_chaos.cluster.node_runtimes import NodeRuntime


def node(name: str, tmp_path: Path, host: str) -> NodeRuntime:
    return NodeRuntime(name, tmp_path / name / "sock", tmp_path / name / "certs.d", host)


def test_hosts_toml_maps_localhost_to_where_the_node_reaches_the_host() -> None:
    config = tomllib.loads(registry.hosts_toml(5001, "10.250.0.1"))
    assert config["server"] == "http://localhost:5001"
    assert config["host"] == {"http://10.250.0.1:5001": {"capabilities": ["pull", "resolve"]}}


def test_listen_addresses_are_loopback_and_each_node_address_once(tmp_path: Path) -> None:
    nodes = [node("a", tmp_path, "127.0.0.1"), node("b", tmp_path, "10.250.0.1"),
             node("c", tmp_path, "10.250.0.1")]  # fmt: skip
    assert registry.listen_addresses(nodes, 5001) == ["127.0.0.1:5001", "10.250.0.1:5001"]
    assert registry.listen_addresses([], 5002) == ["127.0.0.1:5002"]


def test_write_hosts_puts_one_file_per_node_under_its_config_path(tmp_path: Path) -> None:
    nodes = [node("a", tmp_path, "127.0.0.1"), node("b", tmp_path, "10.250.0.1")]
    written = registry.write_hosts(nodes, 5001)
    assert written == [n.registry_hosts_dir / "localhost:5001" / "hosts.toml" for n in nodes]
    assert "http://10.250.0.1:5001" in written[1].read_text()


def test_the_registry_argv_keeps_storage_in_the_state_dir(tmp_path: Path) -> None:
    argv = registry.argv(Path("/bin/reg"), tmp_path, ["127.0.0.1:5001"])
    assert argv == ["/bin/reg", "-listen=127.0.0.1:5001", f"-dir={tmp_path / 'registry'}"]
