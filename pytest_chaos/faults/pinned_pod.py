"""A pod of our own pinned to one node: what ``stress.nodes`` and ``load.http`` run.

Pinned (``nodeName``, tolerating every taint), unprivileged (nobody, no capabilities, the
runtime's seccomp profile), bounded in time (``activeDeadlineSeconds``) and tagged with its fault,
so a create retried after a lost answer knows its own first attempt.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from pytest_chaos.faults.ephemeral import NOBODY
from pytest_chaos.faults.undo import FAULT_LABEL, tagged
from pytest_chaos.kube import Kube
from pytest_chaos.ledger import MANAGED_BY, MANAGED_BY_LABEL


def pinned_pod(
    name: str,
    tag: str,
    *,
    node: str,
    image: str,
    container: str,
    command: Sequence[str],
    lifetime: int,
    grace: int,
) -> dict[str, Any]:
    """The manifest: one container running command, for at most lifetime seconds."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY, FAULT_LABEL: tag},
        },
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "activeDeadlineSeconds": lifetime,
            "terminationGracePeriodSeconds": grace,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "tolerations": [{"operator": "Exists"}],
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": NOBODY,
                "runAsGroup": NOBODY,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": container,
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": list(command),
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                }
            ],
        },
    }


def create_pinned_pod(kube: Kube, namespace: str, manifest: dict[str, Any]) -> None:
    """Create it; a create retried after a lost answer finds its own (tagged) first attempt."""
    read = functools.partial(kube.read, kube.core.read_namespaced_pod, namespace=namespace)
    kube.create(kube.core.create_namespaced_pod, namespace, manifest, ours=tagged(manifest, read))
