"""The bundled policies' shipped defaults, asserted by behaviour: a VM just inside and just outside each one.

The catalog page lists the defaults; these tests make sure the defaults really decide verdicts, so
that a default changed by accident (10 VMs per slot becoming 1000, a minimum agent off by one build,
memory pressure taken from the wrong end of a sample) turns a test red.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from backup_preflight import snapshot
from backup_preflight.estate import build_estate
from backup_preflight.findings import Finding
from backup_preflight.policy.engine import evaluate
from backup_preflight.policy.loader import bundled_policy_dir, load_policies, policy_files

from arg import FIXTURES, backup_policy_v1, instance_view, protected_item, snapshot_doc, vm_row


def judge(doc: dict[str, Any], policy_id: str) -> dict[str, Finding]:
    """Findings with the shipped defaults only: no parameter overrides."""
    policies = load_policies([bundled_policy_dir()])
    policies.policies = [p for p in policies.policies if p.id == policy_id]
    return {f.resource_name: f for f in evaluate(policies, build_estate(snapshot.from_document(doc, "t")).vms)}


def test_the_defaults_these_tests_pin() -> None:
    """If a default changes on purpose, this list and the boundary cases below change with it."""
    docs = [json.loads(path.read_text()) for path in policy_files([bundled_policy_dir()])[0]]
    defaults = {d["id"]: {k: v["default"] for k, v in d.get("parameters", {}).items()} for d in docs}
    assert defaults["VMBK-AGENT-003"] == {"minimumLinuxAgent": "2.2.53.1", "minimumWindowsAgent": "2.7.41491.1010"}
    assert defaults["VMBK-EXT-003"] == {"minimumHandlerVersion": "1.0.91.0"}
    assert defaults["VMBK-SCHED-001"]["maximumPerSlot"] == 10
    assert defaults["VMBK-PERF-001"] == {"maximumCpuPercent": 90}
    assert defaults["VMBK-PERF-002"] == {"maximumMemoryPercent": 90}
    assert defaults["VMBK-NET-001"]["ports"] == [443] and defaults["VMBK-NET-002"]["ports"] == [8443]


# --- agent minimums ----------------------------------------------------------------------------


@pytest.mark.parametrize(("os", "version", "status"), [
    ("Linux", "2.2.53.1", "pass"), ("Linux", "2.2.53.2", "pass"), ("Linux", "2.2.54", "pass"),
    ("Linux", "2.2.53", "fail"), ("Linux", "2.2.53.0", "fail"), ("Linux", "2.2.52.9", "fail"),
    ("Linux", "2.2.100", "pass"),  # dotted integers, not strings: 100 > 53
    ("Windows", "2.7.41491.1010", "pass"), ("Windows", "2.7.41491.1011", "pass"),
    ("Windows", "2.7.41492.0", "pass"), ("Windows", "2.7.41491.1009", "fail"),
    ("Windows", "2.7.41490.9999", "fail"), ("Windows", "2.6.41491.1010", "fail"),
])
def test_agent_minimum_boundaries(os: str, version: str, status: str) -> None:
    vm = vm_row("vm", os=os)
    doc = snapshot_doc([vm], instanceviews=[instance_view(vm["id"], agent_version=version)])
    assert judge(doc, "VMBK-AGENT-003")["vm"].status == status


@pytest.mark.parametrize(("version", "status"), [
    ("1.0.91.0", "pass"), ("1.0.91.1", "pass"), ("1.0.9117.0", "pass"), ("1.0.90.9", "fail"), ("1.0.9.0", "fail"),
])
def test_backup_extension_handler_minimum_boundaries(version: str, status: str) -> None:
    vm = vm_row("vm")
    ext = {"id": f"{vm['id']}/extensions/VMSnapshotLinux", "name": "VMSnapshotLinux",
           "type": "microsoft.compute/virtualmachines/extensions",
           "properties": {"publisher": "Microsoft.Azure.RecoveryServices", "type": "VMSnapshotLinux",
                          "typeHandlerVersion": "1.0", "provisioningState": "Succeeded"}}
    view = instance_view(vm["id"], handler=("Microsoft.Azure.RecoveryServices.VMSnapshotLinux", version, "Ready"))
    assert judge(snapshot_doc([vm, ext], instanceviews=[view]), "VMBK-EXT-003")["vm"].status == status



@pytest.mark.parametrize(("handler", "arm_type", "status"), [
    # 1.0.91.0 is VMSnapshotLinux's minimum; the Windows handler's versions (1.0.57.0 …) have none of their own.
    (("Microsoft.Azure.RecoveryServices.VMSnapshot", "1.0.57.0"), None, "notApplicable"),
    (("MICROSOFT.AZURE.RECOVERYSERVICES.VMSNAPSHOT", "1.0.9.0"), "VMSnapshot", "notApplicable"),
    (None, "VMSnapshot", "notApplicable"),  # an ARM resource alone: no handler version, still not applicable
    (None, "VMSnapshotLinux", "unknown"),
    (("Microsoft.Azure.RecoveryServices.VMSnapshotLinux", "1.0.57.0"), None, "fail"),
])
def test_the_handler_minimum_is_the_linux_extensions_only(handler: tuple[str, str] | None, arm_type: str | None,
                                                           status: str) -> None:
    linux = arm_type == "VMSnapshotLinux" or (handler is not None and handler[0].lower().endswith("linux"))
    vm = vm_row("vm", os="Linux" if linux else "Windows")
    rows = [vm]
    if arm_type:
        rows.append({"id": f"{vm['id']}/extensions/{arm_type}", "name": arm_type,
                     "type": "microsoft.compute/virtualmachines/extensions",
                     "properties": {"publisher": "Microsoft.Azure.RecoveryServices", "type": arm_type,
                                    "typeHandlerVersion": "1.0", "provisioningState": "Succeeded"}})
    view = instance_view(vm["id"], handler=(*handler, "Ready") if handler else None)
    assert judge(snapshot_doc(rows, instanceviews=[view]), "VMBK-EXT-003")["vm"].status == status

# --- maximum VMs per slot ------------------------------------------------------------------------


@pytest.mark.parametrize(("members", "status"), [(10, "pass"), (11, "fail")])
def test_ten_vms_of_a_group_may_share_a_slot_eleven_may_not(members: int, status: str) -> None:
    policy = backup_policy_v1("At2", time="2018-01-24T02:00:00Z", zone="UTC")
    vms = [vm_row(f"vm{i:02d}", avset="set") for i in range(members)]
    items = [protected_item(v["id"], policy["id"]) for v in vms]
    found = judge(snapshot_doc(vms, recoveryservicesresources=[*items, policy]), "VMBK-SCHED-001")
    assert {f.status for f in found.values()} == {status}


# --- CPU and memory thresholds, from the right end of each sample ----------------------------------

HOUR = "2026-11-19T02:{:02d}:00Z"


def pressure_doc(series: dict[str, tuple[list[dict[str, float]], list[dict[str, float]]]]) -> dict[str, Any]:
    """VMs backed up at 02:00 UTC, each with CPU and memory samples (several per hour) in that hour."""
    policy = backup_policy_v1("At2", time="2018-01-24T02:00:00Z", zone="UTC")
    vms = [vm_row(name) for name in series]
    metrics = []
    for vm, (cpu, memory) in zip(vms, series.values(), strict=True):
        metrics.append({"id": vm["id"], "name": "Percentage CPU", "interval": "PT15M",
                        "data": [{"timeStamp": HOUR.format(15 * i), **s} for i, s in enumerate(cpu)]})
        metrics.append({"id": vm["id"], "name": "Available Memory Percentage", "interval": "PT15M",
                        "data": [{"timeStamp": HOUR.format(15 * i), **s} for i, s in enumerate(memory)]})
    # a sample after the hours the backup may start in (02:00-03:59) never counts
    metrics[0]["data"].append({"timeStamp": "2026-11-19T04:00:00Z", "minimum": 99, "average": 99, "maximum": 99})
    items = [protected_item(v["id"], policy["id"]) for v in vms]
    return snapshot_doc(vms, recoveryservicesresources=[*items, policy], metrics=metrics)


CALM_MEMORY = [{"minimum": 50, "average": 60, "maximum": 70}]
CALM_CPU = [{"minimum": 5, "average": 10, "maximum": 20}]


def test_cpu_takes_the_highest_maximum_of_the_hour() -> None:
    doc = pressure_doc({
        # averages far below 90, one maximum just above it: fails only if the maximum is read
        "spike": ([{"minimum": 1, "average": 20, "maximum": 40}, {"minimum": 2, "average": 30, "maximum": 90.1},
                   {"minimum": 1, "average": 25, "maximum": 50}], CALM_MEMORY),
        # exactly at the threshold passes (lessOrEquals)
        "at-limit": ([{"minimum": 1, "average": 60, "maximum": 90}, {"minimum": 3, "average": 70, "maximum": 80}],
                     CALM_MEMORY),
        # minimum and average above 90 would not matter if the maximum were below: they cannot be
        "busy": ([{"minimum": 91, "average": 95, "maximum": 99}], CALM_MEMORY),
    })
    found = judge(doc, "VMBK-PERF-001")
    assert {n: f.status for n, f in found.items()} == {"spike": "fail", "at-limit": "pass", "busy": "fail"}
    assert "90.1 %" in found["spike"].message


def test_memory_takes_the_lowest_minimum_of_available_memory() -> None:
    doc = pressure_doc({
        # one minimum just below 10 % free (90.1 % used) in an otherwise calm hour: fails only from the minimum
        "dip": (CALM_CPU, [{"minimum": 40, "average": 60, "maximum": 80},
                           {"minimum": 9.9, "average": 50, "maximum": 85},
                           {"minimum": 45, "average": 55, "maximum": 75}]),
        # 10 % free is 90 % used: at the threshold, passes
        "at-limit": (CALM_CPU, [{"minimum": 10, "average": 40, "maximum": 70}]),
        # several samples, the lowest free memory 20 % (80 % used): passes
        "roomy": (CALM_CPU, [{"minimum": 30, "average": 35, "maximum": 40},
                             {"minimum": 20, "average": 25, "maximum": 30}]),
    })
    found = judge(doc, "VMBK-PERF-002")
    assert {n: f.status for n, f in found.items()} == {"dip": "fail", "at-limit": "pass", "roomy": "pass"}
    assert "90.1 %" in found["dip"].message


def test_average_is_used_only_where_a_sample_has_no_extreme() -> None:
    doc = pressure_doc({"avg-only": ([{"average": 95}], [{"average": 5}]),
                        "calm": (CALM_CPU, CALM_MEMORY)})
    assert judge(doc, "VMBK-PERF-001")["avg-only"].status == "fail"
    assert judge(doc, "VMBK-PERF-002")["avg-only"].status == "fail"
    assert judge(doc, "VMBK-PERF-001")["calm"].status == "pass"


# --- ports ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("denied", "net1", "net2"), [
    ("443", "fail", "pass"), ("8443", "pass", "fail"), ("444", "pass", "pass"), ("8442", "pass", "pass"),
])
def test_default_ports_443_and_8443(denied: str, net1: str, net2: str) -> None:
    rows = {name: json.loads((FIXTURES / "network" / f"{name}.json").read_text())
            for name in ("nic", "nsg", "vnet", "routetable")}
    rows["nic"]["properties"]["networkSecurityGroup"]["id"] = rows["nsg"]["id"]
    nsg = copy.deepcopy(rows["nsg"])
    nsg["properties"]["securityRules"].insert(0, {"name": f"Deny{denied}", "properties": {
        "priority": 100, "direction": "Outbound", "access": "Deny", "protocol": "Tcp", "sourceAddressPrefix": "*",
        "sourcePortRange": "*", "destinationAddressPrefix": "Storage", "destinationPortRange": denied}})
    vm = vm_row("vm", nics=[rows["nic"]["id"]])  # managed disks: 8443 applies
    vm["location"] = rows["nic"]["location"]
    doc = snapshot_doc([vm, rows["nic"], nsg, rows["vnet"], rows["routetable"]])
    assert (judge(doc, "VMBK-NET-001")["vm"].status, judge(doc, "VMBK-NET-002")["vm"].status) == (net1, net2)


# --- the on-premises default route: assumed absent, and said so on the pass -------------------------


def _network_doc(*, gateway: bool) -> dict[str, Any]:
    rows = {name: json.loads((FIXTURES / "network" / f"{name}.json").read_text()) for name in ("nic", "nsg", "vnet")}
    rows["nic"]["properties"]["networkSecurityGroup"]["id"] = rows["nsg"]["id"]
    if gateway:
        vnet_id = rows["vnet"]["id"]
        rows["vnet"]["properties"]["subnets"].append({
            "name": "GatewaySubnet", "id": f"{vnet_id}/subnets/GatewaySubnet", "properties": {
                "addressPrefix": "172.20.255.0/27",
                "ipConfigurations": [{"id": vnet_id.replace("virtualNetworks/rg1-vnet",
                                                            "virtualNetworkGateways/vpn-gw/ipConfigurations/d")}]}})
    vm = vm_row("vm", nics=[rows["nic"]["id"]])
    vm["location"] = rows["nic"]["location"]
    return snapshot_doc([vm, *rows.values()])


@pytest.mark.parametrize("policy_id", ["VMBK-NET-001", "VMBK-NET-002"])
def test_a_pass_that_assumes_no_on_premises_default_route_says_so(policy_id: str) -> None:
    plain = judge(_network_doc(gateway=False), policy_id)["vm"]
    assert (plain.status, plain.evidence) == ("pass", ())
    assumed = judge(_network_doc(gateway=True), policy_id)["vm"]
    assert assumed.status == "pass"
    assert len(assumed.evidence) == 1
    assert "BGP route propagation is on" in assumed.evidence[0]
    assert assumed.evidence[0].endswith("assumed absent (assumeNoOnPremisesDefaultRoute)")
