"""Istio VirtualService faults as data: arguments, targeting, patches, exact undo (no cluster)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from pytest_chaos.errors import ChaosConfigError, TargetingError
from pytest_chaos.faults import virtualservice as vs_logic
from pytest_chaos.faults.virtualservice import (
    NOT_SERVED,
    FaultSpec,
    abort_spec,
    choose_version,
    delay_spec,
    effective,
    inject_patch,
    revert_patch,
    targeted_routes,
)

NS = "go-demo-8"


def apply(doc: dict[str, Any], patch: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply a JSON patch (add, remove, replace) the way the API server does, to a copy."""
    result = copy.deepcopy(doc)
    for op in patch:
        *parents, last = op["path"].lstrip("/").split("/")
        node: Any = result
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            if op["op"] == "add":
                node.insert(int(last), op["value"])
            elif op["op"] == "remove":
                del node[int(last)]
            else:
                node[int(last)] = op["value"]
        elif op["op"] == "remove":
            del node[last]
        else:
            node[last] = op["value"]
    result["metadata"]["resourceVersion"] = str(int(result["metadata"]["resourceVersion"]) + 1)
    return result


def virtual_service(*routes: dict[str, Any], hosts: list[str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "go-demo-8", "namespace": NS, "resourceVersion": "100", "uid": "u1"},
        "spec": {"hosts": hosts or ["go-demo-8"], "http": list(routes)},
    }


def route(host: str = "go-demo-8", subset: str | None = "primary", **extra: Any) -> dict[str, Any]:
    destination: dict[str, Any] = {"host": host}
    if subset:
        destination["subset"] = subset
    return {"route": [{"destination": destination}], **extra}


def inject(vs: dict[str, Any], spec: FaultSpec, tag: str = "t1") -> tuple[dict[str, Any], Any]:
    patch, payload = inject_patch(vs, targeted_routes(vs, spec.host, NS), spec, tag)
    return apply(vs, patch), payload


def spec_json(vs: dict[str, Any]) -> str:
    return json.dumps(vs["spec"], sort_keys=True)


ABORT = abort_spec("go-demo-8", namespace=NS, status=500, percent=50)
DELAY = delay_spec("go-demo-8", namespace=NS, delay="15s", percent=50)


# Arguments: what the markers check at collection.


def test_abort_and_delay_values_are_what_istio_stores() -> None:
    assert ABORT.value == {"httpStatus": 500, "percentage": {"value": 50.0}}
    assert DELAY.value == {"fixedDelay": "15s", "percentage": {"value": 50.0}}
    assert ABORT.describe() == "abort 50% of requests to go-demo-8 with HTTP 500"
    header = delay_spec("web", namespace=NS, delay=0.25, header="x-chaos=on")
    assert header.describe() == "delay 100% of requests to web by 250ms carrying header x-chaos=on"


@pytest.mark.parametrize(
    ("delay", "fixed"),
    [("15s", "15s"), (2, "2s"), (0.25, "250ms"), ("1m", "60s"), ("1.5s", "1500ms"), ("1ms", "1ms")],
)
def test_delays_become_whole_seconds_or_milliseconds(delay: Any, fixed: str) -> None:
    assert vs_logic.fixed_delay(delay) == fixed


@pytest.mark.parametrize(
    ("delay", "message"),
    [
        ("15 sec", "is not a duration"),
        (0, "at least 1ms"),
        ("500us", "at least 1ms"),
        ("1.0005s", "whole number of milliseconds"),
        (-1, "non-negative"),
    ],
)
def test_a_delay_istio_cannot_take_is_refused(delay: Any, message: str) -> None:
    with pytest.raises(ChaosConfigError, match=message):
        delay_spec("web", namespace=NS, delay=delay)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"status": 700}, "status=700"),
        ({"percent": 101}, "percent=101"),
        ({"header": "bad header"}, "not a valid HTTP header name"),
        ({"version": "v2"}, "version='v2' must be None"),
        ({"namespace": ""}, "namespace=''"),
    ],
)
def test_bad_arguments_name_the_argument(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ChaosConfigError, match=message):
        abort_spec("web", **{"namespace": NS, **arguments})


