"""Istio aborts and delays land in VirtualServices that the API server validates with Istio's own
schemas, and revert restores each spec byte for byte.

The local cluster serves Istio's CRDs (istio.io/api; networking.istio.io v1, v1beta1, v1alpha3)
but runs no Istio control plane or Envoy: what a fault does to traffic is not observable here,
what it does to the VirtualService is, and that is what these tests check.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from pytest_chaos import Kube
from pytest_chaos.chaos import Chaos, ChaosSession
from pytest_chaos.errors import DriftError, TargetingError
from pytest_chaos.faults import undo
from pytest_chaos.ledger import read_cluster
from pytest_chaos.report.timeline import Timeline

GROUP, PLURAL = "networking.istio.io", "virtualservices"


def service(name: str) -> dict[str, Any]:
    """A Service on port 80, as the book's go-demo-8 and repeater have."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "selector": {"app": name},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
        },
    }


def virtual_service(
    name: str = "go-demo-8",
    *,
    version: str = "v1",
    hosts: list[str] | None = None,
    destination: dict[str, Any] | None = None,
    **route: Any,
) -> dict[str, Any]:
    """The book's ``k8s/network/istio.yaml``: go-demo-8's one route, to subset primary."""
    target = destination or {"host": name, "subset": "primary", "port": {"number": 80}}
    return {
        "apiVersion": f"{GROUP}/{version}",
        "kind": "VirtualService",
        "metadata": {"name": name},
        "spec": {"hosts": hosts or [name], "http": [{"route": [{"destination": target}], **route}]},
    }


def create(kube: Kube, namespace: str, vs: dict[str, Any]) -> dict[str, Any]:
    version = vs["apiVersion"].split("/")[1]
    created: Any = kube.custom.create_namespaced_custom_object(
        GROUP, version, namespace, PLURAL, vs
    )
    return dict(created)


def read(kube: Kube, namespace: str, name: str = "go-demo-8", version: str = "v1") -> Any:
    return kube.custom.get_namespaced_custom_object(GROUP, version, namespace, PLURAL, name)


def spec_json(vs: dict[str, Any]) -> str:
    """The spec exactly as the API server serves it (its key order and number formats)."""
    return json.dumps(vs["spec"])


def records(kube: Kube, namespace: str) -> list[str]:
    return [r.fault for r in read_cluster(kube) if r.namespace == namespace]


@pytest.fixture
def go_demo_8(kube: Kube, chaos_namespace: str) -> str:
    """The go-demo-8 Service (no VirtualService yet): returns the namespace."""
    kube.core.create_namespaced_service(chaos_namespace, service("go-demo-8"))
    return chaos_namespace


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
@pytest.mark.parametrize("verb", ["abort", "delay"])
def test_a_fault_is_accepted_then_reverted_exactly(
    kube: Kube, chaos: Chaos, go_demo_8: str, version: str, verb: str
) -> None:
    before = create(kube, go_demo_8, virtual_service(version=version))

    if verb == "abort":
        fault = chaos.istio.abort(
            "go-demo-8", namespace=go_demo_8, status=500, percent=50, version=version
        )
        expected = {"abort": {"httpStatus": 500, "percentage": {"value": 50}}}
    else:
        fault = chaos.istio.delay(
            "go-demo-8", namespace=go_demo_8, delay="15s", percent=50, version=version
        )
        expected = {"delay": {"fixedDelay": "15s", "percentage": {"value": 50}}}

    assert fault.targets == (f"{go_demo_8}/go-demo-8",)
    assert fault.details["version"] == version
    faulted = read(kube, go_demo_8, version=version)
    assert faulted["spec"]["http"][0]["fault"] == expected  # stored: the schema accepted it
    assert records(kube, go_demo_8) == [f"istio.{verb}"]

    fault.revert()

    assert spec_json(read(kube, go_demo_8, version=version)) == spec_json(before)
    assert records(kube, go_demo_8) == []


