"""`pytest-chaos cluster up|down|status` as a user runs it, including the ways it goes wrong.

Each test uses its own state directory, so its cluster never disturbs the session's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_chaos.cluster import binaries
from pytest_chaos.cluster.processes import find_orphans, is_alive, port_is_listening


@dataclass
class Cli:
    state_root: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest_chaos", "cluster", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def up(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`cluster up`, which must succeed (its output is the failure message)."""
        result = self.run("up", *args)
        assert result.returncode == 0, result.stderr
        return result

    def state(self, name: str = "local") -> dict[str, object]:
        data: dict[str, object] = json.loads((self.state_root / name / "cluster.json").read_text())
        return data

    def pids(self, name: str = "local") -> list[int]:
        return [int(p["pid"]) for p in self.state(name)["processes"]]  # type: ignore[attr-defined]

    def leftovers(self, name: str = "local") -> list[int]:
        return find_orphans(str(self.state_root / name) + "/")


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    env = {**os.environ, "PYTEST_CHAOS_STATE_DIR": str(tmp_path / "clusters")}
    tool = Cli(tmp_path / "clusters", env)
    yield tool
    tool.run("down")
    assert tool.leftovers() == []


def server_port(output: str) -> int:
    match = re.search(r"https://127\.0\.0\.1:(\d+)", output)
    assert match, output
    return int(match.group(1))


def test_up_twice_reuses_the_cluster_and_down_leaves_nothing(cli: Cli) -> None:
    first = cli.run("up")
    assert first.returncode == 0, first.stderr
    kubeconfig = cli.state_root / "local" / "kubeconfig"
    assert first.stdout.strip() == f"export KUBECONFIG={kubeconfig}"
    pids, port = cli.pids(), server_port(first.stderr)

    second = cli.run("up")

    assert second.returncode == 0, second.stderr
    assert "reused" in second.stderr
    assert cli.pids() == pids
    assert server_port(second.stderr) == port
    status = cli.run("status")
    assert status.returncode == 0
    assert "ready" in status.stdout
    assert status.stdout.count("running") == 6  # 5 components and the registry
    assert "registry:   localhost:" in status.stdout

    down = cli.run("down")

    assert down.returncode == 0, down.stderr
    assert [pid for pid in pids if is_alive(pid)] == []
    assert not port_is_listening(port)
    assert not (cli.state_root / "local").exists()
    assert cli.run("status").returncode == 3


def test_up_cleans_up_after_a_killed_run_and_starts_afresh(cli: Cli) -> None:
    cli.up()
    old = cli.pids()
    # A run killed with SIGKILL mid-start: the API server is gone and the record is lost.
    os.kill(old[1], signal.SIGKILL)
    (cli.state_root / "local" / "cluster.json").unlink()

    again = cli.run("up")

    assert again.returncode == 0, again.stderr
    assert "orphaned process" in again.stderr
    assert set(cli.pids()).isdisjoint(old)
    assert [pid for pid in old if pid in cli.leftovers()] == []


def test_a_busy_port_is_replaced_by_a_free_one(cli: Cli) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]

        result = cli.run("up", "--port", str(taken))

    assert result.returncode == 0, result.stderr
    assert f"port {taken} is busy" in result.stderr
    assert server_port(result.stderr) != taken


def test_a_missing_binary_is_named_with_the_command_that_builds_it(
    cli: Cli, tmp_path: Path
) -> None:
    cli.env["PYTEST_CHAOS_CACHE_DIR"] = str(tmp_path / "empty-cache")

    result = cli.run("up")

    assert result.returncode == 1
    assert "is not built" in result.stderr
    assert "pytest-chaos cluster build" in result.stderr
    assert cli.leftovers() == []


