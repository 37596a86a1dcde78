"""Baseline: new / unchanged by (policy, resource id) and verdict; fixed when passing or gone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backup_preflight.errors import InputError
from backup_preflight.report import results_json
from backup_preflight.results import Gate
from backup_preflight.review import Review, baseline, exemptions
from results_helpers import as_version_1
from scan_helpers import estate, run, write_snapshot


def previous(tmp_path: Path) -> Path:
    """Baseline run: vm-stopped is shut down and vm-noagent has no agent."""
    out = tmp_path / "previous.json"
    results_json.write(run(write_snapshot(tmp_path / "before.json", estate())), out)
    return out


def test_new_unchanged_and_fixed(tmp_path: Path) -> None:
    base = baseline.load(previous(tmp_path))
    now = write_snapshot(tmp_path / "now.json", estate(stopped=False, extra=["vm-new"]))
    result = run(now, review=Review(baseline=base))
    marks = {(f.policy_id, f.resource_name): f.annotations.get("baseline") for f in result.findings}
    assert marks[("VMBK-AGENT-001", "vm-noagent")] == "unchanged"
    assert marks[("VMBK-AGENT-001", "vm-new")] == "new"
    assert marks[("VMBK-AGENT-001", "vm-ok")] is None, "passes are not marked"
    fixed = result.run["baseline"]["fixed"]
    assert {(f["policyId"], f["resourceName"], f["was"], f["now"]) for f in fixed} >= {
        ("VMBK-POWER-001", "vm-stopped", "fail", "pass")}
    assert result.summary["baseline"]["new"] >= 1 and result.summary["baseline"]["unchanged"] >= 1


def test_vanished_vm_is_fixed_as_absent_and_ids_compare_case_insensitively(tmp_path: Path) -> None:
    base_path = previous(tmp_path)
    doc = json.loads(base_path.read_text())
    for vm in doc["vms"]:
        vm["id"] = vm["id"].upper()
    base_path.write_text(json.dumps(doc))
    now = estate()
    now["tables"]["resources"] = [r for r in now["tables"]["resources"] if r["name"] != "vm-stopped"]
    result = run(write_snapshot(tmp_path / "now.json", now), review=Review(baseline=baseline.load(base_path)))
    fixed = {(f["policyId"], f["resourceName"]): f["now"] for f in result.run["baseline"]["fixed"]}
    assert fixed[("VMBK-POWER-001", "vm-stopped")] == "absent"
    agent = next(f for f in result.findings if f.policy_id == "VMBK-AGENT-001" and f.resource_name == "vm-noagent")
    assert agent.annotations["baseline"] == "unchanged"


def test_verdict_change_is_new(tmp_path: Path) -> None:
    base_path = previous(tmp_path)
    doc = as_version_1(json.loads(base_path.read_text()))  # a baseline written by an older version
    for f in doc["findings"]:
        if f["policyId"] == "VMBK-AGENT-001" and f["status"] == "fail":
            f["status"] = "unknown"
    base_path.write_text(json.dumps(doc))
    result = run(write_snapshot(tmp_path / "now.json", estate()), review=Review(baseline=baseline.load(base_path)))
    agent = next(f for f in result.findings if f.policy_id == "VMBK-AGENT-001" and f.resource_name == "vm-noagent")
    assert agent.annotations["baseline"] == "new", "a confirmed failure that was only unknown before is news"


def test_fail_on_new_gates_only_new_failures(tmp_path: Path) -> None:
    base = baseline.load(previous(tmp_path))
    same = write_snapshot(tmp_path / "same.json", estate())
    assert run(same, Gate(fail_on_new=True), Review(baseline=base, fail_on_new=True)).exit_code == 0
    assert run(same, Gate(), Review(baseline=base)).exit_code == 1
    worse = write_snapshot(tmp_path / "worse.json", estate(extra=["vm-new"]))
    assert run(worse, Gate(fail_on_new=True), Review(baseline=base, fail_on_new=True)).exit_code == 1


def test_an_exemption_that_expires_after_the_baseline_breaks_the_gate_again(tmp_path: Path) -> None:
    """The baseline had vm-noagent exempt; with its exemption expired the finding counts again, as docs/reports.md
    says, also under --fail-on-new: it was `unchanged` (the same real verdict), so the gate stayed green while the
    console said the finding counts again."""
    def exempting(until: str) -> Review:
        path = tmp_path / f"ex-{until}.json"
        path.write_text(json.dumps({"exemptions": [{
            "id": "EX-1", "policies": ["VMBK-AGENT-001"], "resources": ["*/vm-noagent"], "category": "waiver",
            "justification": "appliance image, vendor installs no agent", "owner": "ops", "expiresOn": until}]}))
        return Review(exemptions=exemptions.load(path))

    snap = write_snapshot(tmp_path / "s.json", estate())
    results_json.write(run(snap, review=exempting("2099-12-31")), tmp_path / "previous.json")
    base = baseline.load(tmp_path / "previous.json")
    gate = Gate(fail_on_new=True)
    for until, mark, code in (("2099-12-31", "unchanged", 0), ("2020-01-31", "new", 1)):
        review = exempting(until)
        review.baseline, review.fail_on_new = base, True
        result = run(snap, gate, review)
        agent = next(f for f in result.findings if f.policy_id == "VMBK-AGENT-001" and f.resource_name == "vm-noagent")
        assert (agent.annotations["baseline"], result.exit_code) == (mark, code), until


@pytest.mark.parametrize(("content", "reason"), [
    ('{"findings": []}', "not a backup-preflight results.json"),
    ('{"schemaVersion": 99, "scan": {}, "findings": []}', "unsupported schemaVersion"),
    ('{"schemaVersion": true, "scan": {}, "findings": []}', "unsupported schemaVersion true"),
    ('{"schemaVersion": 1, "scan": {}, "findings": [{"policyId": 1}]}', "/findings/0"),
    ('{"schemaVersion": 1, "scan": [], "findings": []}', "/scan: expected an object, found an array"),
    ('{"schemaVersion": 1, "scan": {"startedAt": 5}, "findings": []}', "/scan/startedAt: expected an ISO 8601"),
])
def test_bad_baseline_is_an_input_error(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(InputError, match=reason):
        baseline.load(path)
