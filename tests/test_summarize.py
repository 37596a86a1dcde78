"""summarize against the one-loop definition it replaced, on random findings, notes and gates; the C-level
filters of findings against plain loops."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from backup_preflight.findings import EXEMPT, FAIL, SEVERITIES, STATUSES, Finding, annotated, with_status
from backup_preflight.results import Gate, summarize


def oracle(findings: list[Finding], gate: Gate) -> dict[str, Any]:
    """Every count from one plain loop over every finding, as summarize was first written."""
    by_status = Counter(f.status for f in findings)
    by_severity: dict[str, Counter[str]] = {s: Counter() for s in SEVERITIES}
    by_cause: dict[str, Counter[str]] = {}
    failing_policies: Counter[str] = Counter()
    failing_vms: Counter[str] = Counter()
    exempt: Counter[str] = Counter()
    marks: Counter[str] = Counter()
    gate_failures = 0
    for f in findings:
        if f.annotations:
            if f.status == EXEMPT:
                exempt[f.annotations["exemption"]["category"]] += 1
            if "expiredExemption" in f.annotations:
                exempt["expired"] += 1
            if "baseline" in f.annotations:
                marks[f.annotations["baseline"]] += 1
        by_severity[f.severity][f.status] += 1
        by_cause.setdefault(f.cause, Counter())[f.status] += 1
        if f.status == FAIL:
            failing_policies[f.policy_id] += 1
            failing_vms[f.resource_id] += 1
        if gate.is_failing(f):
            gate_failures += 1
    return {
        "total": len(findings),
        "byStatus": {s: by_status.get(s, 0) for s in STATUSES},
        "bySeverity": {sev: {s: c.get(s, 0) for s in STATUSES} for sev, c in by_severity.items()},
        "byCause": {cause: {s: c.get(s, 0) for s in STATUSES} for cause, c in sorted(by_cause.items())},
        "failingPolicies": dict(sorted(failing_policies.items(), key=lambda kv: (-kv[1], kv[0]))),
        "vmsWithFailures": len(failing_vms),
        "gateFailures": gate_failures,
        "exempt": {k: exempt.get(k, 0) for k in ("waiver", "mitigated", "expired")},
        "baseline": {k: marks.get(k, 0) for k in ("new", "unchanged")},
    }


@st.composite
def findings(draw: st.DrawFn) -> Finding:
    status = draw(st.sampled_from(STATUSES))
    notes: dict[str, Any] = {}
    if status == EXEMPT:
        notes["exemption"] = {"category": draw(st.sampled_from(("waiver", "mitigated")))}
    if draw(st.booleans()):
        notes["expiredExemption"] = {"id": "EX-1"}
    if draw(st.booleans()):
        notes["baseline"] = draw(st.sampled_from(("new", "unchanged")))
    return Finding(draw(st.sampled_from(("P-1", "P-2", "P-3"))), draw(st.sampled_from(("/vm/a", "/VM/A"))),
                   "vm", status, draw(st.sampled_from(SEVERITIES)), draw(st.sampled_from(("network", "agent"))),
                   notes=notes or draw(st.sampled_from((None, {}))))


gates = st.builds(Gate, fail_on=st.sampled_from((*SEVERITIES, "never")), strict=st.booleans(),
                  fail_on_new=st.booleans())


@settings(max_examples=300)
@given(st.lists(findings(), max_size=40), gates)
def test_summarize_counts_as_one_loop_over_every_finding(found: list[Finding], gate: Gate) -> None:
    assert summarize(found, gate) == oracle(found, gate)


@settings(max_examples=200)
@given(st.lists(findings(), max_size=40), st.sets(st.sampled_from(STATUSES)))
def test_the_c_level_filters_keep_what_a_plain_loop_keeps(found: list[Finding], statuses: set[str]) -> None:
    assert list(with_status(found, statuses)) == [f for f in found if f.status in statuses]
    assert list(with_status(found, tuple(statuses))) == [f for f in found if f.status in statuses]
    assert list(annotated(found)) == [f for f in found if f.annotations]  # notes of None and of {} alike
