"""chaos.stress: CPU and memory pressure in pods and on nodes."""

from __future__ import annotations

from pytest_chaos.faults import FaultContext


class StressFaults:
    """``chaos.stress``: see the module docstring."""

    def __init__(self, ctx: FaultContext) -> None:
        """Bind the verbs to a fault context."""
        self._ctx = ctx
