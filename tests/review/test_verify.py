"""verify: a results.json matches a re-evaluation of its snapshot, or the differences are named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from backup_preflight.errors import InputError
from backup_preflight.policy.loader import bundled_policy_dir, load_policies
from backup_preflight.policy.parameters import parse_cli_params
from backup_preflight.report import results_json
from backup_preflight.review import Review, exemptions, verify
from results_helpers import as_version_1
from scan_helpers import estate, policies, run, write_snapshot


def scanned(tmp_path: Path, review: Review | None = None) -> tuple[Path, Path]:
    snap = write_snapshot(tmp_path / "s.json", estate())
    out = tmp_path / "results.json"
    results_json.write(run(snap, review=review), out)
    return snap, out


def test_untouched_results_verify(tmp_path: Path) -> None:
    snap, out = scanned(tmp_path)
    report = verify.verify(out, [snap], policies(), Review())
    assert report.matches, report.render()
    assert "VERIFIED" in report.render()


def test_tampered_finding_is_named(tmp_path: Path) -> None:
    snap, out = scanned(tmp_path)
    doc = as_version_1(json.loads(out.read_text()))
    target = next(f for f in doc["findings"] if f["status"] == "fail")
    target["status"] = "pass"
    out.write_text(json.dumps(doc))
    report = verify.verify(out, [snap], policies(), Review())
    assert not report.matches
    assert any(target["policyId"] in d and "'pass' → 'fail'" in d for d in report.differences)


def test_tampered_version_2_letters_and_documents_are_named(tmp_path: Path) -> None:
    snap, out = scanned(tmp_path)
    doc = json.loads(out.read_text())
    assert verify.verify(out, [snap], policies(), Review()).matches
    failing = next(f for f in doc["findings"] if f["status"] == "fail")
    failing["message"] = "all good"
    column = doc["verdicts"]["VMBK-POWER-001"]
    passing = column.index("p")
    doc["verdicts"]["VMBK-POWER-001"] = column[:passing] + "-" + column[passing + 1:]
    out.write_text(json.dumps(doc))
    report = verify.verify(out, [snap], policies(), Review())
    assert not report.matches
    vm = doc["vms"][passing]["id"].lower()
    assert any(d.startswith(f"VMBK-POWER-001 {vm}: ") and "'notApplicable' → 'pass'" in d for d in report.differences)
    assert any(d.startswith(f"{failing['policyId']} ") and d.endswith(": message") for d in report.differences)


def test_other_parameters_change_the_policy_set_hash(tmp_path: Path) -> None:
    snap, out = scanned(tmp_path)
    changed = load_policies([bundled_policy_dir()], parse_cli_params(["maximumPerSlot=3"]))
    report = verify.verify(out, [snap], changed, Review())
    assert not report.matches
    assert any("maximumPerSlot" in d and "--param" in d for d in report.differences)


def exempting_vm_noagent(tmp_path: Path, **extra: str) -> tuple[Path, Review]:
    """An exemptions file for vm-noagent's missing agent, and the review that applies it."""
    ex_path = tmp_path / "ex.json"
    ex_path.write_text(json.dumps({"exemptions": [{
        "id": "EX-1", "policies": ["VMBK-AGENT-001"], "resources": ["*vm-noagent"], "category": "mitigated",
        "justification": "agent-less appliance, backed up by the vendor tool", "owner": "ops", **extra}]}))
    return ex_path, Review(exemptions=exemptions.load(ex_path))


def test_exemptions_must_be_supplied_again_and_expire_as_of_the_original_scan(tmp_path: Path) -> None:
    ex_path, review = exempting_vm_noagent(tmp_path)
    snap, out = scanned(tmp_path, review)
    assert verify.verify(out, [snap], policies(), review).matches
    with pytest.raises(InputError, match="/scan/exemptions: the results were produced with 1 such file"):
        verify.verify(out, [snap], policies(), Review())
    other = tmp_path / "other.json"
    other.write_text(ex_path.read_text().replace("vendor tool", "vendor's tool"))
    with pytest.raises(InputError, match="not the files the results were produced with"):
        verify.verify(out, [snap], policies(), Review(exemptions=exemptions.load(other)))


