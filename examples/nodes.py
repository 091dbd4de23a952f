"""A pool of extra fake nodes for node chaos, so a drain or a delete touches nobody else's pods.

The embedded cluster's three nodes (``kwok-node-0..2``) run the pods of every other test at the
same time (pytest-xdist); draining one of them would evict those pods under their tests. So the
node examples add nodes of their own for the length of a test:

* kwok-managed (annotation ``kwok.x-k8s.io/node: fake``): kwok makes them Ready and runs the
  pods bound to them, as it does for the cluster's own nodes;
* labelled ``chaos.pytest.dev/pool=<id>``, in a zone of their own
  (``topology.kubernetes.io/zone=<id>``), and ``type=kwok-pool`` (not ``type=kwok``: that names
  the cluster's own three nodes);
* tainted ``chaos.pytest.dev/pool=<id>:NoSchedule``, so only pods that tolerate it (the
  workloads built by :meth:`NodePool.deployment`) ever land there.

On a real cluster you would target a node pool (``selector="cloud.google.com/gke-nodepool=..."``)
and skip all of this.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pytest_chaos import Kube

POOL_LABEL = "chaos.pytest.dev/pool"
ZONE_LABEL = "topology.kubernetes.io/zone"
HOSTNAME = "kubernetes.io/hostname"


def node_manifest(name: str, pool: str, *, kubelet_version: str) -> dict[str, Any]:
    """A kwok-managed fake Node of the pool: the local cluster's own node, renamed and pooled."""
    from pytest_chaos.cluster.bootstrap import node_manifest as cluster_node

    node = cluster_node(0, kubelet_version=kubelet_version)
    labels = node["metadata"]["labels"]
    labels.update(
        {
            HOSTNAME: name,
            # The node-lifecycle controller adds these deprecated twins a moment after the
            # node appears; set up front, the node's labels are settled once it is Ready.
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": "amd64",
            ZONE_LABEL: pool,
            POOL_LABEL: pool,
            "type": "kwok-pool",
        }
    )
    labels.pop("node.kubernetes.io/instance-type", None)
    node["metadata"]["name"] = name
    node["spec"] = {"taints": [{"key": POOL_LABEL, "value": pool, "effect": "NoSchedule"}]}
    return node


def node_ready(node: Any) -> bool:
    """Ready, and the node-lifecycle controller has lifted its not-ready taint."""
    conditions = (node.status.conditions or []) if node.status else []
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    taints = (node.spec.taints or []) if node.spec else []
    return ready and not any(t.key.startswith("node.kubernetes.io/not-ready") for t in taints)


