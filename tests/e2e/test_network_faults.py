"""Network faults against a real API server: what they create, what revert leaves, what they refuse.

The local cluster's nodes are kwok fakes: pods and their ephemeral containers exist in the API
only, and kwok never reports a status for an ephemeral container. So these tests check the API
side exactly (the container, its image, capabilities, target and script, the NetworkPolicy and
its spec, the undo records) and that the pod is never restarted; the scripts themselves are run
for real in tests/unit/test_network_scripts.py, and on the real node by the real-node suite.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from kubernetes import client

from pytest_chaos import Kube
from pytest_chaos.chaos import Chaos, ChaosSession
from pytest_chaos.errors import ChaosConfigError, InjectError, TargetingError, WaitTimeout
from pytest_chaos.faults import ephemeral as ephemeral_module
from pytest_chaos.faults import scripts, undo
from pytest_chaos.faults.ephemeral import API_ONLY
from pytest_chaos.faults.network import NO_NETEM
from pytest_chaos.ledger import Owner, UndoRecord
from pytest_chaos.report.timeline import Timeline
from pytest_chaos.settings import DEFAULT_TOOLBOX_IMAGE
from pytest_chaos.steady import Steady
from tests.e2e.manifests import ephemeral, records_in
from tests.e2e.realnode_manifests import identity


def broker_deployment() -> dict[str, Any]:
    labels = {"app": "broker"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "broker", "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "nats",
                            "image": "nats:2.10",
                            "ports": [{"name": "client", "containerPort": 4222}],
                        }
                    ]
                },
            },
        },
    }


def broker_service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "broker"},
        "spec": {
            "selector": {"app": "broker"},
            "ports": [
                {"name": "client", "port": 4222, "targetPort": "client"},
                {"name": "monitor", "port": 8222, "targetPort": 8222},
            ],
        },
    }


def app_deployment() -> dict[str, Any]:
    labels = {"app": "app"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "example/orders:1"}]},
            },
        },
    }


@pytest.fixture
def broker(kube: Kube, steady: Steady, chaos_namespace: str) -> dict[str, str]:
    """A broker Deployment and Service, and an app Deployment; returns the addresses involved."""
    kube.core.create_namespaced_service(chaos_namespace, broker_service())
    kube.apps.create_namespaced_deployment(chaos_namespace, broker_deployment())
    kube.apps.create_namespaced_deployment(chaos_namespace, app_deployment())
    steady.namespace(chaos_namespace).assert_ready(within=30)
    discovery = client.DiscoveryV1Api(kube.api_client)
    slices = kube.wait(
        functools.partial(discovery.list_namespaced_endpoint_slice, chaos_namespace),
        lambda found: any(e.conditions.ready for s in found for e in s.endpoints or []),
        within=30,
        what="the broker Service's ready endpoints",
        label_selector="kubernetes.io/service-name=broker",
    )
    service = kube.core.read_namespaced_service("broker", chaos_namespace)
    return {
        "cluster_ip": str(service.spec.cluster_ip),
        "pod_ip": str(slices[0].endpoints[0].addresses[0]),
    }


def app_pod(kube: Kube, namespace: str) -> dict[str, Any]:
    (pod,) = kube.core.list_namespaced_pod(namespace, label_selector="app=app").items
    data: dict[str, Any] = kube.serialize(pod)
    return data


def test_cut_adds_a_privileged_ephemeral_container_aimed_at_the_service(
    kube: Kube, chaos: Chaos, chaos_namespace: str, broker: dict[str, str]
) -> None:
    before = app_pod(kube, chaos_namespace)

    fault = chaos.network.cut("app=app", namespace=chaos_namespace, to="broker")

    tag = fault.records[0].payload["tag"]
    pod = app_pod(kube, chaos_namespace)
    container = ephemeral(pod)[f"chaos-cut-{tag}"]
    assert container["image"] == DEFAULT_TOOLBOX_IMAGE
    assert "targetContainerName" not in container  # the pod's network namespace is enough
    assert container["securityContext"]["capabilities"]["add"] == ["NET_ADMIN", "NET_RAW"]
    assert container["securityContext"]["runAsUser"] == 0
    script = container["command"][2]
    chain = scripts.chain_name(tag)
    for ip in (broker["cluster_ip"], broker["pod_ip"]):
        for port in (4222, 8222):
            assert (
                f"iptables -w -A {chain} -d {ip}/32 -p tcp --dport {port} -j REJECT "
                "--reject-with tcp-reset" in script
            )
        assert f"ss -HK -t dst {ip} dport = :4222" in script
    assert fault.details["effect"] == API_ONLY
    assert sorted(fault.details["ips"]) == sorted(broker.values())
    assert fault.details["ports"] == ["4222/TCP (client)", "8222/TCP (monitor)"]
    assert records_in(kube, chaos_namespace) == [fault.records[0].id]
    assert fault.records[0].payload["chain"] == chain

    fault.revert()

    after = app_pod(kube, chaos_namespace)
    undo_container = ephemeral(after)[f"chaos-undo-{tag}"]
    assert undo_container["command"] == ["sh", "-c", scripts.iptables_undo_script(tag)]
    assert undo_container["securityContext"]["capabilities"]["add"] == ["NET_ADMIN", "NET_RAW"]
    assert records_in(kube, chaos_namespace) == []
    assert identity(after) == identity(before)  # same pod, never restarted
    assert after["status"].get("ephemeralContainerStatuses") is None  # kwok reports none


def test_cut_of_one_port_by_name_or_of_an_ip_address(
    kube: Kube, chaos: Chaos, chaos_namespace: str, broker: dict[str, str]
) -> None:
    by_name = chaos.network.cut("app=app", namespace=chaos_namespace, to="broker", port="client")
    assert by_name.details["ports"] == ["4222/TCP (client)"]
    script = ephemeral(app_pod(kube, chaos_namespace))[
        f"chaos-cut-{by_name.records[0].payload['tag']}"
    ]["command"][2]
    assert "--dport 4222" in script
    assert "8222" not in script

    by_ip = chaos.network.cut("app=app", namespace=chaos_namespace, to="10.1.0.0/16", port=5432)
    tag = by_ip.records[0].payload["tag"]
    script = ephemeral(app_pod(kube, chaos_namespace))[f"chaos-cut-{tag}"]["command"][2]
    assert (
        scripts.cut_rules(tag, [scripts.Peer("10.1.0.0/16", (("tcp", 5432), ("udp", 5432)))])[1]
        in script
    )
    assert by_ip.details["ips"] == ["10.1.0.0/16"]


def test_undoing_a_cut_is_idempotent_and_a_gone_pod_needs_nothing(
    kube: Kube, chaos: Chaos, chaos_namespace: str, broker: dict[str, str]
) -> None:
    fault = chaos.network.cut("app=app", namespace=chaos_namespace, to="broker")
    record = fault.records[0]
    fault.revert()
    fault.revert()
    assert undo.revert(kube, record) == f"reverted: {API_ONLY}"  # the same container again
    undo_name = f"chaos-undo-{record.payload['tag']}"
    assert list(ephemeral(app_pod(kube, chaos_namespace))).count(undo_name) == 1

    kube.core.delete_namespaced_pod(record.name, chaos_namespace, grace_period_seconds=0)
    kube.wait(
        functools.partial(kube.core.list_namespaced_pod, chaos_namespace),
        lambda pods: all(p.metadata.uid != record.uid for p in pods),
        within=30,
        what="the app pod to be gone",
    )
    assert undo.revert(kube, record) == "pod gone, nothing to undo"


def test_loss_drops_a_share_of_the_packets_to_the_service(
    kube: Kube, chaos: Chaos, chaos_namespace: str, broker: dict[str, str]
) -> None:
    with chaos.network.loss(
        "app=app", namespace=chaos_namespace, percent=30, to="broker", port=4222
    ) as fault:
        tag = fault.records[0].payload["tag"]
        container = ephemeral(app_pod(kube, chaos_namespace))[f"chaos-loss-{tag}"]
        script = container["command"][2]
        chain = scripts.chain_name(tag)
        for ip in broker.values():
            assert (
                f"iptables -w -A {chain} -d {ip}/32 -p tcp --dport 4222 "
                "-m statistic --mode random --probability 0.30000 -j DROP" in script
            )
        assert f"iptables -w -I OUTPUT 1 -j {chain}" in script
    assert f"chaos-undo-{tag}" in ephemeral(app_pod(kube, chaos_namespace))
    assert records_in(kube, chaos_namespace) == []


def test_latency_on_a_fake_node_skips_and_touches_nothing(
    kube: Kube, chaos: Chaos, chaos_namespace: str, broker: dict[str, str]
) -> None:
    with pytest.raises(pytest.skip.Exception, match="latency needs a real node, where the pods"):
        chaos.network.latency("app=app", namespace=chaos_namespace, delay="200ms")
    assert ephemeral(app_pod(kube, chaos_namespace)) == {}
    assert records_in(kube, chaos_namespace) == []


def policies(kube: Kube, namespace: str) -> dict[str, dict[str, Any]]:
    found = kube.networking.list_namespaced_network_policy(namespace).items
    return {str(p.metadata.name): kube.serialize(p) for p in found}


@pytest.mark.parametrize(
    ("direction", "types"),
    [("ingress", ["Ingress"]), ("egress", ["Egress"]), ("both", ["Ingress", "Egress"])],
)
def test_partition_from_everything_is_a_deny_all_policy_removed_on_revert(
    kube: Kube,
    chaos: Chaos,
    chaos_namespace: str,
    broker: dict[str, str],
    direction: str,
    types: list[str],
) -> None:
    fault = chaos.network.partition("app=app", namespace=chaos_namespace, direction=direction)

    (name,) = policies(kube, chaos_namespace)
    assert fault.targets == (f"{chaos_namespace}/{name}",)
    assert name == f"pytest-chaos-partition-{fault.records[0].payload['tag']}"
    spec = policies(kube, chaos_namespace)[name]["spec"]
    assert spec == {
        "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["app"]}]},
        "policyTypes": types,
    }
    assert records_in(kube, chaos_namespace) == [fault.records[0].id]

    fault.revert()

    assert policies(kube, chaos_namespace) == {}
    assert records_in(kube, chaos_namespace) == []
    assert undo.revert(kube, fault.records[0]) == "already reverted"


def test_partition_from_peers_allows_everything_but_the_peers(
    kube: Kube, chaos: Chaos, chaos_namespace: str, broker: dict[str, str]
) -> None:
    with chaos.network.partition(
        "app=app", namespace=chaos_namespace, peers="app=broker", direction="egress"
    ) as fault:
        (policy,) = policies(kube, chaos_namespace).values()
        allowed = policy["spec"]["egress"][0]["to"]
        assert {"key": "app", "operator": "NotIn", "values": ["broker"]} in (
            allowed[1]["podSelector"]["matchExpressions"]
        )
        assert allowed[2] == {
            "ipBlock": {"cidr": "0.0.0.0/0", "except": [f"{broker['pod_ip']}/32"]}
        }
        assert fault.details["peer_ips"] == [broker["pod_ip"]]
        assert "established connections are not cut" in fault.details["enforcement"]
    assert policies(kube, chaos_namespace) == {}


def test_a_partition_names_other_policies_that_add_allow_rules(
    kube: Kube, chaos: Chaos, chaos_namespace: str, broker: dict[str, str]
) -> None:
    allow_all: Any = {
        "metadata": {"name": "allow-all"},
        "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]},
    }
    kube.networking.create_namespaced_network_policy(chaos_namespace, allow_all)
    fault = chaos.network.partition("app=app", namespace=chaos_namespace, direction="egress")
    assert fault.details["other_policies"] == ["allow-all"]
    fault.revert()
    assert list(policies(kube, chaos_namespace)) == ["allow-all"]  # only ours was deleted


def test_bad_inputs_fail_before_anything_is_touched(
    kube: Kube, chaos: Chaos, chaos_namespace: str, broker: dict[str, str]
) -> None:
    ns = chaos_namespace
    with pytest.raises(TargetingError, match=r"(?s)no pods match selector 'app=ap'.*app-"):
        chaos.network.cut("app=ap", namespace=ns, to="broker")
    with pytest.raises(TargetingError, match=r"(?s)no Service 'brokr'.*broker"):
        chaos.network.cut("app=app", namespace=ns, to="brokr")
    with pytest.raises(ChaosConfigError, match=r"port=9999 is not a port of Service"):
        chaos.network.cut("app=app", namespace=ns, to="broker", port=9999)
    with pytest.raises(ChaosConfigError, match="direction='out'"):
        chaos.network.partition("app=app", namespace=ns, direction="out")
    with pytest.raises(TargetingError, match=r"peers: no pods match selector 'app=nats'"):
        chaos.network.partition("app=app", namespace=ns, peers="app=nats")
    with pytest.raises(ChaosConfigError, match="percent=150"):
        chaos.network.loss("app=app", namespace=ns, percent=150)
    with pytest.raises(ChaosConfigError, match="within="):
        chaos.network.cut("app=app", namespace=ns, to="broker", within="soon")
    assert ephemeral(app_pod(kube, ns)) == {}
    assert policies(kube, ns) == {}
    assert records_in(kube, ns) == []


def test_a_namespace_whose_pod_security_forbids_net_admin_is_refused_up_front(
    kube: Kube, chaos: Chaos, chaos_namespace: str, broker: dict[str, str]
) -> None:
    label: Any = {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline"}}}
    kube.core.patch_namespace(chaos_namespace, label)
    with pytest.raises(ChaosConfigError, match=r"NET_ADMIN, NET_RAW.*PodSecurity level 'baseline'"):
        chaos.network.cut("app=app", namespace=chaos_namespace, to="broker")
    assert ephemeral(app_pod(kube, chaos_namespace)) == {}
    assert records_in(kube, chaos_namespace) == []


def test_a_dry_run_plans_the_cut_and_touches_nothing(
    kube: Kube, chaos_session: ChaosSession, chaos_namespace: str, broker: dict[str, str]
) -> None:
    settings = replace(chaos_session.settings, dry_run=True)
    session = ChaosSession(kube, settings, run_id="dry-run", seed=1)
    session.safety.allow_throwaway(chaos_namespace)
    dry = Chaos(session, "test_dry_cut", Timeline("test_dry_cut"))
    pod = app_pod(kube, chaos_namespace)

    with pytest.raises(pytest.skip.Exception) as skipped:
        dry.network.cut("app=app", namespace=chaos_namespace, to="broker", port=4222)
    assert str(skipped.value).startswith(
        f"chaos dry run: would cut 1 of 1 pod(s) matching 'app=app' in {chaos_namespace} off "
        f"Service {chaos_namespace}/broker"
    )
    with pytest.raises(pytest.skip.Exception, match="would partition 1 pod"):
        dry.network.partition("app=app", namespace=chaos_namespace)
    assert (
        app_pod(kube, chaos_namespace)["metadata"]["resourceVersion"]
        == (pod["metadata"]["resourceVersion"])
    )
    assert policies(kube, chaos_namespace) == {}
    assert records_in(kube, chaos_namespace) == []


def test_an_injection_that_never_reached_the_pod_needs_no_undo(
    kube: Kube, chaos_namespace: str, broker: dict[str, str]
) -> None:
    pod = app_pod(kube, chaos_namespace)
    record = UndoRecord(
        id="0123456789ab",
        fault="network.cut",
        test="refused by admission",
        owner=Owner.current("refused"),
        kind="Pod",
        namespace=chaos_namespace,
        name=pod["metadata"]["name"],
        uid=pod["metadata"]["uid"],
        undo="ephemeral-container",
        payload={
            "effect": "iptables",
            "tag": "0123456789ab",
            "image": DEFAULT_TOOLBOX_IMAGE,
            "container": "app",
            "capabilities": ["NET_ADMIN", "NET_RAW"],
            "inject_container": "chaos-cut-0123456789ab",
            "undo_container": "chaos-undo-0123456789ab",
        },
    )
    assert undo.revert(kube, record) == "nothing to undo"
    assert ephemeral(app_pod(kube, chaos_namespace)) == {}


def test_a_service_in_another_namespace_is_named_service_dot_namespace(
    kube: Kube, chaos: Chaos, chaos_namespace: str, broker: dict[str, str]
) -> None:
    fault = chaos.network.cut("app=app", namespace=chaos_namespace, to=f"broker.{chaos_namespace}")
    assert sorted(fault.details["ips"]) == sorted(broker.values())


class PlayedKubelet:
    """Plays a real node's kubelet for ephemeral containers, through the API.

    kwok reports nothing for ephemeral containers; this writes what a kubelet would
    (``status.ephemeralContainerStatuses``) with the outcome the test chooses per container, so
    the real-node paths (waiting for exit codes, reading reports, failures) run against the API.
    ``outcome(name, names)`` gives a container's state, knowing every ephemeral container of the
    pod (e.g. a stress container runs until its undo container exists).
    """

    def __init__(
        self, kube: Kube, namespace: str, outcome: Callable[[str, list[str]], dict[str, Any]]
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.outcome = outcome
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PlayedKubelet:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        def report(pods: list[Any]) -> bool:
            for pod in pods:
                self._report(self.kube.serialize(pod))
            return self.stop.is_set()

        while not self.stop.is_set():
            with contextlib.suppress(WaitTimeout):
                self.kube.wait(
                    functools.partial(self.kube.core.list_namespaced_pod, self.namespace),
                    report,
                    within=1,
                    what="the test to end",
                )

    def _report(self, pod: dict[str, Any]) -> None:
        statuses = {s["name"]: s for s in pod["status"].get("ephemeralContainerStatuses") or []}
        changed = False
        containers = pod["spec"].get("ephemeralContainers") or []
        for container in containers:
            name = container["name"]
            state = self.outcome(name, [c["name"] for c in containers])
            if statuses.get(name, {}).get("state") != state:
                statuses[name] = {
                    "name": name,
                    "image": container["image"],
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": state,
                }
                changed = True
        if changed:
            body: Any = {"status": {"ephemeralContainerStatuses": list(statuses.values())}}
            self.kube.core.patch_namespaced_pod_status(
                pod["metadata"]["name"], self.namespace, body
            )


def exited(code: int, message: str) -> dict[str, Any]:
    return {
        "terminated": {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "message": message,
            "startedAt": "2026-01-01T00:00:00Z",
            "finishedAt": "2026-01-01T00:00:01Z",
        }
    }


@pytest.fixture
def real_node(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pods' node counts as a real one (the test plays its kubelet with PlayedKubelet)."""
    monkeypatch.setattr(ephemeral_module, "node_is_fake", lambda kube, name: False)


