"""Each bundled policy gives pass, fail and unknown on small snapshots of real Azure shapes."""

import copy
import json
from typing import Any

import pytest

from backup_preflight import snapshot
from backup_preflight.estate import build_estate
from backup_preflight.findings import Finding
from backup_preflight.policy.engine import evaluate
from backup_preflight.policy.loader import bundled_policy_dir, load_policies
from backup_preflight.policy.parameters import parse_cli_params

from arg import (
    FIXTURES,
    SUB,
    backup_handler,
    backup_policy_v1,
    backup_policy_v2,
    extension_row,
    instance_view,
    protected_item,
    rid,
    snapshot_doc,
    vm_row,
)


def judge(doc: dict[str, Any], policy_id: str, params: list[str] | None = None) -> dict[str, Finding]:
    policies = load_policies([bundled_policy_dir()], parse_cli_params(params or []))
    policies.policies = [p for p in policies.policies if p.id == policy_id]
    estate = build_estate(snapshot.from_document(doc, "t"))
    return {f.resource_name: f for f in evaluate(policies, estate.vms)}


def statuses(found: dict[str, Finding]) -> dict[str, str]:
    return {name: f.status for name, f in found.items()}


def network_rows() -> dict[str, dict[str, Any]]:
    return {name: json.loads((FIXTURES / "network" / f"{name}.json").read_text())
            for name in ("nic", "nsg", "vnet", "routetable")}


def test_agent_provisioned() -> None:
    doc = snapshot_doc([vm_row("ok"), vm_row("off", provision=False), vm_row("special", provision=None)])
    found = judge(doc, "VMBK-AGENT-001")
    assert statuses(found) == {"ok": "pass", "off": "fail", "special": "unknown"}
    assert found["off"].evidence == ("agent.installed is false: equals true does not hold",)
    assert found["off"].message == ("The VM agent is not provisioned on off "
                                    "(osProfile.linuxConfiguration.provisionVMAgent is false)")


def test_agent_ready() -> None:
    vms = [vm_row("ok"), vm_row("bad"), vm_row("noview"), vm_row("stopped", power="PowerState/deallocated")]
    views = [instance_view(vms[0]["id"]), instance_view(vms[1]["id"], status="Not Ready")]
    found = judge(snapshot_doc(vms, instanceviews=views), "VMBK-AGENT-002")
    assert statuses(found) == {"ok": "pass", "bad": "fail", "noview": "unknown", "stopped": "notApplicable"}


@pytest.mark.parametrize(("os", "version", "status"), [
    ("Linux", "2.2.53.1", "pass"), ("Linux", "2.11.1.4", "pass"), ("Linux", "2.2.9", "fail"),
    ("Linux", "2.2.45", "fail"), ("Windows", "2.7.41491.1102", "pass"), ("Windows", "2.7.41491.949", "fail"),
    ("Linux", "Unknown", "unknown"),
])
def test_agent_version(os: str, version: str, status: str) -> None:
    vm = vm_row("vm", os=os)
    found = judge(snapshot_doc([vm], instanceviews=[instance_view(vm["id"], agent_version=version)]),
                  "VMBK-AGENT-003")
    assert found["vm"].status == status
    if status == "fail":
        assert version in found["vm"].message and version in found["vm"].evidence[0]


def test_agent_version_parameter_override() -> None:
    vm = vm_row("vm")
    doc = snapshot_doc([vm], instanceviews=[instance_view(vm["id"], agent_version="2.2.53.1")])
    assert judge(doc, "VMBK-AGENT-003", ["minimumLinuxAgent=2.3"])["vm"].status == "fail"


