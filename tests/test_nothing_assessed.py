"""Fail closed: a scan in which no (policy, VM) pair came out pass or fail is not green."""

import json
from pathlib import Path
from typing import Any

import pytest

from backup_preflight.findings import EXEMPT, FAIL, NOT_APPLICABLE, PASS, UNKNOWN, Finding
from backup_preflight.results import EXIT_INCOMPLETE, Gate, nothing_assessed
from scan_helpers import run as scan_file

from arg import SUB, snapshot_doc, vm_row
from cli_helpers import run


def finding(status: str, *evidence: str, verdict: str | None = None) -> Finding:
    f = Finding("P-1", "/subscriptions/s/vm", "vm", status, "high", "vm-agent", "", evidence)
    if verdict:
        f.annotate("verdict", verdict)
    return f


def bare_vm(name: str) -> dict[str, Any]:
    """A VM row as Resource Graph returns it when `properties` was not projected."""
    rid = f"/subscriptions/{SUB}/resourceGroups/RG-App/providers/Microsoft.Compute/virtualMachines/{name}"
    return {"id": rid, "name": name, "type": "microsoft.compute/virtualmachines", "resourceGroup": "rg-app",
            "subscriptionId": SUB, "location": "westeurope"}


def test_the_line_names_the_facts_most_often_missing_most_frequent_first() -> None:
    line = nothing_assessed([
        finding(UNKNOWN, "powerState was not collected", "agent.version was not collected"),
        finding(UNKNOWN, "powerState was not collected"),
        finding(UNKNOWN, "backup.protected was not collected"),
        finding(UNKNOWN, "osType is 5, which cannot be compared by equals with \"Linux\""),
        finding(UNKNOWN, "extensions was not collected"),
        finding(NOT_APPLICABLE)])
    assert line == ("Nothing assessed: none of the 6 findings is a pass or a fail (all unknown, error or not "
                    "applicable); most often missing: powerState was not collected (2 findings); "
                    "agent.version was not collected (1 finding); backup.protected was not collected (1 finding)")


@pytest.mark.parametrize(("findings", "assessed"), [
    ([finding(UNKNOWN, "x was not collected"), finding(PASS)], True),
    ([finding(NOT_APPLICABLE), finding(FAIL, "x is 1: equals 2 does not hold")], True),
    ([finding(EXEMPT, verdict=FAIL)], True),            # a waived fail was still assessed
    ([finding(EXEMPT, "x was not collected", verdict=UNKNOWN)], False),
    ([finding(NOT_APPLICABLE), finding(NOT_APPLICABLE)], False),
    ([finding(UNKNOWN, "osType is 5, which cannot be compared by equals with 1")], False),
])
def test_only_a_pass_or_a_fail_counts_as_assessed(findings: list[Finding], assessed: bool) -> None:
    assert (nothing_assessed(findings) is None) is assessed


def test_no_findings_at_all_is_left_to_the_nothing_evaluated_rule() -> None:
    assert nothing_assessed([]) is None


def test_a_scan_of_resource_graph_rows_that_decide_nothing_exits_3(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(snapshot_doc([bare_vm("vm-a"), bare_vm("vm-b")])))
    result = scan_file(path, Gate(fail_on="never"))
    assert result.summary["byStatus"]["pass"] == result.summary["byStatus"]["fail"] == 0
    assert result.exit_code == EXIT_INCOMPLETE
    assert result.coverage["nothingAssessed"].startswith("Nothing assessed: none of the 34 findings")
    assert "powerState was not collected" in result.coverage["nothingAssessed"]


def test_one_vm_that_is_assessed_keeps_the_usual_exit_code(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(snapshot_doc([bare_vm("vm-a"), vm_row("vm-ok")])))
    result = scan_file(path, Gate(fail_on="never"))
    assert result.coverage["nothingAssessed"] is None and result.exit_code == 0


def test_the_console_says_what_was_missing_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(snapshot_doc([bare_vm("vm-a")])))
    out = tmp_path / "out"
    proc = run("scan", "--snapshot", path, "--output-dir", out, "--fail-on", "never")
    assert proc.returncode == 3, proc.stderr
    [line] = [x for x in proc.stdout.splitlines() if x.startswith("Nothing assessed")]
    assert "most often missing: powerState was not collected" in line
    assert "nothing was evaluated or assessed" in proc.stdout
    assert "Nothing assessed" in (out / "junit.xml").read_text()
    assert "Nothing assessed" in (out / "summary.md").read_text()
    assert json.loads((out / "results.json").read_text())["coverage"]["nothingAssessed"] == line
