"""Typed access to one Kubernetes cluster, built without touching process-wide client state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubernetes import client


@dataclass(slots=False)
class Kube:
    """The cluster under test: an API client and typed API accessors.

    Built with ``persist_config=False`` so the user's kubeconfig is never rewritten, and with its
    own ``ApiClient`` so the ``kubernetes`` package's default configuration is never touched.
    """

    kubeconfig: Path
    context: str
    api_client: client.ApiClient = field(repr=False)

    @classmethod
    def from_kubeconfig(cls, kubeconfig: Path | str, context: str | None = None) -> Kube:
        """Connect with the given kubeconfig file and context (its current context if None)."""
        from kubernetes import config

        path = Path(kubeconfig)
        contexts, current = config.list_kube_config_contexts(config_file=str(path))
        chosen = context or current["name"]
        if chosen not in {c["name"] for c in contexts}:
            from pytest_chaos.errors import ClusterError

            names = ", ".join(sorted(c["name"] for c in contexts)) or "none"
            raise ClusterError(f"context {chosen!r} is not in {path} (contexts there: {names})")
        api_client = config.new_client_from_config(
            config_file=str(path), context=chosen, persist_config=False
        )
        return cls(kubeconfig=path, context=chosen, api_client=api_client)

    @cached_property
    def core(self) -> client.CoreV1Api:
        """core/v1: pods, nodes, namespaces, services, events."""
        from kubernetes import client

        return client.CoreV1Api(self.api_client)

    @cached_property
    def apps(self) -> client.AppsV1Api:
        """apps/v1: deployments, statefulsets, replicasets, daemonsets."""
        from kubernetes import client

        return client.AppsV1Api(self.api_client)

    @cached_property
    def discovery(self) -> client.DiscoveryV1Api:
        """discovery.k8s.io/v1: endpointslices."""
        from kubernetes import client

        return client.DiscoveryV1Api(self.api_client)

    @cached_property
    def policy(self) -> client.PolicyV1Api:
        """policy/v1: PodDisruptionBudgets."""
        from kubernetes import client

        return client.PolicyV1Api(self.api_client)

    @cached_property
    def networking(self) -> client.NetworkingV1Api:
        """networking.k8s.io/v1: NetworkPolicies."""
        from kubernetes import client

        return client.NetworkingV1Api(self.api_client)

    @cached_property
    def apis(self) -> client.ApisApi:
        """API discovery: which groups and versions the server serves."""
        from kubernetes import client

        return client.ApisApi(self.api_client)

    @cached_property
    def custom(self) -> client.CustomObjectsApi:
        """Custom resources, e.g. Istio VirtualServices."""
        from kubernetes import client

        return client.CustomObjectsApi(self.api_client)

    @cached_property
    def extensions(self) -> client.ApiextensionsV1Api:
        """apiextensions.k8s.io/v1: CustomResourceDefinitions."""
        from kubernetes import client

        return client.ApiextensionsV1Api(self.api_client)

    @cached_property
    def version(self) -> client.VersionApi:
        """The API server's /version."""
        from kubernetes import client

        return client.VersionApi(self.api_client)

    def server_version(self) -> str:
        """The API server's gitVersion, e.g. ``v1.32.5``."""
        from pytest_chaos.kube.retry import call

        return str(call(self.version.get_code).git_version)

    def check_reachable(self, *, deadline: float = 10.0) -> str:
        """Return the server version, or raise ClusterError saying which server did not answer."""
        from pytest_chaos.errors import ClusterError
        from pytest_chaos.kube.retry import retrying

        try:
            return str(retrying(self.version.get_code, deadline=deadline)().git_version)
        except Exception as exc:
            server = self.api_client.configuration.host
            raise ClusterError(
                f"cannot reach the API server {server} (context {self.context!r} of "
                f"{self.kubeconfig}) within {deadline:g}s: {type(exc).__name__}: {exc}"
            ) from None

    def wait(
        self,
        list_fn: Callable[..., Any],
        condition: Callable[[list[Any]], bool],
        *,
        within: float,
        what: str,
        **list_kwargs: Any,
    ) -> list[Any]:
        """Watch the objects list_fn lists until condition(objects) holds; return them.

        Example: ``kube.wait(partial(kube.core.list_namespaced_pod, "shop"),
        lambda pods: len(pods) == 2, within=30, what="2 pods", label_selector="app=web")``.
        Raises WaitTimeout (with the last objects seen) after within seconds.
        """
        from pytest_chaos.kube.watching import wait_until

        return wait_until(list_fn, condition, within=within, what=what, **list_kwargs)

    def workload_api(self, kind: str, verb: str) -> Callable[..., Any]:
        """The apps/v1 method for verb on a workload kind, e.g. ``read_namespaced_deployment``."""
        names = {"Deployment": "deployment", "StatefulSet": "stateful_set"}
        method: Callable[..., Any] = getattr(self.apps, f"{verb}_namespaced_{names[kind]}")
        return method

    def list_raw(self, list_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        """A list call's JSON, without building client models (fast for thousands of objects)."""
        import json

        from pytest_chaos.kube.retry import call

        response = call(list_fn, *args, _preload_content=False, **kwargs)
        try:
            data: dict[str, Any] = json.loads(response.data)
        finally:
            response.release_conn()
        return data

    def read(self, read_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """A read call's object as the API's JSON, or None when it does not exist (404).

        Transient errors are retried (:func:`pytest_chaos.kube.retry.call`); others are raised.
        """
        from kubernetes.client.exceptions import ApiException

        from pytest_chaos.kube.retry import call

        try:
            found = call(read_fn, *args, **kwargs)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        data: dict[str, Any] = self.serialize(found)
        return data

    def create(
        self,
        create_fn: Callable[..., Any],
        *args: Any,
        ours: Callable[[], bool] | None = None,
        **kwargs: Any,
    ) -> bool:
        """Create an object; False when one of its name exists already (409).

        A create retried after a lost answer meets its own first attempt: with ``ours`` (a look
        at the existing object), that counts as created (False) and anything else raises the
        conflict. Without ``ours`` every existing object counts (False). Transient errors are
        retried (:func:`pytest_chaos.kube.retry.call`); others are raised.
        """
        from kubernetes.client.exceptions import ApiException

        from pytest_chaos.kube.retry import call

        try:
            call(create_fn, *args, **kwargs)
        except ApiException as exc:
            if exc.status != 409 or (ours is not None and not ours()):
                raise
            return False
        return True

    def delete(
        self, delete_fn: Callable[..., Any], *args: Any, uid: str | None = None, **kwargs: Any
    ) -> bool:
        """Delete an object (with ``uid``: only that very object); False when it was not there.

        Not there: gone already (404), or, with ``uid``, replaced by another object of its name
        (409, the precondition failed). A ``body=`` given is sent with the uid precondition
        added. Transient errors are retried; others are raised.
        """
        from kubernetes.client.exceptions import ApiException

        from pytest_chaos.kube.retry import call

        if uid is not None:
            kwargs["body"] = {**(kwargs.get("body") or {}), "preconditions": {"uid": uid}}
        try:
            call(delete_fn, *args, **kwargs)
        except ApiException as exc:
            if exc.status in (404, 409):
                return False
            raise
        return True

    def serialize(self, obj: Any) -> Any:
        """A client model as the API's JSON (camelCase dicts), e.g. to store or compare it."""
        return self.api_client.sanitize_for_serialization(obj)

    def close(self) -> None:
        """Release the client's connection pool."""
        self.api_client.close()
