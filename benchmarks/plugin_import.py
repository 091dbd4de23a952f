"""Cost of pytest-chaos for a run that does not use it (goal: under 20 ms).

Measures, in fresh interpreters, the import time that ``import pytest_chaos.plugin`` adds on
top of ``import pytest`` (python -X importtime, self times of every module the plugin brings in),
and checks that no Kubernetes or HTTP client module is among them.

Usage: python benchmarks/plugin_import.py [--rounds 15] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HEAVY = ("kubernetes", "httpx", "urllib3", "yaml", "cryptography", "tenacity")


def added_import(rounds: int) -> tuple[list[float], list[str]]:
    figures: list[float] = []
    modules: list[str] = []
    for _ in range(rounds):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import pytest; import pytest_chaos.plugin"],
            capture_output=True,
            text=True,
            check=True,
        )
        seen_pytest = False
        total_us = 0
        modules = []
        for line in result.stderr.splitlines():
            if not line.startswith("import time:") or "|" not in line:
                continue
            parts = [p.strip() for p in line[len("import time:") :].split("|")]
            if not parts[0].isdigit():
                continue
            name = parts[2].strip()
            if seen_pytest:
                total_us += int(parts[0])
                modules.append(name)
            if name == "pytest":
                seen_pytest = True
        figures.append(total_us / 1000)
    return figures, modules


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    figures, modules = added_import(args.rounds)
    heavy = sorted({m for m in modules if m.split(".")[0] in HEAVY})
    results = {
        "added_import_ms": {
            "min": round(min(figures), 2),
            "median": round(statistics.median(figures), 2),
            "max": round(max(figures), 2),
            "n": len(figures),
        },
        "modules_added": len(modules),
        "heavy_modules_imported": heavy,
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 1 if heavy else 0


if __name__ == "__main__":
    sys.exit(main())
