"""HTTP probes of Services on the embedded cluster: a failure names what backs the Service.

Most pods here run on kwok's fake nodes: the API says they are Running and Ready, and the
EndpointSlice controller lists them as ready endpoints, but nothing listens at their addresses.
So every request to the Service's ClusterIP fails (a timeout or a refused connection, whether
or not the cluster has a real node whose kube-proxy routes ClusterIPs), and ``assert_ok``'s
error must say which Service, which endpoints and which pods stood behind the URL. One test
runs the demo app for real on the real node (skipped where there is none).
"""

from __future__ import annotations

import functools
import re
import secrets
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos import Kube
from pytest_chaos.errors import NotSteadyError
from pytest_chaos.steady import Steady
from pytest_chaos.steady.http import HttpProbe
from pytest_chaos.steady.service_diagnosis import service_state
from tests.e2e.manifests import deployment
from tests.e2e.realnode_manifests import create_service, demo_deployment
from tests.e2e.realnode_manifests import service as realnode_service
from tests.e2e.test_rbac import user_kubeconfig


def service(name: str, *, app: str, port: int = 80, target: int = 8080) -> dict[str, Any]:
    """A ClusterIP Service over app=<app>."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": {"app": app},
            "ports": [{"name": "main", "port": port, "targetPort": target}],
        },
    }


def endpoints_settled(kube: Kube, namespace: str, name: str, ready: int) -> None:
    """Wait until the Service's EndpointSlices list exactly `ready` ready endpoints."""

    def count(slices: list[Any]) -> bool:
        endpoints = [e for s in slices for e in (s.endpoints or [])]
        return bool(slices) and sum(bool(e.conditions.ready) for e in endpoints) == ready

    kube.wait(
        functools.partial(kube.discovery.list_namespaced_endpoint_slice, namespace),
        count,
        within=30,
        what=f"{ready} ready endpoint(s) of Service {namespace}/{name}",
        label_selector=f"kubernetes.io/service-name={name}",
    )


@pytest.fixture
def web(kube: Kube, chaos_namespace: str) -> str:
    """Service ``web`` over 2 fake pods of Deployment ``web``; yields its ClusterIP."""
    kube.apps.create_namespaced_deployment(chaos_namespace, deployment("web", replicas=2))
    created = kube.core.create_namespaced_service(chaos_namespace, service("web", app="web"))
    endpoints_settled(kube, chaos_namespace, "web", ready=2)
    return str(created.spec.cluster_ip)


def pod_names(kube: Kube, namespace: str, app: str) -> list[str]:
    pods = kube.core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
    return sorted(str(p.metadata.name) for p in pods)


def test_a_failing_service_url_names_its_endpoints_and_pods(
    kube: Kube, steady: Steady, chaos_namespace: str, web: str
) -> None:
    ns = chaos_namespace
    with pytest.raises(NotSteadyError) as raised:
        steady.http(f"http://{web}/health", timeout=0.3).assert_ok(within=0.5, every=0.1)
    text = str(raised.value)
    lines = text.splitlines()
    # The requests' own story comes first, unchanged.
    assert lines[0] == f"GET http://{web}/health not steady within 0.5s: expected status 200"
    assert re.match(r"\d+ attempts? over .*, 0 ok \(longest ok streak 0\); errors: ", lines[1])
    # Then what backs the Service.
    assert f"Service {ns}/web: ClusterIP {web}, ports main 80->8080/TCP, selector app=web" in lines
    [slice_line] = [ln for ln in lines if ln.startswith("EndpointSlice web-")]
    assert slice_line.endswith(": 2 ready, 0 not ready, 0 terminating (ports main 8080/TCP)")
    for name in pod_names(kube, ns, "web"):
        assert re.search(rf"^  \S+ ready: pod {name} on \S+$", text, re.M), name
        assert re.search(rf"^  {name} on \S+: ready$", text, re.M), name
    assert "pods selected by app=web:" in lines
    assert f"recent events in {ns}:" in lines
    assert re.search(r"^  \S+ Normal (Deployment|ReplicaSet|Pod)/web", text, re.M)


def test_a_service_without_endpoints_says_so(
    kube: Kube, steady: Steady, chaos_namespace: str
) -> None:
    ns = chaos_namespace
    created = kube.core.create_namespaced_service(ns, service("lonely", app="nothing-here"))
    ip = str(created.spec.cluster_ip)
    endpoints_settled(kube, ns, "lonely", ready=0)
    with pytest.raises(NotSteadyError) as raised:
        steady.http(f"http://{ip}:80/", timeout=0.3).assert_ok(within=0.3, every=0.1)
    text = str(raised.value)
    assert (
        f"\nService {ns}/lonely: ClusterIP {ip}, ports main 80->8080/TCP, "
        "selector app=nothing-here\n"
    ) in text
    assert re.search(r"^EndpointSlice lonely-\S+: no endpoints( \(ports .*\))?$", text, re.M)
    assert "pods selected by app=nothing-here:\n  (no pods)\n" in text