@pytest.mark.parametrize("host", ["*.example.com", "", "web/x", 3])
def test_a_host_must_be_a_destination_host(host: Any) -> None:
    with pytest.raises(ChaosConfigError, match="must be a destination host"):
        abort_spec(host, namespace=NS)


def test_hosts_are_lowercased() -> None:
    assert abort_spec("Go-Demo-8.", namespace=NS).host == "go-demo-8"


# API versions: discovery decides.

ISTIO_GROUP = {
    "name": "networking.istio.io",
    "preferredVersion": {"version": "v1"},
    "versions": [{"version": "v1"}, {"version": "v1beta1"}, {"version": "v1alpha3"}],
}


def test_the_preferred_version_or_the_one_asked_for() -> None:
    assert choose_version([{"name": "apps"}, ISTIO_GROUP], None) == "v1"
    assert choose_version([ISTIO_GROUP], "v1alpha3") == "v1alpha3"
    old = {
        **ISTIO_GROUP,
        "preferredVersion": {"version": "v9"},
        "versions": [{"version": "v1beta1"}],
    }
    assert choose_version([old], None) == "v1beta1"


def test_a_version_the_cluster_does_not_serve_is_a_config_error() -> None:
    old = {**ISTIO_GROUP, "versions": [{"version": "v1beta1"}, {"version": "v1alpha3"}]}
    with pytest.raises(
        ChaosConfigError, match=r"serves networking\.istio\.io in v1beta1, v1alpha3"
    ):
        choose_version([old], "v1")


def test_without_istio_the_test_is_skipped_with_the_reason() -> None:
    from pytest_chaos.faults.istio import _skip

    assert choose_version([{"name": "apps"}], None) is None
    with pytest.raises(pytest.skip.Exception, match="VirtualService CRD missing"):
        _skip(NOT_SERVED)
    assert "install Istio or its CRDs" in NOT_SERVED


# Targeting: which routes carry traffic for the host.


@pytest.mark.parametrize(
    "host",
    [
        "go-demo-8",
        "go-demo-8.go-demo-8",
        "go-demo-8.go-demo-8.svc",
        "go-demo-8.go-demo-8.svc.cluster.local",
    ],
)
def test_short_and_fqdn_forms_are_one_host(host: str) -> None:
    vs = virtual_service(route(host="go-demo-8.go-demo-8.svc.cluster.local"), hosts=["other"])
    assert targeted_routes(vs, host, NS) == [0]
    assert vs_logic.service_name(host, NS) == "go-demo-8"


def test_a_host_in_another_namespace_is_another_host() -> None:
    vs = virtual_service(route(host="go-demo-8.other.svc.cluster.local"), hosts=["x"])
    assert targeted_routes(vs, "go-demo-8", NS) == []
    assert vs_logic.service_name("go-demo-8.other.svc.cluster.local", NS) is None


def test_destinations_with_or_without_subset_are_targeted() -> None:
    vs = virtual_service(
        route(subset=None), route(host="db"), route(subset="canary"), hosts=["repeater"]
    )
    assert targeted_routes(vs, "go-demo-8", NS) == [0, 2]


def test_a_virtual_service_for_the_host_targets_every_forwarding_route() -> None:
    redirect = {"redirect": {"uri": "/v2"}}
    vs = virtual_service(route(host="canary"), redirect, route(), hosts=["go-demo-8"])
    assert targeted_routes(vs, "go-demo-8", NS) == [0, 2]


