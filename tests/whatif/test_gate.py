"""The gate end to end on the real pipeline: scan current and predicted estates, compare, blame."""
# The comparison is the baseline machinery (review.baseline) with the current scan as the baseline,
# exactly as `scan --what-if` does it (scan.run_scan, whatif.gate).

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from backup_preflight.estate import build_estate
from backup_preflight.estate.index import Index
from backup_preflight.findings import Finding
from backup_preflight.policy.engine import evaluate
from backup_preflight.policy.loader import bundled_policy_dir, load_policies
from backup_preflight.review import baseline
from backup_preflight.snapshot import Snapshot, from_document
from backup_preflight.whatif import blame, load_what_if, overlay, related_resources
from backup_preflight.whatif.blame import NOT_TRACED
from whatif.plan import (
    APP_VMS,
    NSG_ID,
    WHATIF_FIXTURES,
    az_output,
    body,
    change,
    estate,
    estate_doc,
    new_vm,
    nsg_modify_with_rule,
    route_body,
    rule_body,
    without_view,
    write,
)

from arg import rid

POLICIES = load_policies([bundled_policy_dir()])


@dataclass
class Gate:
    current: list[Finding]
    predicted: list[Finding]
    new_findings: list[Finding]
    resolved: list[dict[str, str]]
    causes: dict[tuple[str, str], list[str]]
    notes: list[dict[str, str]]

    def status(self, policy: str, vm: str) -> str | None:
        return next((f.status for f in self.predicted if f.policy_id == policy and f.resource_name == vm), None)

    def new(self, policy: str) -> list[str]:
        return sorted(f.resource_name for f in self.new_findings if f.policy_id == policy)

    def why(self, policy: str, vm: str) -> list[str]:
        return self.causes[(policy, rid("vm", vm).lower())]


def run_gate(tmp_path: Path, what_if: dict[str, Any] | Path, snap: Snapshot | None = None) -> Gate:
    """What the CLI does for `scan --snapshot … --what-if …`, with the real pipeline functions."""
    snap = snap or estate()
    path = what_if if isinstance(what_if, Path) else write(tmp_path / "whatif.json", what_if)
    predicted_snap, changes, notes = overlay(snap, load_what_if(path))
    current = evaluate(POLICIES, build_estate(snap).vms)
    after_estate = build_estate(predicted_snap)
    predicted = evaluate(POLICIES, after_estate.vms)
    meta = baseline.apply(predicted, baseline.from_findings(current, "current", "sha"), fail_on_new=True)
    new = [f for f in predicted if f.annotations.get("baseline") == baseline.NEW]
    causes = blame(new, after_estate.vms, changes, Index(predicted_snap).by_id)
    return Gate(current, predicted, new, meta["fixed"], causes, notes)


def test_the_current_estate_passes_the_network_policy() -> None:
    found = {f.resource_name: f.status for f in evaluate(POLICIES, build_estate(estate()).vms)
             if f.policy_id == "VMBK-NET-001"}
    assert found == {"vm1": "pass", "vm2": "pass", "vm3": "pass", "vmdb": "pass"}


@pytest.mark.parametrize("shape", ["rule created on its own", "NSG modify with full after"])
def test_new_nsg_deny_rule_fails_the_vms_behind_it_and_is_blamed(tmp_path: Path, shape: str) -> None:
    rule = rule_body("DenyStorage443", 50)
    plan = (change("Create", rule["id"], after=rule) if shape == "rule created on its own"
            else nsg_modify_with_rule("DenyStorage443", 50))
    gate = run_gate(tmp_path, az_output(plan))
    assert gate.new("VMBK-NET-001") == list(APP_VMS)
    assert gate.status("VMBK-NET-001", "vmdb") == "pass"
    failure = next(f for f in gate.new_findings if f.resource_name == "vm1" and f.policy_id == "VMBK-NET-001")
    assert any("DenyStorage443" in line for line in failure.evidence)
    [sentence] = gate.why("VMBK-NET-001", "vm1")
    assert "DenyStorage443" in sentence and "NSG nsg-app" in sentence
    assert sentence.endswith("— the NSG of its subnet vnet-app/snet-app; 3 VMs newly fail VMBK-NET-001 "
                             "through this change")
    assert {f.policy_id for f in gate.new_findings} == {"VMBK-NET-001"}  # VMBK-NET-002 checks port 8443


def test_route_to_none_fails_through_the_route_table(tmp_path: Path) -> None:
    route = route_body("drop-all", "0.0.0.0/0", "None")
    gate = run_gate(tmp_path, az_output(change("Create", route["id"], after=route)))
    assert gate.new("VMBK-NET-001") == list(APP_VMS)
    assert gate.why("VMBK-NET-001", "vm2") == [
        "route drop-all (0.0.0.0/0 → None) created by this deployment in route table rt-app — the route table of "
        "its subnet vnet-app/snet-app; 3 VMs newly fail VMBK-NET-001 through this change"]
    assert gate.new("VMBK-NET-002") == list(APP_VMS)  # a route to None drops every port


