"""Fixtures shared by the unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def holder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with ``pytest-chaos-hold`` built from tools/images/hold (Go, cached build)."""
    from pytest_chaos.cluster import images
    from pytest_chaos.errors import ClusterError
    from pytest_chaos.faults import scripts

    out = tmp_path_factory.mktemp("hold")
    try:
        images.go_build(images.sources_dir() / "hold", out / scripts.HOLD_COMMAND)
    except ClusterError as exc:  # no Go: make test installs it, a bare checkout may not have it
        pytest.skip(f"cannot build the memory holder: {exc}")
    return out
