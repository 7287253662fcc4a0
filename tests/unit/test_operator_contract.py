"""The README's configuration table is the operator contract: it names every variable the
settings read, and only those."""

from __future__ import annotations

import re
from pathlib import Path

from photovault_server.settings import Settings, variables

README = Path(__file__).resolve().parents[2] / "README.md"


def _table_variables() -> set[str]:
    text = README.read_text()
    section = text[text.index("## Configuration") :]
    section = section[: section.index("\n## ", 1)]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}


def test_the_readme_lists_every_variable_the_settings_read() -> None:
    listed = _table_variables()
    read = set(variables(Settings))
    assert read - listed == set(), "variables missing from README.md's configuration table"
    assert listed - read == set(), "README.md's configuration table lists unknown variables"


def test_each_variable_is_read_by_one_field() -> None:
    read = variables(Settings)
    assert len(read) == len(set(read))
