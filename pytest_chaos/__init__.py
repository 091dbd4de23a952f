"""pytest-chaos: resilience (chaos) testing for applications on Kubernetes, as pytest tests.

The public names. Classes that need the Kubernetes or HTTP client load on first use, so that
importing the plugin costs pytest almost nothing.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from pytest_chaos.errors import (
    BinaryMissingError,
    ChaosConfigError,
    ChaosError,
    ChaosWarning,
    ClusterError,
    DriftError,
    InconclusiveError,
    InjectError,
    NotSteadyError,
    RevertError,
    SafetyError,
    TargetingError,
    WaitTimeout,
)

if TYPE_CHECKING:
    from pytest_chaos.chaos import Chaos
    from pytest_chaos.faults import Fault
    from pytest_chaos.hypotheses import service_url
    from pytest_chaos.kube import Kube
    from pytest_chaos.markers import TEST_NAMESPACE
    from pytest_chaos.steady import Steady
    from pytest_chaos.steady.eventually import eventually
    from pytest_chaos.steady.http import HttpProbe, Monitor
    from pytest_chaos.steady.restarts import Restart

_LAZY = {
    "Chaos": "pytest_chaos.chaos",
    "Fault": "pytest_chaos.faults",
    "Kube": "pytest_chaos.kube",
    "Steady": "pytest_chaos.steady",
    "eventually": "pytest_chaos.steady.eventually",
    "TEST_NAMESPACE": "pytest_chaos.markers",
    "service_url": "pytest_chaos.hypotheses",
    "HttpProbe": "pytest_chaos.steady.http",
    "Monitor": "pytest_chaos.steady.http",
    "Restart": "pytest_chaos.steady.restarts",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("pytest-chaos")
        except PackageNotFoundError:  # pragma: no cover - a source tree without install
            return "0+unknown"
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pytest_chaos' has no attribute {name!r}")


__all__ = [
    "TEST_NAMESPACE",
    "BinaryMissingError",
    "Chaos",
    "ChaosConfigError",
    "ChaosError",
    "ChaosWarning",
    "ClusterError",
    "DriftError",
    "Fault",
    "HttpProbe",
    "InconclusiveError",
    "InjectError",
    "Kube",
    "Monitor",
    "NotSteadyError",
    "Restart",
    "RevertError",
    "SafetyError",
    "Steady",
    "TargetingError",
    "WaitTimeout",
    "__version__",
    "eventually",
    "service_url",
]
