"""pytest-chaos-hold, the toolbox's memory holder, run on this host.

It must hold its bytes where the memory cgroup counts them but its resident set does not (so the
OOM killer judges the app by the app's own size), end by itself, and free everything however it
ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pytest_chaos.faults import scripts

MiB = 2**20


def start(holder_dir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(holder_dir / scripts.HOLD_COMMAND), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def first_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    return process.stdout.readline().strip()  # the holder prints once it holds everything


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def memory_file(pid: int) -> os.stat_result:
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        if "memfd:pytest-chaos-hold" in os.readlink(fd):
            return fd.stat()
    raise AssertionError(f"process {pid} has no pytest-chaos-hold memory file")


def test_the_holder_holds_its_bytes_outside_its_resident_set(holder_dir: Path) -> None:
    holder = start(holder_dir, str(64 * MiB), "60")
    try:
        assert first_line(holder) == f"pytest-chaos-hold: holding {64 * MiB} bytes for 60s"
        held = memory_file(holder.pid)
        assert held.st_size == 64 * MiB
        assert held.st_blocks * 512 >= 64 * MiB  # allocated, not a sparse file
        assert status_kib(holder.pid, "RssShmem") == 0
        assert status_kib(holder.pid, "VmRSS") < 8 * 1024  # the Go runtime, nothing more
        assert Path(f"/proc/{holder.pid}/oom_score_adj").read_text().strip() == str(
            int(Path("/proc/self/oom_score_adj").read_text())
        )  # inherited, not raised like stress-ng's workers

        holder.send_signal(signal.SIGTERM)
        output, _ = holder.communicate(timeout=10)
    finally:
        holder.kill()
    assert holder.returncode == 0
    assert "stopped, memory released" in output


def test_the_holder_ends_by_itself_when_its_time_is_up(holder_dir: Path) -> None:
    started = time.monotonic()
    holder = start(holder_dir, str(MiB), "1")
    output, _ = holder.communicate(timeout=15)
    assert holder.returncode == 0
    assert "time is up, memory released" in output
    assert time.monotonic() - started >= 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "usage: pytest-chaos-hold BYTES SECONDS"),
        (("64Mi", "10"), 'BYTES must be a positive integer, not "64Mi"'),
        (("1024", "0"), 'SECONDS must be a positive integer, not "0"'),
    ],
)
def test_the_holder_refuses_bad_arguments(
    holder_dir: Path, args: tuple[str, ...], message: str
) -> None:
    holder = start(holder_dir, *args)
    output, _ = holder.communicate(timeout=10)
    assert holder.returncode == 2
    assert message in output


def test_the_toolbox_puts_the_holder_where_the_scripts_look_for_it() -> None:
    from pytest_chaos.cluster import images

    assert f"/usr/local/bin/{scripts.HOLD_COMMAND}" == images.HOLD_COMMAND
    assert "/usr/local/bin" in images._ENV_PATH.split("=", 1)[1].split(":")
