"""``--chaos-notify``: tell a chat channel or a webhook how the run went.

Selective, as the book recommends: by default only a run that failed (or left faults behind)
notifies (``--chaos-notify-on=failure|always|never``). A Slack incoming webhook
(``hooks.slack.com``) gets a Block Kit message; any other URL the summary as plain JSON. Delivery
is retried with backoff within a total timeout and NEVER fails the run: what went wrong is one
line of the terminal summary. The URL is a secret (a Slack webhook's path is its key): it is
read from an environment variable or a file, and only its scheme and host are ever printed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from pytest_chaos.report.totals import RunTotals

NotifyOn = Literal["failure", "always", "never"]
NOTIFY_ON: tuple[str, ...] = ("failure", "always", "never")

#: Slack's limits for one message (https://api.slack.com/reference/block-kit/blocks).
_SLACK_HEADER_MAX = 150
_SLACK_SECTION_MAX = 3000
#: How many failed tests, faults and monitors a message names before "and N more".
_LISTED = 10
#: Characters of one listed item (a failure message's first line may be long).
_ITEM_MAX = 250


def message(stats: RunTotals, outcomes: dict[str, int], *, run: str, seed: int) -> str:
    """One line a person reads in a chat channel."""
    counts = ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items()) if n)
    return (
        f"pytest-chaos run {run} {verdict(stats, outcomes)}: {counts or 'no tests'}; "
        f"{stats.text(' ')} (seed {seed})"
    )


def verdict(stats: RunTotals, outcomes: dict[str, int]) -> str:
    """``passed``, ``failed`` or ``LEFT FAULTS BEHIND`` (a revert failed or a fault is left)."""
    if stats.dirty:
        return "LEFT FAULTS BEHIND"
    return "failed" if outcomes.get("failed") or outcomes.get("error") else "passed"


def wanted(on: NotifyOn, summary: dict[str, Any]) -> bool:
    """Whether a run with this summary notifies under ``--chaos-notify-on``."""
    return on == "always" or (on == "failure" and summary["verdict"] != "passed")


def summary(
    stats: RunTotals,
    outcomes: dict[str, int],
    tests: list[dict[str, Any]],
    *,
    run: str,
    seed: int,
) -> dict[str, Any]:
    """The run summary a notification carries: verdict, failed tests, faults, monitors."""
    failed = [
        {"test": t["nodeid"], "outcome": t["outcome"], "message": t.get("message", "")}
        for t in tests
        if t["outcome"].startswith(("failed", "error"))
    ]
    faults = [
        {"test": t["nodeid"], "fault": e["text"]}
        for t in tests
        for e in t.get("timeline", [])
        if e["phase"] == "inject"
    ]
    monitors = [{"test": t["nodeid"], "monitor": m} for t in tests for m in t.get("monitors", [])]
    return {
        "text": message(stats, outcomes, run=run, seed=seed),
        "verdict": verdict(stats, outcomes),
        "run": run,
        "seed": seed,
        "replay": f"--chaos-seed={seed}",
        "outcomes": outcomes,
        "chaos": stats.as_dict(),
        "failed": failed,
        "faults": faults,
        "monitors": monitors,
    }


def is_slack(url: str) -> bool:
    """True for a Slack incoming webhook, which gets the Block Kit layout."""
    return (urlsplit(url).hostname or "").lower() == "hooks.slack.com"


def redact(url: str) -> str:
    """The URL without what makes it a secret (user info, path, query): ``https://host/…``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/…"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _listing(title: str, items: list[str]) -> dict[str, Any]:
    """A section block listing up to _LISTED items, within Slack's size limit."""
    lines = [f"• {_cut(item, _ITEM_MAX)}" for item in items[:_LISTED]] or ["none"]
    if len(items) > _LISTED:
        lines.append(f"… and {len(items) - _LISTED} more")
    text = _cut(f"*{title}*\n" + "\n".join(lines), _SLACK_SECTION_MAX)
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def slack_blocks(run: dict[str, Any]) -> dict[str, Any]:
    """The summary as a Slack Block Kit message (``text`` is the notification's fallback)."""
    icon = ":white_check_mark:" if run["verdict"] == "passed" else ":rotating_light:"
    header = f"pytest-chaos run {run['verdict']}"[:_SLACK_HEADER_MAX]
    counts = ", ".join(f"{n} {k}" for k, n in sorted(run["outcomes"].items()) if n)
    stats = RunTotals.of([run["chaos"]])
    failed = [
        f"`{f['test']}` {f['outcome']}: {f['message'].splitlines()[0] if f['message'] else ''}"
        for f in run["failed"]
    ]
    return {
        "text": run["text"],
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": header}},
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"{icon} *{counts or 'no tests'}*\n{stats.text(' ')}",
                },
            },
            _listing("Failed", failed),
            _listing("Faults", [f"`{f['test']}` {f['fault']}" for f in run["faults"]]),
            _listing("Monitors", [f"`{m['test']}` {m['monitor']}" for m in run["monitors"]]),
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"run `{run['run']}` · seed {run['seed']} · replay with "
                        f"`{run['replay']}`",
                    }
                ],
            },
        ],
    }


