"""Repository-only test wiring: pytester, and the gating of tests that need a cluster.

Tests under ``tests/e2e`` and ``examples`` need a real API server: they get the ``cluster`` marker.
They run by default (``make test`` runs everything); ``--no-cluster`` deselects them for a quick
loop over the unit and plugin tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).parent
CLUSTER_DIRS = (ROOT / "tests" / "e2e", ROOT / "examples")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-cluster",
        action="store_true",
        help="deselect the tests that need a Kubernetes cluster",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cluster: needs a real Kubernetes API server")
    config.addinivalue_line(
        "markers", "solo: starts a real node of its own (one per machine); `make test` runs it last"
    )
    # pytester points HOME at a temporary directory; keep the per-user binary cache and cluster
    # state where they are, so nested runs find the built binaries and the session's cluster.
    from pytest_chaos.cluster.binaries import cache_root
    from pytest_chaos.cluster.local import state_root

    os.environ.setdefault("PYTEST_CHAOS_CACHE_DIR", str(cache_root()))
    os.environ.setdefault("PYTEST_CHAOS_STATE_DIR", str(state_root()))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    deselected: list[pytest.Item] = []
    kept: list[pytest.Item] = []
    for item in items:
        if any(parent in item.path.parents for parent in CLUSTER_DIRS):
            item.add_marker(pytest.mark.cluster)
        if config.getoption("--no-cluster") and item.get_closest_marker("cluster"):
            deselected.append(item)
        else:
            kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
