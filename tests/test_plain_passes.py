"""Findings whose plain passes are held as numbers (plain_passes.py) read, filter, count and summarize exactly
as the list of the same findings does; what is changed in place (an exemption) stays changed."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backup_preflight.findings import (
    EXEMPT,
    NOT_APPLICABLE,
    PASS,
    STATUSES,
    Finding,
    annotated,
    count_by,
    held,
    of_vms,
    plain_passes,
    walk,
    with_status,
    without_status,
)
from backup_preflight.plain_passes import PartFindings
from backup_preflight.policy.loader import bundled_policy_dir, load_policies
from backup_preflight.report import vm_index
from backup_preflight.report.results_json import VerdictTable
from backup_preflight.results import Gate, ScanResult, nothing_assessed, summarize
from backup_preflight.review import exemptions
from held_helpers import held_as, held_by_policy, packed_part

POLICIES = load_policies([bundled_policy_dir()]).policies

#: Mostly passes, as a scan's are; some with a message, evidence or notes, which are not plain. Exempt findings,
#: which carry their exemption, are made by exemptions.apply below.
findings = st.builds(
    Finding,
    st.sampled_from(["P-1", "P-2"]),
    st.sampled_from(["/subscriptions/s/vm/a", "/subscriptions/s/vm/b", "/SUBSCRIPTIONS/S/VM/C"]),
    st.sampled_from(["a", "b"]),
    st.sampled_from([PASS, PASS, PASS, *(s for s in STATUSES if s != EXEMPT)]),
    st.sampled_from(["high", "low"]),
    st.sampled_from(["c1", "c2"]),
    st.sampled_from(["", "", "why"]),
    st.sampled_from([(), (), ("e",)]),
    st.just("s"),
    st.just("rg"),
    st.sampled_from([None, None, {"baseline": "new"}]),
)


def is_plain(f: Finding) -> bool:
    return f.status == PASS and not f.message and not f.evidence and not f.notes


@settings(max_examples=200, deadline=None)
@given(st.lists(findings, max_size=30), st.lists(st.integers(0, 30), max_size=4),
       st.sets(st.sampled_from(STATUSES), max_size=3))
def test_held_findings_read_filter_and_count_as_the_list(found: list[Finding], cuts: list[int],
                                                         statuses: set[str]) -> None:
    scan = held_as(found, cuts)
    assert len(scan) == len(found) and scan == found and list(scan) == found
    assert list(with_status(scan, statuses)) == list(with_status(found, statuses))
    assert list(without_status(scan, statuses)) == list(without_status(found, statuses))
    assert list(annotated(scan)) == list(annotated(found))
    kept = list(held(scan))
    assert [f for f in kept if not is_plain(f)] == [f for f in found if not is_plain(f)]
    counted = plain_passes(scan)
    assert sum(counted.values()) + len(kept) == len(found)
    assert counted + Counter((f.policy_id, f.severity, f.cause) for f in kept if is_plain(f)) == Counter(
        (f.policy_id, f.severity, f.cause) for f in found if is_plain(f))
    for fields in (("severity", "status", "cause"), ("policy_id", "status")):
        oracle = Counter(tuple(getattr(f, name) for name in fields) for f in found)
        assert count_by(scan, fields) == oracle == count_by(found, fields)
    assert summarize(scan, Gate(strict=True)) == summarize(found, Gate(strict=True))
    assert nothing_assessed(scan) == nothing_assessed(found)
    some = {"/subscriptions/s/vm/a", "/subscriptions/s/vm/c"}
    assert sorted(map(repr, of_vms(scan, some))) == sorted(repr(f) for f in found if f.resource_id.lower() in some)


def rebuilt(found: Sequence[Finding]) -> list[Finding]:
    """The findings as `walk` gives them, each plain pass made from its VM's number."""
    return [where.made(item, number) if isinstance(item, int) and where else item  # type: ignore[misc]
            for where, number, items in walk(found) for item in items]


@settings(max_examples=200, deadline=None)
@given(st.lists(findings, max_size=30), st.lists(st.integers(0, 30), max_size=4))
def test_walking_gives_every_finding_in_order_and_plain_passes_as_numbers(found: list[Finding],
                                                                         cuts: list[int]) -> None:
    ordered, scan = held_by_policy(found, cuts)
    assert rebuilt(scan) == ordered and rebuilt(found) == found
    numbers = [item for _, _, items in walk(scan) for item in items if isinstance(item, int)]
    assert len(numbers) == sum(plain_passes(scan).values()), "each plain pass of a one-policy run is a number"
    assert [(where, number) for where, number, _ in walk(found)] == [(None, -1)]
    several = held_as(found, cuts)  # runs of several policies, and lists: their plain passes are made
    assert rebuilt(several) == found
    assert all(number == -1 for where, number, _ in walk(several) if where is None)
    alone = packed_part(ordered)  # a part read whole: numbers where it holds one policy
    assert rebuilt(alone) == ordered
    assert [number for _, number, _ in walk(alone)] == ([alone.policy[0]] if len(set(alone.policy)) == 1 else
                                                        [-1] if ordered else [])
    assert all(where is None or {where.policy_ids[number]} == {  # type: ignore[union-attr]
        item.policy_id for item in items if not isinstance(item, int)} | {where.policy_ids[number]}
        for where, number, items in walk(several)), "numbers only in a run of one policy"


