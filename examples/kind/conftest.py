"""The kind examples need `--chaos-cluster=kind` and two workers; elsewhere they skip, saying how.

``make test`` runs them when the node image is built (``make kind-binaries``)::

    pytest -m chaos examples/kind --chaos-cluster=kind --chaos-kind-workers=2
"""

from __future__ import annotations

import pytest

from pytest_chaos.cluster import ClusterHandle

RUN_WITH = "pytest -m chaos examples/kind --chaos-cluster=kind --chaos-kind-workers=2"


@pytest.fixture(autouse=True)
def on_kind(chaos_cluster: ClusterHandle) -> None:
    """Skip the test unless the session runs on kind."""
    if chaos_cluster.provider != "kind":
        pytest.skip(f"a kind example: run `{RUN_WITH}`")
