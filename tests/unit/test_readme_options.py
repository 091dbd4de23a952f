"""README's options table lists every option the plugin registers (docs that cannot drift)."""

from __future__ import annotations

import re
from pathlib import Path

from pytest_chaos.settings import OPTIONS

README = Path(__file__).resolve().parents[2] / "README.md"


def options_table_flags() -> set[str]:
    """The ``--chaos-*`` flags named in the first column of README's options table."""
    text = README.read_text()
    section = text.split("\n## Options\n", 1)[1].split("\n## ", 1)[0]
    flags: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `--chaos-"):
            first_column = line.split("|")[1]
            flags.update(re.findall(r"--chaos-[a-z-]+", first_column))
    return flags


def test_every_option_is_in_the_readme_options_table() -> None:
    missing = sorted({option.flag for option in OPTIONS} - options_table_flags())

    assert not missing, f"README.md's options table lacks {missing}: add a row for each"


def test_the_table_names_no_option_that_does_not_exist() -> None:
    unknown = sorted(options_table_flags() - {option.flag for option in OPTIONS})

    assert not unknown, f"README.md's options table names {unknown}, which the plugin lacks"