@dataclass
class NodePool:
    """Extra nodes of one test: their names, pool id and zone, and workloads pinned to them."""

    kube: Kube
    id: str
    nodes: list[str] = field(default_factory=list)

    @property
    def selector(self) -> str:
        """The node label selector of the pool, e.g. for ``chaos.nodes.drain(selector=...)``."""
        return f"{POOL_LABEL}={self.id}"

    @property
    def zone(self) -> str:
        """The pool's zone (a zone of its own)."""
        return self.id

    def pod_spec(self, name: str) -> dict[str, Any]:
        """A pod spec that runs on the pool only (tolerates its taint, selects its label)."""
        return self._placed({"containers": [{"name": name, "image": f"registry.example/{name}:1"}]})

    def _placed(self, spec: dict[str, Any]) -> dict[str, Any]:
        spec["nodeSelector"] = {**(spec.get("nodeSelector") or {}), POOL_LABEL: self.id}
        spec["tolerations"] = [
            *(spec.get("tolerations") or []),
            {"key": POOL_LABEL, "operator": "Equal", "value": self.id, "effect": "NoSchedule"},
        ]
        return spec

    def pin(self, workload: dict[str, Any], *, one_per_node: bool = False) -> dict[str, Any]:
        """Put a Deployment (or any workload with a pod template) on the pool; return it.

        Args:
            workload: the manifest; its pod template gets the pool's nodeSelector and toleration.
            one_per_node: never two of its pods on one node (required pod anti-affinity on the
                hostname): what keeps a one-node failure from taking every replica.
        """
        template = workload["spec"]["template"]
        spec = self._placed(template["spec"])
        if one_per_node:
            spec["affinity"] = {
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "labelSelector": {"matchLabels": dict(template["metadata"]["labels"])},
                            "topologyKey": HOSTNAME,
                        }
                    ]
                }
            }
        return workload

    def deployment(
        self, name: str, *, replicas: int, one_per_node: bool = False, empty_dir: bool = False
    ) -> dict[str, Any]:
        """A Deployment (``app=<name>``) on the pool.

        Args:
            name: its name and ``app`` label.
            replicas: how many pods.
            one_per_node: never two replicas on one node (see :meth:`pin`).
            empty_dir: give the pods an emptyDir volume (scratch data a drain would delete).
        """
        labels = {"app": name}
        spec: dict[str, Any] = {
            "containers": [{"name": name, "image": f"registry.example/{name}:1"}]
        }
        if empty_dir:
            spec["volumes"] = [{"name": "scratch", "emptyDir": {}}]
            spec["containers"][0]["volumeMounts"] = [{"name": "scratch", "mountPath": "/scratch"}]
        workload = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": spec},
            },
        }
        return self.pin(workload, one_per_node=one_per_node)

    def daemonset(self, name: str) -> dict[str, Any]:
        """A DaemonSet (``app=<name>``) with one pod on every node of the pool."""
        labels = {"app": name}
        return {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": self.pod_spec(name)},
            },
        }

    def state(self, name: str) -> dict[str, Any]:
        """What node faults change and their undo must restore, as the API returns it.

        Labels, annotations, taints and ``spec.unschedulable``.
        """
        node = self.kube.serialize(self.kube.core.read_node(name))
        spec = node.get("spec") or {}
        return {
            "labels": node["metadata"].get("labels"),
            "annotations": node["metadata"].get("annotations"),
            "taints": spec.get("taints"),
            "unschedulable": spec.get("unschedulable"),
        }

    def states(self) -> dict[str, dict[str, Any]]:
        """:meth:`state` of every node of the pool."""
        return {name: self.state(name) for name in self.nodes}

    def wait_ready(self, names: list[str] | None = None, *, within: float = 60) -> None:
        """Until the nodes (default: all of the pool) are Ready without a not-ready taint."""
        wanted = set(names or self.nodes)
        self.kube.wait(
            self.kube.core.list_node,
            lambda nodes: wanted <= {n.metadata.name for n in nodes if node_ready(n)},
            within=within,
            what=f"node(s) {', '.join(sorted(wanted))} Ready",
            label_selector=self.selector,
        )

    def host_of(self, namespace: str, selector: str) -> list[str]:
        """The pool nodes running (not terminating) pods that match selector."""
        pods = self.kube.core.list_namespaced_pod(namespace, label_selector=selector).items
        return sorted(
            {
                p.spec.node_name
                for p in pods
                if p.spec and p.spec.node_name and not p.metadata.deletion_timestamp
            }
        )


@contextmanager
def node_pool(kube: Kube, size: int, *, prefix: str = "pool") -> Iterator[NodePool]:
    """``size`` extra Ready kwok nodes for the block; deleted afterwards (their pods too)."""
    pool = NodePool(kube, f"{prefix}-{secrets.token_hex(3)}")
    version = kube.server_version()
    try:
        for index in range(size):
            name = f"{pool.id}-{index}"
            kube.core.create_node(node_manifest(name, pool.id, kubelet_version=version))
            pool.nodes.append(name)
        pool.wait_ready()
        yield pool
    finally:
        remove_pool(kube, pool)


def remove_pool(kube: Kube, pool: NodePool) -> None:
    """Delete the pool's nodes (whatever a test left of them) and the pods bound to them."""
    from kubernetes.client.exceptions import ApiException

    for name in pool.nodes:
        try:
            kube.core.delete_node(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
    # Without a node, nothing finishes their pods' graceful deletion: end them now, so their
    # namespaces go at once.
    for name in pool.nodes:
        for pod in kube.core.list_pod_for_all_namespaces(
            field_selector=f"spec.nodeName={name}"
        ).items:
            try:
                kube.core.delete_namespaced_pod(
                    pod.metadata.name, pod.metadata.namespace, grace_period_seconds=0
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise
    kube.wait(
        functools.partial(kube.core.list_node),
        lambda nodes: not {n.metadata.name for n in nodes} & set(pool.nodes),
        within=60,
        what=f"pool {pool.id} nodes gone",
        label_selector=f"{POOL_LABEL}={pool.id}",
    )
