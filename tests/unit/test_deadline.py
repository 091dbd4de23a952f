"""A cluster-start deadline counts the time spent running, not the time this machine stood still."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from pytest_chaos.kube.deadline import STALL, TICK, Deadline, StallWatch, machine_stalls


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def run(self, seconds: float, watch: StallWatch) -> None:
        """The machine runs: time passes and the watch ticks as it should."""
        while seconds > 0:
            step = min(TICK, seconds)
            self.now += step
            seconds -= step
            watch.tick()


def started(seconds: float) -> tuple[Clock, StallWatch, Deadline]:
    clock = Clock()
    watch = StallWatch(clock=clock)
    return clock, watch, Deadline(seconds, watch=watch, clock=clock)


def test_a_deadline_expires_once_its_seconds_have_run() -> None:
    clock, watch, deadline = started(10)
    clock.run(9.5, watch)
    assert not deadline.expired()
    assert deadline.remaining() == 0.5
    clock.run(0.5, watch)
    assert deadline.expired()
    assert deadline.describe() == "10s"


def test_time_the_machine_stood_still_is_not_counted() -> None:
    clock, watch, deadline = started(10)
    clock.run(4, watch)
    clock.now += 100  # paused: no tick for 100 s
    watch.tick()
    assert deadline.stalled == 100 - TICK
    assert not deadline.expired()
    assert round(deadline.remaining(), 6) == 6 - TICK
    assert deadline.describe() == "4s (not counting 100s this machine stood still)"


def test_a_stall_still_open_counts_before_the_watch_ticks_again() -> None:
    # Right after a pause the waiting thread may look before the watch's thread does.
    clock, watch, deadline = started(10)
    clock.run(2, watch)
    clock.now += 60
    assert not deadline.expired()
    assert deadline.stalled == 60 - TICK
    watch.tick()  # the watch catches up without counting the gap twice
    assert deadline.stalled == 60 - TICK


def test_gaps_shorter_than_a_stall_are_ordinary_time() -> None:
    clock, watch, deadline = started(10)
    for _ in range(4):
        clock.now += STALL - 0.5  # a busy machine: late ticks, but not standing still
        watch.tick()
    assert deadline.stalled == 0
    assert deadline.expired()


def test_stalls_before_the_deadline_was_set_are_not_credited_to_it() -> None:
    clock = Clock()
    watch = StallWatch(clock=clock)
    clock.now += 30
    watch.tick()
    deadline = Deadline(5, watch=watch, clock=clock)
    clock.run(5, watch)
    assert deadline.stalled == 0
    assert deadline.expired()


def test_poll_asks_at_least_once_even_when_the_budget_is_already_spent() -> None:
    clock, watch, deadline = started(1)
    clock.run(5, watch)
    assert deadline.poll(lambda: True, every=0)


def test_poll_gives_up_once_the_budget_is_used_and_says_so() -> None:
    clock, watch, deadline = started(1)
    calls = []

    def never() -> bool:
        calls.append(clock.now)
        clock.run(0.25, watch)
        return False

    assert not deadline.poll(never, every=0)
    assert len(calls) == 4  # at 0, 0.25, 0.5 and 0.75 s; at 1 s the budget is used


STOPPED_WAIT = textwrap.dedent(
    """
    import os, signal, time
    from pytest_chaos.kube.deadline import Deadline

    deadline = Deadline(2.0)
    time.sleep(0.6)  # the watch's thread is ticking
    os.kill(os.getpid(), signal.SIGSTOP)  # the parent resumes us after 7 s
    expired = deadline.expired()
    print(f"{expired} {deadline.stalled:.1f} {deadline.elapsed():.1f}")
    """
)


def test_a_process_stopped_for_seconds_does_not_lose_its_budget() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", STOPPED_WAIT], stdout=subprocess.PIPE, text=True
    ) as child:
        _wait_until_stopped(child.pid)
        time.sleep(7)  # the pause itself (the fault): there is nothing to watch
        child.send_signal(signal.SIGCONT)
        output, _ = child.communicate(timeout=30)
    expired, stalled, elapsed = output.split()
    assert expired == "False"
    assert 6.0 <= float(stalled) <= 8.0
    assert float(elapsed) < 2.0


def _wait_until_stopped(pid: int) -> None:
    """Poll /proc until the child has stopped itself (state T), bounded by a deadline."""
    give_up = time.monotonic() + 30
    while time.monotonic() < give_up:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat[stat.rfind(")") + 2] == "T":
            return
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} did not stop itself within 30 s")


def test_a_forked_child_gets_a_watch_of_its_own() -> None:
    # The parent's ticking thread does not exist in a child: without its own watch, the child's
    # deadlines would count everything as stood still and never expire.
    parent = machine_stalls()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never back into pytest
        try:
            os.close(read)
            deadline = Deadline(6.0)
            time.sleep(STALL + 1.5)
            verdict = machine_stalls() is not parent and deadline.stalled == 0
            os.write(write, b"ok" if verdict else b"inherited")
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    assert answer == b"ok"
