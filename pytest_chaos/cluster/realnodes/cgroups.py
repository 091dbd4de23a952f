"""A cgroup parent per real node: ``/pcx<k>/<node>`` in every mounted hierarchy.

The node's kubelet gets it as ``cgroupRoot`` and puts its ``kubepods`` tree under it, so nodes
account (and are cleaned up) apart from each other and from a host-network real node's
``/kubepods``.
"""

from __future__ import annotations

from pathlib import Path

from pytest_chaos.cluster.realnodes.host import Changes

CGROUP_ROOT = Path("/sys/fs/cgroup")


def hierarchies(root: Path = CGROUP_ROOT) -> list[Path]:
    """The mounted cgroup hierarchies (directories holding cgroup.procs, not symlinks)."""
    if not root.is_dir():
        return []
    return sorted(
        h
        for h in root.iterdir()
        if h.is_dir() and not h.is_symlink() and (h / "cgroup.procs").exists()
    )


def parent_path(slot: int, node: str) -> str:
    """The node's cgroup parent, as the kubelet's ``cgroupRoot``."""
    return f"/pcx{slot}/{node}"


def make(changes: Changes, slot: int, node: str) -> str:
    """Create the node's cgroup parent in every hierarchy (recorded); return its path."""
    relative = parent_path(slot, node)
    for hierarchy in hierarchies():
        top = hierarchy / f"pcx{slot}"
        for directory in (top, hierarchy / relative.lstrip("/")):
            if directory.is_dir():
                continue
            changes.cgroup(directory)
            for name in ("cpuset.cpus", "cpuset.mems"):  # v1 cpuset: empty sets hold no task
                source = directory.parent / name
                if source.is_file() and (directory / name).is_file():
                    (directory / name).write_text(source.read_text())
    return relative
