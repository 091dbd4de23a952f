"""The kind node image's recipe: what it takes from kind and the host, and what it refuses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_chaos.cluster import kind_node_image
from pytest_chaos.errors import ClusterError


@pytest.mark.skipif(shutil.which("ctr") is None, reason="containerd's ctr is not installed")
def test_the_base_runtime_spec_is_ctrs_with_kinds_hook_and_no_rlimits() -> None:
    spec = json.loads(kind_node_image.cri_base_spec())

    assert {"path": "/kind/bin/mount-product-files.sh"} in spec["hooks"]["createContainer"]
    assert "rlimits" not in spec["process"]
    assert spec["process"]["capabilities"]  # the rest is ctr's default spec


def test_the_containerfile_runs_kinds_entrypoint_and_labels_its_inputs() -> None:
    text = kind_node_image._containerfile("localhost/base:1", "abc123")

    assert text.splitlines()[0] == "FROM localhost/base:1"
    assert 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' in text
    assert "STOPSIGNAL SIGRTMIN+3" in text
    assert f'LABEL {kind_node_image.INPUTS_LABEL}="abc123"' in text


def test_the_input_hash_follows_the_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    before = kind_node_image.inputs_hash()
    assert kind_node_image.inputs_hash() == before  # stable

    monkeypatch.setattr(kind_node_image, "ROOTFS_PACKAGES", ("systemd",))
    assert kind_node_image.inputs_hash() != before


def test_kubeadm_finds_every_image_it_runs_under_its_own_name() -> None:
    # kubeadm v1.32.5's `kubeadm config images list`, and kind's sandbox image.
    assert sorted(kind_node_image.KUBEADM_IMAGES.values()) == sorted(
        [
            "registry.k8s.io/kube-apiserver:v1.32.5",
            "registry.k8s.io/kube-controller-manager:v1.32.5",
            "registry.k8s.io/kube-scheduler:v1.32.5",
            "registry.k8s.io/kube-proxy:v1.32.5",
            "registry.k8s.io/coredns/coredns:v1.11.3",
            "registry.k8s.io/pause:3.10",
            "registry.k8s.io/etcd:3.5.16-0",
        ]
    )


def test_a_host_without_mmdebstrap_is_told_which_package_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH

    assert kind_node_image.missing_commands() == {"mmdebstrap": "mmdebstrap", "ctr": "containerd"}
    with pytest.raises(ClusterError, match=r"needs mmdebstrap, ctr: apt-get install -y containerd"):
        kind_node_image.build("podman")


def test_the_storage_manifest_is_kinds_with_our_images() -> None:
    manifest = kind_node_image.storage_manifest()

    assert "provisioner: rancher.io/local-path" in manifest
    assert f"image: {kind_node_image.STORAGE_IMAGE}" in manifest
    assert "image: localhost/pytest-chaos/toolbox:1.0" in manifest  # the helper pods
    assert "kindest" not in manifest  # nothing to pull
