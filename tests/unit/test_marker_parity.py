"""One signature, not two copies: every verb and its marker twin share one argument check."""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_chaos.chaos import Chaos
from pytest_chaos.markers import CHECK_ONLY, FAULT_MARKERS
from pytest_chaos.report.timeline import Timeline

#: The fixture groups' names in marker names (``chaos.pods.kill`` <-> ``chaos_pod_kill``).
SINGULAR = {
    "pods": "pod",
    "deployments": "deployment",
    "statefulsets": "statefulset",
    "nodes": "node",
}


def groups() -> dict[str, Any]:
    session = SimpleNamespace(
        kube=None,
        ledger=None,
        safety=None,
        seed=1,
        settings=SimpleNamespace(
            dry_run=False, toolbox_image="toolbox", lease_wait=0.0, revert_timeout=0.0
        ),
    )
    injector = Chaos(session, "test", Timeline("test"))
    return {
        name: group
        for name, group in vars(injector).items()
        if not name.startswith("_") and name not in ("timeline", "faults")
    }


def verbs() -> list[tuple[str, str]]:
    return [
        (family, verb)
        for family, group in groups().items()
        for verb, _ in inspect.getmembers(type(group), inspect.isfunction)
        if not verb.startswith("_")
    ]


def parameters(function: Any, *, method: bool) -> list[tuple[str, Any, Any]]:
    params = list(inspect.signature(function).parameters.values())[1 if method else 0 :]
    return [(p.name, p.kind, p.default) for p in params if p.name not in CHECK_ONLY]


@pytest.mark.parametrize(("family", "verb"), verbs(), ids=lambda v: str(v))
def test_every_verb_has_a_marker_whose_check_takes_its_arguments(family: str, verb: str) -> None:
    name = f"chaos_{SINGULAR.get(family, family)}_{verb}"
    assert name in FAULT_MARKERS, f"chaos.{family}.{verb} has no marker {name}"
    marker = FAULT_MARKERS[name]
    assert (marker.family, marker.verb) == (family, verb)
    method = getattr(type(groups()[family]), verb)
    assert parameters(marker.signature, method=False) == parameters(method, method=True)


def test_every_marker_calls_a_verb_that_exists() -> None:
    assert {(m.family, m.verb) for m in FAULT_MARKERS.values()} == set(verbs())