def test_the_version_the_server_prefers_is_used_by_default(
    kube: Kube, chaos: Chaos, go_demo_8: str
) -> None:
    create(kube, go_demo_8, virtual_service(version="v1alpha3"))
    with chaos.istio.abort("go-demo-8", namespace=go_demo_8) as fault:
        assert fault.details["version"] == "v1"


def test_a_pre_existing_abort_stays_when_a_delay_comes_and_goes(
    kube: Kube, chaos: Chaos, go_demo_8: str
) -> None:
    theirs = {"abort": {"httpStatus": 418, "percentage": {"value": 1}}}
    before = create(kube, go_demo_8, virtual_service(fault=theirs))

    with chaos.istio.delay("go-demo-8", namespace=go_demo_8, delay="2s"):
        fault = read(kube, go_demo_8)["spec"]["http"][0]["fault"]
        assert fault == {**theirs, "delay": {"fixedDelay": "2s", "percentage": {"value": 100}}}

    assert spec_json(read(kube, go_demo_8)) == spec_json(before)


def test_a_pre_existing_delay_stays_when_an_abort_comes_and_goes(
    kube: Kube, chaos: Chaos, go_demo_8: str
) -> None:
    theirs = {"delay": {"fixedDelay": "100ms", "percentage": {"value": 5}}}
    before = create(kube, go_demo_8, virtual_service(fault=theirs))

    with chaos.istio.abort("go-demo-8", namespace=go_demo_8, percent=50):
        assert set(read(kube, go_demo_8)["spec"]["http"][0]["fault"]) == {"abort", "delay"}

    assert spec_json(read(kube, go_demo_8)) == spec_json(before)


def test_an_abort_already_on_the_route_is_refused_and_left_alone(
    kube: Kube, chaos: Chaos, go_demo_8: str
) -> None:
    theirs = {"abort": {"httpStatus": 418, "percentage": {"value": 1}}}
    before = create(kube, go_demo_8, virtual_service(fault=theirs))

    with pytest.raises(TargetingError, match=r"http\[0\] already has a abort fault"):
        chaos.istio.abort("go-demo-8", namespace=go_demo_8)

    assert spec_json(read(kube, go_demo_8)) == spec_json(before)
    assert records(kube, go_demo_8) == []


def test_abort_and_delay_together_revert_in_any_order(
    kube: Kube, chaos: Chaos, go_demo_8: str
) -> None:
    before = create(kube, go_demo_8, virtual_service())
    abort = chaos.istio.abort("go-demo-8", namespace=go_demo_8, status=500, percent=50)
    delay = chaos.istio.delay("go-demo-8", namespace=go_demo_8, delay="15s", percent=50)

    abort.revert()  # not the reverse order: the delay must survive it
    fault = read(kube, go_demo_8)["spec"]["http"][0]["fault"]
    assert fault == {"delay": {"fixedDelay": "15s", "percentage": {"value": 50}}}
    delay.revert()

    assert spec_json(read(kube, go_demo_8)) == spec_json(before)


def test_retries_and_timeouts_are_kept_and_their_suspension_is_noted(
    kube: Kube, chaos: Chaos, go_demo_8: str
) -> None:
    retries = {"attempts": 10, "perTryTimeout": "3s", "retryOn": "5xx"}
    before = create(kube, go_demo_8, virtual_service(retries=retries, timeout="10s"))

    with chaos.istio.abort("go-demo-8", namespace=go_demo_8) as fault:
        route = read(kube, go_demo_8)["spec"]["http"][0]
        assert route["retries"] == retries
        assert route["timeout"] == "10s"
        # Istio ignores a faulted route's retries and timeout (istio/istio#13705): say so.
        assert fault.details["disabled"] == ["VirtualService go-demo-8 http[0]: retries, timeout"]
        notes = [e.text for e in chaos.timeline.events if e.phase == "note"]
        assert any("Istio ignores the retries/timeout" in text for text in notes)

    assert spec_json(read(kube, go_demo_8)) == spec_json(before)


