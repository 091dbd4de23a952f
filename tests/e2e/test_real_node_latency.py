"""chaos.network.latency on the real node, measured by a client, without netem.

This machine's kernel has no ``sch_netem``: the fault uses the toolbox's NFQUEUE delayer
(``pytest-chaos-delay``), and the details say so. Requests from this host through the Service
to the delayed pod take at least the delay (its replies are delayed: a new connection waits for
the SYN-ACK and for the answer, so two delays); after revert they are fast again, the delayer
has ended (its container terminated) and the undo container reports what it removed. Also when
the test process is SIGKILLed mid-fault and ``pytest-chaos cleanup`` reverts.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos import Kube
from pytest_chaos.chaos import Chaos
from pytest_chaos.steady import Steady
from tests.e2e.realnode_manifests import create_service, demo_deployment, deploy, service, the_pod
from tests.e2e.test_exit_paths import cleanup, run_id, run_inner_test, wait_for

pytestmark = pytest.mark.real_node

DELAY = 0.3


def median_ms(url: str, count: int = 7) -> float:
    """The median time of count GETs, each on a new connection, in milliseconds."""
    import urllib.request

    took = []
    for _ in range(count):
        started = time.monotonic()
        with urllib.request.urlopen(url, timeout=5) as response:
            response.read()
        took.append(time.monotonic() - started)
    return statistics.median(took) * 1000


def container_status(pod: dict[str, Any], prefix: str) -> dict[str, Any]:
    statuses: list[dict[str, Any]] = pod["status"].get("ephemeralContainerStatuses") or []
    (status,) = [s for s in statuses if s["name"].startswith(prefix)]
    return status


@pytest.fixture
def web(kube: Kube, steady: Steady, chaos_namespace: str) -> str:
    """A demo Deployment behind a Service; the Service's URL once kube-proxy routes it."""
    cluster_ip = create_service(kube, chaos_namespace, service("web"))
    deploy(kube, chaos_namespace, demo_deployment("web"))
    url = f"http://{cluster_ip}/"
    steady.http(url).assert_ok(within=15, consecutive=5, every=0.05)
    return url


def assert_reverted(kube: Kube, namespace: str, url: str) -> None:
    pod = the_pod(kube, namespace, "web")
    delayer = container_status(pod, "chaos-latency-")
    assert delayer["state"]["terminated"]["exitCode"] == 0, delayer  # the delayer has ended
    undone = container_status(pod, "chaos-undo-")["state"]["terminated"]
    assert undone["exitCode"] == 0, undone
    if "netem" not in undone["message"]:  # the NFQUEUE delayer: chain removed, delayer stopped
        assert "stopped" in delayer["state"]["terminated"]["message"], delayer
        assert "PYTEST-CHAOS-" in undone["message"], undone
        assert "stopped" in undone["message"], undone
    after = median_ms(url)
    assert after < 30, f"median {after:.0f}ms after revert"


def test_latency_delays_every_answer_through_the_service_and_revert_ends_it(
    kube: Kube, chaos: Chaos, chaos_namespace: str, web: str
) -> None:
    before = median_ms(web)

    fault = chaos.network.latency("app=web", namespace=chaos_namespace, delay="300ms")

    (mechanism,) = fault.details["mechanism"].values()
    (report,) = fault.details["pods"].values()
    assert f"latency {mechanism}" in report, report  # nfqueue here: this kernel has no netem
    during = median_ms(web)
    assert during >= DELAY * 1000, f"median {during:.0f}ms under a 300ms latency"

    fault.revert()

    assert_reverted(kube, chaos_namespace, web)
    print(f"median: {before:.0f}ms before, {during:.0f}ms with latency(300ms), then reverted")


INNER = """
import time


def test_chaos(chaos):
    chaos.network.latency("app=web", namespace={ns!r}, delay="300ms")
    open({marker!r}, "w").close()
    time.sleep(120)
"""


def test_sigkill_mid_latency_then_cleanup_removes_the_rules_and_stops_the_delayer(
    kube: Kube, chaos_namespace: str, web: str, tmp_path: Path
) -> None:
    marker = tmp_path / "injected"
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(INNER.format(ns=chaos_namespace, marker=str(marker)))
    ledger = tmp_path / "ledger"
    proc = run_inner_test(kube, test_file, ledger=ledger)
    wait_for(marker, proc, within=120)
    assert median_ms(web, count=3) >= DELAY * 1000

    proc.kill()
    proc.communicate(timeout=60)
    assert median_ms(web, count=3) >= DELAY * 1000  # still delayed: nobody reverted
    run = run_id(ledger)
    for path in ledger.glob("*.jsonl"):
        path.unlink()  # only the cluster's records remain

    report = cleanup(kube, ledger, run)

    assert "reverted: network.latency on Pod" in report, report
    assert_reverted(kube, chaos_namespace, web)
    assert cleanup(kube, ledger, run).strip() == "nothing left behind"