@pytest.mark.parametrize("started", ["yesterday", 5])
def test_a_recorded_start_that_is_no_instant_is_an_input_error(tmp_path: Path, started: object) -> None:
    """Expiry is judged at the recorded start: one that cannot be read was exit 4 (ValueError, AttributeError)."""
    _, review = exempting_vm_noagent(tmp_path, expiresOn="2099-12-31")
    snap, out = scanned(tmp_path, review)
    doc = json.loads(out.read_text())
    doc["scan"]["startedAt"] = started
    out.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="/scan/startedAt: expected an ISO 8601 date and time"):
        verify.verify(out, [snap], policies(), review)


def test_a_recorded_start_without_an_offset_is_utc(tmp_path: Path) -> None:
    """As every time the tool reads; comparing it with an expiry was exit 4 (offset-naive and offset-aware)."""
    _, review = exempting_vm_noagent(tmp_path, expiresOn="2099-12-31")
    snap, out = scanned(tmp_path, review)
    doc = json.loads(out.read_text())
    doc["scan"]["startedAt"] = doc["scan"]["startedAt"].removesuffix("Z")
    out.write_text(json.dumps(doc))
    assert verify.verify(out, [snap], policies(), review).matches


@pytest.mark.parametrize(("place", "tamper"), [
    ("/tool", lambda d: d.update(tool=5)),
    ("/scan/source", lambda d: d["scan"].update(source=5)),
    ("/scan/exemptions", lambda d: d["scan"].update(exemptions=5)),
    ("/scan/exemptions/sha256", lambda d: d["scan"]["exemptions"].update(sha256=5)),
    ("/scan/serviceTags", lambda d: d["scan"].update(serviceTags="none")),
    ("/scan/whatIf/files/0", lambda d: d["scan"].update(whatIf={"files": [5]})),
    ("/scan/parameters/VMBK-AGENT-003", lambda d: d["scan"]["parameters"].update({"VMBK-AGENT-003": 5})),
])
def test_recorded_parts_of_the_wrong_type_are_input_errors(tmp_path: Path, place: str, tamper: Any) -> None:
    """A hand-edited results.json is refused naming the place; each of these was exit 4 (AttributeError, TypeError)."""
    _, review = exempting_vm_noagent(tmp_path)
    snap, out = scanned(tmp_path, review)
    doc = json.loads(out.read_text())
    tamper(doc)
    out.write_text(json.dumps(doc))
    changed = load_policies([bundled_policy_dir()], parse_cli_params(["maximumPerSlot=3"]))
    with pytest.raises(InputError, match=f"{place}: expected an? (object|string), as a scan writes it"):
        verify.verify(out, [snap], changed, review)


def test_tampered_summary_counts_and_exit_code_are_named(tmp_path: Path) -> None:
    """An auditor reads the summary and the exit code first: a results.json whose findings are untouched but
    whose counts say fewer failures, or whose exit code says it passed, was VERIFIED."""
    snap, out = scanned(tmp_path)
    doc = json.loads(out.read_text())
    assert doc["gate"]["exitCode"] == 1 and doc["summary"]["byStatus"]["fail"] > 0
    fails = doc["summary"]["byStatus"]["fail"]
    doc["summary"]["byStatus"]["fail"] = 0
    doc["gate"]["exitCode"] = 0
    out.write_text(json.dumps(doc))
    report = verify.verify(out, [snap], policies(), Review())
    assert not report.matches
    assert ("exit code", False, "results.json has 0, re-evaluation has 1") in report.checks
    assert any(d.startswith('summary.byStatus in results.json is {"error": 0, "exempt": 0, "fail": 0,')
               and f'"fail": {fails},' in d.split("re-evaluation has")[1] for d in report.differences)


def test_the_exit_code_is_judged_under_the_recorded_gate(tmp_path: Path) -> None:
    snap, out = scanned(tmp_path)
    doc = json.loads(out.read_text())
    doc["gate"].update(failOn="never", exitCode=0)  # as `scan --fail-on never` writes it
    out.write_text(json.dumps(doc))
    assert verify.verify(out, [snap], policies(), Review()).matches
    doc["gate"]["failOn"] = 5
    out.write_text(json.dumps(doc))
    with pytest.raises(InputError) as caught:
        verify.verify(out, [snap], policies(), Review())
    assert [(p.place, p.reason) for p in caught.value.problems] == [("/gate/failOn", "expected a string, as a scan "
                                                                                     "writes it")]
