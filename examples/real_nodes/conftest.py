"""The real-node examples need a cluster of three real nodes; elsewhere they skip, saying how.

``make demo`` runs them on one: ``pytest -m chaos examples/real_nodes --chaos-local-real-nodes=3
--chaos-local-nodes=0`` (the embedded cluster with three real nodes in zones a, b and c, no fake
nodes). On a cluster of your own, label three nodes ``chaos.pytest.dev/real-node=true``.
"""

from __future__ import annotations

import pytest

from pytest_chaos import Kube

REAL_NODE = "chaos.pytest.dev/real-node=true"
RUN_WITH = "pytest -m chaos examples/real_nodes --chaos-local-real-nodes=3 --chaos-local-nodes=0"


@pytest.fixture(autouse=True)
def three_real_nodes(kube: Kube) -> list[str]:
    """The names of the cluster's real nodes (skips the test when there are fewer than three)."""
    nodes = kube.core.list_node(label_selector=REAL_NODE).items
    if len(nodes) < 3:
        pytest.skip(f"needs 3 real nodes, the cluster has {len(nodes)}: run `{RUN_WITH}`")
    return sorted(str(n.metadata.name) for n in nodes)
