"""chaos.nodes: cordon, drain, taint, delete and zone outages of nodes.

Every verb picks its nodes the same way: ``name=`` (one node or a list), ``selector=`` (a node
label selector), ``namespace=`` alone (the nodes running any pod of that namespace) and
``hosting=`` + ``namespace=`` (the nodes running pods that match a pod label selector there);
given together, a node must satisfy all of them. ``count=`` then picks that many
distinct nodes at random (seeded: ``--chaos-seed`` replays the choice). Nothing matching, fewer
nodes than ``count``, or a bad argument is an error before anything is touched, and the error
lists the nodes that do exist with their labels.

What each verb does and how it is undone:

* ``cordon``: marks nodes unschedulable. Only nodes that were schedulable are targets, so the
  undo uncordons exactly the nodes this fault cordoned; a node an operator had cordoned stays
  cordoned.
* ``drain``: what ``kubectl drain`` and every cluster upgrade do. Cordon first, then evict every
  pod through the Eviction API, so PodDisruptionBudgets are honoured (DaemonSet and mirror pods are
  left alone; pods with emptyDir data or without a controller are refused up front, naming them).
  Evictions run concurrently; a budget that blocks them is retried until ``timeout``, then the
  error names the budget. A drain that cannot finish undoes its own cordon before raising: never a
  half-applied fault (the book's drain left its node ``SchedulingDisabled``). The undo uncordons;
  evicted pods are not brought back: their controllers have already re-created them elsewhere,
  which is what the test observes, and an eviction cannot be reversed.
* ``taint``: adds exactly one taint (key, value, effect). A node that already carries a taint with
  that key and effect is not a target (that taint is not ours to remove). The undo removes exactly
  our taint and leaves every other one alone, including taints added meanwhile; a taint whose value
  someone changed meanwhile is reported as drift, not removed.
* ``delete``: deletes the Node object, not the machine. On a cloud cluster the VM keeps running
  (its containers too) and in most setups its kubelet re-registers the Node by itself; the cloud
  node controller deletes Node objects whose VM is gone. The undo re-creates the Node from the
  manifest recorded before the delete, unless a node of that name exists again (re-registered),
  which is left as it is.
* ``zone_outage``: every node of a ``topology.kubernetes.io/zone`` at once, by cordon, drain,
  NoExecute taint or delete, as one fault, undone node by node as above.

Every change is written to the ledger first and made with optimistic concurrency (the node's
resourceVersion, retried on 409), so the undo works from the record alone (``pytest-chaos
cleanup`` after a crash) and never overwrites someone else's change.

Safety: a verb that takes nodes out of scheduling refuses to take out the last schedulable node
and obeys ``--chaos-max-percent`` over the schedulable nodes (what counts as schedulable: see
:mod:`pytest_chaos.faults.node_rules`).

This module holds the verbs (:class:`NodeFaults`); the argument checks and pure decisions are in
``node_rules``, the eviction machinery in ``drain``, node writes and the undo in ``node_undo``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NoReturn

from pytest_chaos.durations import Duration
from pytest_chaos.errors import InconclusiveError, InjectError, TargetingError, WaitTimeout
from pytest_chaos.faults import Fault, FaultContext, injecting
from pytest_chaos.faults.drain import (
    Drainer,
    await_cordon_taint,
    drain_details,
    drain_summary,
    pods_on,
)
from pytest_chaos.faults.node_rules import (
    CORDON_ANNOTATION,
    ZONE_LABEL,
    DrainPlan,
    Taint,
    already_cordoned,
    already_tainted,
    check_cordon_arguments,
    check_drain_arguments,
    check_node_targeting,
    check_stop_arguments,
    check_taint_arguments,
    check_zone_outage_arguments,
    eligible_nodes,
    existing_lines,
    hosting_nodes,
    no_hosted_pods,
    no_such_zone,
    node_labels,
    node_name,
    pick_nodes,
    plan_drain,
    schedulable_nodes,
    short_listing,
    with_taint,
)
from pytest_chaos.faults.node_undo import (
    ATTEMPTS,
    UNDO_RECREATE,
    UNDO_UNCORDON,
    UNDO_UNTAINT,
    held_taints,
    open_node_records,
    patch_node,
    read_node,
)
from pytest_chaos.faults.undo import restorable_manifest
from pytest_chaos.kube.retry import call
from pytest_chaos.ledger import UndoRecord
from pytest_chaos.targeting import matches, nothing_matched, parse_label_selector

#: The NoExecute taint of ``zone_outage(how="taint")``.
ZONE_OUTAGE_TAINT: Final = "chaos.pytest.dev/zone-outage"
#: Taint effects that take a node out of scheduling (the safety check applies to them).
BLOCKING_EFFECTS: Final = ("NoSchedule", "NoExecute")
#: How long deleted Node objects may take to go before the fault is inconclusive (seconds).
DELETE_WITHIN: Final = 60.0


@dataclass
class _Targets:
    """The nodes a verb will touch, and the cluster's nodes it decided among."""

    chosen: list[dict[str, Any]]
    nodes: list[dict[str, Any]]

    @property
    def names(self) -> list[str]:
        return [node_name(n) for n in self.chosen]


