"""The Istio pieces that need no process: mesh config, command lines, binomial bounds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pytest_chaos.cluster.istio import binomial
from pytest_chaos.cluster.istio.config import (
    ISTIOD_ENV,
    IstioLayout,
    gateway_command,
    gateway_env,
    istiod_command,
    mesh_config,
)

ENVOY = Path("/venv/site-packages/envoy/_bin/envoy")


def test_mesh_config_points_the_proxies_at_the_host_envoy_and_plaintext_istiod() -> None:
    mesh = yaml.safe_load(mesh_config(ENVOY))
    assert mesh["defaultConfig"]["binaryPath"] == str(ENVOY)
    assert mesh["defaultConfig"]["discoveryAddress"] == "127.0.0.1:15010"
    assert mesh["defaultConfig"]["controlPlaneAuthPolicy"] == "NONE"
    assert mesh["enableAutoMtls"] is False


def test_istiod_runs_against_the_given_kubeconfig_with_xds_on_loopback() -> None:
    layout = IstioLayout(Path("/state/c1/istio"))
    command = istiod_command(Path("/cache/pilot-discovery"), Path("/state/c1/kubeconfig"), layout)
    assert command[:2] == ["/cache/pilot-discovery", "discovery"]
    assert "--kubeconfig=/state/c1/kubeconfig" in command
    assert "--meshConfig=/state/c1/istio/mesh.yaml" in command
    assert "--grpcAddr=127.0.0.1:15010" in command


def test_istiod_leaves_out_the_extensions_upstream_envoy_lacks() -> None:
    assert ISTIOD_ENV == {
        "PILOT_ENABLE_METADATA_EXCHANGE": "false",
        "PILOT_ENABLE_ALPN_FILTER": "false",
    }


def test_the_gateway_is_pilot_agent_proxy_router_with_the_envoy_in_its_proxy_config() -> None:
    assert gateway_command(Path("/cache/pilot-agent"))[:3] == [
        "/cache/pilot-agent",
        "proxy",
        "router",
    ]
    env = gateway_env(ENVOY, name="chaos-gateway", namespace="istio-system")
    assert yaml.safe_load(env["PROXY_CONFIG"])["binaryPath"] == str(ENVOY)
    assert env["POD_NAMESPACE"] == "istio-system"
    assert json.loads(env["ISTIO_METAJSON_LABELS"]) == {"istio": "ingressgateway"}


def test_binomial_interval_of_200_requests_at_half() -> None:
    low, high = binomial.interval(200, 0.5)
    assert (low, high) == (200 - high, high)  # symmetric at p = 0.5
    assert 70 < low < 100 < high < 130


@pytest.mark.parametrize(("p", "expected"), [(0.0, (0, 0)), (1.0, (200, 200))])
def test_binomial_interval_at_certain_outcomes(p: float, expected: tuple[int, int]) -> None:
    assert binomial.interval(200, p) == expected


def test_binomial_interval_widens_with_confidence() -> None:
    narrow = binomial.interval(400, 0.5, confidence=0.9)
    wide = binomial.interval(400, 0.5, confidence=0.999)
    assert wide[0] < narrow[0]
    assert narrow[1] < wide[1]


def test_binomial_interval_names_a_bad_argument() -> None:
    with pytest.raises(ValueError, match="p must be within"):
        binomial.interval(10, 1.5)
