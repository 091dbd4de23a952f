"""Reading an Istio fault out of Envoy's config_dump, as istiod translates it."""

from __future__ import annotations

from typing import Any

from pytest_chaos.faults.istio_effect import carries, matches, route_faults, seconds

VS = "/apis/networking.istio.io/v1/namespaces/shop/virtual-service/web"


def _route(name: str, config: str, fault: dict[str, Any] | None) -> dict[str, Any]:
    route: dict[str, Any] = {
        "name": name,
        "metadata": {"filter_metadata": {"istio": {"config": config}}},
    }
    if fault is not None:
        route["typed_per_filter_config"] = {"envoy.filters.http.fault": fault}
    return route


def _dump(*routes: dict[str, Any]) -> dict[str, Any]:
    return {"configs": [{"route_config": {"virtual_hosts": [{"routes": list(routes)}]}}]}


ABORT_HALF = {
    "abort": {"http_status": 500, "percentage": {"numerator": 500000, "denominator": "MILLION"}}
}
ISTIO_ABORT_HALF = {"httpStatus": 500, "percentage": {"value": 50.0}}


def test_an_abort_is_found_on_the_routes_of_its_virtual_service() -> None:
    dump = _dump(_route("", VS, ABORT_HALF), _route("", "/other", None))
    faults = route_faults(dump, "shop", "web")
    assert faults == [("", ABORT_HALF)]
    assert carries(faults, "abort", ISTIO_ABORT_HALF, None)
    assert not carries(faults, "abort", {**ISTIO_ABORT_HALF, "httpStatus": 503}, None)


def test_a_virtual_service_the_proxy_does_not_serve_is_none() -> None:
    assert route_faults(_dump(_route("", "/other", None)), "shop", "web") is None


def test_a_header_scoped_fault_is_looked_for_on_its_own_route() -> None:
    faults = route_faults(_dump(_route("pytest-chaos-ab12", VS, ABORT_HALF)), "shop", "web") or []
    assert carries(faults, "abort", ISTIO_ABORT_HALF, "pytest-chaos-ab12")
    assert not carries(faults, "abort", ISTIO_ABORT_HALF, "pytest-chaos-other")


def test_delays_compare_in_seconds_whatever_the_unit() -> None:
    envoy = {
        "delay": {
            "fixed_delay": "0.250s",
            "percentage": {"numerator": 1000000, "denominator": "MILLION"},
        }
    }
    assert matches("delay", {"fixedDelay": "250ms", "percentage": {"value": 100}}, envoy)
    assert seconds("1s") == 1.0
