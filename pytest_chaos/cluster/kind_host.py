"""What a kind cluster on podman leaves on the host, and putting it back.

podman's network backend adds chains (and jumps to them) to iptables and ip6tables — netavark's
``NETAVARK*``, or the CNI plugins' ``CNI-*`` where podman runs on CNI (Debian's podman 4.3 without
netavark, as on the reference machine) — turns ``net.ipv6.conf.all.forwarding`` on and
bind-mounts ``/run/netns`` on itself; none of it goes away when the last network does.
:func:`snapshot` records the host before the first kind cluster; :func:`restore` undoes only what
was not there then. Only the backend's own chains are touched.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

IPV6_FORWARDING = Path("/proc/sys/net/ipv6/conf/all/forwarding")
LIB_MODULES = Path("/lib/modules")
RUN_NETNS = Path("/run/netns")
#: The chains of podman's two network backends (netavark, CNI).
CHAIN_PREFIXES = ("NETAVARK", "CNI-")
TOOLS = ("iptables", "ip6tables")
#: The network kind creates in the engine for its nodes.
KIND_NETWORK = "kind"


@dataclass(frozen=True, slots=True)
class HostState:
    """The parts of the host a kind cluster on podman changes."""

    netavark_chains: dict[str, list[str]]
    ipv6_forwarding: str | None
    netns_mounted: bool
    lib_modules: bool
    #: Whether the engine had kind's network ("kind") before; kind never removes it.
    kind_network: bool = True

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form (kept in the kind cluster's record)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HostState:
        """The inverse of :meth:`to_json`."""
        return cls(
            {k: list(v) for k, v in data["netavark_chains"].items()},
            data["ipv6_forwarding"],
            bool(data["netns_mounted"]),
            bool(data["lib_modules"]),
            bool(data.get("kind_network", True)),  # older records: leave it alone
        )


def _rules(tool: str, table: str) -> list[str]:
    if shutil.which(tool) is None:
        return []
    result = subprocess.run(
        [tool, "-w", "-t", table, "-S"], capture_output=True, text=True, check=False
    )
    return result.stdout.splitlines() if result.returncode == 0 else []


def netavark_chains(tool: str) -> list[str]:
    """``table/chain`` of every podman network chain ``tool`` (iptables or ip6tables) has."""
    found = []
    for table in ("filter", "nat"):
        for rule in _rules(tool, table):
            parts = rule.split()
            if len(parts) >= 2 and parts[0] == "-N" and parts[1].startswith(CHAIN_PREFIXES):
                found.append(f"{table}/{parts[1]}")
    return found


def netns_mounted() -> bool:
    """Whether something is mounted on /run/netns (netavark's self bind mount)."""
    try:
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return False
    return any(line.split()[4] == str(RUN_NETNS) for line in mounts if len(line.split()) > 4)


def kind_network_exists(engine: str) -> bool:
    """Whether the engine has kind's network ``kind``."""
    if shutil.which(engine) is None:
        return False
    result = subprocess.run(
        [engine, "network", "inspect", KIND_NETWORK], capture_output=True, timeout=60, check=False
    )
    return result.returncode == 0


def snapshot(engine: str) -> HostState:
    """The host as it is now."""
    forwarding = IPV6_FORWARDING.read_text().strip() if IPV6_FORWARDING.exists() else None
    return HostState(
        {tool: netavark_chains(tool) for tool in TOOLS},
        forwarding,
        netns_mounted(),
        LIB_MODULES.exists(),
        kind_network_exists(engine),
    )


def _remove_chains(tool: str, keep: set[str]) -> list[str]:
    done = []
    for table in ("filter", "nat"):
        rules = _rules(tool, table)
        ours = {
            p.split()[1]
            for p in rules
            if p.startswith("-N ")
            and p.split()[1].startswith(CHAIN_PREFIXES)
            and f"{table}/{p.split()[1]}" not in keep
        }
        if not ours:
            continue
        for rule in rules:  # the jumps into our chains, from any chain (comments are quoted)
            parts = shlex.split(rule)
            if parts[0] == "-A" and "-j" in parts and parts[parts.index("-j") + 1] in ours:
                subprocess.run(
                    [tool, "-w", "-t", table, "-D", *parts[1:]], capture_output=True, check=False
                )
        for chain in sorted(ours):
            subprocess.run([tool, "-w", "-t", table, "-F", chain], capture_output=True, check=False)
        for chain in sorted(ours):
            subprocess.run([tool, "-w", "-t", table, "-X", chain], capture_output=True, check=False)
            done.append(f"{tool} {table}/{chain}")
    return done


def restore(before: HostState, engine: str) -> list[str]:
    """Undo what appeared since ``before``; return what was put back (for the log)."""
    done: list[str] = []
    if not before.kind_network and kind_network_exists(engine):
        # First the network: removing it lets the backend drop its per-network rules.
        removed = subprocess.run(
            [engine, "network", "rm", KIND_NETWORK], capture_output=True, timeout=60, check=False
        )
        if removed.returncode == 0:
            done.append(f"removed the {engine} network {KIND_NETWORK!r}")
    for tool in TOOLS:
        done += _remove_chains(tool, set(before.netavark_chains.get(tool, [])))
    forwarding = IPV6_FORWARDING.read_text().strip() if IPV6_FORWARDING.exists() else None
    if before.ipv6_forwarding is not None and forwarding not in (None, before.ipv6_forwarding):
        IPV6_FORWARDING.write_text(before.ipv6_forwarding + "\n")
        done.append(f"net.ipv6.conf.all.forwarding={before.ipv6_forwarding}")
    if not before.netns_mounted and netns_mounted():
        result = subprocess.run(["umount", str(RUN_NETNS)], capture_output=True, check=False)
        if result.returncode == 0:
            done.append(f"unmounted {RUN_NETNS}")
    if not before.lib_modules and LIB_MODULES.is_dir():
        try:
            LIB_MODULES.rmdir()
            done.append(f"removed {LIB_MODULES}")
        except OSError:
            pass  # not empty: something else put modules there since
    return done


__all__ = ["HostState", "netavark_chains", "restore", "snapshot"]