def test_on_a_real_node_the_cut_waits_for_its_report_and_revert_for_its_undo(
    kube: Kube, chaos: Chaos, chaos_namespace: str, broker: dict[str, str], real_node: None
) -> None:
    def outcome(name: str, _all: list[str]) -> dict[str, Any]:
        if name.startswith("chaos-cut-"):
            return exited(0, f"cut {name}: 9 rules; closed=2 left=0")
        return exited(0, "removed the chain")

    with PlayedKubelet(kube, chaos_namespace, outcome):
        fault = chaos.network.cut("app=app", namespace=chaos_namespace, to="broker")
        (target,) = fault.targets
        assert fault.details["connections"] == {target: {"closed": 2, "left": 0}}
        assert fault.details["effect"] == "applied in the pods' network namespaces"
        assert fault.details["pods"][target].startswith("terminated (exit 0) Completed: cut")
        assert undo.revert(kube, fault.records[0]) == "reverted"
        assert undo.revert(kube, fault.records[0]) == "already reverted"
        fault.revert()
    assert records_in(kube, chaos_namespace) == []


def test_on_a_real_node_a_failed_cut_is_undone_and_says_why(
    kube: Kube, chaos: Chaos, chaos_namespace: str, broker: dict[str, str], real_node: None
) -> None:
    def outcome(name: str, _all: list[str]) -> dict[str, Any]:
        if name.startswith("chaos-cut-"):
            return exited(1, "iptables v1.8.9 (nf_tables): Could not fetch rule set generation id")
        return exited(0, "removed")

    with (
        PlayedKubelet(kube, chaos_namespace, outcome),
        pytest.raises(InjectError, match=r"failed: terminated \(exit 1\) Error: iptables"),
    ):
        chaos.network.cut("app=app", namespace=chaos_namespace, to="broker")
    names = sorted(n.split("-")[1] for n in ephemeral(app_pod(kube, chaos_namespace)))
    assert names == ["cut", "undo"]  # what the failed script may have added is removed
    assert records_in(kube, chaos_namespace) == []