def test_service_names_in_every_form(kube: Kube, chaos_namespace: str, web: str) -> None:
    ns = chaos_namespace
    head = f"Service {ns}/web: ClusterIP {web}"
    for host in (f"web.{ns}", f"web.{ns}.svc", f"web.{ns}.svc.cluster.local", web):
        state = service_state(kube, f"http://{host}/")
        assert state is not None, host
        assert state.startswith(head), host
    # A bare name is looked up in every namespace (a unique one here).
    unique = f"web-{secrets.token_hex(3)}"
    kube.core.create_namespaced_service(ns, service(unique, app="web"))
    bare = service_state(kube, f"http://{unique}:80/")
    assert bare is not None
    assert bare.startswith(f"Service {ns}/{unique}: ClusterIP ")
    # The URL's port is checked against the Service's ports.
    wrong_port = service_state(kube, f"http://web.{ns}.svc:8080/")
    assert wrong_port is not None
    assert "\nthe URL's port 8080 is none of the Service's ports (80)\n" in wrong_port
    # A Service's DNS name that names nothing says so; other hosts are not Services at all.
    assert service_state(kube, f"http://ghost.{ns}.svc/") == f"Service {ns}/ghost does not exist"
    assert service_state(kube, f"http://ghost.{ns}/") is None  # could be any DNS name
    assert service_state(kube, "http://10.255.255.254/") is None  # no Service has that IP


def test_a_forbidden_diagnosis_never_hides_the_failure(
    kube: Kube, chaos_namespace: str, web: str, tmp_path: Path
) -> None:
    user = f"chaos-nobody-{secrets.token_hex(3)}"  # no role at all: every read is forbidden
    nobody = Kube.from_kubeconfig(user_kubeconfig(kube, user, tmp_path))
    try:
        with (
            HttpProbe(f"http://{web}/", timeout=0.3, kube=nobody) as probe,
            pytest.raises(NotSteadyError) as raised,
        ):
            probe.assert_ok(within=0.3, every=0.1)
        by_name = service_state(nobody, f"http://web.{chaos_namespace}.svc/")
    finally:
        nobody.close()
    lines = str(raised.value).splitlines()
    assert lines[0] == f"GET http://{web}/ not steady within 0.3s: expected status 200"
    assert lines[-1] == (
        f'(service state unavailable: 403 Forbidden: services is forbidden: User "{user}" '
        'cannot list resource "services" in API group "" at the cluster scope)'
    )
    assert by_name == (
        f'(service state unavailable: 403 Forbidden: services "web" is forbidden: User "{user}" '
        f'cannot list resource "services" in API group "" in the namespace "{chaos_namespace}")'
    )


@pytest.mark.real_node
def test_a_real_pod_that_is_not_ready_shows_as_a_not_ready_endpoint(
    kube: Kube, steady: Steady, chaos_namespace: str
) -> None:
    """The demo app really runs on the real node, but its readiness probe asks a missing path."""
    ns = chaos_namespace
    manifest = demo_deployment("shy")
    [container] = manifest["spec"]["template"]["spec"]["containers"]
    container["readinessProbe"]["httpGet"]["path"] = "/not-there"  # 404: never Ready
    kube.apps.create_namespaced_deployment(ns, manifest)
    ip = create_service(kube, ns, realnode_service("shy"))
    kube.wait(
        functools.partial(kube.discovery.list_namespaced_endpoint_slice, ns),
        lambda slices: any(
            e.conditions.ready is False and e.target_ref is not None
            for s in slices
            for e in (s.endpoints or [])
        ),
        within=60,
        what="a not-ready endpoint of Service shy",
        label_selector="kubernetes.io/service-name=shy",
    )
    [pod] = pod_names(kube, ns, "shy")
    kube.wait(  # the kubelet has probed it and said why it is not ready
        functools.partial(kube.core.list_namespaced_event, ns),
        bool,
        within=60,
        what=f"an Unhealthy event of pod {pod}",
        field_selector=f"involvedObject.name={pod},reason=Unhealthy",
    )
    with pytest.raises(NotSteadyError) as raised:
        steady.http(f"http://{ip}/", timeout=0.5).assert_ok(within=0.5, every=0.1)
    text = str(raised.value)
    assert (
        f"\nService {ns}/shy: ClusterIP {ip}, ports main 80->http/TCP, selector app=shy\n" in text
    )
    assert re.search(r"^EndpointSlice shy-\S+: 0 ready, 1 not ready, 0 terminating", text, re.M)
    assert re.search(rf"^  \S+ not ready: pod {pod} on real-node-0$", text, re.M)
    assert re.search(rf"^  {pod} on real-node-0: NOT READY: Running \(not Ready\)$", text, re.M)
    # The real kubelet's own words are among the recent events.
    assert re.search(rf"Warning Pod/{pod}: Unhealthy Readiness probe failed: .*404", text)


UP_THEN_DOWN = """
import http.server, threading
import pytest

@pytest.fixture
def server():
    state = {"up": True}
    class App(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if state["up"] else 503)
            self.send_header("Content-Length", "0"); self.end_headers()
        def log_message(self, *args):
            pass
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), App)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", state
    httpd.shutdown(); httpd.server_close(); thread.join()

def test_goes_down(steady, server):
    url, state = server
    steady.http(url).assert_ok(within=5, consecutive=2, every=0.02)
    state["up"] = False
    steady.http(url).assert_ok(within=0.2, every=0.05)
"""


def test_each_assert_ok_is_on_the_failed_tests_timeline(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(UP_THEN_DOWN)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--chaos-cluster=local")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- chaos timeline -*",
            "*s  steady   GET http://127.0.0.1:*/: status 200, 2 in a row held after 2 attempts",
            "*s  steady   GET http://127.0.0.1:*/: status 200 NOT held within 0.2s (*, 0 ok)",
        ]
    )
