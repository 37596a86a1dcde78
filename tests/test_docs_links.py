"""The docs a user gets never point at files they do not have (the project's design notes, reference data)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "policies" / "README.md"]


def test_no_pointer_to_files_outside_the_repository() -> None:
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        assert "DESIGN.md" not in text, doc.name
        assert not re.search(r"(?<![\w/.-])reference/", text), doc.name


def test_relative_links_resolve() -> None:
    for doc in DOCS:
        for target in re.findall(r"\]\((?!https?://|#|mailto:)([^)#\s]+)", doc.read_text(encoding="utf-8")):
            assert (doc.parent / target).exists(), f"{doc.relative_to(ROOT)} links to missing {target}"
