"""Host changes of real nodes, each recorded before it is made and undone idempotently.

A :class:`Changes` journal (JSON under the cluster's state directory) lists every step: a sysctl
and its old value, a link, a network namespace, a route, a firewall rule, a cgroup. ``undo``
reverts them newest first, from any process, even after a ``kill -9``; a step whose object is
already gone counts as undone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

from pytest_chaos.cluster import processes
from pytest_chaos.errors import ClusterError

Step = dict[str, Any]


def run(argv: list[str], *, check: bool = True, timeout: float = 60.0, stdin: str = "") -> str:
    """Run a host command; with check, a failure is a ClusterError quoting its output."""
    result = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise ClusterError(
            f"{shlex.join(argv)} exited with {result.returncode}: "
            f"{(result.stderr or result.stdout).strip()[-1000:]}"
        )
    return result.stdout


def in_netns(netns: str, argv: list[str]) -> list[str]:
    """The command argv, run in the network namespace netns only (the host's mounts stay shared)."""
    return ["nsenter", f"--net=/run/netns/{netns}", "--", *argv]


class Changes:
    """The journal of one cluster's host changes (``path``: a JSON list of steps)."""

    def __init__(self, path: Path) -> None:
        """Changes recorded in path (created on the first change)."""
        self.path = path

    def steps(self) -> list[Step]:
        """What was recorded, oldest first."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return []
        return [s for s in data if isinstance(s, dict)] if isinstance(data, list) else []

    def record(self, step: Step) -> None:
        """Write step to the journal (before the change is made)."""
        steps = self.steps()
        if step in steps:
            return
        steps.append(step)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(steps, indent=1))
        tmp.replace(self.path)

    # ------------------------------------------------------------ changes

    def sysctl(self, key: str, value: str, *, netns: str | None = None) -> None:
        """Set /proc/sys/key (in netns, or on the host), recording the old value."""
        if netns is not None:
            run(in_netns(netns, ["sysctl", "-q", "-w", f"{key.replace('/', '.')}={value}"]))
            return  # goes with the namespace
        path = Path("/proc/sys") / key
        old = path.read_text().strip()
        if old == value:
            return
        if not any(s.get("kind") == "sysctl" and s.get("key") == key for s in self.steps()):
            self.record({"kind": "sysctl", "key": key, "old": old})
        path.write_text(value)

    def link(self, name: str, create: list[str]) -> None:
        """Create the host link name with ``ip link add`` arguments create."""
        self.record({"kind": "link", "name": name})
        run(["ip", "link", "add", name, *create])

    def netns(self, name: str) -> None:
        """Create the network namespace name."""
        self.record({"kind": "netns", "name": name})
        run(["ip", "netns", "add", name])

    def route(self, spec: list[str]) -> None:
        """Add the host route spec (``ip route replace`` arguments)."""
        self.record({"kind": "route", "spec": spec})
        run(["ip", "route", "replace", *spec])

    def rule(self, table: str, chain: str, spec: list[str]) -> None:
        """Insert an iptables rule (spec: match and target) into table's chain."""
        self.record({"kind": "iptables", "table": table, "chain": chain, "spec": spec})
        if _present(table, chain, spec):
            return
        run(["iptables", "-t", table, "-I", chain, *spec])

    def cgroup(self, path: Path) -> None:
        """Create the cgroup directory path (and its parents)."""
        self.record({"kind": "cgroup", "path": str(path)})
        path.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------ undo

    def undo(self) -> list[str]:
        """Revert every recorded change, newest first; return what could not be reverted."""
        problems = []
        for step in reversed(self.steps()):
            try:
                _undo(step)
            except (OSError, ClusterError, subprocess.SubprocessError) as exc:
                problems.append(f"could not undo {step}: {exc}")
        if not problems:
            self.path.unlink(missing_ok=True)
        return problems

    def leftovers(self) -> list[str]:
        """Recorded changes that are still in place."""
        return [describe(step) for step in self.steps() if _present_step(step)]


def describe(step: Step) -> str:
    """A step in words."""
    kind = step.get("kind")
    if kind == "iptables":
        return f"iptables -t {step['table']} {step['chain']} {' '.join(step['spec'])}"
    if kind == "route":
        return f"route {' '.join(step['spec'])}"
    if kind == "sysctl":
        return f"sysctl {step['key']} (was {step['old']})"
    return f"{kind} {step.get('name') or step.get('path')}"


def _present(table: str, chain: str, spec: list[str]) -> bool:
    argv = ["iptables", "-t", table, "-C", chain, *spec]
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


def _present_step(step: Step) -> bool:
    kind = step.get("kind")
    if kind == "link":
        return Path(f"/sys/class/net/{step['name']}").exists()
    if kind == "netns":
        return Path(f"/run/netns/{step['name']}").exists()
    if kind == "route":
        return bool(run(["ip", "route", "show", step["spec"][0]], check=False).strip())
    if kind == "iptables":
        return _present(step["table"], step["chain"], step["spec"])
    if kind == "cgroup":
        return Path(step["path"]).exists()
    if kind == "sysctl":
        with contextlib.suppress(OSError):
            return bool((Path("/proc/sys") / step["key"]).read_text().strip() != step["old"])
    return False


def _undo(step: Step) -> None:
    kind = step.get("kind")
    if not _present_step(step):
        return
    if kind == "sysctl":
        (Path("/proc/sys") / step["key"]).write_text(step["old"])
    elif kind == "link":
        run(["ip", "link", "delete", step["name"]], check=False)
    elif kind == "netns":
        _kill_netns_processes(step["name"])
        run(["ip", "netns", "delete", step["name"]])
    elif kind == "route":
        run(["ip", "route", "del", step["spec"][0]], check=False)
    elif kind == "iptables":
        while _present(step["table"], step["chain"], step["spec"]):
            run(["iptables", "-t", step["table"], "-D", step["chain"], *step["spec"]])
    elif kind == "cgroup":
        remove_cgroup(Path(step["path"]))
    if _present_step(step):
        raise ClusterError(f"{describe(step)} is still there")


def _kill_netns_processes(name: str) -> None:
    pids = run(["ip", "netns", "pids", name], check=False).split()
    if pids:
        processes.terminate([int(p) for p in pids if p.isdigit()], grace=5.0)


def remove_cgroup(top: Path) -> None:
    """Kill every task under the cgroup top, then remove it and its children."""
    if not top.is_dir():
        return
    pids: set[int] = set()
    for procs in top.rglob("cgroup.procs"):
        with contextlib.suppress(OSError, ValueError):
            pids.update(int(p) for p in procs.read_text().split())
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, 9)
    if pids:
        processes.terminate(pids, grace=5.0)
    directories = [p for p in top.rglob("*") if p.is_dir()] + [top]
    for directory in sorted(directories, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            directory.rmdir()
