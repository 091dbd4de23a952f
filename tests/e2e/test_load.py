"""chaos.load.http on the local cluster's real node: the book's denial-of-service experiment.

The load runs in a pod on ``real-node-0`` and reaches the demo app (tools/images/demo) through
its Service by name, as the book's ``siege`` pod did. What it got comes back in its summary;
what the app saw is checked from this host: the demo's ``/limiter`` (5 requests/s, burst 10,
then 15 s of 429s) keeps refusing after a load has tripped it.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos import Kube, eventually
from pytest_chaos.chaos import Chaos, ChaosSession
from pytest_chaos.errors import ChaosConfigError, InjectError
from pytest_chaos.faults import undo
from pytest_chaos.ledger import read_cluster
from pytest_chaos.report.timeline import Timeline
from tests.e2e.manifests import namespace_with, records_in
from tests.e2e.realnode_manifests import (
    DEMO_IMAGE,
    PORT,
    create_service,
    demo_deployment,
    deploy,
    get_text,
    service,
    the_pod,
)
from tests.e2e.test_exit_paths import cleanup, run_id, run_inner_test, wait_for

pytestmark = pytest.mark.real_node


@pytest.fixture
def web(kube: Kube, chaos_namespace: str) -> dict[str, Any]:
    """The demo app behind Service ``web`` (port 80), routed; its pod."""
    cluster_ip = create_service(kube, chaos_namespace, service("web"))
    deploy(kube, chaos_namespace, demo_deployment("web"))

    def routed() -> None:
        try:
            assert get_text(f"http://{cluster_ip}/")[0] == 200
        except OSError as exc:  # kube-proxy has not programmed the Service yet
            raise AssertionError(f"not routed yet: {exc!r}") from exc

    eventually(routed, within=15, every=0.1)
    return the_pod(kube, chaos_namespace, "web")


def limiter(pod: dict[str, Any]) -> int:
    """The status the app's own limiter answers this host with now."""
    return get_text(f"http://{pod['status']['podIP']}:{PORT}/limiter")[0]


def tripped(pod: dict[str, Any]) -> None:
    """The app's limiter refuses: it is seeing more than 5 requests/s."""
    assert limiter(pod) == 429, "the limiter still lets requests through"


def pods_named(kube: Kube, namespace: str, name: str) -> list[Any]:
    return list(
        kube.core.list_namespaced_pod(namespace, field_selector=f"metadata.name={name}").items
    )


def test_a_paced_load_from_a_pod_gets_what_was_asked_and_leaves_nothing(
    kube: Kube, chaos: Chaos, chaos_namespace: str, web: dict[str, Any]
) -> None:
    load = chaos.load.http("http://web/", namespace=chaos_namespace, rate=50, duration="3s")

    assert load.details["node"] == "real-node-0"
    assert len(pods_named(kube, chaos_namespace, load.pod)) == 1
    summary = load.wait()
    print(f"rate=50 for 3s: {summary.describe()}")

    assert 135 <= summary.requests <= 165, summary.describe()  # 50/s for 3 s, within 10 %
    assert summary.ok == summary.requests == summary.status[200]
    assert summary.error_count == 0
    assert 45 <= summary.rate <= 55, summary.describe()
    assert summary.interrupted is False
    assert 0 < summary.latency_percentiles["p50"] <= summary.latency_percentiles["p99"] < 2
    assert load.summary is summary
    assert load.details["summary"] == summary.raw
    # Done: its pod is deleted, its record closed, the summary on the timeline.
    assert not load.active
    assert pods_named(kube, chaos_namespace, load.pod) == []
    assert records_in(kube, chaos_namespace) == []
    texts = [e.text for e in chaos.timeline.events]
    assert f"load.http: {summary.describe()}" in texts


def test_the_books_denial_of_service_trips_the_apps_limiter(
    kube: Kube, chaos: Chaos, chaos_namespace: str, web: dict[str, Any]
) -> None:
    assert limiter(web) == 200

    summary = chaos.load.http(
        "http://web/limiter", namespace=chaos_namespace, rate=50, concurrency=50, duration="2s"
    ).wait()

    print(f"/limiter at 50/s for 2s: {summary.describe()}")
    # Burst 10 (plus a token or two), then "cooling down" with 429 for 15 s.
    assert 90 <= summary.requests <= 110, summary.describe()
    assert 10 <= summary.ok <= 13, summary.describe()
    assert summary.status[429] == summary.requests - summary.ok
    # The app saw the load: its limiter still refuses this host.
    assert limiter(web) == 429


def test_a_load_on_a_port_nothing_listens_on_reports_connect_errors(
    kube: Kube, chaos: Chaos, chaos_namespace: str, web: dict[str, Any]
) -> None:
    """The app's pod is there but refuses (TCP reset): errors in the summary, no exception.

    (A Service without endpoints is another story: kube-proxy rejects with an ICMP error the
    kernel rate-limits, so under load most attempts end as connect timeouts.)
    """
    url = f"http://{web['status']['podIP']}:{PORT + 1}/"

    summary = chaos.load.http(url, namespace=chaos_namespace, rate=20, duration="1s").wait()

    assert 18 <= summary.requests <= 22, summary.describe()
    assert summary.errors["connect"] == summary.requests, summary.describe()
    assert summary.ok == 0
    assert summary.status == {}
    assert "connection refused" in summary.error_samples["connect"]


