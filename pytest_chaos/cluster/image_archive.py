"""What an image archive holds, read without importing it: format, names, architectures.

Two formats, as ``docker save``, ``podman save``, ``buildah push``, ``skopeo copy`` and
``crane`` write them:

* docker-archive: ``manifest.json`` (a list of ``{Config, RepoTags, Layers}``) beside the files
  it names;
* OCI image layout: ``oci-layout`` and ``index.json``, everything else under ``blobs/sha256/``.

:func:`inspect_archive` reads the whole tar once (so a truncated file is found before anything is
imported), checks that every file or blob the manifests name is there with its size, and returns
the references the archive names with the platform of each. Pure: no containerd, no network.
"""

from __future__ import annotations

import json
import platform
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pytest_chaos.errors import ClusterError

ArchiveFormat = Literal["docker-archive", "oci-archive"]

_INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
#: What the error for a file that is no image archive says is expected.
EXPECTED = (
    "a docker-archive (manifest.json; `docker save`, `podman save`) or an OCI image layout tar "
    "(oci-layout + index.json; `podman save --format oci-archive`, `buildah push IMAGE "
    "oci-archive:FILE:NAME`, `skopeo copy`)"
)
#: Small JSON members read into memory (manifests, configs, indexes); layers are only sized.
_JSON_LIMIT = 4 * 2**20


class ImageArchiveError(ClusterError):
    """A file given as an image archive is not one, is damaged, or fits no node."""


@dataclass(frozen=True, slots=True)
class ArchiveImage:
    """One image reference an archive names."""

    #: The normalized reference, as the kubelet asks for it (``app:1`` is
    #: ``docker.io/library/app:1``).
    reference: str
    architecture: str
    os: str
    #: The name as written in the archive (``ctr images import`` keeps it as is in OCI archives).
    raw: str = ""

    @property
    def imported_as(self) -> str:
        """The name ``ctr images import`` gives it (before any retagging)."""
        return self.raw or self.reference


@dataclass(frozen=True, slots=True)
class ImageArchive:
    """An image archive, inspected."""

    path: Path
    format: ArchiveFormat
    images: tuple[ArchiveImage, ...]

    @property
    def references(self) -> tuple[str, ...]:
        """The references the archive names, in archive order."""
        return tuple(image.reference for image in self.images)


def normalize_reference(name: str) -> str:
    """The full reference the kubelet uses for name: registry host, repository and tag.

    ``app:1`` -> ``docker.io/library/app:1``; ``me/app`` -> ``docker.io/me/app:latest``;
    ``localhost/app:1`` and ``localhost:5001/app:1`` stay as they are.
    """
    rest = name
    first, slash, remainder = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        domain = first
        rest = remainder
    else:
        domain = "docker.io"
    if domain == "docker.io" and "/" not in rest:
        rest = "library/" + rest
    if "@" not in rest and ":" not in rest.rsplit("/", 1)[-1]:
        rest += ":latest"
    return f"{domain}/{rest}"


def host_architecture() -> str:
    """This host's architecture in OCI terms (``amd64``, ``arm64``...)."""
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
        machine, machine
    )


def _members(path: Path) -> tuple[dict[str, int], dict[str, bytes]]:
    """Every regular member's size, and the bytes of the small ones, reading the whole tar."""
    sizes: dict[str, int] = {}
    small: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = member.name.removeprefix("./")
                sizes[name] = member.size
                handle = tar.extractfile(member)
                assert handle is not None  # a regular file
                if member.size <= _JSON_LIMIT:
                    small[name] = handle.read()
                else:  # read through it: a truncated layer shows here, not in containerd
                    while handle.read(2**20):
                        pass
    except FileNotFoundError:
        raise ImageArchiveError(f"image archive {path}: no such file") from None
    except IsADirectoryError:
        message = f"image archive {path}: is a directory, expected {EXPECTED}"
        raise ImageArchiveError(message) from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ImageArchiveError(
            f"image archive {path}: not a complete tar ({exc}); expected {EXPECTED}. "
            "A truncated file (an interrupted save or copy): write it again"
        ) from None
    return sizes, small


def _json(path: Path, small: dict[str, bytes], name: str) -> Any:
    if name not in small:
        raise ImageArchiveError(f"image archive {path}: {name} is missing or too large")
    try:
        return json.loads(small[name])
    except ValueError as exc:
        raise ImageArchiveError(f"image archive {path}: {name} is not JSON ({exc})") from None


