"""summary.md: short, link-free, and Azure text cannot break the tables or inject markup."""

from __future__ import annotations

import re
from pathlib import Path

from backup_preflight.report import markdown
from scan_helpers import XSS_SCRIPT, estate, run, write_snapshot

from arg import SUB, subscription_row


def test_summary_is_short_and_escapes_azure_text(tmp_path: Path) -> None:
    doc = estate(name_suffix="|" + XSS_SCRIPT + "[x](https://evil.example)", extra=[f"vm{i}" for i in range(40)])
    doc["errors"] = [{"scope": "/subscriptions/s2", "table": "resources", "message": "Forbidden | *denied*"}]
    doc["tables"]["resourcecontainers"] = [subscription_row("Prod | " + XSS_SCRIPT)]
    text = markdown.render(run(write_snapshot(tmp_path / "s.json", doc)))
    assert text.startswith("## backup-preflight: INCOMPLETE (exit 3")
    assert len(text) < 8000 and len(text.splitlines()) < 80
    assert "<script>" not in text and "\\<script\\>" in text
    assert not re.search(r"(?<!\\)\]\(", text), "no links: the [x](…) must not become one"
    assert "Forbidden \\| \\*denied\\*" in text
    table = [line for line in text.splitlines() if "vm-noagent" in line]
    assert table and all(line.count("|") - line.count("\\|") == 8 for line in table), "cells stay in their columns"
    assert all(f"Prod \\| \\<script\\>alert(1)\\</script\\> ({SUB})" in line for line in table)
    assert "… and" in text and "more VMs" in text
    assert "VMBK-AGENT-001" in text


def test_md_escapes_line_start_syntax() -> None:
    assert markdown.md("# title") == "\\# title"
    assert markdown.md("12. item") == "12\\. item"
    assert markdown.md("a\nb\tc") == "a b c"


def test_subscriptions_without_a_display_name_show_the_guid_and_are_named(tmp_path: Path) -> None:
    doc = estate()
    plain = markdown.render(run(write_snapshot(tmp_path / "none.json", doc)))
    assert f"| {SUB} |" in plain
    assert "Display name unknown for 1 subscription (resourcecontainers was not collected)" in plain
    doc["tables"]["resourcecontainers"] = []
    empty = markdown.render(run(write_snapshot(tmp_path / "empty.json", doc)))
    assert "Display name unknown for 1 subscription (resourcecontainers has no row for them)" in empty
    doc["tables"]["resourcecontainers"] = [subscription_row("Contoso Prod")]
    named = markdown.render(run(write_snapshot(tmp_path / "named.json", doc)))
    assert f"| Contoso Prod ({SUB}) |" in named and "Display name unknown" not in named


def test_md_keeps_github_from_mentioning_referencing_or_linking() -> None:
    """Posted as a PR comment, `@team` would notify, `#12` and `GH-12` cross-reference, and a URL become a link:
    a zero-width space keeps each as it reads and inert."""
    shown = markdown.md("ping @octocat on #12 or GH-12 via https://evil.example or www.evil.example")
    assert shown == ("ping @\u200boctocat on #\u200b12 or GH\u200b-12 via https:\u200b//evil.example or "
                     "www\u200b.evil.example")
    assert markdown.md("vm-01 (C#, 50 GB) at 10:30") == "vm-01 (C#, 50 GB) at 10:30"
