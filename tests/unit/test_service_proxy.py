"""Service URLs through the API server's proxy: which URLs, which path, which answers."""

from __future__ import annotations

import json

import httpx
import pytest

from pytest_chaos.kube.service_proxy import proxy_path, proxy_refusal


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("http://web.shop.svc/", "/api/v1/namespaces/shop/services/http:web:80/proxy/"),
        (
            "http://web.shop.svc.cluster.local:8080/ready?x=1",
            "/api/v1/namespaces/shop/services/http:web:8080/proxy/ready?x=1",
        ),
        ("https://api.prod.svc", "/api/v1/namespaces/prod/services/https:api:443/proxy/"),
        (
            "http://WEB.Shop.SVC.cluster.local./",
            "/api/v1/namespaces/shop/services/http:web:80/proxy/",
        ),
    ],
)
def test_a_service_url_becomes_the_api_servers_proxy_path(url: str, path: str) -> None:
    assert proxy_path(httpx.URL(url)) == path


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/",
        "http://web/",
        "http://web.shop/",
        "http://example.com/",
        "http://a.b.svc.example/",
    ],
)
def test_other_urls_go_out_directly(url: str) -> None:
    assert proxy_path(httpx.URL(url)) is None


def _response(status: int, body: bytes, content_type: str = "application/json") -> httpx.Response:
    return httpx.Response(status, content=body, headers={"content-type": content_type})


def test_the_api_servers_own_503_is_told_from_the_apps() -> None:
    status = json.dumps(
        {
            "kind": "Status",
            "status": "Failure",
            "message": 'no endpoints available for service "web"',
            "reason": "ServiceUnavailable",
            "code": 503,
        }
    ).encode()

    assert proxy_refusal(_response(503, status)) == 'no endpoints available for service "web"'
    assert proxy_refusal(_response(503, b"down for maintenance", "text/plain")) is None
    assert proxy_refusal(_response(503, b'{"error": "busy"}')) is None
    assert proxy_refusal(_response(500, status)) is None