def payload(url: str, run: dict[str, Any]) -> dict[str, Any]:
    """What is posted to url: Block Kit for Slack, the summary itself for anything else."""
    return slack_blocks(run) if is_slack(url) else run


@dataclass(frozen=True, slots=True)
class Delivery:
    """How a notification went: delivered or not, after how many attempts, and why not."""

    delivered: bool
    attempts: int
    seconds: float
    problem: str = ""

    def line(self, url: str) -> str:
        """The terminal summary's line about it."""
        where = redact(url)
        if self.delivered:
            return f"notification posted to {where} (attempt {self.attempts}, {self.seconds:.1f}s)"
        return (
            f"WARNING --chaos-notify: could not post to {where} after {self.attempts} "
            f"attempt(s) in {self.seconds:.1f}s: {self.problem}; the run's verdict is unchanged"
        )


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def post(
    url: str,
    body: dict[str, Any],
    *,
    timeout: float,
    backoff: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
) -> Delivery:
    """POST body as JSON; retry refusals, 429 and 5xx with backoff until timeout; never raise.

    The whole delivery (every attempt and wait) ends within ``timeout`` seconds: the attempts
    run in a daemon thread that is abandoned when the budget is spent (a server that accepts
    the connection and never answers cannot hold the run).
    """
    import httpx

    started = clock()
    state: dict[str, Any] = {"attempts": 0, "problem": "", "delivered": False}
    stop = threading.Event()

    def attempts() -> None:
        wait = backoff
        while not stop.is_set():
            left = timeout - (clock() - started)
            if left <= 0:
                return
            state["attempts"] += 1
            try:
                response = httpx.post(url, json=body, timeout=left)
            except httpx.HTTPError as exc:
                state["problem"] = f"{type(exc).__name__}: {exc}".replace(url, redact(url))
            else:
                if response.is_success:
                    state["delivered"] = True
                    return
                state["problem"] = f"HTTP {response.status_code} {response.reason_phrase}"
                if not _retryable(response.status_code):
                    return
            if stop.wait(min(wait, max(0.0, timeout - (clock() - started)))):
                return
            wait *= 2

    worker = threading.Thread(target=attempts, name="pytest-chaos-notify", daemon=True)
    worker.start()
    worker.join(timeout)
    stop.set()
    seconds = clock() - started
    if worker.is_alive() or (not state["delivered"] and seconds >= timeout):
        problem = state["problem"] or "no answer"
        return Delivery(False, state["attempts"], seconds, f"timed out ({problem})")
    return Delivery(state["delivered"], state["attempts"], seconds, state["problem"])


def send(url: str, run: dict[str, Any], *, timeout: float) -> Delivery:
    """Post the run summary to url in the layout its host expects."""
    return post(url, payload(url, run), timeout=timeout)