def test_backup_extension_state_handler_and_version() -> None:
    vms = [vm_row(n) for n in ("ok", "failed", "none", "oldhandler", "noview")]
    ids = [v["id"] for v in vms]
    ext = [extension_row(ids[0]), extension_row(ids[1], state="Failed"), extension_row(ids[3]),
           extension_row(ids[4])]
    handler = "Microsoft.Azure.RecoveryServices.VMSnapshotLinux"
    views = [instance_view(ids[0], handler=(handler, "1.0.9117.0", "Ready")),
             instance_view(ids[1], handler=(handler, "1.0.9117.0", "Not Ready")),
             instance_view(ids[3], handler=(handler, "1.0.90.0", "Ready"))]
    doc = snapshot_doc(vms + ext, instanceviews=views)
    # "none" has neither an ARM resource nor a collected instance view: whether the platform installed
    # the extension (as it does today, without an ARM resource) cannot be told.
    assert statuses(judge(doc, "VMBK-EXT-001")) == {
        "ok": "pass", "failed": "fail", "none": "unknown", "oldhandler": "pass", "noview": "pass"}
    assert statuses(judge(doc, "VMBK-EXT-002")) == {
        "ok": "pass", "failed": "fail", "none": "unknown", "oldhandler": "pass", "noview": "unknown"}
    ver = judge(doc, "VMBK-EXT-003")
    assert statuses(ver) == {
        "ok": "pass", "failed": "pass", "none": "unknown", "oldhandler": "fail", "noview": "unknown"}
    assert "1.0.90.0" in ver["oldhandler"].evidence[0]


def test_sql_vss_copy_backup() -> None:
    vms = [vm_row(n, os="Windows") for n in ("vss", "novss", "unprobed", "plain")]
    sql = [{"id": rid("sqlvm", v["name"]), "type": "microsoft.sqlvirtualmachine/sqlvirtualmachines",
            "name": v["name"], "subscriptionId": SUB, "resourceGroup": "rg-app",
            "properties": {"virtualMachineResourceId": v["id"].lower()}} for v in vms[:3]]
    guest = [{"id": vms[0]["id"], "facts": {"useVssCopyBackup": True}},
             {"id": vms[1]["id"], "facts": {"useVssCopyBackup": False}},
             {"id": vms[3]["id"], "facts": {"useVssCopyBackup": False}}]
    assert statuses(judge(snapshot_doc(vms + sql, guestfacts=guest), "VMBK-SQL-001")) == {
        "vss": "pass", "novss": "fail", "unprobed": "unknown", "plain": "notApplicable"}


def test_sql_vss_copy_backup_not_applicable_on_linux() -> None:
    """SQL Server on Linux registers with the SQL IaaS Agent extension too, but has no VSS and no registry: the
    Linux probe reports USEVSSCOPYBACKUP as null, which no probe can ever change, so the check does not apply.
    A SQL VM whose OS is not known stays unknown."""
    linux, unknown_os = vm_row("ubuntu-sql", os="Linux"), vm_row("noos", os="Windows", provision=None)
    del unknown_os["properties"]["storageProfile"]["osDisk"]["osType"]
    sql = [{"id": rid("sqlvm", v["name"]), "type": "microsoft.sqlvirtualmachine/sqlvirtualmachines",
            "name": v["name"], "subscriptionId": SUB, "resourceGroup": "rg-app",
            "properties": {"virtualMachineResourceId": v["id"].lower(), "sqlImageOffer": "SQL2019-ubuntu2004"}}
           for v in (linux, unknown_os)]
    guest = [{"id": linux["id"], "facts": {"os": "Linux", "dhcpEnabled": True, "useVssCopyBackup": None}}]
    found = judge(snapshot_doc([linux, unknown_os, *sql], guestfacts=guest), "VMBK-SQL-001")
    assert statuses(found) == {"ubuntu-sql": "notApplicable", "noos": "unknown"}


def test_in_guest_preconditions_do_not_apply_to_agentless_crash_consistent_backups() -> None:
    """An Enhanced policy taking only crash-consistent snapshots backs up without the VM agent, the snapshot
    extension or VSS (Microsoft: agentless multi-disk crash-consistent backup): a Windows SQL VM so protected,
    whose agent is Not Ready, DHCP off, IaaSVmProvider disabled and USEVSSCOPYBACKUP unset, fails none of those
    checks. The same VM under the default (application-consistent) Enhanced policy fails all four, and so does
    one whose crash-consistent item is stopped (its next backup may be agent-based)."""
    crash = backup_policy_v2("CrashOnly", zone="UTC")  # snapshotConsistencyType OnlyCrashConsistent
    default = backup_policy_v2("AppConsistent", zone="UTC")
    default["properties"].pop("snapshotConsistencyType")
    vms = [vm_row(n, os="Windows") for n in ("agentless", "app-consistent", "stopped")]
    items = [protected_item(vms[0]["id"], crash["id"]), protected_item(vms[1]["id"], default["id"]),
             protected_item(vms[2]["id"], crash["id"])]
    items[2]["properties"]["protectionState"] = "ProtectionStopped"
    sql = [{"id": rid("sqlvm", v["name"]), "type": "microsoft.sqlvirtualmachine/sqlvirtualmachines",
            "name": v["name"], "subscriptionId": SUB, "resourceGroup": "rg-app",
            "properties": {"virtualMachineResourceId": v["id"].lower()}} for v in vms]
    guest = [{"id": v["id"], "facts": {"dhcpEnabled": False, "useVssCopyBackup": False,
                                       "iaasVmProviderService": "Disabled"}} for v in vms]
    doc = snapshot_doc(vms + sql, recoveryservicesresources=[*items, crash, default], guestfacts=guest,
                       instanceviews=[instance_view(v["id"], status="Not Ready") for v in vms])
    for policy_id in ("VMBK-AGENT-002", "VMBK-SQL-001", "VMBK-EXT-004", "VMBK-DHCP-001"):
        assert statuses(judge(doc, policy_id)) == {
            "agentless": "notApplicable", "app-consistent": "fail", "stopped": "fail"}, policy_id