def test_a_header_scoped_fault_adds_a_route_and_removes_exactly_it(
    kube: Kube, chaos: Chaos, go_demo_8: str
) -> None:
    api = {"uri": {"prefix": "/demo"}}
    before = create(kube, go_demo_8, virtual_service(match=[api]))

    with chaos.istio.abort("go-demo-8", namespace=go_demo_8, header="x-chaos=on") as fault:
        http = read(kube, go_demo_8)["spec"]["http"]
        assert len(http) == 2
        ours, original = http
        assert ours["name"] == f"pytest-chaos-{fault.records[0].payload['tag']}"
        assert ours["match"] == [{**api, "headers": {"x-chaos": {"exact": "on"}}}]
        assert ours["fault"]["abort"]["httpStatus"] == 503
        assert original == before["spec"]["http"][0]  # other requests: untouched

    assert spec_json(read(kube, go_demo_8)) == spec_json(before)


def test_a_host_without_virtual_service_gets_one_of_ours_removed_on_revert(
    kube: Kube, chaos: Chaos, go_demo_8: str
) -> None:
    fault = chaos.istio.delay("go-demo-8", namespace=go_demo_8, delay="1s", header="x-chaos")

    [target] = fault.targets
    name = target.split("/")[1]
    assert name.startswith("pytest-chaos-go-demo-8-")
    managed = read(kube, go_demo_8, name)
    assert managed["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "pytest-chaos"
    assert managed["spec"]["hosts"] == ["go-demo-8"]
    faulted, plain = managed["spec"]["http"]
    assert faulted["match"] == [{"headers": {"x-chaos": {"regex": ".*"}}}]
    assert plain == {"route": [{"destination": {"host": "go-demo-8"}}]}

    fault.revert()

    listing = kube.custom.list_namespaced_custom_object(GROUP, "v1", go_demo_8, PLURAL)
    assert listing["items"] == []
    assert undo.revert(kube, fault.records[0]) == "already reverted"


def test_an_unknown_host_names_what_exists(kube: Kube, chaos: Chaos, go_demo_8: str) -> None:
    kube.core.create_namespaced_service(go_demo_8, service("repeater"))
    create(kube, go_demo_8, virtual_service("repeater", hosts=["repeater.acme.com", "repeater"]))

    with pytest.raises(TargetingError) as error:
        chaos.istio.abort("go-demo-9", namespace=go_demo_8)

    text = str(error.value)
    assert f"unknown host 'go-demo-9': no VirtualService in namespace {go_demo_8!r}" in text
    assert "did you mean 'go-demo-8'?" in text
    assert "Services: go-demo-8, repeater" in text
    assert "VirtualService repeater: hosts repeater.acme.com, repeater; routes to repeater" in text
    assert records(kube, go_demo_8) == []


def test_a_host_served_only_by_redirects_gets_no_second_virtual_service(
    kube: Kube, chaos: Chaos, go_demo_8: str
) -> None:
    redirect = virtual_service()
    redirect["spec"]["http"] = [{"redirect": {"uri": "/v2"}}]
    create(kube, go_demo_8, redirect)

    with pytest.raises(TargetingError, match="none of their HTTP routes forwards"):
        chaos.istio.abort("go-demo-8", namespace=go_demo_8)

    listing = kube.custom.list_namespaced_custom_object(GROUP, "v1", go_demo_8, PLURAL)
    assert [vs["metadata"]["name"] for vs in listing["items"]] == ["go-demo-8"]


def test_a_concurrent_edit_of_the_fault_is_drift_and_left_alone(
    kube: Kube, chaos: Chaos, go_demo_8: str
) -> None:
    create(kube, go_demo_8, virtual_service())
    fault = chaos.istio.abort("go-demo-8", namespace=go_demo_8, percent=50)
    # Another writer (a GitOps sync, a colleague) changes the route's abort meanwhile.
    edited = read(kube, go_demo_8)
    edited["spec"]["http"][0]["fault"]["abort"]["percentage"]["value"] = 20
    kube.custom.replace_namespaced_custom_object(
        GROUP, "v1", go_demo_8, PLURAL, "go-demo-8", edited
    )

    with pytest.raises(DriftError, match=r"go-demo-8 http\[0\]: fault.abort is now") as drift:
        fault.revert()

    assert f"VirtualService {go_demo_8}/go-demo-8: someone else changed" in str(drift.value)
    assert read(kube, go_demo_8)["spec"]["http"][0]["fault"]["abort"]["percentage"] == {"value": 20}
    assert fault.active
    fault.discard("drift accepted by the test")
    assert records(kube, go_demo_8) == []


def test_a_virtual_service_deleted_meanwhile_has_nothing_to_restore(
    kube: Kube, chaos: Chaos, go_demo_8: str
) -> None:
    create(kube, go_demo_8, virtual_service())
    fault = chaos.istio.abort("go-demo-8", namespace=go_demo_8)
    kube.custom.delete_namespaced_custom_object(GROUP, "v1", go_demo_8, PLURAL, "go-demo-8")

    fault.revert()

    assert not fault.active
    outcome = undo.revert(kube, fault.records[0])
    assert outcome == "VirtualService deleted meanwhile, nothing to restore"


def test_subset_less_destinations_and_fqdn_hosts_are_one_host(
    kube: Kube, chaos: Chaos, go_demo_8: str
) -> None:
    fqdn = f"go-demo-8.{go_demo_8}.svc.cluster.local"
    before = create(
        kube,
        go_demo_8,
        virtual_service("caller", hosts=["caller"], destination={"host": fqdn}),
    )

    with chaos.istio.abort("go-demo-8", namespace=go_demo_8) as short:
        assert short.targets == (f"{go_demo_8}/caller",)
    with chaos.istio.abort(fqdn, namespace=go_demo_8) as long:
        assert long.targets == (f"{go_demo_8}/caller",)
        assert "fault" in read(kube, go_demo_8, "caller")["spec"]["http"][0]

    assert spec_json(read(kube, go_demo_8, "caller")) == spec_json(before)


def test_reverting_twice_is_harmless(kube: Kube, chaos: Chaos, go_demo_8: str) -> None:
    before = create(kube, go_demo_8, virtual_service())
    fault = chaos.istio.delay("go-demo-8", namespace=go_demo_8, delay=0.25)
    fault.revert()
    fault.revert()
    assert undo.revert(kube, fault.records[0]) == "already reverted"
    assert spec_json(read(kube, go_demo_8)) == spec_json(before)


def test_a_dry_run_plans_and_touches_nothing(
    kube: Kube, chaos_session: ChaosSession, go_demo_8: str
) -> None:
    before = create(kube, go_demo_8, virtual_service())
    settings = replace(chaos_session.settings, dry_run=True)
    session = ChaosSession(kube, settings, run_id="dry-run", seed=1)
    session.safety.allow_throwaway(go_demo_8)
    dry = Chaos(session, "test_a_dry_run", Timeline("test_a_dry_run"))

    with pytest.raises(pytest.skip.Exception) as skipped:
        dry.istio.abort("go-demo-8", namespace=go_demo_8, status=500, percent=50)

    assert str(skipped.value) == (
        "chaos dry run: would abort 50% of requests to go-demo-8 with HTTP 500 on "
        "VirtualService(s) go-demo-8 http[0]"
    )
    assert (
        read(kube, go_demo_8)["metadata"]["resourceVersion"]
        == before["metadata"]["resourceVersion"]
    )
    assert records(kube, go_demo_8) == []
