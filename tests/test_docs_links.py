"""The docs a user gets never point at files they do not have (the project's design notes, reference data)."""

from __future__ import annotations

import re
from collections.abc import Iterator
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


def _slugs(doc: Path) -> Iterator[str]:
    """The anchors GitHub gives the headings of a Markdown file: lowercase, punctuation dropped,
    spaces as hyphens, a repeated heading numbered."""
    seen: dict[str, int] = {}
    text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
    for heading in re.findall(r"^#+ +(.+?) *$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        yield slug if n == 0 else f"{slug}-{n}"


def test_anchors_name_a_heading() -> None:
    for doc in DOCS:
        for target, anchor in re.findall(r"\]\((?!https?://|mailto:)([^)#\s]*)#([^)\s]+)\)", doc.read_text("utf-8")):
            linked = doc.parent / target if target else doc
            assert anchor in set(_slugs(linked)), f"{doc.relative_to(ROOT)} links to #{anchor} in {linked.name}, " \
                                                  "which has no such heading"
