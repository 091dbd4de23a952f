"""What messages say: the journal options, the kubeconfig in use, selectors, pod shims."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_chaos.cli import split_pod_shims
from pytest_chaos.errors import ChaosConfigError
from pytest_chaos.settings import kubeconfig_origin, resolve
from pytest_chaos.targeting import matching_text
from tests.unit.test_settings import FakeConfig, clean_env

__all__ = ["clean_env"]  # the settings tests' autouse fixture: no CHAOS_* or KUBECONFIG leaks


def test_the_journal_is_truncated_unless_appending_is_asked_for() -> None:
    assert resolve(FakeConfig({"chaos_journal": "j.jsonl"})).journal_append is False
    flag = FakeConfig({"chaos_journal": "j.jsonl", "chaos_journal_append": True})
    assert resolve(flag).journal_append is True
    ini = FakeConfig({"chaos_journal": "j.jsonl"}, {"chaos_journal_append": True})
    assert resolve(ini).journal_append is True


def test_appending_without_a_journal_on_the_command_line_says_what_is_missing() -> None:
    with pytest.raises(ChaosConfigError, match=r"--chaos-journal-append: .*add --chaos-journal="):
        resolve(FakeConfig({"chaos_journal_append": True}))
    # An ini default is harmless on runs without a journal.
    assert resolve(FakeConfig(ini={"chaos_journal_append": True})).journal is None


def test_a_journal_append_value_that_is_not_a_boolean_names_its_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTEST_CHAOS_JOURNAL_APPEND", "often")
    with pytest.raises(
        ChaosConfigError, match=r"'often' from environment variable PYTEST_CHAOS_JOURNAL_APPEND"
    ):
        resolve(FakeConfig({"chaos_journal": "j.jsonl"}))


def test_the_header_names_the_kubeconfig_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "cluster.yaml"
    config.write_text("apiVersion: v1\n")
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}:{config}")
    assert kubeconfig_origin(None) == f"{config} from $KUBECONFIG"


def test_the_header_names_the_home_kubeconfig_and_an_explicit_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / ".kube" / "config"
    home.parent.mkdir()
    home.write_text("apiVersion: v1\n")
    # $KUBECONFIG names no existing file: kubectl falls back to ~/.kube/config, so do we.
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    assert kubeconfig_origin(None) == f"{home} (the default, ~/.kube/config)"
    assert kubeconfig_origin(Path("/x/y")) == "/x/y"


def test_without_any_kubeconfig_the_header_says_so() -> None:
    assert kubeconfig_origin(None).startswith("no kubeconfig found")


@pytest.mark.parametrize("selector", [None, "", "  "])
def test_no_selector_reads_as_any_labels_not_as_none(selector: str | None) -> None:
    assert matching_text(selector) == "with any labels (no selector)"


def test_a_selector_is_quoted() -> None:
    assert matching_text("app=web") == "matching 'app=web'"


def test_containerd_shims_are_told_from_other_processes() -> None:
    argv = {
        10: b"/usr/bin/containerd-shim-runc-v2\0-namespace\0k8s.io\0-id\0abc\0",
        11: b"/opt/state/bin/etcd\0--data-dir=/opt/state/etcd\0",
        12: b"",  # gone meanwhile
    }
    assert split_pod_shims([10, 11, 12], argv.__getitem__) == ([10], [11, 12])