def test_a_virtual_service_serving_the_host_without_routes_to_fault_is_named() -> None:
    redirect_only = virtual_service({"redirect": {"uri": "/v2"}}, hosts=["go-demo-8"])
    other = virtual_service(route(host="db"), hosts=["db"])
    other["metadata"]["name"] = "db"
    assert targeted_routes(redirect_only, "go-demo-8", NS) == []
    assert vs_logic.claiming([redirect_only, other], "go-demo-8", NS) == ["go-demo-8"]
    error = vs_logic.nothing_to_fault(ABORT, ["go-demo-8"])
    assert "none of their HTTP routes forwards to a destination" in str(error)


# Without header: merged into the route's fault, undone key by key.


def test_abort_then_revert_restores_the_spec_exactly() -> None:
    vs = virtual_service(route(retries={"attempts": 3}, timeout="10s"))
    faulted, payload = inject(vs, ABORT)
    assert faulted["spec"]["http"][0]["fault"] == {"abort": ABORT.value}
    assert faulted["spec"]["http"][0]["retries"] == {"attempts": 3}
    assert effective(faulted, payload) == []

    plan = revert_patch(faulted, payload)
    assert plan.outcome == "reverted"
    assert plan.drift == []
    assert spec_json(apply(faulted, plan.patch)) == spec_json(vs)


def test_a_pre_existing_delay_stays_when_an_abort_comes_and_goes() -> None:
    theirs = {"delay": {"fixedDelay": "1s", "percentage": {"value": 10}}}
    vs = virtual_service(route(fault=theirs))
    faulted, payload = inject(vs, ABORT)
    assert faulted["spec"]["http"][0]["fault"] == {**theirs, "abort": ABORT.value}
    restored = apply(faulted, revert_patch(faulted, payload).patch)
    assert spec_json(restored) == spec_json(vs)


def test_removing_a_delay_never_removes_an_abort() -> None:
    vs = virtual_service(route())
    with_abort, abort_payload = inject(vs, ABORT, "a")
    with_both, delay_payload = inject(with_abort, DELAY, "d")
    assert set(with_both["spec"]["http"][0]["fault"]) == {"abort", "delay"}

    without_delay = apply(with_both, revert_patch(with_both, delay_payload).patch)
    assert without_delay["spec"]["http"][0]["fault"] == {"abort": ABORT.value}
    restored = apply(without_delay, revert_patch(without_delay, abort_payload).patch)
    assert spec_json(restored) == spec_json(vs)

    # Reverted in the order they were injected: the same result.
    without_abort = apply(with_both, revert_patch(with_both, abort_payload).patch)
    assert without_abort["spec"]["http"][0]["fault"] == {"delay": DELAY.value}
    restored = apply(without_abort, revert_patch(without_abort, delay_payload).patch)
    assert spec_json(restored) == spec_json(vs)


def test_an_existing_fault_of_the_same_kind_is_refused() -> None:
    vs = virtual_service(route(fault={"abort": {"httpStatus": 418}}))
    with pytest.raises(TargetingError, match=r"already has a abort fault .*header='x-chaos'"):
        inject(vs, ABORT)


def test_an_empty_fault_is_restored_as_it_was() -> None:
    vs = virtual_service(route(fault={}))
    faulted, payload = inject(vs, ABORT)
    assert spec_json(apply(faulted, revert_patch(faulted, payload).patch)) == spec_json(vs)


def test_a_retried_inject_tells_our_write_from_someone_elses() -> None:
    vs = virtual_service(route())
    faulted, payload = inject(vs, ABORT)
    assert vs_logic.unchanged_since(vs, payload)  # a 409 for another reason: patch again
    assert not vs_logic.unchanged_since(faulted, payload)
    assert effective(faulted, payload) == []  # ...because the write was ours: done
    assert effective(vs, payload) == [
        "abort {'httpStatus': 500, 'percentage': {'value': 50.0}} on http[0]"
    ]
    edited = copy.deepcopy(vs)
    edited["spec"]["http"][0]["timeout"] = "1s"
    assert vs_logic.unchanged_since(edited, payload)  # only the fault and the route's identity
    edited["spec"]["http"].insert(0, route(host="other"))
    assert not vs_logic.unchanged_since(edited, payload)


