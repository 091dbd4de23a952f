"""Starting Istio's processes: a component that dies or never serves is named, with its log."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_chaos.cluster import processes
from pytest_chaos.cluster.istio.config import IstioPorts, bootstrap_template
from pytest_chaos.cluster.istio.control import choose_ports, wait_serving
from pytest_chaos.errors import ClusterError
from pytest_chaos.kube.deadline import Deadline


def test_istiod_exiting_while_it_is_awaited_is_named_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "istiod.log"
    record = processes.spawn(
        "istiod", [sys.executable, "-c", "print('no kubeconfig'); raise SystemExit(1)"], log
    )
    port = processes.free_port()[0]
    with pytest.raises(ClusterError, match=r"istiod exited while waiting for istiod /ready"):
        wait_serving(
            record, f"http://127.0.0.1:{port}/ready", "istiod /ready", print, deadline=Deadline(5)
        )
    assert "no kubeconfig" in log.read_text()


def test_a_component_that_never_serves_fails_at_the_deadline(tmp_path: Path) -> None:
    record = processes.spawn(
        "istio-gateway", [sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "g.log"
    )
    port = processes.free_port()[0]
    try:
        with pytest.raises(ClusterError, match=r"istio-gateway was not ready .* after"):
            wait_serving(
                record,
                f"http://127.0.0.1:{port}/ready",
                "Envoy /ready",
                print,
                deadline=Deadline(0.5),
            )
    finally:
        processes.terminate([record.pid])


def test_every_port_of_a_cluster_is_its_own() -> None:
    ports = choose_ports().to_json()
    assert len(set(ports.values())) == len(ports)
    assert IstioPorts.from_json(ports).to_json() == ports


def test_the_bootstrap_template_gets_the_clusters_health_and_stats_ports() -> None:
    ports = IstioPorts(health=31021, prometheus=31090)
    text = bootstrap_template(
        '{"a": {{ .envoy_status_port }}, "b": {{ .envoy_prometheus_port }}}', ports
    )
    assert text == '{"a": 31021, "b": 31090}'