def test_a_broken_binary_is_named_and_nothing_is_left_running(cli: Cli, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for component in binaries.COMPONENTS:
        shutil.copytree(
            binaries.component_dir(component), cache / binaries.cache_key(component), symlinks=True
        )
    broken = cache / binaries.cache_key(binaries.KUBERNETES) / "kube-apiserver"
    broken.write_bytes(b"\x7fELF truncated download")
    cli.env["PYTEST_CHAOS_CACHE_DIR"] = str(cache)

    result = cli.run("up")

    assert result.returncode == 1
    assert "kube-apiserver" in result.stderr
    assert "pytest-chaos cluster build --force" in result.stderr
    assert cli.leftovers() == []


def test_build_without_go_says_what_is_needed(cli: Cli, tmp_path: Path) -> None:
    cli.env["PYTEST_CHAOS_CACHE_DIR"] = str(tmp_path / "empty-cache")
    cli.env["PATH"] = os.path.dirname(sys.executable)

    result = cli.run("build")

    assert result.returncode == 1
    assert "Go is needed" in result.stderr
    assert "Go 1.23 or newer" in result.stderr


def test_build_without_the_module_proxy_says_so(cli: Cli, tmp_path: Path) -> None:
    cli.env.update(
        PYTEST_CHAOS_CACHE_DIR=str(tmp_path / "empty-cache"),
        GOPROXY="off",
        GOMODCACHE=str(tmp_path / "empty-modcache"),
    )

    result = cli.run("build")

    assert result.returncode == 1
    assert "Go module proxy" in result.stderr
    assert "GOPROXY" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_up_leaves_nothing_running(cli: Cli, signum: int) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "pytest_chaos", "cluster", "up"],
        env=cli.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # A child of a non-interactive shell ignores SIGINT unless told otherwise.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as proc:
        assert proc.stderr is not None
        # Interrupt mid-start: once the API server is being waited for.
        for line in proc.stderr:
            if "waiting for kube-apiserver" in line:
                break
        started = cli.leftovers()
        assert started, "etcd and kube-apiserver should be running by now"

        proc.send_signal(signum)
        proc.communicate(timeout=60)

    assert proc.returncode != 0
    assert [pid for pid in started if is_alive(pid)] == []
    assert cli.leftovers() == []


def test_a_machine_standing_still_mid_start_does_not_use_up_the_timeout(cli: Cli) -> None:
    # A paused VM (a CI runner put aside) or a stopped process: the clock runs on, we do not.
    with subprocess.Popen(
        [sys.executable, "-m", "pytest_chaos", "cluster", "up", "--timeout", "15"],
        env=cli.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stderr is not None
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if "waiting for kube-apiserver" in line:
                break
        proc.send_signal(signal.SIGSTOP)
        time.sleep(17)  # the fault itself, longer than the whole timeout: nothing to watch
        proc.send_signal(signal.SIGCONT)
        _, rest = proc.communicate(timeout=60)
    output = "".join(lines) + rest

    assert proc.returncode == 0, output
    stood_still = re.search(r"this machine stood still for (\d+)s", output)
    assert stood_still, output
    assert 15 <= int(stood_still.group(1)) <= 19


def test_a_pod_ready_delay_makes_pods_start_like_real_ones(cli: Cli) -> None:
    import functools

    from pytest_chaos import Kube
    from pytest_chaos.steady.diagnosis import pod_ready
    from tests.e2e.manifests import deployment

    cli.up("--pod-ready-delay", "1500ms")
    kube = Kube.from_kubeconfig(cli.state_root / "local" / "kubeconfig")
    try:
        kube.wait(
            functools.partial(kube.core.list_namespaced_service_account, "default"),
            bool,
            within=30,
            what="default service account",
        )
        started = time.monotonic()
        kube.apps.create_namespaced_deployment("default", deployment("slow", replicas=1))
        kube.wait(
            functools.partial(kube.core.list_namespaced_pod, "default"),
            lambda pods: any(map(pod_ready, pods)),
            within=30,
            what="a ready pod",
        )
        assert 1.4 <= time.monotonic() - started < 10
    finally:
        kube.close()