def test_reverting_twice_is_harmless() -> None:
    vs = virtual_service(route())
    faulted, payload = inject(vs, ABORT)
    restored = apply(faulted, revert_patch(faulted, payload).patch)
    again = revert_patch(restored, payload)
    assert again.outcome == "already reverted"
    assert len(again.patch) == 1  # the resourceVersion precondition only


def test_someone_else_changing_our_fault_is_drift() -> None:
    vs = virtual_service(route())
    faulted, payload = inject(vs, ABORT)
    faulted["spec"]["http"][0]["fault"]["abort"]["percentage"]["value"] = 30

    plan = revert_patch(faulted, payload)

    assert len(plan.patch) == 1
    assert "fault.abort is now" in plan.drift[0]
    assert "'value': 30" in plan.drift[0]


def test_someone_adding_a_delay_meanwhile_keeps_it() -> None:
    vs = virtual_service(route())
    faulted, payload = inject(vs, ABORT)
    theirs = {"fixedDelay": "2s", "percentage": {"value": 5}}
    faulted["spec"]["http"][0]["fault"]["delay"] = theirs
    restored = apply(faulted, revert_patch(faulted, payload).patch)
    assert restored["spec"]["http"][0]["fault"] == {"delay": theirs}


def test_a_route_moved_by_someone_else_is_found_by_its_identity() -> None:
    vs = virtual_service(route(match=[{"uri": {"prefix": "/api"}}]))
    faulted, payload = inject(vs, ABORT)
    faulted["spec"]["http"].insert(0, route(host="other"))
    restored = apply(faulted, revert_patch(faulted, payload).patch)
    assert restored["spec"]["http"][1] == vs["spec"]["http"][0]


def test_a_route_removed_by_someone_else_has_nothing_to_restore() -> None:
    vs = virtual_service(route(), route(host="other"), hosts=["repeater"])
    faulted, payload = inject(vs, ABORT)
    del faulted["spec"]["http"][0]
    plan = revert_patch(faulted, payload)
    assert plan.drift == []
    assert plan.outcome == "route(s) removed by someone else, nothing to restore"


def test_the_other_touched_routes_are_still_reverted() -> None:
    vs = virtual_service(route(), route(subset="canary"))
    faulted, payload = inject(vs, ABORT)
    del faulted["spec"]["http"][0]
    plan = revert_patch(faulted, payload)
    assert plan.drift == []
    assert apply(faulted, plan.patch)["spec"]["http"] == [route(subset="canary")]


def test_a_changed_route_still_carrying_our_fault_is_drift() -> None:
    vs = virtual_service(route())
    faulted, payload = inject(vs, ABORT)
    faulted["spec"]["http"][0]["route"][0]["destination"]["subset"] = "secondary"
    plan = revert_patch(faulted, payload)
    assert "match or destinations differ" in plan.drift[0]


# With a header: an inserted copy of each route, removed by name.


def test_a_header_scoped_fault_inserts_a_copy_before_each_route() -> None:
    conditions = [{"uri": {"prefix": "/a"}}, {"uri": {"prefix": "/b"}}]
    vs = virtual_service(
        route(match=conditions), route(host="db"), route(timeout="5s"), hosts=["repeater"]
    )
    spec = abort_spec("go-demo-8", namespace=NS, header="x-chaos=on")
    faulted, payload = inject(vs, spec, "tag1")

    http = faulted["spec"]["http"]
    assert [r.get("name") for r in http] == [
        "pytest-chaos-tag1",
        None,
        None,
        "pytest-chaos-tag1",
        None,
    ]
    assert http[0]["match"] == [
        {"uri": {"prefix": "/a"}, "headers": {"x-chaos": {"exact": "on"}}},
        {"uri": {"prefix": "/b"}, "headers": {"x-chaos": {"exact": "on"}}},
    ]
    assert http[3]["match"] == [{"headers": {"x-chaos": {"exact": "on"}}}]
    assert http[3]["timeout"] == "5s"
    assert http[3]["fault"] == {"abort": spec.value}
    assert [http[1], http[2], http[4]] == vs["spec"]["http"]
    assert effective(faulted, payload) == []

    restored = apply(faulted, revert_patch(faulted, payload).patch)
    assert spec_json(restored) == spec_json(vs)


