"""The local cluster's OCI registry: ``localhost:5001``, as kind documents for its own.

``cluster up`` runs ``pytest-chaos-registry`` (go-containerregistry's registry, built from
``tools/registry`` through the Go module proxy) as one of the cluster's processes: it listens on
``127.0.0.1:<port>`` and wherever the real nodes reach this host, keeps its blobs in
``<state>/registry`` (gone with ``down``; manifests live in the process) and is stopped, and
swept as an orphan, like every other component. Every real node's containerd gets a
``hosts.toml`` mapping ``localhost:<port>`` to that address over plain HTTP, so a user pushes
``localhost:5001/app:pr-1`` (``podman push --tls-verify=false``, ``skopeo copy
--dest-tls-verify=false``, ``crane push``) and pods pull it with the default pull policy.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from pytest_chaos.cluster.node_runtimes import NodeRuntime

#: The component name in the cluster's process records.
COMPONENT = "registry"
PROGRAM = "pytest-chaos-registry"
DEFAULT_PORT = 5001


def storage(state_dir: Path) -> Path:
    """Where the cluster's registry keeps its blobs."""
    return state_dir / "registry"


def listen_addresses(nodes: Sequence[NodeRuntime], port: int) -> list[str]:
    """``127.0.0.1:<port>`` and every other address at which a node reaches this host."""
    hosts = ["127.0.0.1", *(n.host_address for n in nodes)]
    return [f"{host}:{port}" for host in dict.fromkeys(hosts)]


def argv(program: Path, state_dir: Path, addresses: Sequence[str]) -> list[str]:
    """The registry's command line."""
    return [str(program), f"-listen={','.join(addresses)}", f"-dir={storage(state_dir)}"]


def hosts_toml(port: int, host_address: str) -> str:
    """The containerd host config: ``localhost:<port>`` is served by this host, over HTTP."""
    return (
        f'server = "http://localhost:{port}"\n\n'
        f'[host."http://{host_address}:{port}"]\n'
        '  capabilities = ["pull", "resolve"]\n'
    )


def write_hosts(nodes: Sequence[NodeRuntime], port: int) -> list[Path]:
    """Write every node's ``hosts.toml`` for ``localhost:<port>``; return the files."""
    written = []
    for node in nodes:
        path = node.registry_hosts_dir / f"localhost:{port}" / "hosts.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(hosts_toml(port, node.host_address))
        written.append(path)
    return written


def answers(port: int, timeout: float = 1.0) -> bool:
    """True when the registry on 127.0.0.1:<port> answers the distribution API (``/v2/``)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=timeout) as reply:
            return int(reply.status) == 200
    except (urllib.error.URLError, OSError):
        return False
