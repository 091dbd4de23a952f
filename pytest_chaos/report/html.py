"""``--chaos-report``: one self-contained HTML page of a run's chaos: tests, faults, timelines."""

from __future__ import annotations

import html
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pytest_chaos.report.totals import RunTotals

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4em;
text-align:left;vertical-align:top}.passed{color:#1a7f37}.failed,.error{color:#cf222e}
.skipped{color:#9a6700}pre{margin:0;font-size:12px;white-space:pre-wrap}
.summary{padding:.6em 1em;background:#f6f8fa;border-radius:6px;margin-bottom:1em}
pre.message{color:#cf222e;margin-top:.4em}
"""
#: How much of a failure message a row shows (the rest is in the terminal report).
MESSAGE_LINES = 12
MESSAGE_CHARS = 2000


def failure_message(longrepr: object) -> str:
    """The short text of a failure: the exception's message, not its traceback.

    ``longrepr`` is a report's: an exception representation (its crash line's message:
    ``AssertionError: ...``), or the text pytest-chaos made for its own errors.
    """
    crash = getattr(longrepr, "reprcrash", None)
    text = str(getattr(crash, "message", None) or longrepr or "")
    lines = text.strip().splitlines()
    short = "\n".join(lines[:MESSAGE_LINES])
    if len(lines) > MESSAGE_LINES:
        short += f"\n... ({len(lines) - MESSAGE_LINES} more lines in the test report)"
    return short if len(short) <= MESSAGE_CHARS else short[: MESSAGE_CHARS - 3] + "..."


def _timeline(events: Iterable[dict[str, Any]]) -> str:
    lines = [f"{e['at']:+9.3f}s  {e['phase']:<8} {e['text']}" for e in events]
    return "<pre>" + html.escape("\n".join(lines)) + "</pre>" if lines else ""


def _css(outcome: str) -> str:
    return outcome.split()[0] if outcome.split() else ""


def render(tests: list[dict[str, Any]], stats: RunTotals, *, seed: int, run: str) -> str:
    """The report page: a summary, then one row per test that used chaos."""
    rows = []
    for test in tests:
        outcome = html.escape(test["outcome"])
        message = test.get("message")
        if message:
            outcome += f"<pre class='message'>{html.escape(message)}</pre>"
        monitors = "<br>".join(html.escape(m) for m in test.get("monitors", []))
        css = html.escape(_css(test["outcome"]))
        rows.append(
            f"<tr><td>{html.escape(test['nodeid'])}</td><td class='{css}'>"
            f"{outcome}</td><td>{_timeline(test.get('timeline', []))}</td><td>{monitors}</td></tr>"
        )
    problems = "".join(f"<li>{html.escape(p)}</li>" for p in stats.problems)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>pytest-chaos report</title>"
        f"<style>{_STYLE}</style></head><body><h1>pytest-chaos report</h1>"
        f"<div class='summary'>run {html.escape(run)}, seed {seed} (replay with "
        f"<code>--chaos-seed={seed}</code>), {time.strftime('%Y-%m-%d %H:%M:%S')}<br>"
        f"{html.escape(stats.text())}"
        + (f"<ul class='failed'>{problems}</ul>" if stats.dirty else "")
        + "</div><table><tr><th>test</th><th>outcome</th><th>chaos timeline</th>"
        "<th>probes</th></tr>" + "".join(rows) + "</table></body></html>\n"
    )


def write(
    path: Path, tests: list[dict[str, Any]], stats: RunTotals, *, seed: int, run: str
) -> None:
    """Write the report page to path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(tests, stats, seed=seed, run=run), encoding="utf-8")