def test_reading_what_needs_attention_makes_no_plain_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Filtering out the passes, reading annotations, counting and reading a few VMs never make a Finding of a
    plain pass: at 1,000,000 VMs each reading in full makes 12 million."""
    found = [Finding(p, f"/vm/{n}", str(n), status, "high", "c", "" if status == PASS else "why")
             for p in ("P-1", "P-2") for n in range(8) for status in [(PASS, "fail", "unknown")[n % 3]]]
    scan = held_as(found, [5, 11])

    def refused(*_: object) -> None:
        raise AssertionError("a plain pass was made")

    monkeypatch.setattr(PartFindings, "_passes", refused)
    assert [f.status for f in with_status(scan, ("fail", "unknown"))] == [f.status for f in found if f.status != PASS]
    assert len(list(without_status(scan, (PASS, NOT_APPLICABLE)))) == len(found) - [f.status for f in found].count(PASS)
    assert list(annotated(scan)) == []
    assert count_by(scan, ("policy_id", "status"))["P-1", PASS] == 3
    assert list(of_vms(scan, set())) == []
    with pytest.raises(AssertionError, match="a plain pass was made"):
        list(with_status(scan, (PASS,)))


def test_results_json_and_the_html_index_read_plain_passes_as_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The two reports that read every verdict take a plain pass's letter from its numbers (findings.walk): the
    runs a scan joins make none of them in bulk, as reading in full would."""
    found = [Finding(p.id, f"/vm/{n}", str(n), status, p.severity, p.cause, "" if status == PASS else "why")
             for p in POLICIES[:2] for n in range(8) for status in [(PASS, "fail", "unknown")[n % 3]]]
    ordered, scan = held_by_policy(found, [5, 11])
    result = ScanResult(run={}, policies=POLICIES[:2], findings=scan, coverage={}, gate=Gate(), summary={},
                        exit_code=0)

    def refused(*_: object) -> None:
        raise AssertionError("a plain pass was made")

    monkeypatch.setattr(PartFindings, "_passes", refused)
    table = VerdictTable.of(result)
    assert [bytes(column) for column in table.columns.values()] == [b"pfupfupf"] * 2
    assert [f for f, _ in table.documented] == [f for f in ordered if f.status != PASS]
    assert {p.cause for p in POLICIES[:2]} == {"vm-agent"}
    assert ["".join(vm.causes) for vm in vm_index._vms(result, ["vm-agent"])] == ["pfu"[n % 3] for n in range(8)]


class CountedMarks(bytes):
    """Marks that note each count of them."""

    counts = 0

    def count(self, *args: object) -> int:  # type: ignore[override]
        CountedMarks.counts += 1
        return super().count(*args)  # type: ignore[arg-type]


def test_a_runs_place_among_the_kept_objects_is_counted_once() -> None:
    """Every filter reads each of a part's runs again; counting the marks before a run each time made a filter at
    100,000 VMs take 0.065 s instead of 0.043 s."""
    found = [Finding(p, f"/vm/{n}", str(n), (PASS, "fail")[n % 2], "high", "c", "" if n % 2 == 0 else "why")
             for p in ("P-1", "P-2") for n in range(6)]
    ordered, scan = held_by_policy(found, [])
    part = scan._runs[0][0]  # type: ignore[index]
    part.plain = CountedMarks(part.plain)
    CountedMarks.counts = 0
    for _ in range(3):
        assert list(with_status(scan, ("fail",))) == [f for f in ordered if f.status == "fail"]
    assert CountedMarks.counts == 4, "two runs, their place counted once each (the marks before, the run's own)"


def test_a_list_is_held_whole() -> None:
    found = [Finding("P-1", "/vm/a", "a", PASS, "high", "c")]
    assert list(held(found)) == found and plain_passes(found) == Counter()


def test_held_findings_equal_only_the_same_findings_in_order() -> None:
    found = [Finding("P-1", f"/vm/{n}", str(n), PASS if n % 2 else "fail", "high", "c") for n in range(6)]
    scan = held_as(found, [2, 4])
    assert scan == found and found == scan and scan == held_as(found, [3])
    assert scan != found[:-1] and scan != [*found[:-1], found[0]] and scan != list(reversed(found))
    assert scan != tuple(found), "a tuple is not a list, as for a list"
    assert scan[0] == found[0] and scan[-1] == found[-1] and scan[1:3] == found[1:3] and scan[-6] == found[0]
    for beyond in (6, -7):
        with pytest.raises(IndexError, match=r"^finding index out of range$"):
            scan[beyond]


def test_an_exemption_changes_a_held_finding_for_every_later_reader(tmp_path: Path) -> None:
    """Exemptions mark failing findings in place: they are objects, so a second read sees the change."""
    vm = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/a"
    found = [Finding("VMBK-NET-001", vm, "a", "fail", "high", "c", "blocked"),
             Finding("VMBK-NET-002", vm, "a", PASS, "medium", "c")]
    scan = held_as(found, [])
    path = tmp_path / "exemptions.json"
    path.write_text(json.dumps({"exemptions": [{
        "id": "EX-1", "policies": ["VMBK-NET-001"], "resources": [vm], "category": "mitigated",
        "justification": "a firewall in front of the subnet allows Storage", "owner": "net@contoso.example",
        "expiresOn": "2099-01-01"}]}))
    account = exemptions.apply(scan, exemptions.load(path), datetime(2026, 11, 30, tzinfo=UTC))
    assert account["entries"][0]["exempted"] == 1
    assert [f.status for f in scan] == [EXEMPT, PASS]
    assert next(iter(scan)).annotations["verdict"] == "fail"
