"""A list kept current by a watch in a daemon thread: what object monitors read.

``start()`` lists once (synchronously, so the first state is known when it returns), then a
daemon thread watches from the list's resourceVersion and applies every event. A 410 (version too
old) or an ERROR event leads to a fresh list; an ended stream resumes from the last version;
transient API errors (the retry policy's kind) are retried with a growing pause. Any other error
ends the thread and is kept in ``failure``. ``stop()`` shuts the stream's socket, so the thread
ends at once instead of at the next event. Objects are the API's JSON (dicts).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from pytest_chaos.kube.retry import call, is_transient

log = logging.getLogger(__name__)

#: How long one watch request may last before the server ends it (then it resumes).
WATCH_SECONDS = 240

_MAX_PAUSE = 2.0


class Watcher:
    """The objects list_fn(**list_kwargs) returns, kept current from a watch.

    Args:
        list_fn: a list call of the Python client (bind positional arguments with partial).
        what: what is watched, in words, for logs.
        on_change: called (from the watch thread, and from ``start``) after every change.
        **list_kwargs: label_selector, field_selector...
    """

    def __init__(
        self,
        list_fn: Callable[..., Any],
        *,
        what: str,
        on_change: Callable[[], None],
        **list_kwargs: Any,
    ) -> None:
        self._list_fn = list_fn
        self.what = what
        self._on_change = on_change
        self._kwargs = list_kwargs
        self._objects: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._response: Any = None
        self._version = ""
        self.failure: BaseException | None = None

    @property
    def objects(self) -> list[dict[str, Any]]:
        """A copy of the current objects."""
        with self._lock:
            return list(self._objects.values())

    def fresh(self) -> tuple[str, dict[str, str]]:
        """A fresh list's resourceVersion and its objects' versions (by key), for caught_up."""
        response = call(self._list_fn, _preload_content=False, **self._kwargs)
        try:
            listing = json.loads(response.data)
        finally:
            response.release_conn()
        versions = {
            _key(o): str(o.get("metadata", {}).get("resourceVersion", ""))
            for o in listing.get("items") or []
        }
        return str(listing["metadata"]["resourceVersion"]), versions

    def caught_up(self, fresh: tuple[str, dict[str, str]]) -> bool:
        """Whether the watched state is at least as new as that fresh list.

        True when the stream has passed the list's resourceVersion, or when every object of
        the list is here at its version or a newer one (a filtered watch sees no event for
        other objects, so its own version may rest behind the list's).
        """
        version, versions = fresh
        if _newer_or_same(self._version, version):
            return True
        with self._lock:
            here = {
                k: str(o.get("metadata", {}).get("resourceVersion", ""))
                for k, o in self._objects.items()
            }
        if set(here) != set(versions):
            return False
        return all(_newer_or_same(here[k], v) for k, v in versions.items())

    def start(self) -> None:
        """List now, then watch in a daemon thread."""
        self._relist()
        self._thread = threading.Thread(
            target=self._run, name=f"pytest-chaos watch {self.what}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """End the watch and join its thread (at most timeout seconds)."""
        self._stop.set()
        response = self._response
        if response is not None:
            try:
                response.shutdown()  # unblocks the thread's read at once
            except Exception:  # pragma: no cover - already closed
                log.debug("watch of %s: shutting the stream down failed", self.what)
        if self._thread is not None:
            self._thread.join(timeout)

    def _relist(self) -> None:
        response = call(self._list_fn, _preload_content=False, **self._kwargs)
        try:
            listing = json.loads(response.data)
        finally:
            response.release_conn()
        with self._lock:
            self._objects = {_key(o): o for o in listing.get("items") or []}
        self._version = str(listing["metadata"]["resourceVersion"])
        self._on_change()

    def _run(self) -> None:
        relist = False
        pause = 0.05
        while not self._stop.is_set():
            try:
                if relist:
                    self._relist()
                    relist = False
                relist = self._watch()
                pause = 0.05
            except Exception as exc:
                if self._stop.is_set():
                    return
                status = getattr(exc, "status", None)
                if status == 410:
                    log.debug("watch of %s: resourceVersion expired, listing again", self.what)
                    relist = True
                    continue
                if not is_transient(exc):
                    log.debug("watch of %s failed", self.what, exc_info=True)
                    self.failure = exc
                    self._on_change()
                    return
                log.debug("watch of %s interrupted (%s); listing again", self.what, exc)
                relist = True
                if self._stop.wait(pause):  # a growing pause while the API server is away
                    return
                pause = min(pause * 2, _MAX_PAUSE)

    def _watch(self) -> bool:
        """Apply one watch stream's events; True when a fresh list is needed."""
        from kubernetes.watch.watch import iter_resp_lines

        response = self._list_fn(
            watch=True,
            resource_version=self._version,
            allow_watch_bookmarks=True,
            timeout_seconds=WATCH_SECONDS,
            _preload_content=False,
            _request_timeout=(10, WATCH_SECONDS + 30),
            **self._kwargs,
        )
        self._response = response
        try:
            if self._stop.is_set():
                return False
            for line in iter_resp_lines(response):
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        return True
                    log.debug("watch of %s: error event %s; listing again", self.what, obj)
                    return True
                self._version = str(obj.get("metadata", {}).get("resourceVersion") or "") or (
                    self._version
                )
                if kind == "BOOKMARK":
                    self._on_change()  # nothing changed, but a catch-up may wait for it
                    continue
                with self._lock:
                    if kind == "DELETED":
                        self._objects.pop(_key(obj), None)
                    else:
                        self._objects[_key(obj)] = obj
                self._on_change()
            return False  # the server ended the stream: resume from the last version
        finally:
            self._response = None
            # Never hand a half-read stream back to the pool: the next request on that
            # connection would read this stream's leftover bytes as its status line.
            response.close()
            response.release_conn()


def _key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}")


def _newer_or_same(have: str, want: str) -> bool:
    """Resource versions are etcd revisions (numbers) in practice; else only equality counts."""
    if have.isdigit() and want.isdigit():
        return int(have) >= int(want)
    return have == want