@pytest.mark.parametrize("policy_id", ["VMBK-AGENT-001", "VMBK-AGENT-003", "VMBK-EXT-001", "VMBK-EXT-002",
                                       "VMBK-EXT-003"])
def test_agent_and_extension_checks_do_not_apply_to_agentless_crash_consistent_backups(policy_id: str) -> None:
    """The same doc: an agentless backup "doesn't rely on the VM agent or snapshot extension", so an old agent
    or a failed, Not Ready, old backup extension is no precondition of it (real-azure case 12 failed
    VMBK-AGENT-003 on such a VM). Under the default policy, and with the item stopped, each still fails."""
    crash = backup_policy_v2("CrashOnly", zone="UTC")  # snapshotConsistencyType OnlyCrashConsistent
    default = backup_policy_v2("AppConsistent", zone="UTC")
    default["properties"].pop("snapshotConsistencyType")
    names = ("agentless", "app-consistent", "stopped")
    vms = [vm_row(n, provision=False) for n in names]
    items = [protected_item(vms[0]["id"], crash["id"]), protected_item(vms[1]["id"], default["id"]),
             protected_item(vms[2]["id"], crash["id"])]
    items[2]["properties"]["protectionState"] = "ProtectionStopped"
    views = [backup_handler(instance_view(v["id"], agent_version="2.2.10", status="Not Ready"), version="1.0.9.0",
                            status="Not Ready", code="ProvisioningState/failed/1", level="Error") for v in vms]
    if policy_id == "VMBK-AGENT-001":  # no agent reported: provisionVMAgent false says it was never installed
        views = []
    doc = snapshot_doc(vms, recoveryservicesresources=[*items, crash, default], instanceviews=views)
    assert statuses(judge(doc, policy_id)) == {
        "agentless": "notApplicable", "app-consistent": "fail", "stopped": "fail"}, policy_id


def test_guest_shutdown() -> None:
    doc = snapshot_doc([vm_row("run"), vm_row("stop", power="PowerState/stopped"),
                        vm_row("dealloc", power="PowerState/deallocated"), vm_row("noext", power=None)])
    found = judge(doc, "VMBK-POWER-001")
    assert statuses(found) == {"run": "pass", "stop": "fail", "dealloc": "pass", "noext": "unknown"}
    assert found["stop"].evidence == ('powerState is "stopped": notIn ["stopped", "stopping"] does not hold',)
    assert found["stop"].message == "stop is stopped (shut down inside the guest or powered off) but still allocated"


def test_guest_shutdown_in_progress() -> None:
    """Compute's power states (https://learn.microsoft.com/azure/virtual-machines/states-billing): "Stopping — This
    state is transitional between running and stopped" (the older states-lifecycle page: "When completed, it will
    show as Stopped"), and Stopped is shut down from within the guest OS or by the PowerOff API, still allocated;
    Deallocating is transitional, ending in Deallocated. A VM caught stopping is on its way to the state this check
    fails, so it fails too; deallocating and starting VMs are on their way to passing states."""
    doc = snapshot_doc([vm_row("stopping", power="PowerState/stopping"),
                        vm_row("deallocating", power="PowerState/deallocating"),
                        vm_row("starting", power="PowerState/starting")])
    found = judge(doc, "VMBK-POWER-001")
    assert statuses(found) == {"stopping": "fail", "deallocating": "pass", "starting": "pass"}
    assert found["stopping"].message == ("stopping is stopping (shut down inside the guest or powered off) "
                                         "but still allocated")


