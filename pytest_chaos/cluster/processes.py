"""Start, identify and stop the local cluster's processes.

A process is identified by its pid *and* its start time (field 22 of ``/proc/<pid>/stat``), so a
recycled pid is never mistaken for ours. Every component's command line names the cluster's state
directory, which lets :func:`find_orphans` find the processes of a run that was killed before it
could record them.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pytest_chaos.errors import BinaryMissingError, ClusterError


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    """A started component: enough to find it again from another process."""

    component: str
    pid: int
    start_time: int
    log: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict of this record."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcessRecord:
        """Rebuild a record from :meth:`to_json` output."""
        return cls(
            component=str(data["component"]),
            pid=int(data["pid"]),
            start_time=int(data["start_time"]),
            log=str(data["log"]),
        )


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; everything after the last ')' is fixed.
    return raw[raw.rfind(")") + 2 :].split()


def start_time_of(pid: int) -> int | None:
    """The process start time in clock ticks since boot, or None when pid does not exist."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def is_running(record: ProcessRecord) -> bool:
    """True when the recorded process still runs (not a zombie, not a recycled pid)."""
    fields = _stat_fields(record.pid)
    if not fields or fields[0] in ("Z", "X"):
        return False
    return int(fields[19]) == record.start_time


def describe(record: ProcessRecord) -> str:
    """The record's pid and state for an error message: "pid 42, running (S)" or "pid 42, gone"."""
    fields = _stat_fields(record.pid)
    if not fields or int(fields[19]) != record.start_time:
        return f"pid {record.pid}, gone"
    state = fields[0]
    return f"pid {record.pid}, " + ("exited" if state in ("Z", "X") else f"running ({state})")


def spawn(
    component: str,
    argv: Sequence[str],
    log: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> ProcessRecord:
    """Start a component detached from our session, its output appended to log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        try:
            proc = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise BinaryMissingError(
                f"{component}: cannot run {argv[0]} ({exc}); rebuild the cluster binaries with "
                "`pytest-chaos cluster build --force`"
            ) from exc
    # Keep the Popen: it reaps the child when it exits (no zombie) and is not collected while
    # the child runs (which would warn). The child may outlive us on purpose: clusters are reused.
    _SPAWNED[proc.pid] = proc
    return ProcessRecord(component, proc.pid, start_time_of(proc.pid) or 0, str(log))


_SPAWNED: dict[int, subprocess.Popen[bytes]] = {}


@atexit.register
def _leave_components_running() -> None:
    # Components may outlive us on purpose (another session still uses the cluster); without
    # this, each Popen would warn "subprocess is still running" as the interpreter exits.
    for proc in _SPAWNED.values():
        if proc.poll() is None:
            proc.returncode = 0


def reap_children() -> None:
    """Collect the exit status of components this process started and that have exited."""
    for pid, proc in list(_SPAWNED.items()):
        if proc.poll() is not None:
            del _SPAWNED[pid]


def log_tail(path: str | Path, lines: int = 25) -> str:
    """The last lines of a component log, indented for an error message."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "    (no log)"
    if not text.strip():
        return "    (empty: it has written nothing yet)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def find_orphans(marker: str, *, exclude: Iterable[int] = ()) -> list[int]:
    """Pids of processes whose command line contains marker (a state directory path)."""
    excluded = {os.getpid(), *exclude}
    found: list[int] = []
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in excluded:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = _stat_fields(int(entry.name))
        if needle in cmdline and fields and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def descends_from(pid: int, ancestors: Iterable[int]) -> bool:
    """True when one of ancestors is pid's parent, grandparent... (walking /proc's ppids)."""
    wanted = set(ancestors)
    seen: set[int] = set()
    current = pid
    while current > 1 and current not in seen:
        seen.add(current)
        fields = _stat_fields(current)
        if fields is None:
            return False
        current = int(fields[1])
        if current in wanted:
            return True
    return False


def is_alive(pid: int) -> bool:
    """True when pid exists and is not a zombie (a dead child not yet reaped by its parent)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def terminate(pids: Iterable[int], *, grace: float = 10.0) -> list[int]:
    """SIGTERM the pids, SIGKILL what is left after grace seconds; return those that survived."""
    targets = [pid for pid in pids if is_alive(pid)]
    for pid in targets:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    for sig, timeout in ((signal.SIGKILL, grace), (None, 5.0)):
        deadline = time.monotonic() + timeout
        while targets and time.monotonic() < deadline:
            reap_children()
            targets = [pid for pid in targets if is_alive(pid)]
            if targets:
                time.sleep(0.05)
        if sig is not None:
            for pid in targets:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
    reap_children()
    return [pid for pid in targets if is_alive(pid)]


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(preferred: int | None = None) -> tuple[int, bool]:
    """A free loopback TCP port: preferred when it is free; (port, preferred_was_taken).

    Ports are drawn below the kernel's ephemeral range, so an outgoing connection cannot take
    one between our pick and the component's bind.
    """
    if preferred and _bindable(preferred):
        return preferred, False
    import random

    low = 10000
    high = max(low + 1000, _ephemeral_floor() - 1)
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randint(low, high)
        if _bindable(port):
            return port, bool(preferred)
    with socket.socket() as probe:  # a crowded machine: let the kernel choose
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1]), bool(preferred)


def listening_ports(pids: Iterable[int]) -> set[int]:
    """TCP ports in LISTEN state owned by the given pids (from /proc; no external tools)."""
    inodes: set[str] = set()
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        with contextlib.suppress(OSError):
            for fd in fd_dir.iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:  # 0A = LISTEN
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def port_is_listening(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def raise_if_exited(record: ProcessRecord, what: str) -> None:
    """Raise a ClusterError with the log tail when a component has already exited."""
    if not is_running(record):
        raise ClusterError(
            f"{record.component} exited while {what}; the last lines of {record.log}:\n"
            f"{log_tail(record.log)}"
        )
