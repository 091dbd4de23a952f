"""Container images for the real node, built without Docker or a registry.

Three images, each an OCI image-layout tarball with one uncompressed layer:

* ``pause``: the pod sandbox (a static Go binary blocking until SIGTERM, reaping children);
* ``demo``: the sample application (static Go: HTTP, limiter, repeater, broker client/server);
* ``toolbox``: what ephemeral containers run for fault injection (``iptables``, ``ss``, ``ip``,
  ``stress-ng``, ``pkill``, a shell and coreutils), copied from the host's Debian binaries with
  the shared libraries ``ldd`` names, plus ``pytest-chaos-hold`` (static Go, holds memory for
  ``chaos.stress`` without it counting in its own resident set) and ``pytest-chaos-load``
  (static Go, the HTTP load generator of ``chaos.load.http``) and ``pytest-chaos-delay`` (static
  Go, the NFQUEUE delayer of ``chaos.network.latency`` where the kernel has no netem).

Beside them, ``pytest-chaos-dns`` (static Go): the real node's cluster DNS, run on the host.

The Go sources live under ``tools/images/``. The tarballs are cached in
``<cache>/images-<hash>/``; the hash covers the Go sources, this module's recipe version and the
host files the toolbox copies, so a build happens again only when one of those changes.
:func:`import_images` loads them into a containerd's ``k8s.io`` namespace (the one the CRI
plugin reads) under fixed ``localhost/pytest-chaos/...`` references.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pytest_chaos.cluster import binaries
from pytest_chaos.errors import ClusterError
from pytest_chaos.settings import DEFAULT_TOOLBOX_IMAGE

Progress = Callable[[str], None]

#: Bumped whenever the way images are assembled changes (it is part of the cache hash).
RECIPE_VERSION = "6"

REGISTRY = "localhost/pytest-chaos"
PAUSE_IMAGE = f"{REGISTRY}/pause:3.10"
DEMO_IMAGE = f"{REGISTRY}/demo:1.0"
TOOLBOX_IMAGE = DEFAULT_TOOLBOX_IMAGE  # the chaos_toolbox_image default

#: Host commands copied into the toolbox (looked up in these directories, in order).
TOOLBOX_COMMANDS = (
    "sh", "bash", "cat", "ls", "sleep", "kill", "ps", "pgrep", "pkill", "timeout", "env",
    "head", "tail", "grep", "sed", "awk", "mawk", "date", "id", "mkdir", "rm", "cp", "true",
    "false", "wc", "tr", "cut", "sort", "seq", "yes", "dd", "nproc", "ip", "ss", "iptables",
    "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore",
    "xtables-nft-multi", "stress-ng", "curl", "nsenter", "tc",
)  # fmt: skip
_COMMAND_DIRS = ("/usr/bin", "/usr/sbin", "/bin", "/sbin")
#: Directories copied whole into the toolbox (iptables loads its match/target extensions).
_TOOLBOX_DIRS = ("/usr/lib/x86_64-linux-gnu/xtables",)
_TOOLBOX_ETC = ("/etc/protocols", "/etc/services", "/etc/ethertypes")
#: Debian packages the toolbox's commands come from (for error messages).
TOOLBOX_PACKAGES = ("iptables", "iproute2", "stress-ng", "procps", "curl", "util-linux")
#: The real node's cluster DNS server, built beside the images (it runs on the host).
DNS_PROGRAM = "pytest-chaos-dns"

#: Where the toolbox has the memory holder of chaos.stress (built from tools/images/hold).
HOLD_COMMAND = "/usr/local/bin/pytest-chaos-hold"
#: Where the toolbox has the HTTP load generator of chaos.load.http (tools/images/load).
LOAD_COMMAND = "/usr/local/bin/pytest-chaos-load"
#: Where the toolbox has the NFQUEUE delayer of chaos.network.latency (tools/images/delay).
DELAY_COMMAND = "/usr/local/bin/pytest-chaos-delay"

_ENV_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_STAMP = ".complete.json"
_EPOCH = "1970-01-01T00:00:00Z"


# --------------------------------------------------------------------------- layers


@dataclass(slots=True)
class Layer:
    """The files of one image layer: image path -> host file, symlink target or directory."""

    files: dict[str, Path] = field(default_factory=dict)
    symlinks: dict[str, str] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)

    def add_file(self, image_path: str, source: Path) -> None:
        """Copy the host file source (symlinks followed) to image_path."""
        self.files[image_path.lstrip("/")] = source

    def add_symlink(self, image_path: str, target: str) -> None:
        """Create a symlink at image_path pointing at target."""
        self.symlinks[image_path.lstrip("/")] = target

    def add_dir(self, image_path: str) -> None:
        """Create an (empty) directory."""
        self.dirs.add(image_path.strip("/"))

    def tar_bytes(self) -> bytes:
        """A deterministic tar of the layer: sorted, mtime 0, root-owned."""
        every: dict[str, tuple[str, Path | str | None]] = {}
        for path in self.dirs:
            every[path] = ("dir", None)
        for path, target in self.symlinks.items():
            every[path] = ("link", target)
        for path, source in self.files.items():
            every[path] = ("file", source)
        for path in list(every):  # parents of everything, as directories
            parent = os.path.dirname(path)
            while parent and parent not in every:
                every[parent] = ("dir", None)
                parent = os.path.dirname(parent)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(every):
                kind, value = every[path]
                _add_member(tar, path, kind, value)
        return buffer.getvalue()


def _add_member(tar: tarfile.TarFile, path: str, kind: str, value: Path | str | None) -> None:
    info = tarfile.TarInfo(path)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if kind == "dir":
        info.type = tarfile.DIRTYPE
        info.mode = 0o1777 if path == "tmp" else 0o755
        tar.addfile(info)
    elif kind == "link":
        info.type = tarfile.SYMTYPE
        info.linkname = str(value)
        info.mode = 0o777
        tar.addfile(info)
    else:
        source = Path(str(value))
        data = source.read_bytes()
        info.size = len(data)
        info.mode = source.stat().st_mode & 0o7777
        tar.addfile(info, io.BytesIO(data))


# --------------------------------------------------------------------------- OCI layout


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def oci_archive(
    reference: str,
    layer: bytes,
    *,
    entrypoint: Sequence[str],
    env: Sequence[str] = (_ENV_PATH,),
    stop_signal: str = "SIGTERM",
) -> bytes:
    """An OCI image-layout tar (oci-layout, index.json, blobs) of one image with one layer.

    The index names the image with ``io.containerd.image.name`` (the full reference, which
    ``ctr images import`` uses as is) and ``org.opencontainers.image.ref.name`` (its tag).
    """
    config = _json_bytes(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": _EPOCH,
            "config": {
                "Entrypoint": list(entrypoint),
                "Env": list(env),
                "WorkingDir": "/",
                "StopSignal": stop_signal,
            },
            "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]},
            "history": [{"created": _EPOCH, "created_by": "pytest-chaos images.py"}],
        }
    )
    manifest = _json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _digest(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": _digest(layer),
                    "size": len(layer),
                }
            ],
        }
    )
    index = _json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": _digest(manifest),
                    "size": len(manifest),
                    "platform": {"architecture": "amd64", "os": "linux"},
                    "annotations": {
                        "io.containerd.image.name": reference,
                        "org.opencontainers.image.ref.name": reference.rsplit(":", 1)[-1],
                    },
                }
            ],
        }
    )
    entries = {
        "oci-layout": _json_bytes({"imageLayoutVersion": "1.0.0"}),
        "index.json": index,
    }
    for blob in (config, manifest, layer):
        entries["blobs/sha256/" + _digest(blob).split(":", 1)[1]] = blob
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# --------------------------------------------------------------------------- sources


def sources_dir() -> Path:
    """The Go sources of the images' own programs (``tools/images``: pause, demo, hold, dns)."""
    return binaries.tools_dir() / "images"