def test_schedule_spread() -> None:
    same = backup_policy_v1("At2", time="2018-01-24T02:00:00Z", zone="UTC")
    other = backup_policy_v1("At3", time="2018-01-24T03:00:00Z", zone="UTC")
    crowd = [vm_row(f"web{i}", avset="AvSet-Web") for i in range(4)]
    spread = [vm_row("web9", avset="AvSet-Web"), vm_row("lone", rg="RG-Other")]
    items = [protected_item(v["id"], same["id"]) for v in crowd]
    items += [protected_item(spread[0]["id"], other["id"]), protected_item(spread[1]["id"], same["id"])]
    unprotected = vm_row("unprotected")
    doc = snapshot_doc(crowd + spread + [unprotected], recoveryservicesresources=[*items, same, other])
    found = judge(doc, "VMBK-SCHED-001", ["maximumPerSlot=3"])
    assert statuses(found) == {**{f"web{i}": "fail" for i in range(4)}, "web9": "pass", "lone": "pass",
                               "unprotected": "notApplicable"}
    assert found["web0"].message.startswith(f"4 VMs of group {SUB}/rg-app/avset-web / Monday 02:00 UTC are backed up "
                                            "in the same slot")
    assert "web3" in found["web0"].message
    grouped_by_rg = judge(doc, "VMBK-SCHED-001", ["maximumPerSlot=3", "groupKey=resourceGroup"])
    assert grouped_by_rg["web0"].status == "fail" and grouped_by_rg["lone"].status == "pass"


def test_resource_pressure_cpu_and_memory() -> None:
    policy = backup_policy_v1("At2", time="2018-01-24T02:00:00Z", zone="UTC")
    vms = [vm_row(n) for n in ("calm", "busy", "nometrics")]
    items = [protected_item(v["id"], policy["id"]) for v in vms]

    def series(vm: dict[str, Any], cpu: float, free: float) -> list[dict[str, Any]]:
        point = "2026-11-19T02:00:00Z"
        return [{"id": vm["id"], "name": "Percentage CPU", "data": [{"timeStamp": point, "maximum": cpu}]},
                {"id": vm["id"], "name": "Available Memory Percentage",
                 "data": [{"timeStamp": point, "minimum": free}]}]

    doc = snapshot_doc(vms, recoveryservicesresources=[*items, policy],
                       metrics=series(vms[0], 40, 50) + series(vms[1], 96.5, 4))
    cpu = judge(doc, "VMBK-PERF-001")
    assert statuses(cpu) == {"calm": "pass", "busy": "fail", "nometrics": "unknown"}
    assert "96.5" in cpu["busy"].message
    assert statuses(judge(doc, "VMBK-PERF-002")) == {"calm": "pass", "busy": "fail", "nometrics": "unknown"}


def test_resource_pressure_in_the_hour_after_the_scheduled_one() -> None:
    """Azure triggers a scheduled backup within 2 hours of its time (Azure VM backup FAQ): a VM backed up at
    02:00 UTC that is saturated from 03:00 can meet its snapshot there, so it fails; a peak at 04:00 cannot."""
    policy = backup_policy_v1("At2", time="2018-01-24T02:00:00Z", zone="UTC")
    vms = [vm_row(n) for n in ("busy-at-3", "busy-at-4")]
    metrics = []
    for vm, busy in zip(vms, ("03", "04"), strict=True):
        calm = {"timeStamp": "2026-11-19T02:00:00Z", "maximum": 20.0, "minimum": 70.0}
        peak = {"timeStamp": f"2026-11-19T{busy}:00:00Z", "maximum": 98.0, "minimum": 2.0}
        metrics += [{"id": vm["id"], "name": "Percentage CPU", "data": [calm, peak]},
                    {"id": vm["id"], "name": "Available Memory Percentage", "data": [calm, peak]}]
    doc = snapshot_doc(vms, recoveryservicesresources=[*(protected_item(v["id"], policy["id"]) for v in vms), policy],
                       metrics=metrics)
    cpu = judge(doc, "VMBK-PERF-001")
    assert statuses(cpu) == {"busy-at-3": "fail", "busy-at-4": "pass"}
    assert cpu["busy-at-3"].message == "busy-at-3 peaks at 98.0 % CPU in the UTC hours its backups may start (2, 3)"
    assert statuses(judge(doc, "VMBK-PERF-002")) == {"busy-at-3": "fail", "busy-at-4": "pass"}


