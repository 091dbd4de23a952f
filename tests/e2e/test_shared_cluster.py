"""Sessions share the local cluster: none stops it while another still uses it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from pytest_chaos.cluster.local import LocalCluster

INNER = """
import os, pathlib, time

def test_uses_cluster(kube):
    assert kube.core.list_node().items
    pathlib.Path(os.environ["READY_FILE"]).touch()
    go = pathlib.Path(os.environ["GO_FILE"])
    deadline = time.monotonic() + 120
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert kube.core.list_node().items, "the cluster must still answer"
"""


def wait_file(path: Path, procs: list[subprocess.Popen[str]], within: float = 120) -> None:
    deadline = time.monotonic() + within
    while not path.exists():
        for proc in procs:
            assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_a_session_started_cluster_stops_only_after_its_last_session(tmp_path: Path) -> None:
    state = tmp_path / "clusters"
    (tmp_path / "test_inner.py").write_text(INNER)
    procs, files = [], []
    for who in ("first", "second"):
        ready, go = tmp_path / f"{who}.ready", tmp_path / f"{who}.go"
        env = {
            **os.environ,
            "PYTEST_CHAOS_STATE_DIR": str(state),
            "READY_FILE": str(ready),
            "GO_FILE": str(go),
        }
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "test_inner.py",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "--chaos-cluster=local",
                    "--chaos-local-name=shared",
                ],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
        files.append((ready, go))
        wait_file(ready, procs)  # the first one starts the cluster, the second reuses it
    cluster = LocalCluster("shared", root=state)

    files[0][1].touch()  # the first session (which started the cluster) ends first
    assert "1 passed" in procs[0].communicate(timeout=120)[0]
    assert cluster.status().running

    files[1][1].touch()
    assert "1 passed" in procs[1].communicate(timeout=120)[0]
    assert not cluster.status().exists
    assert cluster.status().orphans == ()
