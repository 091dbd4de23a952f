"""image_archive: what a docker-archive or OCI archive holds, and what is wrong with a bad one."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from pytest_chaos.cluster import images
from pytest_chaos.cluster.image_archive import (
    ImageArchiveError,
    inspect_archive,
    normalize_reference,
)


def layer() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        data = b"hello\n"
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def write_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def docker_archive(path: Path, tags: list[str], architecture: str = "amd64") -> Path:
    config = json.dumps({"architecture": architecture, "os": "linux"}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": tags, "Layers": ["l1/layer.tar"]}]
    return write_tar(
        path,
        {"manifest.json": json.dumps(manifest).encode(), config_name: config,
         "l1/layer.tar": layer()},
    )  # fmt: skip


def oci(path: Path, reference: str) -> Path:
    path.write_bytes(images.oci_archive(reference, layer(), entrypoint=["/hello"]))
    return path


def rewrite(path: Path, change: dict[str, bytes | None]) -> Path:
    """Path's tar with members replaced (bytes) or removed (None)."""
    with tarfile.open(path) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    for name, data in change.items():
        if data is None:
            members.pop(name)
        else:
            members[name] = data
    return write_tar(path, members)


def test_a_docker_archive_names_its_tags_normalized_like_the_kubelet(tmp_path: Path) -> None:
    archive = inspect_archive(docker_archive(tmp_path / "a.tar", ["app:pr-1", "localhost/x:2"]))
    assert archive.format == "docker-archive"
    assert archive.references == ("docker.io/library/app:pr-1", "localhost/x:2")


def test_an_oci_archive_names_its_image_and_keeps_the_written_name(tmp_path: Path) -> None:
    archive = inspect_archive(oci(tmp_path / "o.tar", "app:1"))
    assert archive.format == "oci-archive"
    assert archive.references == ("docker.io/library/app:1",)
    assert archive.images[0].imported_as == "app:1"


def test_podmans_oci_archive_with_only_ref_name_is_read(tmp_path: Path) -> None:
    path = oci(tmp_path / "o.tar", "localhost/app:pr-1")
    with tarfile.open(path) as tar:
        index = json.loads(tar.extractfile("index.json").read())
    index["manifests"][0]["annotations"] = {"org.opencontainers.image.ref.name": "localhost/a:3"}
    rewrite(path, {"index.json": json.dumps(index).encode()})
    assert inspect_archive(path).references == ("localhost/a:3",)


def test_a_bare_tag_is_refused_with_how_to_name_it(tmp_path: Path) -> None:
    path = oci(tmp_path / "o.tar", "localhost/app:pr-2")
    with tarfile.open(path) as tar:
        index = json.loads(tar.extractfile("index.json").read())
    index["manifests"][0]["annotations"] = {"org.opencontainers.image.ref.name": "pr-2"}
    rewrite(path, {"index.json": json.dumps(index).encode()})
    with pytest.raises(ImageArchiveError, match=r"only by the tag 'pr-2'.*skopeo copy"):
        inspect_archive(path)


def test_a_truncated_archive_names_the_file(tmp_path: Path) -> None:
    path = oci(tmp_path / "o.tar", "localhost/app:1")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 + 100])
    with pytest.raises(ImageArchiveError, match=rf"{path}: not a complete tar.*truncated"):
        inspect_archive(path)


def test_a_file_that_is_no_tar_says_what_was_expected(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n" * 200)
    with pytest.raises(ImageArchiveError, match=rf"{path}: not a complete tar.*docker-archive"):
        inspect_archive(path)


def test_a_tar_without_image_says_what_it_holds(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "src.tar", {"main.go": b"package main\n"})
    with pytest.raises(ImageArchiveError, match=r"no image archive \(it holds main.go\)"):
        inspect_archive(path)


def test_a_missing_file_and_a_directory_are_named(tmp_path: Path) -> None:
    with pytest.raises(ImageArchiveError, match="no such file"):
        inspect_archive(tmp_path / "nope.tar")
    with pytest.raises(ImageArchiveError, match="is a directory"):
        inspect_archive(tmp_path)


def test_another_architecture_is_refused_naming_both(tmp_path: Path) -> None:
    path = docker_archive(tmp_path / "a.tar", ["app:1"], architecture="arm64")
    with pytest.raises(ImageArchiveError, match=r"another platform.*linux/arm64.*linux/amd64"):
        inspect_archive(path, architecture="amd64")
    assert inspect_archive(path, architecture="arm64").references == ("docker.io/library/app:1",)


def test_a_missing_layer_is_found_before_any_import(tmp_path: Path) -> None:
    path = rewrite(docker_archive(tmp_path / "a.tar", ["app:1"]), {"l1/layer.tar": None})
    with pytest.raises(ImageArchiveError, match=r"l1/layer.tar is named by its manifest"):
        inspect_archive(path)


def test_a_blob_of_the_wrong_size_is_damage(tmp_path: Path) -> None:
    path = oci(tmp_path / "o.tar", "localhost/app:1")
    blob = "blobs/sha256/" + hashlib.sha256(layer()).hexdigest()
    rewrite(path, {blob: layer()[:-512]})
    with pytest.raises(ImageArchiveError, match=r"bytes, its manifest says"):
        inspect_archive(path)


def test_an_archive_without_names_is_refused(tmp_path: Path) -> None:
    path = docker_archive(tmp_path / "a.tar", [])
    with pytest.raises(ImageArchiveError, match=r"names no image"):
        inspect_archive(path)


@pytest.mark.parametrize(
    ("name", "full"),
    [
        ("app:1", "docker.io/library/app:1"),
        ("app", "docker.io/library/app:latest"),
        ("me/app:2", "docker.io/me/app:2"),
        ("localhost/app:1", "localhost/app:1"),
        ("localhost:5001/app:pr-9", "localhost:5001/app:pr-9"),
        ("ghcr.io/o/app", "ghcr.io/o/app:latest"),
        ("docker.io/library/app:1", "docker.io/library/app:1"),
    ],
)
def test_normalize_reference(name: str, full: str) -> None:
    assert normalize_reference(name) == full
