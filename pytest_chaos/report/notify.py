"""``--chaos-notify``: post the run's chaos summary to a webhook (Slack-compatible ``text``).

A notification never fails the run: an unreachable endpoint is a warning.
"""

from __future__ import annotations

import warnings
from typing import Any

from pytest_chaos.errors import ChaosWarning


def message(stats: dict[str, Any], outcomes: dict[str, int], *, run: str, seed: int) -> str:
    """One line a person reads in a chat channel."""
    dirty = stats["revert_failures"] or stats["leftovers"]
    verdict = (
        "LEFT FAULTS BEHIND"
        if dirty
        else ("failed" if outcomes.get("failed") or outcomes.get("error") else "passed")
    )
    counts = ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items()) if n)
    return (
        f"pytest-chaos run {run} {verdict}: {counts or 'no tests'}; faults injected "
        f"{stats['injected']}, reverted {stats['reverted']}, revert failures "
        f"{len(stats['revert_failures'])}, leftovers {len(stats['leftovers'])} "
        f"(seed {seed})"
    )


def send(url: str, stats: dict[str, Any], outcomes: dict[str, int], *, run: str, seed: int) -> None:
    """POST the summary as JSON; warn (never raise) when it cannot be delivered."""
    import httpx

    payload = {
        "text": message(stats, outcomes, run=run, seed=seed),
        "run": run,
        "seed": seed,
        "outcomes": outcomes,
        "chaos": stats,
    }
    try:
        response = httpx.post(url, json=payload, timeout=5.0)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        warnings.warn(ChaosWarning(f"--chaos-notify: could not post to {url}: {exc}"), stacklevel=1)