def test_a_load_reverted_mid_run_stops_at_once_and_reports_what_it_got(
    kube: Kube, chaos: Chaos, chaos_namespace: str, web: dict[str, Any]
) -> None:
    load = chaos.load.http("http://web/limiter", namespace=chaos_namespace, rate=20, duration="5m")
    eventually(lambda: tripped(web), within=15, every=0.1)  # the load is under way

    started = time.monotonic()
    load.revert()
    took = time.monotonic() - started

    summary = load.summary
    assert summary is not None, load.no_summary
    assert summary.interrupted is True
    assert 10 < summary.requests + summary.cancelled < 5 * 60 * 20, summary.describe()
    assert summary.status[429] > 0
    assert took < 20, f"revert took {took:.1f}s"
    assert pods_named(kube, chaos_namespace, load.pod) == []
    assert records_in(kube, chaos_namespace) == []


def test_a_load_whose_pod_was_removed_meanwhile_says_no_summary_was_available(
    kube: Kube, chaos: Chaos, chaos_namespace: str, web: dict[str, Any]
) -> None:
    load = chaos.load.http("http://web/", namespace=chaos_namespace, rate=5, duration="5m")
    (record,) = [r for r in read_cluster(kube) if r.namespace == chaos_namespace]
    assert (record.kind, record.name) == ("Pod", load.pod)

    # Someone else's cleanup (the record's own undo, from another process) removes the pod.
    assert undo.revert(kube, record) == "reverted"
    assert pods_named(kube, chaos_namespace, load.pod) == []

    load.revert()  # the test's own revert then finds nothing left, and says so
    assert load.summary is None
    assert load.no_summary == "the load pod was gone before the kubelet reported how it ended"
    assert "load.http: no summary: the load pod was gone" in chaos.timeline.render()
    assert records_in(kube, chaos_namespace) == []


INNER = """
def test_dos(chaos):
    chaos.load.http("http://127.0.0.1:1/", namespace={ns!r}, rate=5, duration="5m")
    open({marker!r}, "w").close()
    import time
    time.sleep(120)
"""


def test_sigkill_then_cleanup_removes_the_load_pod(kube: Kube, tmp_path: Path) -> None:
    with namespace_with(kube, "loadexit", {}) as namespace:
        marker, ledger = tmp_path / "injected", tmp_path / "ledger"
        test_file = tmp_path / "test_inner.py"
        test_file.write_text(INNER.format(ns=namespace, marker=str(marker)))
        proc = run_inner_test(kube, test_file, ledger=ledger)
        wait_for(marker, proc, within=120)

        proc.kill()
        proc.communicate(timeout=60)
        managed = "app.kubernetes.io/managed-by=pytest-chaos"
        (pod,) = kube.core.list_namespaced_pod(namespace, label_selector=managed).items
        assert pod.metadata.name.startswith("pytest-chaos-load-")
        run = run_id(ledger)
        for path in ledger.glob("*.jsonl"):
            path.unlink()  # only the cluster's records remain

        report = cleanup(kube, ledger, run)

        assert "reverted: load.http on Pod" in report, report
        assert kube.core.list_namespaced_pod(namespace, label_selector=managed).items == []
        assert [r.target for r in read_cluster(kube) if r.namespace == namespace] == []
        assert cleanup(kube, ledger, run).strip() == "nothing left behind"


def test_a_fake_node_is_refused_before_anything_is_created(
    kube: Kube, chaos: Chaos, chaos_namespace: str
) -> None:
    fake = next(
        n.metadata.name
        for n in kube.core.list_node().items
        if (n.metadata.annotations or {}).get("kwok.x-k8s.io/node") == "fake"
    )
    with pytest.raises(ChaosConfigError, match=f"node='{fake}' is a kwok fake node"):
        chaos.load.http("http://web/", namespace=chaos_namespace, node=fake)
    assert kube.core.list_namespaced_pod(chaos_namespace).items == []
    assert records_in(kube, chaos_namespace) == []


def test_an_image_without_the_load_program_is_a_clear_error(
    kube: Kube, chaos: Chaos, chaos_namespace: str
) -> None:
    """A toolbox of one's own (--chaos-toolbox-image) that lacks pytest-chaos-load."""
    with pytest.raises(InjectError) as error:
        chaos.load.http(
            "http://web/", namespace=chaos_namespace, duration="2s", image=DEMO_IMAGE
        ).wait()
    message = str(error.value)
    assert "exited with 128 (StartError) without a summary" in message, message
    assert f"Does the image '{DEMO_IMAGE}' have pytest-chaos-load on its PATH?" in message
    assert kube.core.list_namespaced_pod(chaos_namespace).items == []
    assert records_in(kube, chaos_namespace) == []


def test_a_dry_run_plans_the_load_and_creates_nothing(
    kube: Kube, chaos_session: ChaosSession, chaos_namespace: str
) -> None:
    session = ChaosSession(
        kube, replace(chaos_session.settings, dry_run=True), run_id="dry-run", seed=1
    )
    session.safety.allow_throwaway(chaos_namespace)
    dry = Chaos(session, "test_dry_load", Timeline("test_dry_load"))
    with pytest.raises(pytest.skip.Exception) as skipped:
        dry.load.http("http://web/", namespace=chaos_namespace, rate=50, duration="20s")
    assert str(skipped.value).startswith(
        "chaos dry run: would send GET http://web/ at 50/s (10 at a time) for 20s from pod "
        f"{chaos_namespace}/pytest-chaos-load-"
    )
    assert str(skipped.value).endswith(" on node real-node-0")
    assert kube.core.list_namespaced_pod(chaos_namespace).items == []
    assert records_in(kube, chaos_namespace) == []
