"""Verdict stability: the same experiment, run again and again, must give the same verdict.

Runs ``examples/test_verdicts.py`` (the book's instance-kill experiment in the marker style and
the fixture style) ``--runs`` times against a robust and a fragile variant of the app, in one
pytest session per variant on the local cluster's real node, and tabulates every verdict. The
expectation: robust passes every time, fragile fails every time. Anything else (a flip, a skip,
an error) is reported and the script exits 1.

With ``--examples FILE...`` it runs those example files ``--runs`` times instead (one pytest
session each time) and checks that every test got the same verdict in every run.

Usage: python benchmarks/verdicts.py [--runs 10] [--json FILE] [-- extra pytest args]
       python benchmarks/verdicts.py --examples examples/test_x.py ... [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = "examples/test_verdicts.py"
EXPECTED = {"robust": "passed", "fragile": "failed"}


#: Why tests did not get their expected verdict: the first line of each error or failure.
REASONS: list[str] = []


def outcomes(junit: Path, *, by_function: bool = True) -> dict[str, list[str]]:
    """Per test (function, or test id): the outcome of each of its runs, in order."""
    found: dict[str, list[str]] = defaultdict(list)
    for case in ET.parse(junit).iter("testcase"):
        for problem in (case.find("error"), case.find("failure")):
            if problem is not None:
                message = (problem.get("message") or problem.text or "").strip()
                REASONS.append(f"{case.get('name')}: {message.splitlines()[0] if message else ''}")
        name = case.get("name", "")
        if by_function:
            name = re.sub(r"\[.*\]$", "", name)
        else:
            name = f"{case.get('classname', '')}::{name}"
        if case.find("skipped") is not None:
            outcome = "skipped"
        elif case.find("error") is not None:
            outcome = "error"
        elif case.find("failure") is not None:
            outcome = "failed"
        else:
            outcome = "passed"
        found[name].append(outcome)
    return dict(found)


def run_pytest(
    files: list[str], env: dict[str, str], extra: list[str], *, by_function: bool = True
) -> tuple[dict[str, list[str]], float]:
    """Run pytest once on files; each test's outcomes, and the seconds it took."""
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                *files,
                "-p",
                "no:cacheprovider",
                "-q",
                f"--junitxml={junit}",
                *extra,
            ],
            cwd=ROOT,
            env=env,
            check=False,
            stdout=subprocess.DEVNULL,
        )
        took = time.perf_counter() - started
        if not junit.exists():
            raise SystemExit(f"{' '.join(files)}: pytest wrote no junit file")
        return outcomes(junit, by_function=by_function), took


def run_variant(variant: str, runs: int, extra: list[str]) -> tuple[dict[str, list[str]], float]:
    env = {**os.environ, "CHAOS_EXAMPLE_VARIANT": variant, "CHAOS_EXAMPLE_RUNS": str(runs)}
    return run_pytest([EXAMPLE], env, extra)


def repeat_examples(files: list[str], runs: int, extra: list[str]) -> dict[str, object]:
    """Run the example files runs times; per test, whether every run gave the same verdict."""
    verdicts: dict[str, list[str]] = defaultdict(list)
    seconds = []
    for _ in range(runs):
        found, took = run_pytest(files, dict(os.environ), extra, by_function=False)
        seconds.append(round(took, 1))
        for test, outcome in found.items():
            verdicts[test] += outcome
    results: dict[str, object] = {"seconds_per_run": seconds}
    for test, seen in sorted(verdicts.items()):
        counts = Counter(seen)
        ok = len(counts) == 1 and len(seen) == runs
        results[test] = {"verdicts": dict(counts), "stable": ok}
        shown = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
        print(f"{test:<100} {shown:<22} {'stable' if ok else 'UNSTABLE'}")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--examples", nargs="+", help="example files to repeat instead")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    if args.examples:
        repeated = repeat_examples(args.examples, args.runs, args.pytest_args)
        if args.json:
            args.json.write_text(json.dumps(repeated, indent=2) + "\n")
        steady = all(
            v["stable"] for k, v in repeated.items() if isinstance(v, dict) and "stable" in v
        )
        if not steady:
            print("why (first line of each error or failure):")
            print("\n".join(f"  {reason}" for reason in REASONS))
        print("verdicts: " + ("stable" if steady else "NOT stable"))
        return 0 if steady else 1
    results: dict[str, dict[str, object]] = {}
    stable = True
    for variant, expected in EXPECTED.items():
        found, took = run_variant(variant, args.runs, args.pytest_args)
        for test, verdicts in sorted(found.items()):
            counts = Counter(verdicts)
            ok = counts[expected] == args.runs == len(verdicts)
            stable &= ok
            results[f"{variant}:{test}"] = {
                "expected": expected,
                "verdicts": dict(counts),
                "stable": ok,
            }
            shown = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
            print(
                f"{variant:<8} {test:<48} {shown:<22} "
                f"{'stable' if ok else 'UNSTABLE, expected ' + expected}"
            )
        if len(found) < 2:
            stable = False
            print(f"{variant}: expected 2 experiments, found {sorted(found)}")
        print(f"{variant:<8} {args.runs} run(s) of each experiment in {took:.1f}s")
        results[f"{variant}:seconds"] = {"seconds": round(took, 1)}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if not stable:
        print("why (first line of each error or failure):")
        print("\n".join(f"  {reason}" for reason in REASONS))
    print("verdicts: " + ("stable" if stable else "NOT stable"))
    return 0 if stable else 1


if __name__ == "__main__":
    sys.exit(main())
