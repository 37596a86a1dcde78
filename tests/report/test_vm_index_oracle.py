"""report.html's per-VM letters and listed findings (vm_index._vms) against a deliberately simple oracle that
visits every finding in order: ids that differ only in case are one VM, named by its first finding; a cause's
letter is the worst of its findings' (f, e, u, x, p, then - for none or only not applicable); a VM lists
its findings that need attention and its passes with evidence."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from backup_preflight.findings import SEVERITIES, SEVERITY_RANK, STATUSES, Finding
from backup_preflight.policy.loader import bundled_policy_dir, load_policies
from backup_preflight.report import vm_index
from backup_preflight.results import Gate, ScanResult
from held_helpers import held_by_policy

POLICIES = load_policies([bundled_policy_dir()]).policies
CAUSES = sorted({p.cause for p in POLICIES})
WORST_FIRST = "feuxp-"
LETTER = {"fail": "f", "error": "e", "unknown": "u", "exempt": "x", "pass": "p", "notApplicable": "-"}


def oracle(findings: list[Finding]) -> list[tuple[Any, ...]]:
    vms: dict[str, dict[str, Any]] = {}
    for f in findings:
        vm = vms.setdefault(f.resource_id.lower(), {"first": f, "letters": {}, "listed": []})
        letters = vm["letters"]
        letters[f.cause] = min(letters.get(f.cause, "-"), LETTER[f.status], key=WORST_FIRST.index)
        if f.status in ("fail", "error", "unknown", "exempt") or (f.status == "pass" and f.evidence):
            vm["listed"].append(f)
    return [(vm["first"].resource_id, vm["first"].resource_name, vm["first"].subscription_id,
             vm["first"].resource_group, "".join(vm["letters"].get(c, "-") for c in CAUSES), _sorted(vm["listed"]))
            for vm in vms.values()]


def _sorted(found: list[Finding]) -> list[Finding]:
    return sorted(found, key=lambda f: (WORST_FIRST.index(LETTER[f.status]), SEVERITY_RANK[f.severity], f.policy_id))


def got(findings: Sequence[Finding]) -> list[tuple[Any, ...]]:
    result = ScanResult(run={}, policies=POLICIES, findings=findings, coverage={}, gate=Gate(), summary={},
                        exit_code=0)
    return [(vm.id, vm.name, vm.sub, vm.rg, "".join(vm.causes), _sorted(vm.findings))
            for vm in vm_index._vms(result, CAUSES)]


#: Five VMs; one also spelled in capitals and under another name, one also under another name with the same
#: id: the first finding of a VM must name it.
targets = st.one_of(st.sampled_from([(f"/subscriptions/s/resourceGroups/rg/vm/vm{i}", f"vm{i}", "s", "rg")
                                     for i in range(5)]),
                    st.just(("/SUBSCRIPTIONS/S/resourcegroups/RG/VM/VM0", "VM0", "S", "RG")),
                    st.just(("/subscriptions/s/resourceGroups/rg/vm/vm1", "renamed", "s", "rg2")))
findings = st.builds(
    lambda policy, target, status, severity, evidence: Finding(policy.id, target[0], target[1], status, severity,
                                                               policy.cause, "", evidence, target[2], target[3]),
    st.sampled_from(POLICIES), targets, st.sampled_from([*STATUSES, "pass", "pass"]), st.sampled_from(SEVERITIES),
    st.sampled_from([(), (), ("an assumption",)]))


def _found(name: str, status: str, cause_of: int = 0, evidence: tuple[str, ...] = ()) -> Finding:
    policy = POLICIES[cause_of]
    return Finding(policy.id, f"/subscriptions/s/resourceGroups/rg/vm/{name}", name, status, "high", policy.cause,
                   "", evidence, "s", "rg")


@settings(max_examples=300, deadline=None)
@example([_found("vm0", "notApplicable"), _found("VM0", "pass"), _found("vm0", "unknown"),
          _found("vm1", "pass", evidence=("assumed",)), _found("vm1", "exempt", 5)]).via("letters and listings")
@given(st.lists(findings, max_size=40))
def test_letters_and_listed_findings_are_the_oracles(generated: list[Finding]) -> None:
    assert sorted(got(generated), key=lambda vm: vm[0].lower()) == sorted(oracle(generated),
                                                                         key=lambda vm: vm[0].lower())


@settings(max_examples=200, deadline=None)
@given(st.lists(findings, max_size=40), st.lists(st.integers(0, 40), max_size=3))
def test_findings_held_as_numbers_give_the_oracles_letters_and_listings(generated: list[Finding],
                                                                      cuts: list[int]) -> None:
    """Plain passes held as numbers (as parts judged in children leave them) are read without being made: the
    index is the oracle's all the same, VMs named by their first finding included."""
    ordered, held = held_by_policy(generated, cuts)
    assert sorted(got(held), key=lambda vm: vm[0].lower()) == sorted(oracle(ordered), key=lambda vm: vm[0].lower())
