"""pytest-chaos's pytest plugin: hooks only (options, markers, header, cluster lifecycle).

Nothing heavy is imported here: the Kubernetes and HTTP clients load lazily, when a test first
uses a fixture that needs them, so an installed but unused plugin costs pytest almost nothing.
"""

from __future__ import annotations

import pytest

from pytest_chaos.errors import ChaosConfigError
from pytest_chaos.fixtures import chaos_cluster, chaos_namespace, kube
from pytest_chaos.settings import OPTIONS, SETTINGS_KEY, resolve

__all__ = ["chaos_cluster", "chaos_namespace", "kube"]

MARKERS = ("chaos: a resilience (chaos) test; selected with `pytest -m chaos`",)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register every ``--chaos-*`` option and its ``chaos_*`` ini key once."""
    group = parser.getgroup("chaos", "resilience (chaos) testing on Kubernetes")
    for option in OPTIONS:
        group.addoption(
            option.flag, dest=option.dest, default=None, help=option.help, choices=option.choices
        )
        parser.addini(option.ini, help=option.help, default=None)


def pytest_configure(config: pytest.Config) -> None:
    """Register markers and resolve the settings (bad values: a usage error, exit code 4)."""
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    try:
        config.stash[SETTINGS_KEY] = resolve(config)
    except ChaosConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say which cluster chaos tests will use."""
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None:
        return None
    if settings.cluster == "local":
        return f"chaos: cluster=local (embedded, name {settings.local_name!r})"
    where = settings.kubeconfig or "default kubeconfig"
    return f"chaos: cluster=existing ({where}, context {settings.context or 'current'})"


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """Xdist controller: remember a local cluster a worker started, to stop it at the end."""
    output = getattr(node, "workeroutput", {})
    name = output.get("chaos_started_local")
    if name:
        config = getattr(node, "config", None)
        if config is not None:
            config.stash.setdefault(_STARTED_KEY, set()).add(name)


_STARTED_KEY = pytest.StashKey[set[str]]()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Xdist controller: stop the local cluster a worker started (workers leave it running)."""
    for name in config.stash.get(_STARTED_KEY, set()):
        from pytest_chaos.cluster.local import LocalCluster

        LocalCluster(name).down()
