"""``pytest-chaos rbac``: the least RBAC a test suite's chaos needs.

The suite's sources are read (not run) for the faults they use — ``chaos.<family>.<verb>(``
calls and ``chaos_*`` markers — and the rules are the union of what pytest-chaos itself needs
(ledger records, watches, diagnosis, throw-away namespaces) and what each of those faults needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pytest_chaos.markers import FAULT_MARKERS

Rule = tuple[str, str, tuple[str, ...]]  # (api group, resource, verbs)

READ = ("get", "list", "watch")

#: What every run needs: the ledger, the leftover check, probes and their diagnosis.
BASE: tuple[Rule, ...] = (
    ("", "configmaps", ("get", "list", "create", "delete")),
    ("", "pods", READ),
    ("", "events", ("list",)),
    ("", "nodes", READ),
    ("", "namespaces", ("get",)),
    ("apps", "deployments", READ),
    ("apps", "statefulsets", READ),
    ("apps", "daemonsets", READ),
    ("apps", "replicasets", READ),
    # Target leases: one fault at a time per target, across runs (faults/leases.py).
    (
        "coordination.k8s.io",
        "leases",
        ("get", "list", "watch", "create", "update", "patch", "delete"),
    ),
)
#: chaos_namespace: namespaces created and deleted (cluster scope), and waited for.
THROWAWAY: tuple[Rule, ...] = (
    ("", "namespaces", ("create", "delete")),
    ("", "serviceaccounts", ("list", "watch")),
)
_NODE_PATCH: tuple[Rule, ...] = (("", "nodes", ("get", "list", "patch")),)
_DRAIN: tuple[Rule, ...] = (
    *_NODE_PATCH,
    ("", "pods/eviction", ("create",)),
    ("policy", "poddisruptionbudgets", ("list",)),
)
_ISTIO: tuple[Rule, ...] = (
    ("networking.istio.io", "virtualservices", ("get", "list", "patch", "create", "delete")),
    ("", "services", ("get", "list")),
)
_EPHEMERAL: tuple[Rule, ...] = (
    ("", "pods/ephemeralcontainers", ("patch",)),
    ("", "services", ("get", "list")),
    ("discovery.k8s.io", "endpointslices", ("list",)),
)
FAULTS: dict[str, tuple[Rule, ...]] = {
    "pods.kill": (("", "pods", ("delete",)),),
    "random.pods": (("", "pods", ("delete",)),),
    "deployments.delete": (("apps", "deployments", ("delete", "create")),),
    "deployments.scale": (("apps", "deployments", ("patch",)),),
    "deployments.restart": (("apps", "deployments", ("patch",)),),
    "statefulsets.delete": (("apps", "statefulsets", ("delete", "create")),),
    "statefulsets.scale": (("apps", "statefulsets", ("patch",)),),
    "statefulsets.restart": (("apps", "statefulsets", ("patch",)),),
    "nodes.cordon": _NODE_PATCH,
    "nodes.taint": _NODE_PATCH,
    "nodes.drain": _DRAIN,
    "nodes.delete": (("", "nodes", ("get", "list", "delete", "create")),),
    # The machine is stopped on the host (our own clusters only); the API is only read.
    "nodes.stop": (("", "nodes", ("get", "list")),),
    "nodes.zone_outage": (*_DRAIN, ("", "nodes", ("delete", "create"))),
    "istio.abort": _ISTIO,
    "istio.delay": _ISTIO,
    "network.partition": (
        ("networking.k8s.io", "networkpolicies", ("get", "list", "create", "delete")),
    ),
    "network.cut": _EPHEMERAL,
    "network.loss": _EPHEMERAL,
    "network.latency": _EPHEMERAL,
    "stress.pods": _EPHEMERAL,
    "stress.nodes": (("", "pods", ("create", "delete")),),
    "load.http": (("", "pods", ("create", "delete")),),
}
#: Each marker and the fault it injects (from the markers' own table: one source).
MARKERS = {name: f"{m.family}.{m.verb}" for name, m in FAULT_MARKERS.items()}

_CALL = re.compile(r"\b(?:module_|class_)?chaos\.([a-z]+)\.(\w+)\s*\(")
_MARKER = re.compile(r"\bmark\.(chaos_\w+)\s*\(")


def faults_used(paths: Iterable[Path]) -> tuple[set[str], bool]:
    """The faults the Python files under paths use, and whether they use chaos_namespace."""
    found: set[str] = set()
    throwaway = False
    for root in paths:
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for path in files:
            text = path.read_text(errors="replace")
            found |= {f"{f}.{v}" for f, v in _CALL.findall(text) if f"{f}.{v}" in FAULTS}
            found |= {MARKERS[m] for m in _MARKER.findall(text) if m in MARKERS}
            throwaway = throwaway or "chaos_namespace" in text
    return found, throwaway


def rules(faults: Iterable[str], *, throwaway: bool) -> list[dict[str, Any]]:
    """Merged RBAC rules (one per group and resource) for these faults."""
    merged: dict[tuple[str, str], set[str]] = {}
    wanted = [*BASE, *(THROWAWAY if throwaway else ())]
    for fault in sorted(faults):
        wanted += FAULTS[fault]
    for group, resource, verbs in wanted:
        merged.setdefault((group, resource), set()).update(verbs)
    return [
        {"apiGroups": [group], "resources": [resource], "verbs": sorted(verbs)}
        for (group, resource), verbs in sorted(merged.items())
    ]


def manifest(faults: Iterable[str], *, throwaway: bool, name: str = "pytest-chaos") -> str:
    """A ClusterRole (namespaced faults and throw-away namespaces need cluster scope) as YAML."""
    import yaml

    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "pytest-chaos"}},
        "rules": rules(faults, throwaway=throwaway),
    }
    return yaml.safe_dump(role, sort_keys=False)


#: What ``pytest-chaos monkey`` needs in its namespace: list its pods, delete them. Nothing else.
MONKEY: tuple[Rule, ...] = (("", "pods", ("delete", "list")),)


def monkey_manifest(namespace: str, *, name: str = "pytest-chaos-monkey") -> str:
    """A ServiceAccount, a Role in namespace and their RoleBinding for ``pytest-chaos monkey``."""
    import yaml

    labels = {"app.kubernetes.io/managed-by": "pytest-chaos"}
    meta = {"name": name, "namespace": namespace, "labels": labels}
    documents = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [
                {"apiGroups": [group], "resources": [resource], "verbs": sorted(verbs)}
                for group, resource, verbs in MONKEY
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    ]
    return yaml.safe_dump_all(documents, sort_keys=False)