def test_on_a_real_node_that_can_delay_neither_with_netem_nor_nfqueue_latency_skips(
    kube: Kube, chaos: Chaos, chaos_namespace: str, broker: dict[str, str], real_node: None
) -> None:
    def outcome(name: str, _all: list[str]) -> dict[str, Any]:
        if name.startswith("chaos-latency-"):
            return exited(3, "LATENCY-UNAVAILABLE: cannot bind NFQUEUE 2587: no such file")
        return exited(0, "latency 0123456789ab was already gone")

    with (
        PlayedKubelet(kube, chaos_namespace, outcome),
        pytest.raises(pytest.skip.Exception, match=re.escape(NO_NETEM)),
    ):
        chaos.network.latency("app=app", namespace=chaos_namespace, delay="100ms")
    assert records_in(kube, chaos_namespace) == []


def test_on_a_real_node_a_missing_toolbox_image_is_named(
    kube: Kube, chaos: Chaos, chaos_namespace: str, broker: dict[str, str], real_node: None
) -> None:
    def outcome(name: str, _all: list[str]) -> dict[str, Any]:
        if name.startswith("chaos-undo-"):
            return exited(0, "removed")
        return {"waiting": {"reason": "ErrImageNeverPull", "message": "image not present"}}

    with (
        PlayedKubelet(kube, chaos_namespace, outcome),
        pytest.raises(InjectError, match="Is the toolbox image 'no/such:1' on node"),
    ):
        chaos.network.cut("app=app", namespace=chaos_namespace, to="broker", image="no/such:1")
