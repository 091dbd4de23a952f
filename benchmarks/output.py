"""How every benchmark publishes its figures: JSON on stdout, and in a file when asked."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any


def publish(results: Any, json_path: Path | None) -> int:
    """Print results as indented JSON, also write them to json_path; the exit status (0)."""
    text = json.dumps(results, indent=2)
    print(text)
    if json_path:
        json_path.write_text(text + "\n")
    return 0


def milliseconds(values: list[float]) -> dict[str, float]:
    """Median, p95 (nearest rank) and max of durations in seconds, in milliseconds; and n."""
    ordered = sorted(values)
    p95 = ordered[max(0, -(-len(ordered) * 95 // 100) - 1)]
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "n": len(ordered),
    }
