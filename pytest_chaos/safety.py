"""Safety: what chaos may touch. Every check runs before anything is mutated.

* Contexts: local and test clusters are allowed by default (the embedded cluster, ``kind-*``,
  ``minikube``, ``docker-desktop``...); anything else is refused until ``--chaos-allow-context``
  names it.
* Namespaces: system namespaces (``kube-system``...) are refused unless listed by name; when
  ``--chaos-allow-namespace`` is given, only those (and namespaces ``chaos_namespace`` made) are
  allowed.
* Blast radius: one fault may hit at most ``--chaos-max-percent`` of the pods that match.
* Nodes: a fault that takes nodes out of scheduling (cordon, drain, NoSchedule/NoExecute taint,
  delete, zone outage) must leave at least one schedulable node, and obeys the blast radius over
  the cluster's nodes.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence

from pytest_chaos.errors import SafetyError
from pytest_chaos.settings import DEFAULT_ALLOWED_CONTEXTS, PROTECTED_NAMESPACES, Settings


class Safety:
    """The allow-lists and limits of one run."""

    def __init__(self, settings: Settings, context: str) -> None:
        """Guard the cluster reached through context, with the limits of settings."""
        self.settings = settings
        self.context = context
        self.throwaway_namespaces: set[str] = set()

    def check_context(self) -> None:
        """Refuse a context that is neither a local/test cluster nor explicitly allowed."""
        patterns = (*DEFAULT_ALLOWED_CONTEXTS, *self.settings.allow_contexts)
        if any(fnmatch.fnmatchcase(self.context, pattern) for pattern in patterns):
            return
        raise SafetyError(
            f"refusing to inject faults through context {self.context!r}: it is not a local or "
            f"test cluster. If this cluster is meant for chaos, allow it with "
            f"--chaos-allow-context={self.context} (or the ini key chaos_allow_context)"
        )

    def allow_throwaway(self, namespace: str) -> None:
        """Allow a namespace this run created (chaos_namespace)."""
        self.throwaway_namespaces.add(namespace)

    def check_namespace(self, namespace: str) -> None:
        """Refuse a namespace outside the allow-list (or a system namespace not listed)."""
        if namespace in self.throwaway_namespaces:
            return
        allowed = self.settings.allow_namespaces
        if namespace in allowed:
            return
        if namespace in PROTECTED_NAMESPACES:
            raise SafetyError(
                f"refusing to touch namespace {namespace!r}: it is a system namespace. Allow it "
                f"explicitly with --chaos-allow-namespace={namespace} if you really mean it"
            )
        if allowed:
            raise SafetyError(
                f"refusing to touch namespace {namespace!r}: not in --chaos-allow-namespace "
                f"(allowed: {', '.join(allowed)})"
            )

    def check_blast_radius(self, chosen: int, matching: int, what: str) -> None:
        """Refuse to hit more than --chaos-max-percent of the matching objects."""
        limit = self.settings.max_percent
        if limit >= 100 or matching == 0:
            return
        allowed = max(1, math.floor(matching * limit / 100))
        if chosen > allowed:
            raise SafetyError(
                f"refusing to hit {chosen} of {matching} {what}: the blast radius "
                f"(--chaos-max-percent={limit:g}) allows {allowed}"
            )

    def check_nodes(self, chosen: Sequence[str], schedulable: Sequence[str], verb: str) -> None:
        """Refuse to take the last schedulable node(s) out, or more nodes than allowed."""
        if not chosen:
            return
        remaining = sorted(set(schedulable) - set(chosen))
        if not remaining:
            raise SafetyError(
                f"refusing to {verb} {', '.join(sorted(chosen))}: no schedulable node would be "
                f"left (schedulable now: {', '.join(sorted(schedulable)) or 'none'}); add a node "
                "or target fewer"
            )
        self.check_blast_radius(len(chosen), len(schedulable), "schedulable nodes")
