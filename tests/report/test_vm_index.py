"""report.html's VM index against a deliberately simple oracle: one row per VM (ids that differ only in
case are one VM, named by its first finding), its worst letter per cause, and the findings it lists."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from backup_preflight.findings import STATUSES, Finding
from backup_preflight.policy.loader import bundled_policy_dir, load_policies
from backup_preflight.report import html, vm_index
from backup_preflight.results import Gate, ScanResult

POLICIES = load_policies([bundled_policy_dir()]).policies
BY_ID = {p.id: p for p in POLICIES}
CAUSES = sorted({p.cause for p in POLICIES})
WORST_FIRST = ["fail", "error", "unknown", "exempt", "pass", "notApplicable"]
LETTER = dict(zip(WORST_FIRST, "feuxp-", strict=True))


def oracle(findings: list[Finding]) -> dict[str, tuple[Any, ...]]:
    """Per lowercase id: the first finding's id, name, subscription and group, the letters, the listed findings."""
    vms: dict[str, dict[str, Any]] = {}
    for f in findings:
        vm = vms.setdefault(f.resource_id.lower(), {"first": f, "worst": [len(WORST_FIRST) - 1] * len(CAUSES),
                                                    "listed": []})
        slot = CAUSES.index(f.cause)
        vm["worst"][slot] = min(vm["worst"][slot], WORST_FIRST.index(f.status))
        if f.status in ("fail", "error", "unknown", "exempt") or (f.status == "pass" and f.evidence):
            vm["listed"].append((f.policy_id, LETTER[f.status], f.message, list(f.evidence)))
    return {key: (vm["first"].resource_id, vm["first"].resource_name, vm["first"].subscription_id,
                  vm["first"].resource_group.lower(), "".join("feuxp-"[n] for n in vm["worst"]), sorted(vm["listed"]))
            for key, vm in vms.items()}


def decoded(index: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """The index read back as report.js reads it."""
    out = {}
    for row in index["vms"]:
        prefix, sub, rg, _ = index["prefixes"][row[1]]
        rid = prefix + next((cell for cell in row[4:] if isinstance(cell, str)), row[0])
        listed = sorted((index["policies"][f[0]]["id"], f[1], index["text"][f[2]], [index["text"][e] for e in f[3]])
                        for f in row[3])
        out[rid.lower()] = (rid, row[0], index["subs"][sub], rg, row[2], listed)
    return out


#: (id, name, subscription, group): one subscription and group per id prefix, as ids are built; the same VM
#: spelled in other letter cases, and under another name, so that its first finding must name it.
targets = st.sampled_from([("/subscriptions/s/resourceGroups/rg/vm/a", "a", "s", "rg"),
                           ("/SUBSCRIPTIONS/S/resourcegroups/RG/VM/A", "A", "S", "RG"),
                           ("/subscriptions/s/resourceGroups/rg/vm/b", "b", "s", "rg"),
                           ("/subscriptions/s/resourceGroups/rg/vm/b", "bee", "s", "rg"),
                           ("/subscriptions/t/vm/c", "c", "t", ""), ("query:1", "q", "", "")])
findings = st.builds(
    lambda pid, target, status, message, evidence: Finding(pid, target[0], target[1], status, BY_ID[pid].severity,
                                                           BY_ID[pid].cause, message, tuple(evidence), target[2],
                                                           target[3]),
    st.sampled_from(list(BY_ID)), targets, st.sampled_from(STATUSES), st.sampled_from(["", "m", "n"]),
    st.lists(st.sampled_from(["e1", "e2"]), max_size=2, unique=True))


@settings(max_examples=200, deadline=None)
@given(st.lists(findings, max_size=40))
def test_every_vm_has_its_worst_letter_per_cause_and_lists_what_needs_attention(generated: list[Finding]) -> None:
    result = ScanResult(run={}, policies=POLICIES, findings=generated, coverage={}, gate=Gate(), summary={},
                        exit_code=0)
    index = json.loads("".join(html.script_json(vm_index.build(result, lambda url: url))))  # as the page holds it
    assert decoded(index) == oracle(generated)
    assert len(index["vms"]) == len({f.resource_id.lower() for f in generated})