class NodeFaults:
    """``chaos.nodes``: see the module docstring."""

    def __init__(self, ctx: FaultContext) -> None:
        """Bind the verbs to a fault context."""
        self._ctx = ctx

    # ------------------------------------------------------------------ cordon

    def cordon(
        self,
        name: str | Sequence[str] | None = None,
        *,
        selector: str | None = None,
        hosting: str | None = None,
        namespace: str | None = None,
        count: int = 1,
    ) -> Fault:
        """Mark nodes unschedulable (``kubectl cordon``): running pods stay, new ones go elsewhere.

        Args:
            name: a node name, or a list of them.
            selector: a node label selector, e.g. ``"kubernetes.io/os=linux"``.
            hosting: a pod label selector: nodes running such pods (needs ``namespace``).
            namespace: nodes hosting pods of this namespace: any of its pods, or those that
                ``hosting`` selects (terminating and unscheduled pods do not count).
            count: how many of the matching nodes, picked at random (seeded), never twice.

        Undo: uncordons the nodes this fault cordoned, and only those. A node already cordoned
        (by an operator, by another fault) is not a target, so it stays cordoned; if every
        matching node is already cordoned, that is a TargetingError. A node someone uncordoned
        meanwhile is left alone; one someone uncordoned and cordoned again (the node's
        managedFields name another owner of ``spec.unschedulable``) is a DriftError and stays
        cordoned; a node deleted meanwhile has nothing to undo.
        """
        ctx = self._ctx
        names = check_cordon_arguments(
            name, selector=selector, hosting=hosting, namespace=namespace, count=count
        )
        targets = self._target(
            names, selector, hosting, namespace, count, skip=already_cordoned, verb="cordon"
        )
        ctx.safety.check_nodes(targets.names, self._schedulable(targets.nodes), "cordon")
        ctx.plan("nodes.cordon", f"cordon {', '.join(targets.names)}")
        records: list[UndoRecord] = []
        with injecting(ctx, "nodes.cordon", records):
            for node in targets.chosen:
                self._cordon(node, "nodes.cordon", records)
            await_cordon_taint(ctx, targets.names)
            ctx.timeline.add(
                "inject",
                f"nodes.cordon: {', '.join(targets.names)} cordoned",
                targets=targets.names,
            )
        return ctx.done(Fault(ctx, "nodes.cordon", tuple(targets.names), records))

    # ------------------------------------------------------------------ drain

    def drain(
        self,
        name: str | Sequence[str] | None = None,
        *,
        selector: str | None = None,
        hosting: str | None = None,
        namespace: str | None = None,
        count: int = 1,
        timeout: Duration = "120s",
        delete_emptydir_data: bool = False,
        concurrency: int = 10,
    ) -> Fault:
        """Drain nodes as ``kubectl drain --ignore-daemonsets`` does, and as upgrades do.

        Each node is cordoned, then every pod on it is evicted through the Eviction API, which
        honours PodDisruptionBudgets; the call returns once the evicted pods are gone from the
        node. DaemonSet pods and mirror pods are left in place; pods already terminating are
        waited for; finished pods are evicted.

        Args:
            name: a node name, or a list of them.
            selector: a node label selector, e.g. ``"kubernetes.io/os=linux"``.
            hosting: a pod label selector: nodes running such pods (needs ``namespace``).
            namespace: nodes hosting pods of this namespace: any of its pods, or those that
                ``hosting`` selects (terminating and unscheduled pods do not count).
            count: how many of the matching nodes, picked at random (seeded), never twice.
            timeout: how long the whole drain may take. A budget that blocks an eviction
                (HTTP 429) is retried with backoff until then; at the deadline the drain fails
                with an InjectError naming the budget(s).
            delete_emptydir_data: evict pods with emptyDir volumes too (their data is lost).
                Without it such pods are refused, by name, before anything is touched.
            concurrency: evictions in flight at once.

        Pods without a controller (nothing would re-create them) are refused, by name, before
        anything is touched, as ``kubectl drain`` does without ``--force``. Nodes already
        cordoned are not targets (they are out of service already and their cordon is not ours).

        Undo: uncordons the nodes. Evicted pods are not brought back: their controllers
        re-created them elsewhere during the fault (that is what the test checks), and an
        eviction cannot be reversed. If the drain cannot finish (a budget, the timeout, any
        error), it uncordons the nodes before raising: the fault is never left half-applied;
        pods evicted until then stay evicted.
        """
        ctx = self._ctx
        seconds = check_drain_arguments(
            name,
            selector=selector,
            hosting=hosting,
            namespace=namespace,
            count=count,
            timeout=timeout,
            delete_emptydir_data=delete_emptydir_data,
            concurrency=concurrency,
        )
        names = check_node_targeting(name, selector, hosting, namespace)
        targets = self._target(
            names, selector, hosting, namespace, count, skip=already_cordoned, verb="drain"
        )
        ctx.safety.check_nodes(targets.names, self._schedulable(targets.nodes), "drain")
        plans = self._drain_plans(targets.names, delete_emptydir_data)
        ctx.plan("nodes.drain", drain_summary(plans))
        drainer = Drainer(ctx, seconds, delete_emptydir_data, concurrency)
        records: list[UndoRecord] = []
        with injecting(ctx, "nodes.drain", records):
            plans = drainer.run(targets.chosen, "nodes.drain", records, self._cordon)
            ctx.timeline.add(
                "inject", f"nodes.drain: {drain_summary(plans)}", targets=targets.names
            )
        return ctx.done(
            Fault(ctx, "nodes.drain", tuple(targets.names), records, details=drain_details(plans))
        )

    # ------------------------------------------------------------------ taint

    def taint(
        self,
        key: str,
        *,
        name: str | Sequence[str] | None = None,
        selector: str | None = None,
        hosting: str | None = None,
        namespace: str | None = None,
        value: str | None = None,
        effect: str = "NoSchedule",
        count: int = 1,
    ) -> Fault:
        """Add a taint to nodes (``kubectl taint nodes <node> key=value:effect``).

        Args:
            key: the taint key, e.g. ``"chaos.pytest.dev/down"``.
            name: a node name, or a list of them.
            selector: a node label selector.
            hosting: a pod label selector: nodes running such pods (needs ``namespace``).
            namespace: nodes hosting pods of this namespace: any of its pods, or those that
                ``hosting`` selects (terminating and unscheduled pods do not count).
            value: the taint value (None: no value).
            effect: ``NoSchedule`` (new pods go elsewhere), ``PreferNoSchedule`` (a preference
                only) or ``NoExecute`` (running pods that do not tolerate it are evicted too).
            count: how many of the matching nodes, picked at random (seeded), never twice.

        A node that already has a taint with this key and effect is not a target: that taint is
        not ours to remove (if every matching node has one, that is a TargetingError). The safety
        check (last schedulable node, ``--chaos-max-percent``) applies to NoSchedule and
        NoExecute.

        Undo: removes exactly this taint (same key, value and effect), leaving every other taint,
        including ones added meanwhile. If someone changed the taint's value meanwhile, that is a
        DriftError and the node is left as it is.
        """
        ctx = self._ctx
        taint = check_taint_arguments(
            key,
            name=name,
            selector=selector,
            hosting=hosting,
            namespace=namespace,
            value=value,
            effect=effect,
            count=count,
        )
        names = check_node_targeting(name, selector, hosting, namespace)
        targets = self._target(
            names,
            selector,
            hosting,
            namespace,
            count,
            skip=functools.partial(already_tainted, taint),
            verb=f"taint ({taint})",
        )
        if taint.effect in BLOCKING_EFFECTS:
            ctx.safety.check_nodes(
                targets.names, self._schedulable(targets.nodes), f"taint ({taint})"
            )
        ctx.plan("nodes.taint", f"taint {', '.join(targets.names)} with {taint}")
        records: list[UndoRecord] = []
        with injecting(ctx, "nodes.taint", records):
            for node in targets.chosen:
                self._taint(node, taint, "nodes.taint", records)
            ctx.timeline.add(
                "inject",
                f"nodes.taint: {taint} on {', '.join(targets.names)}",
                targets=targets.names,
            )
        return ctx.done(
            Fault(ctx, "nodes.taint", tuple(targets.names), records, details={"taint": str(taint)})
        )

    # ------------------------------------------------------------------ delete

    def delete(
        self,
        name: str | Sequence[str] | None = None,
        *,
        selector: str | None = None,
        hosting: str | None = None,
        namespace: str | None = None,
        count: int = 1,
    ) -> Fault:
        """Delete Node objects (``kubectl delete node``); the machines are not touched.

        Args:
            name: a node name, or a list of them.
            selector: a node label selector.
            hosting: a pod label selector: nodes running such pods (needs ``namespace``).
            namespace: nodes hosting pods of this namespace: any of its pods, or those that
                ``hosting`` selects (terminating and unscheduled pods do not count).
            count: how many of the matching nodes, picked at random (seeded), never twice.

        The call returns once the Node objects are gone (InconclusiveError if a finalizer holds
        one for more than a minute).

        What it means: the scheduler stops placing pods there at once; the pod garbage collector
        deletes the node's pods after a while and their controllers re-create them elsewhere. On
        a cloud cluster the VM keeps running (its workloads are orphaned, as the book notes) and
        in most setups its kubelet re-registers the Node by itself within a minute; the cloud
        node controller deletes Node objects whose VM is gone. The embedded cluster's kwok nodes
        have no kubelet, so nothing re-registers them.

        Undo: re-creates the Node from the manifest recorded before deleting it (labels,
        annotations, taints, spec; the server sets uid and status), unless a node of that name
        exists again (re-registered by its kubelet), which is then left as it is. A cordon or taint
        of another pytest-chaos fault that has already been reverted is not brought back with it.
        On the embedded cluster kwok makes the re-created node Ready; on a real cluster a Node
        re-created without a kubelet behind it stays NotReady until one registers.
        """
        ctx = self._ctx
        names = check_cordon_arguments(
            name, selector=selector, hosting=hosting, namespace=namespace, count=count
        )
        targets = self._target(names, selector, hosting, namespace, count, verb="delete")
        ctx.safety.check_nodes(targets.names, self._schedulable(targets.nodes), "delete")
        ctx.plan("nodes.delete", f"delete node(s) {', '.join(targets.names)}")
        records: list[UndoRecord] = []
        with injecting(ctx, "nodes.delete", records):
            self._delete(targets.chosen, "nodes.delete", records)
            ctx.timeline.add(
                "inject",
                f"nodes.delete: node(s) {', '.join(targets.names)} deleted",
                targets=targets.names,
            )
        fault = ctx.done(Fault(ctx, "nodes.delete", tuple(targets.names), records))
        self._verify_deleted(targets.chosen, DELETE_WITHIN, "nodes.delete")
        return fault

    # ------------------------------------------------------------------ stop

    def stop(
        self,
        name: str | Sequence[str] | None = None,
        *,
        selector: str | None = None,
        count: int = 1,
        timeout: Duration = "60s",
    ) -> Fault:
        """Stop real nodes as machines stop: kubelet frozen, network gone (see ``node_stop``).

        Args:
            name: a node name, or a list of them.
            selector: a node label selector, e.g. ``"topology.kubernetes.io/zone=a"``.
            count: how many of the matching nodes, picked at random (seeded), never twice.
            timeout: how long the Node may take to turn NotReady (InconclusiveError after).

        Returns once every stopped Node is NotReady. Its pods are evicted by the taint manager
        when their ``node.kubernetes.io/unreachable`` toleration runs out (``tolerationSeconds``,
        300 s unless the pod sets it). Only on a local cluster with ``--real-nodes``; elsewhere
        it refuses (a privileged pod on the node would be needed). The last Ready node is never
        stopped. Undo: continues the node and waits until it is Ready again.
        """
        from pytest_chaos.faults.node_stop import stop_nodes

        ctx = self._ctx
        names, seconds = check_stop_arguments(name, selector=selector, count=count, timeout=timeout)
        targets = self._target(names, selector, None, None, count, verb="stop")
        ctx.safety.check_nodes(targets.names, self._schedulable(targets.nodes), "stop")
        ctx.plan("nodes.stop", f"stop node(s) {', '.join(targets.names)}")
        return stop_nodes(ctx, targets.chosen, "nodes.stop", seconds)

    # ------------------------------------------------------------------ zone outage

    def zone_outage(self, zone: str, *, how: str = "drain", timeout: Duration = "120s") -> Fault:
        """Take every node of a zone out at once, as one fault (a data-centre outage).

        Args:
            zone: the value of the nodes' ``topology.kubernetes.io/zone`` label.
            how: ``drain`` (cordon and evict, honouring budgets), ``cordon``, ``taint`` (a
                NoExecute taint ``chaos.pytest.dev/zone-outage``: pods without a toleration are
                evicted at once, budgets are not consulted, as when a zone goes dark) or
                ``delete`` (the Node objects) or ``stop`` (the machines go down: real nodes
                of a cluster pytest-chaos started, see ``stop``).
            timeout: for ``drain``, the whole drain; for ``delete``, how long the Node objects
                may take to go.

        Nodes of the zone already cordoned (cordon, drain) or already carrying the outage taint
        are left out, as the single-node verbs do. A drained zone loses its local data as a dark
        zone would: pods with emptyDir volumes are evicted too (pods without a controller are
        still refused). The safety check covers the whole zone: a zone outage that would leave
        no schedulable node is refused.

        Undo: that of the verb used, for each node (see cordon, drain, taint, delete).
        """
        ctx = self._ctx
        seconds = check_zone_outage_arguments(zone, how=how, timeout=timeout)
        nodes = self._list_nodes()
        in_zone = [n for n in nodes if node_labels(n).get(ZONE_LABEL) == zone]
        if not in_zone:
            raise TargetingError(no_such_zone(zone, nodes))
        taint = Taint(ZONE_OUTAGE_TAINT, zone, "NoExecute")
        skips: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
            "cordon": already_cordoned,
            "drain": already_cordoned,
            "taint": functools.partial(already_tainted, taint),
        }
        skip = skips.get(how)
        chosen = eligible_nodes(in_zone, skip, what=f"in zone {zone!r}", verb=f"take out ({how})")
        names = [node_name(n) for n in chosen]
        verb = f"take zone {zone!r} out ({how})"
        ctx.safety.check_nodes(names, self._schedulable(nodes), verb)
        kind = "nodes.zone_outage"
        plans: list[DrainPlan] = []
        if how == "drain":
            # A dark zone loses its local data anyway: emptyDir pods are evicted too.
            plans = self._drain_plans(names, True)
        ctx.plan(kind, f"{verb}: {', '.join(names)}")
        if how == "stop":
            from pytest_chaos.faults.node_stop import stop_nodes

            return stop_nodes(ctx, chosen, kind, seconds)
        records: list[UndoRecord] = []
        with injecting(ctx, kind, records):
            if how == "cordon":
                for node in chosen:
                    self._cordon(node, kind, records)
                await_cordon_taint(ctx, names)
            elif how == "drain":
                drainer = Drainer(ctx, seconds, True, 10)
                plans = drainer.run(chosen, kind, records, self._cordon)
            elif how == "taint":
                for node in chosen:
                    self._taint(node, taint, kind, records)
            else:
                self._delete(chosen, kind, records)
            ctx.timeline.add("inject", f"{kind}: {verb}: {', '.join(names)}", targets=names)
        details: dict[str, Any] = {"zone": zone, "how": how}
        if plans:
            details |= drain_details(plans)
        fault = ctx.done(Fault(ctx, kind, tuple(names), records, details=details))
        if how == "delete":
            self._verify_deleted(chosen, seconds, kind)
        return fault

    # ------------------------------------------------------------------ targeting

    def _list_nodes(self) -> list[dict[str, Any]]:
        listing = self._ctx.kube.list_raw(self._ctx.kube.core.list_node)
        return list(listing.get("items", []))

    def _target(
        self,
        names: list[str] | None,
        selector: str | None,
        hosting: str | None,
        namespace: str | None,
        count: int,
        *,
        verb: str,
        skip: Callable[[Mapping[str, Any]], str | None] | None = None,
    ) -> _Targets:
        nodes = self._list_nodes()
        matched = self._matching(nodes, names, selector, hosting, namespace)
        eligible = eligible_nodes(matched, skip, what="matching", verb=verb)
        what = "match"
        if skip is not None and len(eligible) < len(matched):
            left_out = ", ".join(f"{node_name(n)} ({skip(n)})" for n in matched if skip(n))
            what = f"match and are not already in that state (left out: {left_out})"
        chosen = pick_nodes([node_name(n) for n in eligible], count, self._ctx.rng, what=what)
        by_name = {node_name(n): n for n in eligible}
        return _Targets([by_name[n] for n in chosen], nodes)

    def _matching(
        self,
        nodes: list[dict[str, Any]],
        names: list[str] | None,
        selector: str | None,
        hosting: str | None,
        namespace: str | None,
    ) -> list[dict[str, Any]]:
        existing = {node_name(n) for n in nodes}
        matched = nodes
        if names is not None:
            missing = [n for n in names if n not in existing]
            if missing:
                raise TargetingError(f"no node named {', '.join(missing)}\n{existing_lines(nodes)}")
            matched = [n for n in matched if node_name(n) in names]
        if selector is not None:
            requirements = parse_label_selector(selector, name="selector")
            matched = [n for n in matched if matches(requirements, node_labels(n))]
            if not matched:
                raise TargetingError(
                    nothing_matched(
                        "nodes", selector, None, {node_name(n): node_labels(n) for n in nodes}
                    )
                )
        if namespace is not None:  # hosting needs one (checked by check_node_targeting)
            hosts = self._hosts(hosting, namespace)
            before = [node_name(n) for n in matched]
            matched = [n for n in matched if node_name(n) in hosts]
            if not matched:
                pods = (
                    f"the pods matching hosting={hosting!r} in namespace {namespace!r}"
                    if hosting is not None
                    else f"the pods of namespace {namespace!r}"
                )
                raise TargetingError(
                    f"{pods} run on {', '.join(sorted(hosts))}, and none of those is among "
                    f"the nodes the other conditions selected ({short_listing(before)})"
                )
        return matched

    def _hosts(self, hosting: str | None, namespace: str) -> set[str]:
        """The nodes running (not terminating) pods of namespace that match hosting (None: any)."""
        kube = self._ctx.kube
        pods = kube.list_raw(kube.core.list_namespaced_pod, namespace, label_selector=hosting)
        hosts = hosting_nodes(pods.get("items", []))
        if not hosts:
            if hosting is None:
                raise TargetingError(
                    f"no node hosts a pod of namespace {namespace!r}: "
                    + no_hosted_pods(namespace, pods.get("items", []))
                )
            everything = kube.list_raw(kube.core.list_namespaced_pod, namespace)
            existing = {
                str(p["metadata"]["name"]): p["metadata"].get("labels") or {}
                for p in everything.get("items", [])
            }
            raise TargetingError(
                "no node hosts the pods of hosting=: "
                + nothing_matched("pods", hosting, namespace, existing)
                + "\n(pods not yet scheduled or already terminating do not count)"
            )
        return hosts

    def _schedulable(self, nodes: Sequence[Mapping[str, Any]]) -> list[str]:
        return schedulable_nodes(nodes, held_taints(self._ctx.kube))

    # ------------------------------------------------------------------ mutations

    def _cordon(self, node: Mapping[str, Any], kind: str, records: list[UndoRecord]) -> None:
        """Record, then cordon one node (with its resourceVersion; 409: look again)."""
        ctx = self._ctx
        name = node_name(node)
        was = (node.get("spec") or {}).get("unschedulable")
        record = ctx.record(
            kind,
            kind="Node",
            namespace=None,
            name=name,
            uid=node["metadata"].get("uid"),
            undo=UNDO_UNCORDON,
            payload={"unschedulable_before": was},
        )
        records.append(record)
        current: Mapping[str, Any] = node
        for _attempt in range(ATTEMPTS):
            if (current.get("spec") or {}).get("unschedulable"):
                raise InjectError(
                    f"{kind}: node {name} was cordoned by someone else while this fault was "
                    "cordoning it; leaving it to them"
                )
            body: Any = {
                "metadata": {
                    "resourceVersion": current["metadata"]["resourceVersion"],
                    "annotations": {CORDON_ANNOTATION: record.id},
                },
                "spec": {"unschedulable": True},
            }
            if patch_node(ctx.kube, name, body):
                return
            current = read_node(ctx.kube, name) or _gone(kind, name)
        raise InjectError(f"{kind}: node {name} kept changing; could not cordon it")

    def _taint(
        self, node: Mapping[str, Any], taint: Taint, kind: str, records: list[UndoRecord]
    ) -> None:
        """Record, then add the taint to one node (with its resourceVersion; 409: look again)."""
        ctx = self._ctx
        name = node_name(node)
        records.append(
            ctx.record(
                kind,
                kind="Node",
                namespace=None,
                name=name,
                uid=node["metadata"].get("uid"),
                undo=UNDO_UNTAINT,
                payload={"taint": taint.to_api()},
            )
        )
        current: Mapping[str, Any] = node
        for _attempt in range(ATTEMPTS):
            taints = (current.get("spec") or {}).get("taints") or []
            if any(taint.same_slot(t) for t in taints):
                raise InjectError(
                    f"{kind}: node {name} got a {taint.key}:{taint.effect} taint from someone "
                    "else while this fault was adding one; leaving it to them"
                )
            body: Any = {
                "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
                "spec": {"taints": with_taint(taints, taint)},
            }
            if patch_node(ctx.kube, name, body):
                return
            current = read_node(ctx.kube, name) or _gone(kind, name)
        raise InjectError(f"{kind}: node {name} kept changing; could not taint it")

    def _delete(
        self, nodes: Sequence[Mapping[str, Any]], kind: str, records: list[UndoRecord]
    ) -> None:
        """Record each node's manifest (and the faults it carries), then delete it."""
        from kubernetes.client.exceptions import ApiException

        ctx = self._ctx
        held = open_node_records(ctx.kube)
        for node in nodes:
            name, uid = node_name(node), node["metadata"].get("uid")
            carried = [
                {"id": r.id, "undo": r.undo, "payload": r.payload}
                for r in held
                if r.name == name and r.undo in (UNDO_UNCORDON, UNDO_UNTAINT)
            ]
            records.append(
                ctx.record(
                    kind,
                    kind="Node",
                    namespace=None,
                    name=name,
                    uid=uid,
                    undo=UNDO_RECREATE,
                    payload={"manifest": restorable_manifest(dict(node)), "carried": carried},
                )
            )
            body: Any = {"preconditions": {"uid": uid}}
            try:
                call(ctx.kube.core.delete_node, name, body=body)
            except ApiException as exc:
                if exc.status != 404:  # 404: a retried delete whose first try was applied
                    raise

    def _verify_deleted(self, nodes: Sequence[Mapping[str, Any]], within: float, kind: str) -> None:
        uids = {n["metadata"].get("uid") for n in nodes}
        try:
            self._ctx.kube.wait(
                self._ctx.kube.core.list_node,
                lambda current: not uids & {n.metadata.uid for n in current},
                within=within,
                what=f"node(s) {', '.join(node_name(n) for n in nodes)} to be gone",
            )
        except WaitTimeout as exc:
            raise InconclusiveError(
                f"{kind} did not take effect: {exc} (a finalizer may hold the Node)"
            ) from None
        self._ctx.timeline.add("verify", f"{kind}: node(s) gone")

    def _drain_plans(self, names: Sequence[str], delete_emptydir_data: bool) -> list[DrainPlan]:
        """Plan each node's drain; refuse (touching nothing) when a pod may not be evicted."""
        plans = [
            plan_drain(n, pods_on(self._ctx.kube, n), delete_emptydir_data=delete_emptydir_data)
            for n in names
        ]
        refused = [p.refusal() for p in plans if p.refused]
        if refused:
            raise InjectError("refusing to drain (nothing was touched):\n  " + "\n  ".join(refused))
        return plans


def _gone(kind: str, name: str) -> NoReturn:
    raise InjectError(f"{kind}: node {name} was deleted while the fault was being injected")
