"""A Service's DNS name as a URL of the test process, on every provider.

``http://web.shop.svc.cluster.local:8080/path`` (or ``web.shop.svc``) names a Service; the test
process runs outside the cluster's DNS, so :class:`ServiceTransport` sends such requests one of
two ways:

* **to its ClusterIP** where the test process reaches the Service network (the embedded
  cluster): the name is looked up through the API (kept 5 s) and the request goes to
  ``<ClusterIP>:8080`` with ``Host: web.shop.svc.cluster.local``, through kube-proxy as a pod's
  would;
* **through the API server's service proxy** where it does not (kind: ClusterIPs and pod IPs
  live inside the node containers): ``<api server>/api/v1/namespaces/shop/services/
  http:web:8080/proxy/path`` with the kubeconfig's credentials. The API server picks a ready
  endpoint for each request (a port-forward would pin one pod, so a kill of another replica
  would go unseen). It hides kube-proxy, and its own "no endpoints" or "connection refused"
  answer (502/503 with a ``Status`` body) becomes an ``httpx.ConnectError``, what a client in the
  cluster would see, so a monitor counts it as a ``connect`` error and not as the app's 503.

Requests to any other host go out directly.
"""

from __future__ import annotations

import json
import ssl
import time
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from pytest_chaos.kube import Kube

_SERVICE_SUFFIXES = (("svc",), ("svc", "cluster", "local"))
#: The API server's own answers when it cannot reach the Service (not the app's).
_PROXY_ERROR_STATUSES = (502, 503)
#: Seconds a Service's ClusterIP is kept before it is looked up again.
_CLUSTER_IP_TTL = 5.0


def proxy_path(url: httpx.URL) -> str | None:
    """The API server path proxying url, when its host is ``<svc>.<ns>.svc[.cluster.local]``."""
    parts = tuple(url.host.lower().rstrip(".").split("."))
    if len(parts) < 3 or parts[2:] not in _SERVICE_SUFFIXES:
        return None
    name, namespace = parts[0], parts[1]
    scheme = "https" if url.scheme == "https" else "http"
    port = url.port or (443 if scheme == "https" else 80)
    path = url.raw_path.decode("ascii") or "/"
    return f"/api/v1/namespaces/{namespace}/services/{scheme}:{name}:{port}/proxy{path}"


def proxy_refusal(response: httpx.Response) -> str | None:
    """The API server's reason when response is its own "cannot reach the Service" answer."""
    if response.status_code not in _PROXY_ERROR_STATUSES:
        return None
    if not response.headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        status = json.loads(response.content)
    except ValueError:
        return None
    if not isinstance(status, dict) or status.get("kind") != "Status":
        return None
    return str(status.get("message") or status.get("reason") or response.status_code)


class ServiceTransport(httpx.BaseTransport):
    """An httpx transport for Service URLs: to the ClusterIP, or through the API server."""

    def __init__(
        self, kube: Kube, *, through_api_server: bool, limits: httpx.Limits | None = None
    ) -> None:
        """Reach Services of kube's cluster; ``limits`` as the client would give its own."""
        self._kube = kube
        self._through_api_server = through_api_server
        pool = limits or httpx.Limits()
        self._direct = httpx.HTTPTransport(limits=pool)
        self._cluster_ips: dict[tuple[str, str], tuple[float, str]] = {}
        conf = kube.api_client.configuration
        self._base = str(conf.host).rstrip("/")
        self._auth: list[tuple[bytes, bytes]] = []
        self._api: httpx.HTTPTransport | None = None
        if through_api_server:
            context = ssl.create_default_context(cafile=conf.ssl_ca_cert or None)
            if not conf.verify_ssl:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            if conf.cert_file:
                context.load_cert_chain(conf.cert_file, conf.key_file or None)
            token = conf.get_api_key_with_prefix("authorization")
            if token:
                self._auth.append((b"authorization", token.encode()))
            self._api = httpx.HTTPTransport(verify=context, limits=pool)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send request: a Service URL to its ClusterIP or through the API server, else as is."""
        path = proxy_path(request.url)
        if path is None:
            return self._direct.handle_request(request)
        if self._api is None:
            return self._to_cluster_ip(request)
        headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"host"]
        proxied = httpx.Request(
            request.method,
            self._base + path,
            headers=headers + self._auth,
            content=request.read(),
            extensions=request.extensions,
        )
        response = self._api.handle_request(proxied)
        if response.status_code in _PROXY_ERROR_STATUSES:
            response.read()
            reason = proxy_refusal(response)
            if reason is not None:
                message = f"through the API server's service proxy: {reason}"
                raise httpx.ConnectError(message, request=request)
        return response

    def _to_cluster_ip(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.host.lower().rstrip(".").split(".")
        address = self._cluster_ip(parts[1], parts[0], request)
        # The Host header keeps the Service's name; only the connection goes to the ClusterIP.
        direct = httpx.Request(
            request.method,
            request.url.copy_with(host=address),
            headers=request.headers.raw,
            content=request.read(),
            extensions=request.extensions,
        )
        return self._direct.handle_request(direct)

    def _cluster_ip(self, namespace: str, name: str, request: httpx.Request) -> str:
        now = time.monotonic()
        cached = self._cluster_ips.get((namespace, name))
        if cached is not None and now - cached[0] < _CLUSTER_IP_TTL:
            return cached[1]
        from kubernetes.client.exceptions import ApiException

        try:
            service = self._kube.core.read_namespaced_service(name, namespace)
        except ApiException as exc:
            reason = "no such Service" if exc.status == 404 else f"API error {exc.status}"
            raise httpx.ConnectError(
                f"{request.url.host}: {reason} ({namespace}/{name})", request=request
            ) from exc
        address = service.spec.cluster_ip if service.spec else None
        if not address or address == "None":
            raise httpx.ConnectError(
                f"{request.url.host}: Service {namespace}/{name} has no ClusterIP (headless)",
                request=request,
            )
        self._cluster_ips[(namespace, name)] = (now, str(address))
        return str(address)

    def close(self) -> None:
        """Close the connection pools."""
        self._direct.close()
        if self._api is not None:
            self._api.close()