def test_guest_dhcp_from_probe_or_machine_configuration() -> None:
    vms = [vm_row(n) for n in ("probe-on", "probe-off", "mc-ok", "mc-bad", "nothing")]

    def assignment(vm: dict[str, Any], status: str) -> dict[str, Any]:
        return {"id": f"{vm['id']}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments/"
                      "AzureBackupDhcpEnabled", "name": "AzureBackupDhcpEnabled",
                "type": "microsoft.guestconfiguration/guestconfigurationassignments",
                "properties": {"complianceStatus": status, "targetResourceId": vm["id"]}}

    guest = [{"id": vms[0]["id"], "facts": {"dhcpEnabled": True}},
             {"id": vms[1]["id"], "facts": {"dhcpEnabled": False}}]
    doc = snapshot_doc(vms, guestfacts=guest,
                       guestconfigurationresources=[assignment(vms[2], "Compliant"),
                                                    assignment(vms[3], "NonCompliant")])
    assert statuses(judge(doc, "VMBK-DHCP-001")) == {
        "probe-on": "pass", "probe-off": "fail", "mc-ok": "pass", "mc-bad": "fail", "nothing": "unknown"}


def test_guest_dhcp_assignment_named_by_azure_policy() -> None:
    """No built-in Machine Configuration checks DHCP, so the assignment comes from a custom package turned into a
    policy by Microsoft's GuestConfiguration module, which names each assignment it deploys
    "[concat('<ConfigurationName>$pid', uniqueString(policy().assignmentId, policy().definitionReferenceId))]"
    (Azure/GuestConfiguration source/Private/New-GuestConfigurationPolicyGuestAssignmentNameReference.ps1). The
    configuration's own name is properties.guestConfiguration.name (azure-rest-api-specs guestconfiguration
    examples/listRGGuestConfigurationAssignments.json). Exact matching on the assignment name missed these."""
    names = ("pid-ok", "pid-bad", "pid-lower", "config-only", "other-config", "lookalike")
    vms = [vm_row(n) for n in names]

    def assignment(vm: dict[str, Any], name: str, status: str, config: str | None = None) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": f"{vm['id']}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments/{name}",
            "name": name, "type": "microsoft.guestconfiguration/guestconfigurationassignments",
            "properties": {"complianceStatus": status, "targetResourceId": vm["id"]}}
        if config is not None:
            row["properties"]["guestConfiguration"] = {"name": config, "version": "1.0.0"}
        return row

    rows = [assignment(vms[0], "AzureBackupDhcpEnabled$pidq2kzfbrwnzvl4", "Compliant"),
            assignment(vms[1], "AzureBackupDhcpEnabled$pidq2kzfbrwnzvl4", "NonCompliant", "AzureBackupDhcpEnabled"),
            assignment(vms[2], "azurebackupdhcpenabled$PIDx7", "NonCompliant"),
            assignment(vms[3], "dhcp-audit", "Compliant", "AzureBackupDhcpEnabled"),
            assignment(vms[4], "AzureWindowsBaseline$pidq2kzfbrwnzvl4", "NonCompliant", "AzureWindowsBaseline"),
            assignment(vms[5], "AzureBackupDhcpEnabledOld", "NonCompliant")]
    found = judge(snapshot_doc(vms, guestconfigurationresources=rows), "VMBK-DHCP-001")
    assert statuses(found) == {"pid-ok": "pass", "pid-bad": "fail", "pid-lower": "fail", "config-only": "pass",
                               "other-config": "unknown", "lookalike": "unknown"}


def test_backup_protection_and_last_backup() -> None:
    policy = backup_policy_v1()
    vms = [vm_row(n) for n in ("ok", "failed", "none")]
    items = [protected_item(vms[0]["id"], policy["id"]), protected_item(vms[1]["id"], policy["id"], status="Failed")]
    doc = snapshot_doc(vms, recoveryservicesresources=[*items, policy])
    assert statuses(judge(doc, "VMBK-PROT-001")) == {"ok": "pass", "failed": "pass", "none": "fail"}
    assert statuses(judge(doc, "VMBK-PROT-002")) == {"ok": "pass", "failed": "fail", "none": "notApplicable"}
    not_collected = judge(snapshot_doc(vms), "VMBK-PROT-001")
    assert {f.status for f in not_collected.values()} == {"unknown"}


