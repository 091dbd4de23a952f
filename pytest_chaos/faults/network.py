"""chaos.network: partitions (NetworkPolicy) and connection cuts (ephemeral containers)."""

from __future__ import annotations

from pytest_chaos.faults import FaultContext


class NetworkFaults:
    """``chaos.network``: see the module docstring."""

    def __init__(self, ctx: FaultContext) -> None:
        """Bind the verbs to a fault context."""
        self._ctx = ctx
