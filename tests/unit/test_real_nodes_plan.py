"""The real nodes' plan (names, addresses, zones), the machine's limit and bad counts."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_chaos.capacity import check_count, limit, machine_limit
from pytest_chaos.cluster.realnodes.plan import REAL_NODE_LABEL, ZONE_LABEL, plan
from pytest_chaos.errors import ChaosConfigError
from pytest_chaos.settings import resolve
from tests.unit.test_settings import FakeConfig, clean_env

__all__ = ["clean_env"]  # the autouse fixture: no PYTEST_CHAOS_* from the environment


def test_nodes_get_names_ips_pod_cidrs_and_zones_round_robin() -> None:
    the_plan = plan(4)
    assert [n.name for n in the_plan.nodes] == [f"real-node-{i}" for i in range(4)]
    assert [n.node_ip for n in the_plan.nodes] == [f"10.160.0.{10 + i}" for i in range(4)]
    assert [n.pod_cidr for n in the_plan.nodes] == [f"10.160.{128 + i}.0/24" for i in range(4)]
    assert [n.zone for n in the_plan.nodes] == ["a", "b", "c", "a"]
    assert the_plan.nodes[1].labels == {REAL_NODE_LABEL: "true", ZONE_LABEL: "b"}
    assert (the_plan.bridge, the_plan.gateway) == ("pcx0br", "10.160.0.1")


def test_addresses_do_not_overlap_and_stay_inside_the_slot() -> None:
    the_plan = plan(128, slot=3)
    slot = ipaddress.ip_network("10.163.0.0/16")
    nodes = ipaddress.ip_network(the_plan.node_subnet)
    pods = ipaddress.ip_network(the_plan.cluster_cidr)
    assert nodes.subnet_of(slot)
    assert pods.subnet_of(slot)
    assert not nodes.overlaps(pods)
    cidrs = [ipaddress.ip_network(n.pod_cidr) for n in the_plan.nodes]
    assert all(c.subnet_of(pods) for c in cidrs)
    assert len(set(cidrs)) == 128
    assert ipaddress.ip_address(the_plan.gateway) in nodes
    assert all(ipaddress.ip_address(n.node_ip) in nodes for n in the_plan.nodes)
    for service_range in ("10.96.0.0/16", "10.244.0.0/16", "10.245.0.0/24"):
        assert not slot.overlaps(ipaddress.ip_network(service_range))


def test_two_slots_differ_in_every_host_name_and_address() -> None:
    first, second = plan(3, slot=0), plan(3, slot=1)
    assert first.bridge != second.bridge
    assert first.tag != second.tag
    assert not {n.netns for n in first.nodes} & {n.netns for n in second.nodes}
    assert not ipaddress.ip_network(first.cluster_cidr).overlaps(
        ipaddress.ip_network(second.cluster_cidr)
    )
    assert all(len(n.host_veth) <= 15 for n in plan(128, slot=15).nodes)  # IFNAMSIZ


def test_the_firewall_tag_escapes_the_host_network_nodes_cleanup() -> None:
    # That cleanup deletes every rule naming pytest-chaos or KUBE-.
    assert "pytest-chaos" not in plan(1).tag
    assert "KUBE-" not in plan(1).tag


@pytest.mark.parametrize(("count", "slot"), [(0, 0), (129, 0), (1, -1), (1, 16)])
def test_a_plan_outside_its_ranges_is_refused(count: int, slot: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        plan(count, slot)


def test_the_limit_follows_free_memory_and_cores() -> None:
    assert limit(24_000, 2) == 8  # cores decide
    assert limit(2_500, 8) == 3  # memory decides: (2500 - 1024) // 400
    assert limit(900, 8) == 0
    assert limit(10**9, 10**6) == 128  # the addresses decide
    assert 0 <= machine_limit() <= 128


@pytest.mark.parametrize(
    ("value", "words"),
    [("0", "asks for no real node"), ("-2", "asks for no real node"), ("9", "more than"),
     ("many", "not a whole number")],
)  # fmt: skip
def test_bad_counts_name_the_flag_the_value_its_source_and_the_fix(value: str, words: str) -> None:
    with pytest.raises(ChaosConfigError) as caught:
        check_count(value, "--real-nodes", "the command line", 8)
    message = str(caught.value)
    shown = repr(value) if words == "not a whole number" else value
    assert message.startswith(f"--real-nodes: {shown} from the command line")
    assert words in message
    assert "use 1..8" in message


def test_settings_read_real_nodes_from_the_ini_and_allow_zero_fake_nodes() -> None:
    settings = resolve(FakeConfig(ini={"chaos_local_real_nodes": "2", "chaos_local_nodes": "0"}))
    assert (settings.local_real_nodes, settings.local_nodes) == (2, 0)
    assert resolve(FakeConfig()).local_real_nodes == 0


def test_settings_refuse_zero_real_nodes_naming_the_ini_key() -> None:
    with pytest.raises(ChaosConfigError, match="--chaos-local-real-nodes: 0 from ini key"):
        resolve(FakeConfig(ini={"chaos_local_real_nodes": "0"}))
    with pytest.raises(ChaosConfigError, match="0 only with --chaos-local-real-nodes"):
        resolve(FakeConfig(options={"chaos_local_nodes": "0"}))


@pytest.mark.parametrize("value", ["0", "-1", "100000"])
def test_cluster_up_refuses_a_bad_count_before_anything_starts(value: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTEST_CHAOS_STATE_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest_chaos", "cluster", "up", "--name", "bad",
         f"--real-nodes={value}", "--nodes", "0"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert f"--real-nodes: {value} from the command line" in result.stderr
    assert list(tmp_path.iterdir()) == []  # no state directory, no process: nothing started


def test_a_nodes_containerd_config_is_valid_toml_with_one_registry_table() -> None:
    """Every real node's containerd reads registry hosts from its layout's directory."""
    import tomllib
    from pathlib import Path

    from pytest_chaos.cluster import realnode

    where = realnode.Layout(Path("/var/lib/pytest-chaos/real-node-0"))
    text = realnode.containerd_config(where, Path("/usr/lib/cni"))
    registry = tomllib.loads(text)["plugins"]["io.containerd.grpc.v1.cri"]["registry"]
    assert registry == {"config_path": str(where.registry_hosts)}
