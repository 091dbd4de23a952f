"""chaos.nodes: cordon, drain, taint, delete and zone outages of nodes."""

from __future__ import annotations

from pytest_chaos.faults import FaultContext


class NodeFaults:
    """``chaos.nodes``: see the module docstring."""

    def __init__(self, ctx: FaultContext) -> None:
        """Bind the verbs to a fault context."""
        self._ctx = ctx
