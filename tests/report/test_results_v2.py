"""results.json version 2 (VM table, verdict letters, full documents where needed) and the reader of versions 1 and 2.

The oracle is the version 1 document of every in-memory finding (`finding_document`): whatever a
scan produced, the file must expand back to exactly those documents.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from backup_preflight import scan
from backup_preflight.errors import InputError
from backup_preflight.findings import STATUSES, Finding
from backup_preflight.policy.loader import bundled_policy_dir, load_policies
from backup_preflight.report import results_json, schemas
from backup_preflight.results import Gate, ScanResult
from backup_preflight.results_reader import iter_finding_documents
from backup_preflight.review import Review, baseline, verify
from held_helpers import held_by_policy
from results_helpers import as_version_1
from scan_helpers import estate, run, write_snapshot

V1_FIXTURE = Path(__file__).parents[1] / "fixtures" / "results" / "results-v1.json"
POLICIES = load_policies([bundled_policy_dir()])
BY_ID = {p.id: p for p in POLICIES.policies}
VALIDATOR = jsonschema.Draft202012Validator(json.loads(schemas.text("results")))


def oracle(result: ScanResult) -> list[dict[str, Any]]:
    remediation = {p.id: p.remediation for p in result.policies}
    return [json.loads(json.dumps(results_json.finding_document(f, remediation[f.policy_id])))
            for f in result.findings]


def written(result: ScanResult, path: Path) -> dict[str, Any]:
    results_json.write(result, path)
    doc, _ = baseline.load_results(path)
    return doc


def test_demo_estate_expands_to_exactly_the_findings_in_memory(tmp_path: Path) -> None:
    result = scan.run_scan(scan.demo_source(), POLICIES, Gate())
    doc = written(result, tmp_path / "results.json")
    assert doc["schemaVersion"] == 2 and list(VALIDATOR.iter_errors(doc)) == []
    expected = oracle(result)
    assert list(iter_finding_documents(doc)) == expected  # same documents, same order
    assert len(doc["vms"]) == result.coverage["vms"] and set(doc["verdicts"]) == {p.id for p in POLICIES.policies}
    attention = [f for f in expected if f["status"] not in ("pass", "notApplicable")]
    assumed = [f for f in expected if f["status"] == "pass" and f["evidence"]]  # what a pass assumes stays
    assert assumed and len(doc["findings"]) == len(attention) + len(assumed) < len(expected) / 3
    v1 = json.dumps(as_version_1(doc), indent=2)
    assert (tmp_path / "results.json").stat().st_size < len(v1) / 3


def test_a_version_1_file_is_still_read_by_baseline() -> None:
    doc, _ = baseline.load_results(V1_FIXTURE)
    assert doc["schemaVersion"] == 1 and list(VALIDATOR.iter_errors(doc)) == []
    assert list(iter_finding_documents(doc)) == doc["findings"]
    assert {f["status"] for f in doc["findings"]} >= {"pass", "fail", "exempt", "notApplicable"}
    old = baseline.load(V1_FIXTURE)
    assert ("VMBK-POWER-001", next(f["resourceId"].lower() for f in doc["findings"]
                                   if f["resourceName"] == "vm-stopped")) in old.accepted


def test_version_1_and_2_of_the_same_scan_baseline_and_verify_alike(tmp_path: Path) -> None:
    snap = write_snapshot(tmp_path / "s.json", estate())
    doc = written(run(snap), tmp_path / "v2.json")
    (tmp_path / "v1.json").write_text(json.dumps(as_version_1(doc)))
    one, two = baseline.load(tmp_path / "v1.json"), baseline.load(tmp_path / "v2.json")
    assert one.accepted == two.accepted and one.accepted
    for name in ("v1.json", "v2.json"):
        report = verify.verify(tmp_path / name, [snap], POLICIES, Review())
        assert report.matches, report.render()


def test_passes_with_more_than_a_status_keep_their_document(tmp_path: Path) -> None:
    result = run(write_snapshot(tmp_path / "s.json", estate()))
    result.findings = list(result.findings)  # every finding an object, so that the note made here stays
    passing = next(f for f in result.findings if f.status == "pass")
    passing.annotate("observedInGuest", {"storageReachable": True, "agrees": True})
    doc = written(result, tmp_path / "results.json")
    kept = [f for f in doc["findings"] if f["status"] == "pass"]
    assert len(kept) == 1 and kept[0]["observedInGuest"] == {"storageReachable": True, "agrees": True}
    assert list(iter_finding_documents(doc)) == oracle(result)


policy_ids = st.sampled_from([p.id for p in POLICIES.policies])
targets = st.tuples(st.sampled_from(["/subscriptions/s/vm/a", "/subscriptions/s/vm/A", "/x/b", "query:1"]),
                    st.sampled_from(["a", "b", "c"]), st.sampled_from(["s", ""]), st.sampled_from(["rg", "RG"]))
findings = st.builds(
    lambda pid, target, status, message, evidence, note, other_severity: _finding(
        pid, target, status, message, evidence, note, other_severity),
    policy_ids, targets, st.sampled_from(STATUSES), st.sampled_from(["", "m", "ü <&> \"q\""]),
    st.lists(st.sampled_from(["e1", "e2"]), max_size=2), st.sampled_from([None, "new", "unchanged"]), st.booleans())


def _finding(pid: str, target: tuple[str, str, str, str], status: str, message: str, evidence: list[str],
             note: str | None, other_severity: bool) -> Finding:
    policy = BY_ID[pid]
    severity = ("low" if policy.severity != "low" else "high") if other_severity else policy.severity
    rid, name, subscription, group = target
    f = Finding(pid, rid, name, status, severity, policy.cause, message, tuple(evidence), subscription, group)
    if note:
        f.annotate("baseline", note)
    return f


@settings(max_examples=150, deadline=None)
@given(st.lists(findings, max_size=40))
def test_any_findings_round_trip_exactly(tmp_path_factory: pytest.TempPathFactory, generated: list[Finding]) -> None:
    """Duplicate targets, ids differing in case only, odd severities, annotations on passes: all come back."""
    result = ScanResult(run={}, policies=POLICIES.policies, findings=generated, coverage={}, gate=Gate(),
                        summary={}, exit_code=0)
    doc = written(result, tmp_path_factory.mktemp("rt") / "results.json")
    key = json.dumps
    assert sorted(map(key, iter_finding_documents(doc))) == sorted(map(key, oracle(result)))


_ONE = ("/subscriptions/s/vm/a", "a", "s", "rg")
_FIRST, _SECOND = (p.id for p in POLICIES.policies[:2])


@settings(max_examples=150, deadline=None)
@example([_finding(_FIRST, _ONE, "pass", "", [], None, False), _finding(_SECOND, _ONE, "pass", "", [], None, True)],
         []).via("a pass of another severity on a VM a part has numbered")
@example([_finding(_FIRST, _ONE, "pass", "", [], None, False), _finding(_FIRST, _ONE, "pass", "", [], None, False),
          _finding(_SECOND, _ONE, "pass", "", [], None, False)], []).via("a policy's second pass on one VM")
@given(st.lists(findings, max_size=40), st.lists(st.integers(0, 40), max_size=3))
def test_findings_held_as_numbers_write_the_same_file(tmp_path_factory: pytest.TempPathFactory,
                                                      generated: list[Finding], cuts: list[int]) -> None:
    """Plain passes held as numbers (findings.walk) give the file the list of the same findings gives, byte for
    byte: the VM table's order, a second finding of a policy on one VM, passes of another severity."""
    ordered, held = held_by_policy(generated, cuts)
    folder = tmp_path_factory.mktemp("held")
    for name, found in (("list.json", ordered), ("held.json", held)):
        results_json.write(ScanResult(run={}, policies=POLICIES.policies, findings=found, coverage={}, gate=Gate(),
                                      summary={}, exit_code=0), folder / name)
    assert (folder / "held.json").read_bytes() == (folder / "list.json").read_bytes()


def _damaged(doc: dict[str, Any], how: str) -> dict[str, Any]:
    first = doc["findings"][0]
    column = doc["verdicts"][first["policyId"]]
    if how == "letter without document":
        doc["findings"] = doc["findings"][1:]
    elif how == "status disagrees":
        first["status"] = "pass"
    elif how == "short column":
        doc["verdicts"][first["policyId"]] = column[:-1]
    elif how == "vm out of range":
        first["vm"] = len(doc["vms"])
    elif how == "odd letter":
        doc["verdicts"][first["policyId"]] = "z" + column[1:]
    return doc


@pytest.mark.parametrize(("how", "place"), [
    ("letter without document", "/verdicts/"), ("status disagrees", "/findings/0"),
    ("short column", "/verdicts/"), ("vm out of range", "/findings/0"), ("odd letter", "/verdicts/"),
])
def test_a_damaged_version_2_file_is_an_input_error_naming_the_place(tmp_path: Path, how: str, place: str) -> None:
    path = tmp_path / "results.json"
    doc = written(run(write_snapshot(tmp_path / "s.json", estate())), path)
    path.write_text(json.dumps(_damaged(doc, how)))
    with pytest.raises(InputError, match=f"{path}: {place}"):
        baseline.load_results(path)
