from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_chaos.cluster import processes


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[processes.ProcessRecord]:
    marker = tmp_path / "state"
    record = processes.spawn(
        "sleeper",
        [sys.executable, "-c", "import time; time.sleep(60)", f"{marker}/x"],
        tmp_path / "sleeper.log",
    )
    yield record
    processes.terminate([record.pid], grace=1)


def test_a_spawned_process_is_found_by_its_state_directory(
    sleeper: processes.ProcessRecord, tmp_path: Path
) -> None:
    assert processes.is_running(sleeper)
    assert processes.find_orphans(f"{tmp_path / 'state'}/") == [sleeper.pid]


def test_a_recycled_pid_is_not_mistaken_for_ours(sleeper: processes.ProcessRecord) -> None:
    impostor = processes.ProcessRecord("x", sleeper.pid, sleeper.start_time + 1, sleeper.log)
    assert not processes.is_running(impostor)


def test_terminate_stops_the_process_and_reports_no_survivor(
    sleeper: processes.ProcessRecord,
) -> None:
    assert processes.terminate([sleeper.pid], grace=2) == []
    assert not processes.is_running(sleeper)


def test_terminate_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    stubborn = processes.spawn(
        "stubborn",
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', "
            "flush=True); time.sleep(60)",
        ],
        tmp_path / "stubborn.log",
    )
    log = Path(stubborn.log)
    # Wait for the handler to be installed: the child says so in its log.
    subprocess.run(
        ["timeout", "10", "sh", "-c", f"until grep -q ready {log}; do :; done"], check=True
    )
    assert processes.terminate([stubborn.pid], grace=0.5) == []
    assert not processes.is_running(stubborn)


def test_a_busy_preferred_port_is_replaced() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        port, was_taken = processes.free_port(taken)
    assert was_taken
    assert port != taken


def test_a_free_preferred_port_is_kept() -> None:
    free, _ = processes.free_port()
    assert processes.free_port(free) == (free, False)


def test_log_tail_shows_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    log.write_text("\n".join(f"line {i}" for i in range(100)))
    tail = processes.log_tail(log, lines=3)
    assert tail.splitlines() == ["    line 97", "    line 98", "    line 99"]


def test_picked_ports_sit_below_the_ephemeral_range() -> None:
    # Outgoing connections take their local port from the ephemeral range; a port picked there
    # could be taken between our pick and the component's bind.
    floor = processes._ephemeral_floor()
    ports = {processes.free_port()[0] for _ in range(20)}
    assert all(10000 <= port < floor for port in ports)
    assert len(ports) > 1


def test_a_child_descends_from_its_parent_and_not_from_a_stranger() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert processes.descends_from(child.pid, {os.getpid()})
        assert not processes.descends_from(child.pid, {child.pid + 100000})
        assert not processes.descends_from(os.getpid(), {child.pid})  # a parent is no descendant
    finally:
        child.kill()
        child.wait()
