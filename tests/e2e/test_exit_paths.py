"""Nothing is left behind, however a run ends.

A real pytest process injects two faults with undo records (a Deployment scaled to zero and a
Deployment deleted), then ends in one of the ways runs end: pass, fail, error, pytest-timeout
(signal and thread methods), Ctrl-C, SIGTERM, SIGKILL. Afterwards the cluster must be as before:
same specs, no undo record left; the two ways that cannot run teardown (the thread timeout's
``os._exit`` and SIGKILL) are recovered by ``pytest-chaos cleanup``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos import Kube
from pytest_chaos.ledger import read_cluster
from tests.e2e.manifests import namespace_with

INNER = """
import time

import pytest

NS = {ns!r}


def inject(chaos):
    chaos.pods.kill("app=web", namespace=NS)
    chaos.deployments.scale("web", namespace=NS, replicas=0)
    chaos.deployments.delete("api", namespace=NS)
    open({marker!r}, "w").close()


{body}
"""

BODIES = {
    "pass": "def test_chaos(chaos):\n    inject(chaos)\n",
    "fail": "def test_chaos(chaos):\n    inject(chaos)\n    assert False, 'the system deviated'\n",
    "error": (
        "@pytest.fixture\ndef broken(chaos):\n    inject(chaos)\n"
        "    raise RuntimeError('a fixture broke after the faults')\n\n\n"
        "def test_chaos(broken):\n    pass\n"
    ),
    "timeout-signal": (
        "@pytest.mark.timeout(8, method='signal')\n"
        "def test_chaos(chaos):\n    inject(chaos)\n    time.sleep(60)\n"
    ),
    "timeout-thread": (
        "@pytest.mark.timeout(8, method='thread')\n"
        "def test_chaos(chaos):\n    inject(chaos)\n    time.sleep(60)\n"
    ),
    "sleep": "def test_chaos(chaos):\n    inject(chaos)\n    time.sleep(60)\n",
}


@dataclass
class Workload:
    namespace: str
    specs: dict[str, Any]
    kube: Kube

    def spec(self, name: str) -> Any:
        return self.kube.serialize(self.kube.apps.read_namespaced_deployment(name, self.namespace))[
            "spec"
        ]

    def assert_as_before(self) -> None:
        assert self.spec("web") == self.specs["web"]
        assert self.spec("api") == self.specs["api"]
        assert [r.target for r in read_cluster(self.kube) if r.namespace == self.namespace] == []


@pytest.fixture
def workload(kube: Kube) -> Iterator[Workload]:
    with namespace_with(kube, "exit", {"web": 2, "api": 1}) as namespace:
        specs = {
            name: kube.serialize(kube.apps.read_namespaced_deployment(name, namespace))["spec"]
            for name in ("web", "api")
        }
        yield Workload(namespace, specs, kube)


def start(
    kube: Kube, workload: Workload, tmp_path: Path, body: str, ledger: Path
) -> tuple[subprocess.Popen[str], Path]:
    marker = tmp_path / "injected"
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(INNER.format(ns=workload.namespace, marker=str(marker), body=BODIES[body]))
    return run_inner_test(kube, test_file, ledger=ledger), marker


def run_inner_test(kube: Kube, test_file: Path, *, ledger: Path) -> subprocess.Popen[str]:
    """Run test_file in its own pytest process on kube's cluster, its ledger in ledger.

    Its output is piped; SIGINT works on it like a Ctrl-C (a child of a non-interactive shell
    ignores SIGINT unless told otherwise).
    """
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            str(test_file),
            "-p",
            "no:cacheprovider",
            "-q",
            "--chaos-cluster=existing",
            f"--chaos-kubeconfig={kube.kubeconfig}",
            f"--chaos-context={kube.context}",
        ],
        cwd=test_file.parent,
        env={**os.environ, "PYTEST_CHAOS_LEDGER_DIR": str(ledger)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for(marker: Path, proc: subprocess.Popen[str], within: float = 60) -> None:
    """Until the inner test has injected its faults (a deadline-bounded look at a file)."""
    deadline = time.monotonic() + within
    while not marker.exists():
        assert proc.poll() is None, f"the inner run ended early:\n{proc.communicate()[0]}"
        assert time.monotonic() < deadline, "the inner test never injected its faults"
        time.sleep(0.05)


def run_id(ledger: Path) -> str:
    """The inner run's id: its ledger file is named <run id>-<pid>.jsonl."""
    (path,) = ledger.glob("*.jsonl")
    return path.name.rsplit("-", 1)[0]


def cleanup(kube: Kube, ledger: Path, run: str) -> str:
    # Only this run's faults: other tests' crashed runs may be in the cluster at the same time.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_chaos",
            "cleanup",
            f"--kubeconfig={kube.kubeconfig}",
            f"--context={kube.context}",
            f"--run={run}",
        ],
        env={**os.environ, "PYTEST_CHAOS_LEDGER_DIR": str(ledger)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        ("pass", "1 passed"),
        ("fail", "1 failed"),
        ("error", "1 error"),
        ("timeout-signal", "Timeout"),
    ],
)
def test_teardown_reverts_every_fault(
    kube: Kube, workload: Workload, tmp_path: Path, body: str, outcome: str
) -> None:
    proc, _marker = start(kube, workload, tmp_path, body, tmp_path / "ledger")
    output, _ = proc.communicate(timeout=120)
    assert outcome in output, output
    assert "revert failures: 0, leftovers: 0" in output
    workload.assert_as_before()
    assert list((tmp_path / "ledger").glob("*.jsonl")) == []  # a finished run tidies up


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_reverts_before_it_exits(
    kube: Kube, workload: Workload, tmp_path: Path, signum: int
) -> None:
    proc, marker = start(kube, workload, tmp_path, "sleep", tmp_path / "ledger")
    wait_for(marker, proc)

    proc.send_signal(signum)
    output, _ = proc.communicate(timeout=120)

    assert proc.returncode != 0
    workload.assert_as_before()
    assert "leftovers: 0" in output, output


def test_a_thread_timeout_exits_at_once_and_cleanup_recovers(
    kube: Kube, workload: Workload, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    proc, marker = start(kube, workload, tmp_path, "timeout-thread", ledger)
    output, _ = proc.communicate(timeout=120)
    assert "Timeout" in output
    assert marker.exists(), "the faults were not all injected before the timeout"
    assert workload.spec("web")["replicas"] == 0  # left behind by os._exit

    report = cleanup(kube, ledger, run_id(ledger))

    assert "deployments.scale on Deployment" in report
    assert "deployments.delete on Deployment" in report
    workload.assert_as_before()


def test_sigkill_then_cleanup_recovers_even_without_the_local_ledger(
    kube: Kube, workload: Workload, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    proc, marker = start(kube, workload, tmp_path, "sleep", ledger)
    wait_for(marker, proc)

    proc.kill()
    proc.communicate(timeout=60)
    run = run_id(ledger)
    assert workload.spec("web")["replicas"] == 0
    for path in ledger.glob("*.jsonl"):
        path.unlink()  # the runner's disk is gone too: only the cluster's records remain

    report = cleanup(kube, ledger, run)

    assert report.count("reverted: ") == 2, report
    workload.assert_as_before()
    assert cleanup(kube, ledger, run).strip() == "nothing left behind"