def _go() -> str:
    fallback = "/usr/local/go/bin/go"
    for candidate in (os.environ.get("PYTEST_CHAOS_GO"), shutil.which("go"), fallback):
        if candidate and Path(candidate).is_file():
            return candidate
    raise ClusterError(
        "Go is needed to build the real node's pause and demo images and was not found "
        "(PATH, /usr/local/go/bin/go, $PYTEST_CHAOS_GO): install Go 1.22 or newer"
    )


def go_build(module: Path, out: Path) -> Path:
    """Build the static binary of the Go module in module (stdlib only) into out."""
    env = dict(os.environ)
    env.update({"CGO_ENABLED": "0", "GOWORK": "off", "GOFLAGS": "-mod=mod", "GOOS": "linux"})
    result = subprocess.run(
        [_go(), "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", str(out), "."],
        cwd=module,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ClusterError(f"go build failed in {module}:\n{result.stderr.strip()[-2000:]}")
    return out


def find_command(name: str) -> Path | None:
    """The host path of command name (in the usual system directories), or None."""
    for directory in _COMMAND_DIRS:
        candidate = Path(directory) / name
        if candidate.exists():
            return candidate
    return None


_LDD_PATH = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")


def shared_libraries(paths: Sequence[Path]) -> set[Path]:
    """The shared libraries (and dynamic loader) the ELF files in paths need, per ``ldd``."""
    if not paths:
        return set()
    result = subprocess.run(  # one ldd for all files: it prints a section per file
        ["ldd", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
        env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"},
    )
    return {Path(match.group(1)) for match in _LDD_PATH.finditer(result.stdout)}


def _image_path(host: Path) -> str:
    """Where a host file goes in the image: its directory resolved (merged /usr), same name."""
    return str(Path(os.path.realpath(host.parent)) / host.name)


def toolbox_layer() -> Layer:
    """The toolbox's layer: the host commands, iptables extensions, their libraries, /etc."""
    layer = Layer()
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"),
                         ("lib64", "usr/lib64")):  # fmt: skip
        layer.add_symlink(link, target)
    for directory in ("tmp", "run", "proc", "sys", "dev", "etc", "root", "var/tmp"):
        layer.add_dir(directory)
    elf: list[Path] = []
    missing: list[str] = []
    for name in TOOLBOX_COMMANDS:
        host = find_command(name)
        if host is None:
            missing.append(name)
            continue
        real = Path(os.path.realpath(host))
        layer.add_file(_image_path(real), real)
        elf.append(real)
        if _image_path(host) != _image_path(real):
            layer.add_symlink(_image_path(host), _image_path(real))
    if missing:
        raise ClusterError(
            f"the toolbox image needs host commands {missing}: install the Debian packages "
            f"{' '.join(TOOLBOX_PACKAGES)} (apt-get install -y ...)"
        )
    for directory in _TOOLBOX_DIRS:
        for extension in sorted(Path(directory).glob("*.so")):
            layer.add_file(_image_path(extension), extension)
            elf.append(extension)
    for library in shared_libraries(elf):
        layer.add_file(_image_path(library), library)
    for etc in _TOOLBOX_ETC:
        if Path(etc).is_file():
            layer.add_file(etc, Path(etc))
    return layer


def _static_layer(binary: Path, name: str) -> Layer:
    layer = Layer()
    layer.add_file(name, binary)
    for directory in ("tmp", "etc", "proc", "sys", "dev"):
        layer.add_dir(directory)
    return layer


# --------------------------------------------------------------------------- cache


def _fingerprint_toolbox(digest: hashlib._Hash) -> None:
    """Feed the toolbox's host inputs to digest, cheaply: no ldd, only file metadata.

    Library updates show through ``/etc/ld.so.cache``, which ``ldconfig`` rewrites whenever a
    Debian package installs or upgrades a shared library.
    """
    paths: list[Path] = [Path("/etc/ld.so.cache")]
    for name in TOOLBOX_COMMANDS:
        host = find_command(name)
        digest.update(f"cmd {name} {host}\n".encode())
        if host is not None:
            paths.append(Path(os.path.realpath(host)))
    for directory in _TOOLBOX_DIRS:
        paths.extend(sorted(Path(directory).glob("*.so")))
    for path in paths:
        with contextlib.suppress(OSError):
            stat = path.stat()
            digest.update(f"{path} {stat.st_size} {stat.st_mtime_ns}\n".encode())


def cache_key() -> str:
    """``images-<hash>``: the Go sources, the recipe version and the toolbox's host files."""
    digest = hashlib.sha256(f"recipe {RECIPE_VERSION}\n".encode())
    root = sources_dir()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(f"src {path.relative_to(root)}\n".encode())
        digest.update(path.read_bytes())
    _fingerprint_toolbox(digest)
    return f"images-{digest.hexdigest()[:10]}"


@dataclass(frozen=True, slots=True)
class BuiltImages:
    """The cached image tarballs and the references they import as."""

    directory: Path

    @property
    def dns(self) -> Path:
        """The real node's DNS server (``tools/images/dns``), run on the host."""
        return self.directory / DNS_PROGRAM

    @property
    def archives(self) -> dict[str, Path]:
        """Reference -> OCI archive."""
        return {
            PAUSE_IMAGE: self.directory / "pause.tar",
            DEMO_IMAGE: self.directory / "demo.tar",
            TOOLBOX_IMAGE: self.directory / "toolbox.tar",
        }


@contextlib.contextmanager
def _lock(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".images.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build(*, force: bool = False, progress: Progress | None = None) -> BuiltImages:
    """Build the three image archives into their cache directory (a no-op when cached)."""
    say = progress or (lambda _message: None)
    root = binaries.cache_root()
    with _lock(root):
        out = root / cache_key()
        built = BuiltImages(out)
        if not force and (out / _STAMP).is_file():
            return built
        started = time.monotonic()
        say(f"building the real node's images into {out}")
        tmp = Path(tempfile.mkdtemp(prefix=".images-", dir=root))
        try:
            _build_into(tmp, say)
            (tmp / _STAMP).write_text(json.dumps({"seconds": round(time.monotonic() - started, 1)}))
            shutil.rmtree(out, ignore_errors=True)
            tmp.rename(out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        say(f"images built in {time.monotonic() - started:.1f}s")
        return built


def _build_into(out: Path, say: Progress) -> None:
    src = sources_dir()
    bins = out / "bin"
    bins.mkdir()
    say("go build: pause, demo, hold, load, delay, dns")
    pause = go_build(src / "pause", bins / "pause")
    demo = go_build(src / "demo", bins / "demo")
    hold = go_build(src / "hold", bins / "hold")
    load = go_build(src / "load", bins / "load")
    delay = go_build(src / "delay", bins / "delay")
    go_build(src / "dns", out / DNS_PROGRAM)  # a host process of the real node, not an image
    (out / "pause.tar").write_bytes(
        oci_archive(PAUSE_IMAGE, _static_layer(pause, "pause").tar_bytes(), entrypoint=["/pause"])
    )
    (out / "demo.tar").write_bytes(
        oci_archive(DEMO_IMAGE, _static_layer(demo, "demo").tar_bytes(), entrypoint=["/demo"])
    )
    say("toolbox: copying host binaries and their libraries")
    toolbox = toolbox_layer()
    toolbox.add_file(HOLD_COMMAND, hold)
    toolbox.add_file(LOAD_COMMAND, load)
    toolbox.add_file(DELAY_COMMAND, delay)
    (out / "toolbox.tar").write_bytes(
        oci_archive(TOOLBOX_IMAGE, toolbox.tar_bytes(), entrypoint=["/bin/sh"])
    )
    shutil.rmtree(bins)


# --------------------------------------------------------------------------- import


def ctr(address: Path, *args: str, timeout: float = 120.0) -> str:
    """Run ``ctr --address <address> -n k8s.io <args>``; raise with its output on failure."""
    argv = ["ctr", "--address", str(address), "--namespace", "k8s.io", *args]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ClusterError(f"{' '.join(argv)} failed: {exc}") from exc
    if result.returncode != 0:
        raise ClusterError(
            f"{' '.join(argv)} exited with {result.returncode}: "
            f"{(result.stderr or result.stdout).strip()[-1000:]}"
        )
    return result.stdout


def import_images(address: Path, images: BuiltImages, progress: Progress | None = None) -> None:
    """Import every archive into the containerd at address (namespace ``k8s.io``), unpacked."""
    say = progress or (lambda _message: None)
    for reference, archive in images.archives.items():
        say(f"importing {reference}")
        ctr(address, "images", "import", str(archive))
        listed = ctr(address, "images", "list", "--quiet")
        if reference not in listed.split():
            raise ClusterError(f"{archive} imported, but containerd does not list {reference}")