def test_last_backup_of_an_item_whose_first_backup_has_not_run() -> None:
    """Azure's own example of a VM just protected (https://learn.microsoft.com/azure/backup/
    backup-azure-arm-userestapi-backupazurevms, "Enabling protection for the Azure VM"): protectionState IRPending,
    lastBackupStatus "", lastBackupTime 2001-01-01T00:00:00Z, recoveryPointCount 0, "the first backup will be
    triggered according to the policy schedule". No backup has run, so "the last backup did not fail" cannot be
    said: unknown with the reason, as for an item that reports no lastBackupStatus at all, never a pass. A first
    backup that failed leaves the item IRPending with lastBackupStatus Failed: that still fails. V1 and V2."""
    v1, v2 = backup_policy_v1(), backup_policy_v2()
    vms = [vm_row(n) for n in ("pending-v1", "pending-v2", "first-failed", "no-status")]
    items = [protected_item(vms[0]["id"], v1["id"], status=""), protected_item(vms[1]["id"], v2["id"], status=""),
             protected_item(vms[2]["id"], v2["id"], status="Failed"), protected_item(vms[3]["id"], v1["id"])]
    for item in items[:3]:
        item["properties"].update(protectionState="IRPending", lastBackupTime="2001-01-01T00:00:00Z")
        item["properties"].pop("lastRecoveryPoint", None)
    del items[3]["properties"]["lastBackupStatus"]
    found = judge(snapshot_doc(vms, recoveryservicesresources=[*items, v1, v2]), "VMBK-PROT-002")
    assert statuses(found) == {"pending-v1": "unknown", "pending-v2": "unknown", "first-failed": "fail",
                               "no-status": "unknown"}
    assert "lastBackupStatus is empty: no backup has run yet (protectionState IRPending)" in found["pending-v1"].message
    assert statuses(judge(snapshot_doc(vms, recoveryservicesresources=[*items, v1, v2]), "VMBK-PROT-001")) == \
        dict.fromkeys(("pending-v1", "pending-v2", "first-failed", "no-status"), "pass")


def test_outbound_443_through_nic_and_subnet_nsgs() -> None:
    rows = network_rows()
    rows["nic"]["properties"]["networkSecurityGroup"]["id"] = rows["nsg"]["id"].upper()
    vm = vm_row("vm", nics=[rows["nic"]["id"].upper()])
    vm["location"] = rows["nic"]["location"]
    found = judge(snapshot_doc([vm, *rows.values()]), "VMBK-NET-001")
    assert found["vm"].status == "pass", found["vm"].message
    # add a deny for Storage 443 above everything on the NIC's NSG: must fail and name the rule
    nsg = copy.deepcopy(rows["nsg"])
    nsg["properties"]["securityRules"].insert(0, {
        "name": "DenyStorage443", "properties": {
            "priority": 100, "direction": "Outbound", "access": "Deny", "protocol": "Tcp",
            "sourceAddressPrefix": "*", "sourcePortRange": "*", "destinationAddressPrefix": "Storage",
            "destinationPortRanges": ["80", "443"]}})
    blocked = judge(snapshot_doc([vm, rows["nic"], nsg, rows["vnet"], rows["routetable"]]), "VMBK-NET-001")
    assert blocked["vm"].status == "fail"
    assert any("DenyStorage443" in e and "100" in e for e in blocked["vm"].evidence)
    missing = judge(snapshot_doc([vm, rows["nic"]]), "VMBK-NET-001")
    assert missing["vm"].status == "unknown"
    assert "not in the collected rows" in missing["vm"].message


def test_windows_iaasvmprovider_service() -> None:
    vms = [vm_row(n, os="Windows") for n in ("auto", "disabled", "unprobed")] + [vm_row("linux")]
    guest = [{"id": vms[0]["id"], "facts": {"iaasVmProviderService": "Automatic"}},
             {"id": vms[1]["id"], "facts": {"iaasVmProviderService": "Disabled"}}]
    found = judge(snapshot_doc(vms, guestfacts=guest), "VMBK-EXT-004")
    assert statuses(found) == {"auto": "pass", "disabled": "fail", "unprobed": "unknown", "linux": "notApplicable"}
    assert found["disabled"].message == "The IaaSVmProvider service on disabled is set to Disabled"


