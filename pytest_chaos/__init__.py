"""pytest-chaos: resilience (chaos) testing for applications on Kubernetes, as pytest tests."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from pytest_chaos.errors import (
    BinaryMissingError,
    ChaosConfigError,
    ChaosError,
    ClusterError,
    SafetyError,
    WaitTimeout,
)
from pytest_chaos.kube import Kube

try:
    __version__ = version("pytest-chaos")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = [
    "BinaryMissingError",
    "ChaosConfigError",
    "ChaosError",
    "ClusterError",
    "Kube",
    "SafetyError",
    "WaitTimeout",
    "__version__",
]
