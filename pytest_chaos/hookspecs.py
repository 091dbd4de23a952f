"""Hooks other plugins and conftest files can implement to extend pytest-chaos.

Example, a notifier of your own (in ``conftest.py``)::

    def pytest_chaos_run_summary(config, summary):
        post_to_pager(summary["text"])
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookspec
def pytest_chaos_fault_injected(fault: Any, test: str) -> None:
    """A fault was injected and verified (``fault`` is a :class:`pytest_chaos.Fault`).

    :param fault: the handle: ``fault.kind``, ``fault.targets``, ``fault.details``.
    :param test: the node id of the test (or module/class) that injected it.
    """


@pytest.hookspec
def pytest_chaos_fault_reverted(fault: Any, test: str) -> None:
    """A fault was reverted (by its handle, a ``with`` block, or the fixture's teardown).

    :param fault: the handle, no longer active.
    :param test: the node id of the test that injected it.
    """


@pytest.hookspec
def pytest_chaos_run_summary(config: pytest.Config, summary: dict[str, Any]) -> None:
    """The run is over (called once, on the xdist controller when xdist is used).

    :param summary: ``text`` (one line), ``run``, ``seed``, ``outcomes`` (by outcome),
        ``injected``, ``reverted``, ``discarded``, ``revert_failures``, ``leftovers``, ``verdict``
        (``passed``, ``failed``, ``LEFT FAULTS BEHIND``), ``failed`` (node id, outcome,
        message of each failed test), ``faults`` and ``monitors`` (per test), ``replay``.
    """