def inspect_archive(path: Path, *, architecture: str | None = None) -> ImageArchive:
    """Read the archive at path; raise ImageArchiveError naming the file and what was expected.

    ``architecture``: the nodes' architecture (default: this host's); an archive with no image
    for it is refused.
    """
    arch = architecture or host_architecture()
    sizes, small = _members(path)
    if "manifest.json" in sizes:
        archive = _docker(path, sizes, small)
    elif "index.json" in sizes and "oci-layout" in sizes:
        archive = _oci(path, sizes, small)
    else:
        found = ", ".join(sorted(sizes)[:5]) or "no files"
        raise ImageArchiveError(
            f"image archive {path}: a tar, but no image archive (it holds {found}); "
            f"expected {EXPECTED}"
        )
    if not archive.images:
        raise ImageArchiveError(
            f"image archive {path}: names no image (no RepoTags / no ref.name); nothing could "
            "be run by name. Save it with a name: `podman save -o FILE localhost/app:TAG` or "
            "`skopeo copy ... oci-archive:FILE:localhost/app:TAG`"
        )
    foreign = [i for i in archive.images if i.architecture != arch or i.os != "linux"]
    if foreign:
        found = ", ".join(f"{i.reference} ({i.os}/{i.architecture})" for i in foreign)
        raise ImageArchiveError(
            f"image archive {path}: built for another platform: {found}; the nodes run "
            f"linux/{arch}. Build for it: `podman build --platform linux/{arch} ...`"
        )
    return archive


def _need(path: Path, sizes: dict[str, int], name: str, size: int | None = None) -> None:
    if name not in sizes:
        raise ImageArchiveError(
            f"image archive {path}: {name} is named by its manifest but missing; the archive "
            "is incomplete: write it again"
        )
    if size is not None and sizes[name] != size:
        raise ImageArchiveError(
            f"image archive {path}: {name} has {sizes[name]} bytes, its manifest says {size}; "
            "the archive is damaged: write it again"
        )


def _docker(path: Path, sizes: dict[str, int], small: dict[str, bytes]) -> ImageArchive:
    manifest = _json(path, small, "manifest.json")
    if not isinstance(manifest, list):
        raise ImageArchiveError(f"image archive {path}: manifest.json is not a list")
    images: list[ArchiveImage] = []
    for entry in manifest:
        config_name = str(entry.get("Config", ""))
        _need(path, sizes, config_name)
        for layer in entry.get("Layers") or []:
            _need(path, sizes, str(layer))
        config = _json(path, small, config_name)
        arch, system = str(config.get("architecture")), str(config.get("os"))
        # ctr normalizes these names itself.
        images += [
            ArchiveImage(normalize_reference(str(t)), arch, system)
            for t in entry.get("RepoTags") or []
        ]
    return ImageArchive(path, "docker-archive", tuple(images))


def _blob(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"blobs/{algorithm}/{hexdigest}"


def _oci(path: Path, sizes: dict[str, int], small: dict[str, bytes]) -> ImageArchive:
    index = _json(path, small, "index.json")
    images: list[ArchiveImage] = []
    for descriptor in index.get("manifests") or []:
        annotations = descriptor.get("annotations") or {}
        name = annotations.get("io.containerd.image.name") or annotations.get(
            "org.opencontainers.image.ref.name"
        )
        platforms = _oci_platforms(path, sizes, small, descriptor)
        if not name:
            continue
        if not any(c in name for c in "/:@"):
            raise ImageArchiveError(
                f"image archive {path}: names its image only by the tag {name!r}, without a "
                f"repository, so it would import under a made-up name. Write it with a full "
                f"name: `skopeo copy oci-archive:{path} oci-archive:NEW.tar:localhost/app:{name}`"
            )
        arch = host_architecture()
        chosen = next((p for p in platforms if p == ("linux", arch)), platforms[0])
        images.append(ArchiveImage(normalize_reference(name), chosen[1], chosen[0], raw=name))
    return ImageArchive(path, "oci-archive", tuple(images))


def _oci_platforms(
    path: Path, sizes: dict[str, int], small: dict[str, bytes], descriptor: dict[str, Any]
) -> list[tuple[str, str]]:
    """The (os, architecture) of each image under descriptor, checking its blobs are there."""
    blob = _blob(str(descriptor.get("digest", "")))
    _need(path, sizes, blob, descriptor.get("size"))
    document = _json(path, small, blob)
    media_type = descriptor.get("mediaType") or document.get("mediaType")
    if media_type in _INDEX_TYPES:
        found: list[tuple[str, str]] = []
        for child in document.get("manifests") or []:
            if _blob(str(child.get("digest", ""))) in sizes:  # other platforms may be left out
                found += _oci_platforms(path, sizes, small, child)
        if not found:
            raise ImageArchiveError(f"image archive {path}: its image index holds no image")
        return found
    config = document.get("config") or {}
    config_blob = _blob(str(config.get("digest", "")))
    _need(path, sizes, config_blob, config.get("size"))
    for layer in document.get("layers") or []:
        _need(path, sizes, _blob(str(layer.get("digest", ""))), layer.get("size"))
    image_config = _json(path, small, config_blob)
    return [(str(image_config.get("os")), str(image_config.get("architecture")))]
