"""Load users' image archives into every real node's containerd, all or nothing.

Every archive is inspected first (:mod:`pytest_chaos.cluster.image_archive`), so a wrong file
fails before any node is touched. Then each archive goes to each node with ``ctr images import``
into the ``k8s.io`` namespace (the one the kubelet's CRI reads), keeping the names and tags the
archive carries. Should an import fail on any node, the references this call added (on every
node, that one included) are removed again: nothing is left half-imported. A reference that
already existed before the call is left as it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_chaos.cluster.image_archive import ImageArchive, inspect_archive
from pytest_chaos.cluster.images import ctr
from pytest_chaos.cluster.node_runtimes import NodeRuntime, node_runtimes
from pytest_chaos.errors import ClusterError

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What a load put where, and how long it took."""

    references: tuple[str, ...]
    nodes: tuple[str, ...]
    seconds: float


def listed(node: NodeRuntime) -> set[str]:
    """The image references the node's containerd has in ``k8s.io``."""
    return set(ctr(node.containerd_socket, "images", "list", "--quiet").split())


def load_archives(
    state_dir: Path,
    archives: Sequence[Path],
    *,
    progress: Progress | None = None,
    timeout: float = 600.0,
) -> LoadResult:
    """Import archives into every real node of the cluster whose state is in state_dir."""
    say = progress or (lambda _message: None)
    started = time.monotonic()
    nodes = node_runtimes(state_dir)
    if not nodes:
        raise ClusterError(
            f"the local cluster in {state_dir} has no real node to load images into: start it "
            "with `pytest-chaos cluster up --real-node` (or --chaos-local-real-node=yes)"
        )
    inspected: list[ImageArchive] = [inspect_archive(Path(a)) for a in archives]
    added: dict[str, set[str]] = {}  # node name -> references this call created there
    before_all: dict[str, set[str]] = {}
    current = ""
    try:
        for node in nodes:
            before = before_all[node.name] = listed(node)
            added[node.name] = set()
            for archive in inspected:
                current = f"{archive.path} into {node.name}"
                say(f"{node.name}: importing {archive.path} ({', '.join(archive.references)})")
                # Recorded before the import: a failing import may still have created some.
                raw = {i.imported_as for i in archive.images}
                added[node.name] |= (set(archive.references) | raw) - before
                ctr(
                    node.containerd_socket,
                    "images",
                    "import",
                    str(archive.path),
                    timeout=timeout,
                )
                for image in archive.images:  # an OCI name as written -> the kubelet's name
                    if image.imported_as != image.reference:
                        ctr(node.containerd_socket, "images", "tag", "--force",
                            image.imported_as, image.reference)  # fmt: skip
                        ctr(node.containerd_socket, "images", "remove", image.imported_as)
                missing = set(archive.references) - listed(node)
                if missing:
                    raise ClusterError(
                        f"{archive.path} imported into {node.name}, but containerd does not "
                        f"list {sorted(missing)}"
                    )
    except BaseException as exc:
        _remove_added(nodes, added, before_all, say)
        if isinstance(exc, ClusterError):
            raise ClusterError(
                f"loading {current} failed; every image this load had added was removed "
                f"again: {exc}"
            ) from exc
        raise
    references = tuple(dict.fromkeys(r for a in inspected for r in a.references))
    return LoadResult(references, tuple(n.name for n in nodes), time.monotonic() - started)


def _remove_added(
    nodes: Sequence[NodeRuntime],
    added: dict[str, set[str]],
    before: dict[str, set[str]],
    say: Progress,
) -> None:
    """Remove what this load created: its references, and the CRI's ``sha256:`` config names."""
    for node in nodes:
        if node.name not in before:
            continue
        new = _listed_or_empty(node) - before[node.name]
        ours = added.get(node.name, set())
        references = sorted(r for r in new if r in ours or r.startswith("sha256:"))
        if references:
            say(f"{node.name}: removing the half-done import of {', '.join(references)}")
            ctr(node.containerd_socket, "images", "remove", *references)


def _listed_or_empty(node: NodeRuntime) -> set[str]:
    try:
        return listed(node)
    except ClusterError:
        return set()
