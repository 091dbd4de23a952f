from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_chaos.cluster import binaries
from pytest_chaos.errors import BinaryMissingError


@pytest.fixture
def tools_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "tools"
    shutil.copytree(binaries.tools_dir(), copy)
    return copy


def test_versions_come_from_the_committed_go_modules() -> None:
    assert binaries.module_version(binaries.KUBERNETES).startswith("v1.32.")
    assert binaries.module_version(binaries.ETCD).startswith("v3.5.")
    assert binaries.module_version(binaries.KWOK).startswith("v0.7.")


def test_cache_key_changes_when_a_dependency_changes(tools_copy: Path) -> None:
    before = binaries.cache_key(binaries.ETCD, tools_copy)
    with (tools_copy / "etcd" / "go.sum").open("a") as gosum:
        gosum.write("example.com/other v1.0.0 h1:AAAA=\n")
    after = binaries.cache_key(binaries.ETCD, tools_copy)
    assert before != after
    assert before.startswith("etcd-v3.5.")
    assert after.startswith("etcd-v3.5.")


def test_cache_key_changes_when_an_own_command_changes(tools_copy: Path) -> None:
    component = binaries.NETWORK_POLICIES
    before = binaries.cache_key(component, tools_copy)
    main = tools_copy / "network-policies" / "pytest-chaos-network-policies" / "main.go"
    main.write_text(main.read_text() + "\n// edited\n")
    after = binaries.cache_key(component, tools_copy)
    assert before != after
    assert after.startswith("network-policies-v0.8.0-")
    # Modules without commands of their own keep their key (no rebuild of Kubernetes).
    assert binaries.cache_key(binaries.KUBERNETES, tools_copy) == binaries.cache_key(
        binaries.KUBERNETES
    )


def test_kubernetes_is_stamped_with_its_real_version() -> None:
    flags = binaries._ldflags("v1.32.5")
    assert "-X k8s.io/component-base/version.gitVersion=v1.32.5" in flags
    assert "-X k8s.io/client-go/pkg/version.gitMinor=32" in flags


def test_a_binary_that_is_not_built_names_the_build_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PYTEST_CHAOS_CACHE_DIR", str(tmp_path))
    with pytest.raises(BinaryMissingError, match=r"kube-apiserver .* `pytest-chaos cluster build`"):
        binaries.binary("kube-apiserver")


def test_each_component_lists_what_it_builds() -> None:
    assert binaries.KUBERNETES.binaries == (
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubelet",
        "kube-proxy",
        "kubectl",
    )
    assert binaries.ETCD.binaries == ("etcd",)
    assert binaries.ISTIO_CRDS.binaries == ("istio-crds.yaml",)


def test_istiod_is_optional_and_says_how_to_build_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert binaries.ISTIO_CONTROL not in binaries.COMPONENTS
    assert binaries.ISTIO_CONTROL.binaries == (
        "pilot-discovery",
        "pilot-agent",
        "istio-crds-all.yaml",
        "envoy_bootstrap_tmpl.json",
    )
    assert binaries.module_version(binaries.ISTIO_CONTROL) == "v0.0.0-20260827124520-eed52ebb66ad"
    monkeypatch.setenv("PYTEST_CHAOS_CACHE_DIR", str(tmp_path))
    with pytest.raises(BinaryMissingError, match=r"`pytest-chaos cluster build --istio`"):
        binaries.binary("pilot-discovery")
