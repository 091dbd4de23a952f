"""Empty option values are refused, and the lease and revert timeouts are durations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_chaos.errors import ChaosConfigError
from pytest_chaos.settings import (
    DEFAULT_LEASE_WAIT,
    DEFAULT_REVERT_TIMEOUT,
    DEFAULT_TOOLBOX_IMAGE,
    OPTIONS,
    resolve,
)


class FakeConfig:
    """Stands in for pytest.Config: command-line values and ini values by name."""

    def __init__(self, options: dict[str, Any] | None = None, ini: dict[str, Any] | None = None):
        self.options = options or {}
        self.ini = ini or {}

    def getoption(self, name: str) -> Any:
        return self.options.get(name)

    def getini(self, name: str) -> Any:
        return self.ini.get(name)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for option in OPTIONS:
        monkeypatch.delenv(option.env, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)


@pytest.mark.parametrize(
    ("dest", "value", "flag"),
    [
        ("chaos_toolbox_image", "", "--chaos-toolbox-image"),
        ("chaos_toolbox_image", "  ", "--chaos-toolbox-image"),
        ("chaos_allow_namespace", [""], "--chaos-allow-namespace"),
        ("chaos_allow_namespace", ["shop", ""], "--chaos-allow-namespace"),
        ("chaos_allow_context", [""], "--chaos-allow-context"),
        ("chaos_report", "", "--chaos-report"),
        ("chaos_lease_wait", "", "--chaos-lease-wait"),
    ],
)
def test_an_empty_value_on_the_command_line_is_refused_not_taken_as_none(
    dest: str, value: Any, flag: str
) -> None:
    with pytest.raises(ChaosConfigError) as info:
        resolve(FakeConfig({dest: value}))
    assert str(info.value) == (
        f"{flag}: an empty value is not a setting; give a value ({flag}=VALUE) or leave the "
        "option out for its default"
    )


def test_left_out_options_keep_their_defaults() -> None:
    settings = resolve(FakeConfig())
    assert settings.toolbox_image == DEFAULT_TOOLBOX_IMAGE
    assert settings.allow_namespaces == ()
    assert settings.lease_wait == DEFAULT_LEASE_WAIT == 300
    assert settings.revert_timeout == DEFAULT_REVERT_TIMEOUT == 120


def test_lease_wait_and_revert_timeout_are_durations_from_any_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert resolve(FakeConfig({"chaos_lease_wait": "0"})).lease_wait == 0
    assert resolve(FakeConfig({"chaos_lease_wait": "1m30s"})).lease_wait == 90
    assert resolve(FakeConfig(ini={"chaos_revert_timeout": "45s"})).revert_timeout == 45
    monkeypatch.setenv("PYTEST_CHAOS_LEASE_WAIT", "2m")
    assert resolve(FakeConfig()).lease_wait == 120


def test_a_bad_lease_wait_names_the_option_the_source_and_an_example() -> None:
    with pytest.raises(ChaosConfigError) as info:
        resolve(FakeConfig(ini={"chaos_lease_wait": "forever"}))
    message = str(info.value)
    assert message.startswith("--chaos-lease-wait='forever' is not a duration")
    assert message.endswith("(from ini key chaos_lease_wait; e.g. --chaos-lease-wait=90s)")
