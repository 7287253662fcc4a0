"""docs/security.md points each line of the threat model at a test: every one it names exists."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
DOC = TESTS.parent / "docs" / "security.md"


def test_every_test_the_threat_model_cites_exists() -> None:
    cited = re.findall(r"`([\w/]+\.py)::(\w+)`", DOC.read_text())
    assert len(cited) >= 20
    missing = [
        f"{path}::{name}"
        for path, name in cited
        if not re.search(rf"^(async )?def {name}\(", (TESTS / path).read_text(), re.MULTILINE)
    ]
    assert missing == []