def test_new_vm_without_agent_fails_the_agent_policy(tmp_path: Path) -> None:
    gate = run_gate(tmp_path, az_output(*new_vm("vm-new", provision=False)))
    assert gate.new("VMBK-AGENT-001") == ["vm-new"]
    assert gate.why("VMBK-AGENT-001", "vm-new") == [
        "VM vm-new (provisionVMAgent false) created by this deployment — the VM itself; 1 VM newly fails "
        "VMBK-AGENT-001 through this change"]
    # No power state before the VM exists: the network check is unknown, not a guessed pass or fail.
    assert gate.status("VMBK-NET-001", "vm-new") == "unknown"
    assert all("newly cannot be assessed for VMBK-NET-001" in s for s in gate.why("VMBK-NET-001", "vm-new"))
    assert gate.status("VMBK-AGENT-001", "vm1") == "pass"


def test_deleted_vm_findings_disappear(tmp_path: Path) -> None:
    vm_id = rid("vm", "vm2")
    gate = run_gate(tmp_path, az_output(change("Delete", vm_id, before=body(vm_id, "Microsoft.Compute/virtualMachines",
                                                                            {}))))
    assert any(f.resource_name == "vm2" for f in gate.current)
    assert not any(f.resource_name == "vm2" for f in gate.predicted)
    assert gate.new_findings == []


def test_removing_a_deny_rule_resolves_failures(tmp_path: Path) -> None:
    rule = rule_body("DenyStorage443", 50)
    broken, _, _ = overlay(estate(), load_what_if(write(tmp_path / "add.json",
                                                        az_output(change("Create", rule["id"], after=rule)))))
    gate = run_gate(tmp_path, az_output(change("Delete", rule["id"], before=rule)), snap=broken)
    assert gate.new_findings == []
    assert sorted((r["policyId"], r["resourceName"], r["was"], r["now"]) for r in gate.resolved) == [
        ("VMBK-NET-001", vm, "fail", "pass") for vm in APP_VMS]


def test_blame_follows_the_policy_cause(tmp_path: Path) -> None:
    current = from_document(without_view(estate_doc(), "vm1"), "estate")  # the flag alone says it
    vm = copy.deepcopy(next(r for r in current.tables["resources"] if r["id"] == rid("vm", "vm1")))
    vm["properties"]["osProfile"]["linuxConfiguration"]["provisionVMAgent"] = False
    rule = rule_body("DenyStorage443", 50)
    gate = run_gate(tmp_path, az_output(change("Modify", vm["id"], after=body(vm["id"], vm["type"], vm["properties"])),
                                        change("Create", rule["id"], after=rule)), current)
    [agent] = gate.why("VMBK-AGENT-001", "vm1")
    assert agent.startswith("VM vm1 (provisionVMAgent false) modified by this deployment — the VM itself")
    network = gate.why("VMBK-NET-001", "vm1")
    assert len(network) == 2 and "DenyStorage443" in network[1]  # the VM's own change may matter too


def test_whole_az_what_if_file(tmp_path: Path) -> None:
    gate = run_gate(tmp_path, WHATIF_FIXTURES / "az-deployment-group-what-if.json")
    sentences = gate.why("VMBK-NET-001", "vm3")
    assert len(sentences) == 2
    assert any(s.startswith("security rule DenyStorage443 (Deny Outbound, priority 50, to Storage port 443) "
                            "created by this deployment on NSG nsg-app") for s in sentences)
    assert any(s.startswith("route table rt-app modified by this deployment: routes[1] to-internet-dropped "
                            "(0.0.0.0/0 → None) created") for s in sentences)
    assert gate.new("VMBK-AGENT-001") == ["vm-new"]
    assert [n["message"].split(" (")[0] for n in gate.notes] == ["what-if cannot predict this change"]


def test_related_resources_of_a_vm() -> None:
    snap = estate()
    vm = next(f for f in build_estate(snap).vms if f["name"] == "vm1")
    vm["backup"] = {"protected": True, "itemId": "/X/protectedItems/VM1", "policyId": "/X/backupPolicies/Daily"}
    related = related_resources(vm, Index(snap).by_id)
    assert {role for role, _ in related.values()} == {
        "vm", "nic", "subnet", "vnet", "nsg", "routeTable", "protectedItem", "backupPolicy"}
    assert related[NSG_ID.lower()] == ("nsg", "the NSG of its subnet vnet-app/snet-app")
    assert related["/x/backuppolicies/daily"] == ("backupPolicy", "its backup policy")


def test_failure_no_change_explains_says_so() -> None:
    finding = Finding("VMBK-SCHED-001", rid("vm", "vm1"), "vm1", "fail", "medium", "schedule-spread")
    vms = build_estate(estate()).vms
    assert blame([finding], vms, [], {}) == {finding.key(): [NOT_TRACED]}
