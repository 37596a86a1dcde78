"""summary.md's worst-VM table against a deliberately simple oracle: every VM with a failure (fail or error;
ids that differ only in case are one VM, named by its first finding that needs attention), most severe
failure first, then most failures, then most unknowns, then id; the first `limit` shown with their findings."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from backup_preflight.findings import SEVERITIES, STATUSES, Finding
from backup_preflight.policy.loader import bundled_policy_dir, load_policies
from backup_preflight.report.view import worst_vms
from backup_preflight.results import Gate, ScanResult

POLICIES = load_policies([bundled_policy_dir()]).policies
ATTENTION = ["fail", "error", "unknown", "exempt"]


def oracle(findings: list[Finding], limit: int) -> tuple[int, list[tuple[Any, ...]]]:
    vms: dict[str, list[Finding]] = {}
    for f in findings:
        if f.status in ATTENTION:
            vms.setdefault(f.resource_id.lower(), []).append(f)

    def failures(found: list[Finding]) -> list[Finding]:
        return [f for f in found if f.status in ("fail", "error")]

    failing = [found for found in vms.values() if failures(found)]
    failing.sort(key=lambda found: (min(SEVERITIES.index(f.severity) for f in failures(found)), -len(failures(found)),
                                    -sum(f.status == "unknown" for f in found), found[0].resource_id.lower()))
    shown = []
    for found in failing[:limit]:
        first = found[0]
        ordered = sorted(found, key=lambda f: (ATTENTION.index(f.status), SEVERITIES.index(f.severity), f.policy_id))
        counts = {status: sum(f.status == status for f in found) for status in ATTENTION}
        shown.append((first.resource_id, first.resource_name, first.subscription_id, first.resource_group, counts,
                      ordered))
    return len(failing), shown


#: Six VMs, one of them also spelled in capitals and under another name: its first finding must name it.
names = [f"vm{i}" for i in range(6)]
targets = st.one_of(st.sampled_from([(f"/subscriptions/s/resourceGroups/rg/vm/{n}", n, "s", "rg") for n in names]),
                    st.just(("/SUBSCRIPTIONS/S/resourcegroups/RG/VM/VM0", "VM0", "S", "RG")))
findings = st.builds(
    lambda policy, target, status, severity: Finding(policy.id, target[0], target[1], status, severity, policy.cause,
                                                     "", (), target[2], target[3]),
    st.sampled_from(POLICIES), targets, st.sampled_from([*STATUSES, "fail", "unknown"]), st.sampled_from(SEVERITIES))


def _found(name: str, status: str, severity: str = "high") -> Finding:
    return Finding(POLICIES[0].id, f"/subscriptions/s/resourceGroups/rg/vm/{name}", name, status, severity,
                   POLICIES[0].cause, "", (), "s", "rg")


@settings(max_examples=300, deadline=None)
@example([_found("vm0", "fail"), _found("vm1", "fail"), _found("vm1", "unknown"), _found("vm2", "exempt")],
         1).via("equal failures: the VM with more unknowns comes first")
@given(st.lists(findings, min_size=4, max_size=40), st.integers(min_value=1, max_value=7))
def test_the_worst_vms_are_those_the_oracle_ranks_first(generated: list[Finding], limit: int) -> None:
    result = ScanResult(run={}, policies=POLICIES, findings=generated, coverage={}, gate=Gate(), summary={},
                        exit_code=0)
    count, vms = worst_vms(result, limit)
    got = [(vm.resource_id, vm.name, vm.subscription_id, vm.resource_group, vm.counts, vm.findings) for vm in vms]
    assert (count, got) == oracle(generated, limit)
