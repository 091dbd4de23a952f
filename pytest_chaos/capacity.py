"""How many real nodes this machine holds, and the check of a requested count (no cluster code).

It sits below the settings (which check ``chaos_local_real_nodes`` before anything starts) and
the cluster package (which checks ``--real-nodes``), so both give the same answer.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pytest_chaos.errors import ChaosConfigError

#: Pod CIDRs 10.x.128.0/24 ... 10.x.255.0/24 leave room for this many nodes per cluster.
MAX_NODES_BY_ADDRESSES = 128
#: What one idle netns node (containerd, kubelet, kube-proxy, its pods' sandboxes) holds,
#: rounded up from docs/benchmarks.md, and what the control plane around the nodes holds.
NODE_MEMORY_MIB = 400
CONTROL_PLANE_MEMORY_MIB = 1024
#: Each node's kubelet and kube-proxy need a share of a core to post heartbeats in time.
NODES_PER_CORE = 4


def limit(mem_available_mib: int, cores: int) -> int:
    """How many real nodes a machine with this free memory (MiB) and these cores holds."""
    by_memory = (mem_available_mib - CONTROL_PLANE_MEMORY_MIB) // NODE_MEMORY_MIB
    by_cores = max(1, cores) * NODES_PER_CORE
    return max(0, min(by_memory, by_cores, MAX_NODES_BY_ADDRESSES))


def machine_limit() -> int:
    """How many real nodes this machine holds now (MemAvailable and the CPU count)."""
    available = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) // 1024
    return limit(available, os.cpu_count() or 1)


def check_count(value: object, flag: str, source: str, machine: int) -> int:
    """The number of real nodes asked for, or an error naming flag, the value and its source."""
    fix = f"use 1..{machine} (this machine's limit, from its free memory and cores)"
    try:
        count = int(str(value).strip())
    except ValueError:
        raise ChaosConfigError(
            f"{flag}: {value!r} from {source} is not a whole number; {fix}"
        ) from None
    if count < 1:
        raise ChaosConfigError(
            f"{flag}: {count} from {source} asks for no real node; {fix}, or leave the option "
            "out for fake nodes only"
        )
    if count > machine:
        raise ChaosConfigError(
            f"{flag}: {count} from {source} is more than this machine holds (about "
            f"{NODE_MEMORY_MIB} MiB and 1/{NODES_PER_CORE} of a core per node); {fix}"
        )
    return count
