"""Output paths (``--chaos-report``, ``--chaos-journal``, ``--junitxml``) checked before a run.

A run whose report cannot be written must not pass without a word: each path is tried when
pytest configures (its directory created if missing, as pytest does for ``--junitxml``, and a
file written there and removed), and a path that cannot be written is a usage error (exit 4)
naming the option, the path and the reason. A write that fails later, at the end of the run, is
a session failure (see :func:`write_failed`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from pytest_chaos.errors import ChaosConfigError


def check_output(flag: str, path: Path) -> None:
    """Raise ChaosConfigError unless a file can be written at path (its directory may be new)."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise ChaosConfigError(
            f"{flag}: {path} is a directory; give the path of a file, e.g. {flag}={path}/chaos.out"
        )
    directory = target.parent if str(target.parent) else Path(".")
    blocker = next((p for p in (directory, *directory.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise ChaosConfigError(
            f"{flag}: cannot write {path}: {blocker} is a file, not a directory; choose "
            "another path"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ChaosConfigError(
            f"{flag}: cannot create the directory of {path}: {exc.strerror or exc} "
            f"({exc.filename or directory}); choose a writable place"
        ) from None
    if target.exists() and not os.access(target, os.W_OK):
        raise ChaosConfigError(f"{flag}: {path} exists and is not writable; choose another file")
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".pytest-chaos-check-"):
            pass
    except OSError as exc:
        raise ChaosConfigError(
            f"{flag}: cannot write in {directory} (for {path}): {exc.strerror or exc}; "
            "choose a writable place"
        ) from None


def check_outputs(outputs: Iterable[tuple[str, Path | str | None]]) -> None:
    """Check every (flag, path) pair whose path is set; the first problem raises."""
    for flag, path in outputs:
        if path is not None and str(path) != "":
            check_output(flag, Path(path))


def write_failed(flag: str, path: Path, exc: BaseException) -> str:
    """The session's message for an output that could not be written at the end of the run."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"{flag}={path} could not be written: {reason}; the run's chaos record is missing"
