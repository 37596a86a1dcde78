"""The last failed backup job beside the precondition findings, through every report."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from backup_preflight.report import outputs
from job_helpers import HOSTILE, job_result
from results_helpers import findings_of
from scan_helpers import XSS_IMG, XSS_SCRIPT


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("jobs")
    outputs.write_all(job_result(out), out / "reports")
    return out / "reports"


def results(reports: Path) -> dict[str, Any]:
    return json.loads((reports / "results.json").read_text())


def test_results_json_lists_the_last_failed_job_per_vm_with_the_findings_statuses(reports: Path) -> None:
    doc = results(reports)
    schema = json.loads((Path(__file__).parents[2] / "src/backup_preflight/report/results.schema.json").read_text())
    jsonschema.validate(doc, schema)
    by_vm = {d["resourceName"]: d for d in doc["jobDiagnosis"]}
    assert set(by_vm) == {"vm-noagent", "vm-stopped"}  # vm-ok's failure was made good by a later backup
    noagent = by_vm["vm-noagent"]
    job = noagent["lastFailedJob"]
    assert (job["time"], job["operation"], job["errorCode"]) == (
        "2026-11-19T02:00:00Z", "Backup", "UserErrorGuestAgentStatusUnavailable")
    assert job["message"] == "VM Agent unable to communicate with Azure Backup"
    assert [c["cause"] for c in noagent["causes"]] == ["vm-agent", "backup-extension"]
    statuses = {(f["policyId"], f["resourceId"]): f["status"] for f in findings_of(doc)}
    for cause in noagent["causes"]:  # copied from the findings, never recomputed
        assert cause["policies"], cause
        for p in cause["policies"]:
            assert statuses[p["policyId"], noagent["resourceId"]] == p["status"]
    assert noagent["causes"][0]["status"] == "failing" and noagent["failingCauses"] == ["vm-agent"]
    assert "points at vm-agent, failing (VMBK-AGENT-001 fail" in noagent["summary"]
    stopped = by_vm["vm-stopped"]
    assert "errorCode" not in stopped["lastFailedJob"] and stopped["causes"] == [] and stopped["failingCauses"] == []
    assert stopped["lastFailedJob"]["message"] == HOSTILE


def test_summary_md_has_a_table_of_last_failed_jobs_with_escaped_text(reports: Path) -> None:
    md = (reports / "summary.md").read_text()
    section = md.split("### Last failed backup jobs (2 VMs)", 1)[1]
    row = next(line for line in section.splitlines() if line.startswith("| vm-noagent"))
    assert "UserErrorGuestAgentStatusUnavailable – VM Agent unable to communicate with Azure Backup" in row
    assert "vm-agent: failing; backup-extension: unknown" in row
    assert "<script>" not in md and "\\<script\\>" in md


def test_junit_failure_text_names_the_last_failed_job_and_whether_it_points_here(reports: Path) -> None:
    root = ET.parse(reports / "junit.xml").getroot()
    bodies = {(case.get("classname"), case.get("name").split(" ")[0]): (case.find("failure").text or "")
              for case in root.iter("testcase") if case.find("failure") is not None}
    agent = bodies["VMBK-AGENT-001", "vm-noagent"]
    assert ("Last failed backup job: 2026-11-19T02:00:00Z Backup: UserErrorGuestAgentStatusUnavailable – "
            "VM Agent unable to communicate with Azure Backup (points at this policy's cause)") in agent
    other = bodies.get(("VMBK-EXT-001", "vm-noagent")) or bodies.get(("VMBK-AGENT-002", "vm-noagent"))
    assert other is None or "(points at this policy's cause)" in other
    power = bodies["VMBK-POWER-001", "vm-stopped"]
    assert "Last failed backup job: 2026-11-19T02:00:00Z Backup: no error code in the job row" in power
    assert XSS_SCRIPT in power and "no precondition this tool checks" in power  # text, parsed back out of XML
    assert not any("Last failed backup job" in b for (_, vm), b in bodies.items() if vm == "vm-ok")


def test_html_index_carries_the_job_for_the_right_vm_rows(reports: Path) -> None:
    page = (reports / "report.html").read_text()
    island = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert island and "<" not in island[1] and XSS_IMG not in page
    index = json.loads(island[1])["index"]
    names = {pos: index["vms"][int(pos)][0] for pos in index["jobs"]}
    assert sorted(names.values()) == ["vm-noagent", "vm-stopped"]
    job = next(j for pos, j in index["jobs"].items() if names[pos] == "vm-noagent")
    assert job["head"].startswith("2026-11-19T02:00:00Z Backup: UserErrorGuestAgentStatusUnavailable")
    assert job["ref"].startswith("https://learn.microsoft.com/")
    assert job["causes"][0][:2] == ["vm-agent", "failing"]
    assert index["policies"][job["causes"][0][2][0][0]]["id"] == "VMBK-AGENT-001"
