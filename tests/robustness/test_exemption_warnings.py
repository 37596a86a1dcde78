"""A waiver without expiry, or a wildcard that exempts much of the estate, is a warning in every report."""

from __future__ import annotations

import json
from html import unescape
from pathlib import Path

from backup_preflight.review.exemptions import WIDE_EXEMPTION

from cli_helpers import run

CAUSES = ["outbound-connectivity", "vm-agent", "backup-extension", "sql-vss-backup", "guest-shutdown",
          "schedule-spread", "resource-pressure", "guest-dhcp", "backup-protection"]


def entry(id_: str, resources: list[str], expires: str | None, causes: list[str] = CAUSES) -> dict[str, object]:
    doc: dict[str, object] = {"id": id_, "causes": causes, "resources": resources, "category": "waiver",
                              "justification": "accepted for the test", "owner": "ops"}
    return {**doc, "expiresOn": expires} if expires else doc


def test_unbounded_and_wide_exemptions_are_warned_about_everywhere(tmp_path: Path) -> None:
    ex = tmp_path / "ex.json"
    ex.write_text(json.dumps({"exemptions": [
        entry("EX-NARROW", ["*/virtualmachines/vm-001"], "2099-01-01", ["vm-agent"]),  # a wildcard, but narrow
        entry("EX-FOREVER", ["/subscriptions/x/resourcegroups/y/providers/microsoft.compute/virtualmachines/z"],
              None),
        entry("EX-WIDE", ["*"], "2099-01-01"),
    ]}))
    proc = run("scan", "--demo", "--exemptions", ex, "--output-dir", tmp_path / "r")
    assert proc.returncode == 0  # every failure waived: the gate is green, so the warnings must be seen
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    entries = {e["id"]: e for e in results["scan"]["exemptions"]["entries"]}
    assert entries["EX-WIDE"]["exempted"] > WIDE_EXEMPTION
    assert entries["EX-WIDE"]["warnings"] == [
        f"a wildcard resource pattern exempts {entries['EX-WIDE']['exempted']} findings (more than {WIDE_EXEMPTION})"]
    assert entries["EX-FOREVER"]["warnings"] == ["has no expiry date (expiresOn), so it exempts for ever"]
    assert entries["EX-NARROW"]["warnings"] == []
    wide = f"EX-WIDE a wildcard resource pattern exempts {entries['EX-WIDE']['exempted']} findings"
    forever = "EX-FOREVER has no expiry date"
    summary = (tmp_path / "r" / "summary.md").read_text().replace("\\", "")
    page = unescape((tmp_path / "r" / "report.html").read_text()).replace("<code>", "").replace("</code>", "")
    for where, text in (("console", proc.stdout), ("summary.md", summary), ("report.html", page)):
        assert wide in text and forever in text, where
        assert "EX-NARROW has" not in text and "EX-NARROW a wildcard" not in text, where
