"""Cluster providers: where the cluster under test comes from.

* ``existing``: a kubeconfig and context as given; never creates or deletes a cluster.
* ``local``: the embedded cluster (etcd, kube-apiserver, controllers, kwok fake nodes), started
  on demand and shared: one a session started stops when the last session using it ends.
* ``kind``: a kind cluster created or reused by name (``pytest_chaos.cluster.kind``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from pytest_chaos.errors import ClusterError
from pytest_chaos.settings import Settings, default_kubeconfig


@dataclass(frozen=True, slots=True)
class ClusterHandle:
    """How to reach the cluster under test."""

    provider: str
    kubeconfig: Path
    context: str | None
    description: str
    #: Why the local cluster has no real node although one was asked for (empty otherwise).
    real_node_missing: tuple[str, ...] = ()
    #: Who enforces NetworkPolicies (``chaos.network.partition``): "" nothing does, None unknown.
    network_policies: str | None = None
    #: Whether the test process reaches pod IPs and ClusterIPs (not on kind: HTTP probes then
    #: send Service URLs through the API server's service proxy).
    pods_reachable: bool = True


class ClusterProvider(Protocol):
    """Brings up (or finds) a cluster for a session and releases it afterwards."""

    def acquire(self) -> ClusterHandle:
        """Return a reachable cluster, starting it if this provider does that."""
        ...

    def release(self) -> None:
        """Undo what acquire started (nothing for a cluster this provider did not start)."""
        ...

    def describe(self) -> str:
        """Which cluster this is and where its address came from (the run's header line)."""
        ...

    def running(self) -> bool:
        """Whether the cluster exists now (without starting it)."""
        ...

    def dead_components(self) -> list[str]:
        """Components of the test bed that died (a failure then is the bed's, not the app's)."""
        ...

    def network_policies(self) -> str | None:
        """Who enforces NetworkPolicies: a name and version, "" nothing does, None unknown."""
        ...


class ExistingCluster:
    """A cluster the user already has: kubeconfig + context, never created or deleted."""

    def __init__(self, kubeconfig: Path | None, context: str | None) -> None:
        """Use kubeconfig (default: $KUBECONFIG or ~/.kube/config) and context."""
        self.kubeconfig = kubeconfig
        self.context = context

    def acquire(self) -> ClusterHandle:
        """Find the kubeconfig; raise ClusterError naming what is missing."""
        path = self.kubeconfig or default_kubeconfig()
        if path is None:
            raise ClusterError(
                "--chaos-cluster=existing needs a kubeconfig: pass --chaos-kubeconfig, set "
                "KUBECONFIG, or use --chaos-cluster=local for the embedded cluster"
            )
        return ClusterHandle(
            "existing", path, self.context, f"existing cluster ({path})", network_policies=None
        )

    def release(self) -> None:
        """Nothing to undo: an existing cluster is never created or deleted."""

    def describe(self) -> str:
        """``cluster=existing (<kubeconfig> from <where>, context <name>)``."""
        from pytest_chaos.settings import kubeconfig_origin

        origin = kubeconfig_origin(self.kubeconfig)
        return f"cluster=existing ({origin}, context {self.context or 'current'})"

    def running(self) -> bool:
        """An existing cluster is assumed to be there (reaching it tells otherwise)."""
        return True

    def dead_components(self) -> list[str]:
        """Not ours to watch: an existing cluster's components are its operator's."""
        return []

    def network_policies(self) -> str | None:
        """Unknown: that is up to the cluster's network plugin (Calico, Cilium... or none)."""
        return None


class LocalClusterProvider:
    """The embedded local cluster, shared by every session that uses it.

    A session attaches as a user; a cluster started by a session is stopped when the last
    session using it ends (so parallel runs and xdist workers never pull it from under each
    other), while one started with ``pytest-chaos cluster up`` stays up.
    """

    def __init__(
        self,
        name: str,
        nodes: int,
        pod_ready_delay: float = 0.0,
        real_node: Literal["yes", "no", "auto"] = "no",
        real_nodes: int = 0,
        images: Sequence[Path] = (),
        istio: bool = False,
    ) -> None:
        """Address the local cluster called name with nodes fake nodes (and a real one?).

        ``images``: archives loaded into its real node once it is up. ``istio``: with istiod
        and a host ingress gateway (``chaos_local_istio``).
        """
        import os

        from pytest_chaos.cluster.local import LocalCluster
        from pytest_chaos.cluster.processes import start_time_of

        self.cluster = LocalCluster(name)
        self.nodes = nodes
        self.pod_ready_delay = pod_ready_delay
        self.real_node = real_node
        self.real_nodes = real_nodes
        self.images = tuple(images)
        self.istio = istio
        self.user = f"{os.getpid()}-{start_time_of(os.getpid())}"

    def acquire(self) -> ClusterHandle:
        """Start the local cluster, or reuse the one already running."""
        result = self.cluster.up(
            nodes=self.nodes,
            user=self.user,
            pod_ready_delay=self.pod_ready_delay,
            real_node=self.real_node,
            real_nodes=self.real_nodes,
            istio=self.istio,
        )
        how = "reused" if result.reused else f"started in {result.seconds:.1f}s"
        if self.images:
            from pytest_chaos.cluster.image_load import load_archives

            if result.real_node_missing:
                raise ClusterError(
                    "--chaos-local-image needs the embedded cluster's real node, which cannot "
                    "run here: " + "; ".join(result.real_node_missing)
                )
            loaded = load_archives(self.cluster.state_dir, self.images)
            how += f"; loaded {', '.join(loaded.references)} in {loaded.seconds:.1f}s"
        return ClusterHandle(
            "local",
            result.kubeconfig,
            result.context,
            f"local cluster {self.cluster.name!r} ({how}, {result.server})",
            result.real_node_missing,
            self.network_policies(),
        )

    def release(self) -> None:
        """Leave the cluster; the last session out stops a cluster that a session started."""
        self.cluster.detach(self.user)

    def describe(self) -> str:
        """``cluster=local (embedded, name '<name>')``."""
        return f"cluster=local (embedded, name {self.cluster.name!r})"

    def running(self) -> bool:
        """Whether the embedded cluster's API server runs now."""
        return self.cluster.status().running

    def dead_components(self) -> list[str]:
        """The local cluster's components (API server, containerd, kubelet...) that died."""
        return self.cluster.dead_components()

    def network_policies(self) -> str:
        """kube-network-policies where netns real nodes run (``--real-nodes N``); else ""."""
        return self.cluster.network_policies()


def provider_for(settings: Settings) -> ClusterProvider:
    """The provider the settings ask for."""
    if settings.cluster == "local":
        return LocalClusterProvider(
            settings.local_name,
            settings.local_nodes,
            settings.local_pod_ready_delay,
            settings.local_real_node,
            settings.local_real_nodes,
            settings.local_images,
            settings.local_istio,
        )
    if settings.cluster == "kind":
        from pytest_chaos.cluster.kind import DEFAULT_NODE_IMAGE, KindClusterProvider

        return KindClusterProvider(
            settings.kind_name,
            settings.kind_workers,
            settings.kind_image or DEFAULT_NODE_IMAGE,
            settings.kind_keep,
        )
    return ExistingCluster(settings.kubeconfig, settings.context)
