"""Exceptions raised by pytest-chaos.

The tree::

    ChaosError
    ├── ChaosConfigError   a bad option, ini value or marker argument (pytest exits with code 4)
    ├── SafetyError        refused: a context or namespace outside the allow-lists, blast radius
    ├── TargetingError     a selector matched nothing or too few (says what does exist)
    ├── InjectError        a fault could not be injected (what was done is undone first)
    ├── InconclusiveError  the fault did not take effect (the test is an ERROR, not a pass)
    ├── RevertError        one or more reverts failed (raised after every revert was tried)
    │   └── DriftError     someone else changed a faulted object; reported, not clobbered
    ├── ClusterError       a cluster provider could not build, start, reach or stop a cluster
    │   └── BinaryMissingError   a cluster binary is absent or broken (says how to rebuild it)
    └── WaitTimeout        a watched condition did not hold in time (also a TimeoutError)

NotSteadyError(AssertionError): a steady-state check failed; pytest reports the test FAILED.
└── SteadyMarkerError   the ``steady_state`` marker's own verdict (before / during / after chaos)

Every message follows one template: what went wrong, where, and how to fix it.
"""

from __future__ import annotations


class ChaosError(Exception):
    """Base class of every error pytest-chaos raises on purpose."""


class ChaosConfigError(ChaosError):
    """An option, ini value, environment variable or marker argument is invalid."""


class SafetyError(ChaosError):
    """pytest-chaos refused to touch something outside the allow-lists."""


class TargetingError(ChaosError):
    """A selector matched nothing, or fewer targets than the mode needs."""


class InjectError(ChaosError):
    """A fault could not be injected; whatever it had already done was undone first."""


class InconclusiveError(ChaosError):
    """The fault was applied but did not take effect, so the test proves nothing."""


class RevertError(ChaosError):
    """A revert failed; the cluster may still carry the fault (see ``pytest-chaos cleanup``)."""


class DriftError(RevertError):
    """A faulted object was changed by someone else; restoring it would clobber their change."""


class NotSteadyError(AssertionError):
    """The system is not in its steady state; the message holds the diagnosis."""


class SteadyMarkerError(NotSteadyError):
    """The ``steady_state`` marker's verdict: not steady before chaos, during it, or after revert.

    Reported without a traceback through pytest-chaos (the message says what was seen).
    """


class ClusterError(ChaosError):
    """A cluster could not be built, started, reached or stopped."""


class BinaryMissingError(ClusterError):
    """A binary of the local cluster is missing or does not run."""


class WaitTimeout(ChaosError, TimeoutError):  # noqa: N818 - reads as the event it is
    """A watched condition did not hold within its deadline; carries the last state seen."""

    def __init__(self, message: str, last_seen: list[object] | None = None) -> None:
        super().__init__(message)
        self.last_seen = last_seen or []


class ChaosWarning(UserWarning):
    """Something worth knowing that does not stop the run (e.g. leftovers of crashed runs)."""
