"""chaos.istio: HTTP aborts and delays on Istio VirtualService routes."""

from __future__ import annotations

from pytest_chaos.faults import FaultContext


class IstioFaults:
    """``chaos.istio``: see the module docstring."""

    def __init__(self, ctx: FaultContext) -> None:
        """Bind the verbs to a fault context."""
        self._ctx = ctx
