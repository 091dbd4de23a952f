from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_chaos.errors import ChaosConfigError
from pytest_chaos.settings import OPTIONS, resolve


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


def test_every_option_has_a_flag_an_ini_key_and_an_env_variable() -> None:
    cluster = next(o for o in OPTIONS if o.name == "cluster")
    assert (cluster.flag, cluster.ini, cluster.env) == (
        "--chaos-cluster",
        "chaos_cluster",
        "PYTEST_CHAOS_CLUSTER",
    )


def test_without_a_kubeconfig_the_default_cluster_is_local() -> None:
    settings = resolve(FakeConfig())
    assert settings.cluster == "local"
    assert settings.local_nodes == 3


def test_with_a_kubeconfig_the_default_cluster_is_existing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\n")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    assert resolve(FakeConfig()).cluster == "existing"


def test_command_line_beats_environment_beats_ini(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_CHAOS_LOCAL_NAME", "from-env")
    config = FakeConfig(
        options={"chaos_local_name": "from-cli"}, ini={"chaos_local_name": "from-ini"}
    )
    assert resolve(config).local_name == "from-cli"
    assert resolve(FakeConfig(ini={"chaos_local_name": "from-ini"})).local_name == "from-env"
    monkeypatch.delenv("PYTEST_CHAOS_LOCAL_NAME")
    assert resolve(FakeConfig(ini={"chaos_local_name": "from-ini"})).local_name == "from-ini"


def test_an_invalid_value_names_the_option_and_its_source() -> None:
    with pytest.raises(
        ChaosConfigError,
        match=r"--chaos-cluster: invalid value 'lokal' from "
        r"ini key chaos_cluster; choose one of",
    ):
        resolve(FakeConfig(ini={"chaos_cluster": "lokal"}))


def test_a_missing_kubeconfig_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ChaosConfigError, match="is not a file"):
        resolve(FakeConfig(options={"chaos_kubeconfig": str(tmp_path / "nope")}))


def test_kind_settings_come_from_flags_and_ini() -> None:
    settings = resolve(
        FakeConfig(
            options={"chaos_cluster": "kind", "chaos_kind_workers": "3"},
            ini={"chaos_kind_name": "ci", "chaos_kind_keep": "true"},
        )
    )
    assert (settings.cluster, settings.kind_name, settings.kind_workers, settings.kind_keep) == (
        "kind",
        "ci",
        3,
        True,
    )


def test_kind_workers_must_be_a_whole_number_naming_its_source() -> None:
    with pytest.raises(
        ChaosConfigError, match=r"--chaos-kind-workers: '-1' from ini key chaos_kind_workers"
    ):
        resolve(FakeConfig(ini={"chaos_cluster": "kind", "chaos_kind_workers": "-1"}))


@pytest.mark.parametrize("nodes", ["0", "-1", "three"])
def test_local_nodes_must_be_a_positive_whole_number(nodes: str) -> None:
    with pytest.raises(ChaosConfigError, match="--chaos-local-nodes"):
        resolve(FakeConfig(options={"chaos_local_nodes": nodes}))


@pytest.mark.parametrize(
    ("value", "expected"), [("yes", "yes"), ("true", "yes"), ("auto", "auto"), ("0", "no")]
)
def test_local_real_node_wishes(value: str, expected: str) -> None:
    from pytest_chaos.settings import _real_node

    assert _real_node((value, "--chaos-local-real-node")) == expected


def test_a_local_real_node_wish_that_is_not_one_names_the_values() -> None:
    from pytest_chaos.errors import ChaosConfigError
    from pytest_chaos.settings import _real_node

    with pytest.raises(ChaosConfigError, match="must be yes, no or auto"):
        _real_node(("sometimes", "pyproject.toml"))


def test_local_images_are_repeatable_files(tmp_path: Path) -> None:
    first, second = tmp_path / "a.tar", tmp_path / "b.tar"
    first.write_bytes(b"x")
    second.write_bytes(b"y")
    options = {"chaos_local_image": [str(first), str(second)]}
    assert resolve(FakeConfig(options=options)).local_images == (first, second)
    assert resolve(FakeConfig()).local_images == ()


def test_a_local_image_that_is_no_file_names_the_option_and_source(tmp_path: Path) -> None:
    missing = tmp_path / "nope.tar"
    with pytest.raises(ChaosConfigError, match=rf"--chaos-local-image: {missing} \(from "):
        resolve(FakeConfig(options={"chaos_local_image": [str(missing)]}))