def test_any_value_of_the_header_matches_by_regex() -> None:
    spec = delay_spec("go-demo-8", namespace=NS, delay="2s", header="x-chaos")
    faulted, _payload = inject(virtual_service(route()), spec)
    assert faulted["spec"]["http"][0]["match"] == [{"headers": {"x-chaos": {"regex": ".*"}}}]


def test_a_route_already_matching_the_header_is_refused() -> None:
    vs = virtual_service(route(match=[{"headers": {"x-chaos": {"exact": "off"}}}]))
    with pytest.raises(ChaosConfigError, match="already matches on header 'x-chaos'"):
        inject(vs, abort_spec("go-demo-8", namespace=NS, header="x-chaos=on"))


def test_two_header_scoped_faults_on_one_header_are_refused() -> None:
    spec = abort_spec("go-demo-8", namespace=NS, header="x-chaos=on")
    faulted, _payload = inject(virtual_service(route()), spec, "one")
    with pytest.raises(TargetingError, match="already has a header-scoped fault on x-chaos=on"):
        inject(faulted, delay_spec("go-demo-8", namespace=NS, delay=1, header="x-chaos=on"))
    other, _ = inject(
        faulted, delay_spec("go-demo-8", namespace=NS, delay=1, header="x-chaos=slow")
    )
    assert len(other["spec"]["http"]) == 3


def test_an_inserted_route_edited_by_someone_else_is_drift() -> None:
    spec = abort_spec("go-demo-8", namespace=NS, header="x-chaos")
    faulted, payload = inject(virtual_service(route()), spec)
    faulted["spec"]["http"][0]["fault"]["abort"]["httpStatus"] = 502
    plan = revert_patch(faulted, payload)
    assert "was edited by someone else" in plan.drift[0]
    assert len(plan.patch) == 1


def test_routes_whose_retries_istio_will_ignore_are_named() -> None:
    vs = virtual_service(route(retries={"attempts": 3}), route(timeout="2s"), route())
    assert vs_logic.overridden_policies(vs, [0, 1, 2]) == [
        "VirtualService go-demo-8 http[0]: retries",
        "VirtualService go-demo-8 http[1]: timeout",
    ]


# A host nothing routes to.


def test_an_unknown_host_lists_what_exists() -> None:
    vs = virtual_service(route(), hosts=["go-demo-8"])
    error = vs_logic.unknown_host(
        abort_spec("go-demo-9", namespace=NS), ["go-demo-8", "repeater"], [vs]
    )
    text = str(error)
    assert "unknown host 'go-demo-9'" in text
    assert "did you mean 'go-demo-8'?" in text
    assert "Services: go-demo-8, repeater" in text
    assert "VirtualService go-demo-8: hosts go-demo-8; routes to go-demo-8" in text


def test_a_managed_virtual_service_keeps_other_requests_routed() -> None:
    spec = abort_spec("web", namespace=NS, header="x-chaos")
    manifest = vs_logic.managed_manifest(spec, "web", "pytest-chaos-web-t", "t", "v1", {"a": "b"})
    assert manifest["spec"]["hosts"] == ["web"]
    assert [r.get("match") for r in manifest["spec"]["http"]] == [
        [{"headers": {"x-chaos": {"regex": ".*"}}}],
        None,
    ]
