"""The one watch helper: wait until a condition holds over a set of API objects.

List once, evaluate the condition, then watch from the list's resourceVersion and re-evaluate on
every event, so a wait ends the moment the API says so: no sleeps, no polling intervals. A 410
(resourceVersion too old) or an ended stream leads to a fresh list; transient API errors go through
the retry policy. At the deadline a WaitTimeout carries the objects last seen, for a diagnosis.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pytest_chaos.errors import WaitTimeout
from pytest_chaos.kube.deadline import machine_stalls
from pytest_chaos.kube.retry import call, is_transient

log = logging.getLogger(__name__)

Condition = Callable[[list[Any]], bool]


def _meta(obj: Any, key: str) -> str:
    if isinstance(obj, dict):
        return str(obj.get("metadata", {}).get(key, ""))
    return str(getattr(obj.metadata, key, "") or "")


def _list_version(listing: Any) -> tuple[list[Any], str]:
    if isinstance(listing, dict):
        return list(listing.get("items", [])), str(listing["metadata"]["resourceVersion"])
    return list(listing.items or []), str(listing.metadata.resource_version)


def wait_until(
    list_fn: Callable[..., Any],
    condition: Condition,
    *,
    within: float,
    what: str,
    describe: Callable[[list[Any]], str] | None = None,
    **list_kwargs: Any,
) -> list[Any]:
    """Block until condition(objects) is true for the objects list_fn returns; return them.

    Args:
        list_fn: a list call of the Python client, e.g. ``kube.core.list_namespaced_pod``
            (use ``functools.partial`` to bind positional arguments such as a namespace).
        condition: evaluated on the current objects after the list and after every event.
        within: deadline in seconds.
        what: the awaited state in words, for the timeout message.
        describe: renders the last seen objects for the timeout message.
        **list_kwargs: passed to list_fn (label_selector, field_selector, ...).
    """
    from kubernetes import watch
    from kubernetes.client.exceptions import ApiException

    deadline = time.monotonic() + within
    stalls = machine_stalls()
    stalled_before = stalls.stalled()
    objects: dict[str, Any] = {}
    while True:
        listing = call(list_fn, **list_kwargs)
        items, version = _list_version(listing)
        objects = {_meta(o, "uid") or _meta(o, "name"): o for o in items}
        if condition(list(objects.values())):
            return list(objects.values())
        while (remaining := deadline - time.monotonic()) > 0:
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    list_fn,
                    resource_version=version,
                    timeout_seconds=max(1, int(remaining)),
                    _request_timeout=remaining + 5,
                    allow_watch_bookmarks=True,
                    **list_kwargs,
                ):
                    obj = event["object"]
                    kind = event["type"]
                    if kind == "ERROR":
                        log.debug("watch for %s returned an error event; listing again", what)
                        break
                    version = (
                        _meta(
                            obj, "resourceVersion" if isinstance(obj, dict) else "resource_version"
                        )
                        or version
                    )
                    if kind == "BOOKMARK":
                        continue
                    key = _meta(obj, "uid") or _meta(obj, "name")
                    if kind == "DELETED":
                        objects.pop(key, None)
                    else:
                        objects[key] = obj
                    if condition(list(objects.values())):
                        stream.stop()
                        return list(objects.values())
                    if time.monotonic() >= deadline:
                        break
                else:
                    continue  # the server ended the stream; resume from the last version
                break  # an error event or the deadline: list again (or time out)
            except ApiException as exc:
                if exc.status == 410:
                    log.debug("watch for %s: resourceVersion expired, listing again", what)
                    break
                if not is_transient(exc):
                    raise
                log.debug("watch for %s interrupted (%s); resuming", what, exc.status)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.debug("watch for %s interrupted (%s); resuming", what, exc)
            finally:
                stream.stop()
        else:
            last = list(objects.values())
            detail = describe(last) if describe else f"{len(last)} object(s) seen"
            message = f"timed out after {within:g}s waiting for {what}; last seen: {detail}"
            stood_still = stalls.stalled() - stalled_before
            if stood_still >= 1:
                message += (
                    f" (note: this machine stood still for {stood_still:.0f}s of that time, a "
                    "paused VM or a stopped process, so less of it was observed)"
                )
            raise WaitTimeout(message, last)
