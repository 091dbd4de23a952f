"""How every benchmark publishes its figures: JSON on stdout, and in a file when asked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def publish(results: Any, json_path: Path | None) -> int:
    """Print results as indented JSON, also write them to json_path; the exit status (0)."""
    text = json.dumps(results, indent=2)
    print(text)
    if json_path:
        json_path.write_text(text + "\n")
    return 0
