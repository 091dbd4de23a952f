"""A user's own image, built as a user would: a Containerfile and Debian's podman, no Docker.

The app is the demo program's source (``tools/images/demo``) compiled here into a static binary
under a name pytest-chaos never imports; the Containerfile is ``FROM scratch`` (no registry is
reachable from this machine, so no base image). podman keeps its storage under the given
directory and reads a private containers.conf (podman 4.3 on this host's cgroup v1 and rlimits
needs runc and lower ulimits): nothing outside that directory is touched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pytest_chaos.cluster import images

CONTAINERFILE = 'FROM scratch\nCOPY app /app\nENV RELEASE=user-built\nENTRYPOINT ["/app"]\n'
CONTAINERS_CONF = (
    "[containers]\n"
    'default_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]\n'
    "[engine]\n"
    'runtime = "runc"\n'
)


@dataclass(frozen=True)
class Podman:
    """podman with its storage, run root and containers.conf under one directory."""

    home: Path

    def env(self) -> dict[str, str]:
        conf = self.home / "containers.conf"
        if not conf.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            conf.write_text(CONTAINERS_CONF)
        return {**os.environ, "CONTAINERS_CONF": str(conf)}

    @property
    def runroot(self) -> Path:
        """podman's run root must be short (50 characters): one per home, under /tmp."""
        return Path("/tmp") / f"pcpod-{hashlib.sha256(str(self.home).encode()).hexdigest()[:10]}"

    def argv(self, *args: str) -> list[str]:
        return [
            "podman",
            "--root", str(self.home / "storage"),
            "--runroot", str(self.runroot),
            "--storage-driver", "vfs",
            *args,
        ]  # fmt: skip

    def run(self, *args: str, timeout: float = 300.0) -> str:
        try:
            result = subprocess.run(
                self.argv(*args),
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        finally:  # transient state only: nothing is left in /tmp between commands
            shutil.rmtree(self.runroot, ignore_errors=True)
        assert result.returncode == 0, f"podman {' '.join(args)}: {result.stderr[-2000:]}"
        return result.stdout


def have_podman() -> bool:
    return shutil.which("podman") is not None


def build_context(directory: Path) -> Path:
    """A build context: the app's static binary and its Containerfile."""
    directory.mkdir(parents=True, exist_ok=True)
    images.go_build(images.sources_dir() / "demo", directory / "app")
    (directory / "Containerfile").write_text(CONTAINERFILE)
    return directory


def build_and_save(home: Path, repository: str) -> dict[str, tuple[str, Path]]:
    """podman build the user app; save it as a docker-archive (tag ``docker``) and as an OCI
    archive (tag ``oci``). Returns format -> (reference, archive)."""
    podman = Podman(home)
    context = build_context(home / "context")
    built = f"{repository}:built"
    podman.run("build", "--quiet", "--tag", built, "--file", "Containerfile", str(context))
    out: dict[str, tuple[str, Path]] = {}
    for fmt, tag in (("docker-archive", "docker"), ("oci-archive", "oci")):
        reference = f"{repository}:{tag}"
        podman.run("tag", built, reference)
        path = home / f"app-{tag}.tar"
        podman.run("save", "--format", fmt, "--output", str(path), reference)
        out[fmt] = (reference, path)
    return out
