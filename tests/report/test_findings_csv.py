"""findings.csv read back with the csv module: rows add up to the scan's counts, formulas are defused."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from backup_preflight.report import findings_csv, outputs
from results_helpers import findings_of
from scan_helpers import estate, run, write_snapshot


def test_rows_add_up_to_results_json_and_formulas_are_defused(tmp_path: Path) -> None:
    result = run(write_snapshot(tmp_path / "s.json", estate(extra=["=HYPERLINK(\"http://x\")", "+cmd|' /C calc'!A0"])))
    outputs.write_all(result, tmp_path / "out")
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    with (tmp_path / "out" / "findings.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == findings_csv.COLUMNS
    counted: Counter[str] = Counter()
    for row in rows:
        counted[row["status"]] += int(row["count"])
    expected = {k: v for k, v in results["summary"]["byStatus"].items() if k != "notApplicable"}
    assert dict(counted) == {k: v for k, v in expected.items() if v}
    attention = [f for f in findings_of(results) if f["status"] not in ("pass", "notApplicable")]
    assert sorted((r["policyId"], r["resourceId"]) for r in rows if r["status"] != "pass") == \
        sorted((f["policyId"], f["resourceId"]) for f in attention)
    assert len([r for r in rows if r["status"] == "pass"]) == len(results["policies"])
    names = {r["resourceName"] for r in rows}
    assert "'=HYPERLINK(\"http://x\")" in names and "'+cmd|' /C calc'!A0" in names
    assert not any(v.startswith(("=", "+", "@")) for r in rows for v in r.values())


def test_what_could_not_be_collected_is_named_in_its_own_rows(tmp_path: Path) -> None:
    """An auditor who opens only findings.csv still sees each scope the scan could not read: one `incomplete`
    row each, beside (not inside) the totals of the findings; hostile text in them is defused too."""
    doc = estate()
    doc["errors"] = [
        {"scope": "subscription 0000-forbidden", "table": "resources", "status": 403,
         "message": "AuthorizationFailed: no read access"},
        {"scope": "=cmd|' /C calc'!A0", "table": "instanceviews", "status": None, "message": "@SUM(1)"},
    ]
    result = run(write_snapshot(tmp_path / "s.json", doc))
    outputs.write_all(result, tmp_path / "out")
    with (tmp_path / "out" / "findings.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    incomplete = [r for r in rows if r["status"] == "incomplete"]
    assert [(r["resourceName"], r["cause"], r["count"], r["verdict"]) for r in incomplete] == [
        ("subscription 0000-forbidden [resources]", "coverage", "1", "incomplete"),
        ("'=cmd|' /C calc'!A0 [instanceviews]", "coverage", "1", "incomplete"),
    ]
    assert "AuthorizationFailed: no read access" in incomplete[0]["message"]
    assert incomplete[1]["message"].startswith("not collected: @SUM(1)")
    counted: Counter[str] = Counter()
    for row in rows:
        if row["status"] != "incomplete":
            counted[row["status"]] += int(row["count"])
    expected = {k: v for k, v in result.summary["byStatus"].items() if k != "notApplicable" and v}
    assert dict(counted) == expected
    assert not any(v.startswith(("=", "+", "@")) for r in rows for v in r.values())


def test_a_complete_run_has_no_incomplete_row(tmp_path: Path) -> None:
    result = run(write_snapshot(tmp_path / "s.json", estate()))
    outputs.write_all(result, tmp_path / "out")
    assert "incomplete" not in (tmp_path / "out" / "findings.csv").read_text(encoding="utf-8")


def test_cells_are_made_safe_as_every_report_is(tmp_path: Path) -> None:
    """An ANSI escape, a bidi override or a SAS signature in a VM name reaches the spreadsheet shown as an escape
    and masked; the formula guard still applies to what is left."""
    result = run(write_snapshot(tmp_path / "s.json", estate(extra=["vm-esc\x1b[31m\u202eexe.txt sig=SECRETSIG123",
                                                                   "@vm\x07"])))
    outputs.write_all(result, tmp_path / "out")
    text = (tmp_path / "out" / "findings.csv").read_text(encoding="utf-8")
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text and "SECRETSIG123" not in text
    with (tmp_path / "out" / "findings.csv").open(newline="", encoding="utf-8") as f:
        names = {r["resourceName"] for r in csv.DictReader(f)}
    assert {"vm-esc\\x1b[31m\\u202eexe.txt sig=***", "'@vm\\x07"} <= names


@settings(max_examples=300)
@given(st.lists(st.text(alphabet=st.sampled_from([*"a ,\"'\r\n\t;=x", "é", "\u202e"]), max_size=6), min_size=2,
                max_size=6))
def test_a_row_of_fields_quoted_once_is_the_row_csv_writer_writes(cells: list[str]) -> None:
    """Rows of findings are joined from fields quoted once each (for speed); the oracle is csv.writer itself."""
    written = io.StringIO()
    csv.writer(written).writerow(cells)
    assert ",".join(map(findings_csv._quoted, cells)) + findings_csv._END == written.getvalue()