def test_unknown_when_the_deciding_fact_is_missing() -> None:
    policy = backup_policy_v1("At2", time="2018-01-24T02:00:00Z", zone="UTC")
    vm_ext, vm_sched, vm_prot = vm_row("ext"), vm_row("sched"), vm_row("prot")
    ext = extension_row(vm_ext["id"])
    del ext["properties"]["provisioningState"]
    orphan = protected_item(vm_sched["id"], policy["id"] + "-deleted")   # its backup policy is not in scope
    item = protected_item(vm_prot["id"], policy["id"])
    del item["properties"]["lastBackupStatus"]
    doc = snapshot_doc([vm_ext, vm_sched, vm_prot, ext], recoveryservicesresources=[orphan, item, policy])
    assert judge(doc, "VMBK-EXT-001")["ext"].status == "unknown"
    sched = judge(doc, "VMBK-SCHED-001")["sched"]
    assert sched.status == "unknown" and "backup.weeklySlots was not collected" in sched.message
    assert judge(doc, "VMBK-PROT-002")["prot"].status == "unknown"


def test_outbound_8443_only_for_managed_disks() -> None:
    rows = network_rows()
    rows["nic"]["properties"]["networkSecurityGroup"]["id"] = rows["nsg"]["id"]
    nsg = copy.deepcopy(rows["nsg"])
    nsg["properties"]["securityRules"].append({"name": "Deny8443", "properties": {
        "priority": 300, "direction": "Outbound", "access": "Deny", "protocol": "*", "sourceAddressPrefix": "*",
        "sourcePortRange": "*", "destinationAddressPrefix": "*", "destinationPortRange": "8000-9000"}})
    managed = vm_row("managed", nics=[rows["nic"]["id"]])
    unmanaged = vm_row("unmanaged", managed=False, nics=[rows["nic"]["id"]])
    for vm in (managed, unmanaged):
        vm["location"] = rows["nic"]["location"]
    doc = snapshot_doc([managed, unmanaged, rows["nic"], nsg, rows["vnet"], rows["routetable"]])
    found = judge(doc, "VMBK-NET-002")
    assert statuses(found) == {"managed": "fail", "unmanaged": "notApplicable"}
    assert any("Deny8443" in e for e in found["managed"].evidence)
    assert judge(doc, "VMBK-NET-001")["managed"].status == "pass"   # 443 is outside 8000-9000


def test_same_resource_group_name_in_two_subscriptions_is_two_groups() -> None:
    policy = backup_policy_v1("At2", time="2018-01-24T02:00:00Z", zone="UTC")
    vms = [vm_row(f"a{i}") for i in range(3)] + [vm_row(f"b{i}") for i in range(3)]
    for vm in vms[3:]:
        vm["id"] = vm["id"].replace(SUB, "00000000-0000-0000-0000-000000000002")
        vm["subscriptionId"] = "00000000-0000-0000-0000-000000000002"
    items = [protected_item(v["id"], policy["id"]) for v in vms]
    found = judge(snapshot_doc(vms, recoveryservicesresources=[*items, policy]), "VMBK-SCHED-001",
                  ["maximumPerSlot=3"])
    assert {f.status for f in found.values()} == {"pass"}   # 3 + 3, not one group of 6


@pytest.mark.parametrize("policy_id", ["VMBK-NET-001", "VMBK-NET-002", "VMBK-PERF-001", "VMBK-PERF-002",
                                       "VMBK-DHCP-001"])
def test_checks_of_an_allocated_vm_do_not_apply_while_it_deallocates(policy_id: str) -> None:
    """These checks do not apply to a deallocated VM (backed up offline, without the extension); nor, since
    Compute calls Deallocating "transitional, ending in Deallocated" (the counterpart of Stopping, which
    VMBK-POWER-001 fails as stopped), to one caught deallocating. Running and stopped VMs stay judged."""
    doc = snapshot_doc([vm_row("deallocated", power="PowerState/deallocated"),
                        vm_row("deallocating", power="PowerState/deallocating"),
                        vm_row("stopping", power="PowerState/stopping")])
    found = statuses(judge(doc, policy_id))
    assert (found["deallocated"], found["deallocating"]) == ("notApplicable", "notApplicable")
    assert found["stopping"] != "notApplicable"
