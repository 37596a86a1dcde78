"""The VM fact record built from real Resource Graph shapes."""

import json

import pytest

from backup_preflight.policy.engine import evaluate
from backup_preflight.policy.loader import bundled_policy_dir, load_policies

from arg import (
    SUB,
    backup_policy_v1,
    backup_policy_v2,
    extension_row,
    facts_by_name,
    instance_view,
    protected_item,
    rest_body,
    rid,
    snapshot_doc,
    to_arg,
    vm_row,
)

CATALOG = load_policies([bundled_policy_dir()])


def test_identity_power_agent_and_missing_extended() -> None:
    vm = vm_row("vm1", os="Windows", tags={"Env": "prod"})
    bare = vm_row("vm2", power=None, provision=None)
    views = [instance_view(vm["id"].upper(), agent_version="2.7.1")]
    got = facts_by_name(snapshot_doc([vm, bare], instanceviews=views))
    f = got["vm1"]
    assert (f["osType"], f["powerState"], f["location"], f["resourceGroup"]) == (
        "Windows", "running", "westeurope", "rg-app")
    assert f["agent"] == {"provisioned": True, "version": "2.7.1", "status": "Ready",
                          "statusMessage": "GuestAgent is running and accepting new configurations.",
                          "installed": True,
                          "installedFrom": "osProfile.windowsConfiguration.provisionVMAgent is true"}
    assert f["tags"] == {"Env": "prod"} and f["managedDisks"] is True
    g = got["vm2"]
    assert "powerState" not in g and g["agent"] == {} and g["instanceViewCollected"] is False


def test_power_state_falls_back_to_instance_view() -> None:
    vm = vm_row("vm1", power=None)
    view = instance_view(vm["id"])
    view["instanceView"]["statuses"][1]["code"] = "PowerState/stopped"
    assert facts_by_name(snapshot_doc([vm], instanceviews=[view]))["vm1"]["powerState"] == "stopped"


OS_TYPE_FIELD = "properties.storageProfile.osDisk.osType"


@pytest.mark.parametrize("os_type", ["WindowsServer", "Win", ""])
def test_an_os_type_neither_windows_nor_linux_is_unknown_with_its_reason(os_type: str) -> None:
    """It was read as Linux: a Windows VM with an old agent passed VMBK-AGENT-003 on Linux's minimum."""
    vm = vm_row("vm1", os="Windows")
    vm["properties"]["storageProfile"]["osDisk"]["osType"] = os_type
    view = instance_view(vm["id"], agent_version="2.2.53.1")  # Linux's minimum, far below Windows'
    facts = facts_by_name(snapshot_doc([vm], instanceviews=[view]))["vm1"]
    assert "osType" not in facts
    assert facts["unknownReasons"]["osType"] == (
        f"the VM's resources row: {OS_TYPE_FIELD} is {os_type!r}, expected Windows or Linux")
    [agent] = [f for f in evaluate(CATALOG, [facts]) if f.policy_id == "VMBK-AGENT-003"]
    assert agent.status == "unknown"


@pytest.mark.parametrize("os_type", ["WINDOWS", "windows", "Linux", "LINUX"])
def test_an_os_type_is_read_in_any_case(os_type: str) -> None:
    vm = vm_row("vm1", os="Windows")
    vm["properties"]["storageProfile"]["osDisk"]["osType"] = os_type
    facts = facts_by_name(snapshot_doc([vm]))["vm1"]
    assert facts["osType"] == os_type.capitalize() and "osType" not in facts.get("unknownReasons", {})


def test_the_os_profile_stands_in_only_for_an_absent_os_type() -> None:
    """A wrong-typed osType (or OS disk) made the reason say unknown while osProfile said Windows."""
    for value, fact in ((None, "Windows"), (5, None), (["Windows"], None)):
        vm = vm_row("vm1", os="Windows")
        vm["properties"]["storageProfile"]["osDisk"]["osType"] = value
        facts = facts_by_name(snapshot_doc([vm]))["vm1"]
        assert facts.get("osType") == fact and ("osType" in facts.get("unknownReasons", {})) == (fact is None)
    vm = vm_row("vm1", os="Windows")
    vm["properties"]["storageProfile"] = "broken"
    facts = facts_by_name(snapshot_doc([vm]))["vm1"]
    assert "osType" not in facts and "properties.storageProfile is a string" in facts["unknownReasons"]["osType"]


@pytest.mark.parametrize(("code", "reason"), [
    (5, "properties.extended.instanceView.powerState.code is a number, expected a string"),
    ("running", "properties.extended.instanceView.powerState.code is 'running', expected PowerState/<state>"),
])
def test_a_malformed_power_state_of_the_vm_row_is_unknown_not_the_instance_views(code: object, reason: str) -> None:
    """The instance view stood in for it while the reason said it was unknown."""
    vm = vm_row("vm1")
    vm["properties"]["extended"]["instanceView"]["powerState"]["code"] = code
    view = instance_view(vm["id"])
    view["instanceView"]["statuses"][1]["code"] = "PowerState/stopped"
    facts = facts_by_name(snapshot_doc([vm], instanceviews=[view]))["vm1"]
    assert "powerState" not in facts and facts["unknownReasons"]["powerState"] == f"the VM's resources row: {reason}"


def test_a_malformed_computer_name_of_the_vm_row_is_unknown_not_the_instance_views() -> None:
    vm = vm_row("vm1")
    vm["properties"]["osProfile"]["computerName"] = ["vm1"]
    facts = facts_by_name(snapshot_doc([vm], instanceviews=[instance_view(vm["id"])]))["vm1"]
    assert "computerName" not in facts and "computerName is an array" in facts["unknownReasons"]["computerName"]
    del vm["properties"]["osProfile"]["computerName"]  # absent: the instance view's name stands in
    assert facts_by_name(snapshot_doc([vm], instanceviews=[instance_view(vm["id"])]))["vm1"]["computerName"]


def test_backup_extension_joins_rows_and_instance_view_handler() -> None:
    vm = vm_row("vm1")
    ext = extension_row(vm["id"].lower(), "VMSnapshotLinux", "Failed")
    view = instance_view(vm["id"], handler=("Microsoft.Azure.RecoveryServices.VMSnapshotLinux", "1.0.9117.0",
                                            "Not Ready"))
    f = facts_by_name(snapshot_doc([vm, ext], instanceviews=[view]))["vm1"]
    assert f["backupExtension"] == {
        "installed": True, "sources": ["armExtension", "agentHandler"], "name": "VMSnapshotLinux",
        "type": "VMSnapshotLinux", "provisioningState": "Failed", "handlerVersion": "1.0.9117.0",
        "handlerStatus": "Not Ready", "handlerCode": "ProvisioningState/succeeded", "handlerLevel": "Info",
        "failed": True, "failedSource": "armExtension",
        "failure": "the ARM extension resource is in provisioningState Failed"}
    # Neither an ARM resource nor an instance view: whether the platform installed it is not known.
    assert facts_by_name(snapshot_doc([vm]))["vm1"]["backupExtension"] == {}


def test_protection_v1_schedule_with_mixed_case_ids() -> None:
    vm = vm_row("vm1")
    policy = backup_policy_v1(time="2018-01-24T02:00:00Z", zone="Pacific Standard Time")
    assert policy["id"].startswith("/Subscriptions/")
    item = protected_item(vm["id"], policy["id"].lower(), status="Failed")
    f = facts_by_name(snapshot_doc([vm], recoveryservicesresources=[item, policy]))["vm1"]
    b = f["backup"]
    assert b["protected"] is True and b["lastBackupStatus"] == "Failed"
    assert b["vault"] == "PySDKBackupTestRsVault"
    assert (b["policyType"], b["frequency"], b["scheduleTime"], b["slots"]) == (
        "V1", "Daily", "02:00", ["10:00 UTC"])
    assert b["scheduleHourUtc"] == 10  # 02:00 PST on 2026-11-20 is 10:00 UTC


def test_protection_v2_daily_and_hourly() -> None:
    daily = backup_policy_v2("Daily2", time="2018-01-24T23:30:00Z", zone="W. Europe Standard Time")
    hourly = backup_policy_v2("Hourly2", hourly=True)
    vm1, vm2 = vm_row("vm1"), vm_row("vm2")
    items = [protected_item(vm1["id"], daily["id"]), protected_item(vm2["id"], hourly["id"])]
    got = facts_by_name(snapshot_doc([vm1, vm2], recoveryservicesresources=[*items, daily, hourly]))
    assert got["vm1"]["backup"]["slots"] == ["22:30 UTC"]
    assert got["vm1"]["backup"]["scheduleHourUtc"] == 22
    assert got["vm1"]["backup"]["policyType"] == "V2"
    assert got["vm2"]["backup"]["slots"] == ["08:00 UTC", "12:00 UTC", "16:00 UTC", "20:00 UTC"]
    assert got["vm2"]["backup"]["frequency"] == "Hourly"


def test_unprotected_versus_not_collected() -> None:
    vm = vm_row("vm1")
    assert facts_by_name(snapshot_doc([vm], recoveryservicesresources=[]))["vm1"]["backup"] == {
        "protected": False, "state": "no protected item in any vault in scope"}
    assert "backup" not in facts_by_name(snapshot_doc([vm]))["vm1"]


def test_sql_registration_guest_facts_assignments_and_pressure() -> None:
    vm = vm_row("sql1", os="Windows", avset="AvSet-SQL")
    sql = {"id": rid("sqlvm", "sql1"), "type": "microsoft.sqlvirtualmachine/sqlvirtualmachines",
           "name": "sql1", "subscriptionId": SUB, "resourceGroup": "rg-app", "location": "westeurope",
           "properties": {"virtualMachineResourceId": vm["id"].upper(), "sqlImageOffer": "SQL2019-WS2019",
                          "sqlServerLicenseType": "PAYG"}}
    policy = backup_policy_v1(time="2018-01-24T02:00:00Z", zone="UTC")
    item = protected_item(vm["id"], policy["id"])
    guest = {"id": vm["id"], "collectedAt": "2026-11-20T05:00:00Z",
             "facts": {"dhcpEnabled": False, "useVssCopyBackup": True, "unrelated": 1}}
    assignment = {"id": f"{vm['id']}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments/Dhcp",
                  "name": "Dhcp", "type": "microsoft.guestconfiguration/guestconfigurationassignments",
                  "properties": {"complianceStatus": "NonCompliant"}}
    metrics = [{"id": vm["id"], "name": "Percentage CPU", "data": [
                   {"timeStamp": "2026-11-19T02:00:00Z", "maximum": 97.5},
                   {"timeStamp": "2026-11-19T04:00:00Z", "maximum": 99.9},
                   {"timeStamp": "2026-11-18T02:00:00Z", "maximum": 40.0}]},
               {"id": vm["id"], "name": "Available Memory Percentage", "data": [
                   {"timeStamp": "2026-11-19T02:00:00Z", "average": 30.0, "minimum": 12.5}]}]
    f = facts_by_name(snapshot_doc([vm, sql], recoveryservicesresources=[item, policy], guestfacts=[guest],
                              guestconfigurationresources=[assignment], metrics=metrics))["sql1"]
    assert f["sql"] == {"registered": True, "id": sql["id"], "imageOffer": "SQL2019-WS2019", "licenseType": "PAYG"}
    assert f["guest"] == {"dhcpEnabled": False, "useVssCopyBackup": True, "collectedAt": "2026-11-20T05:00:00Z"}
    assert f["machineConfiguration"] == [
        {"name": "Dhcp", "configurationName": "Dhcp", "complianceStatus": "NonCompliant"}]
    assert f["pressure"] == {"backupHourUtc": 2, "backupHoursUtc": [2, 3], "cpuPeakPercent": 97.5,
                             "memoryPeakPercent": 87.5, "samples": 3}
    assert f["availabilitySet"] == "avset-sql"
    assert f["placementGroup"] == f"{SUB}/rg-app/avset-sql"


def test_nics_from_the_real_nic_example() -> None:
    nic = to_arg(rest_body("NetworkInterfaceGet"))
    vm = vm_row("vm1", nics=[nic["id"].upper()])
    [n] = facts_by_name(snapshot_doc([vm, nic]))["vm1"]["nics"]
    assert n["name"] == "TEST-NIC" and n["hasPublicIp"] is True
    assert n["subnetId"].endswith("/virtualNetworks/rg1-vnet/subnets/default")
    assert n["networkSecurityGroupId"].endswith("/networkSecurityGroups/nsg")


def test_a_nic_list_of_the_wrong_type_leaves_the_nics_unknown_not_empty() -> None:
    """CI drew this: `networkInterfaces` wrapped in an object gave `nics: []` beside its reason, a claim
    that the VM has no NICs. An unreadable list leaves the fact absent; a missing list is no NICs."""
    nic = to_arg(rest_body("NetworkInterfaceGet"))
    wrapped = vm_row("vm1", nics=[nic["id"]])
    wrapped["properties"]["networkProfile"]["networkInterfaces"] = {"value": [{"id": nic["id"]}]}
    bare = vm_row("vm2")
    del bare["properties"]["networkProfile"]["networkInterfaces"]
    facts = facts_by_name(snapshot_doc([wrapped, bare, nic]))
    assert "nics" not in facts["vm1"]
    assert facts["vm1"]["unknownReasons"]["nics"] == (
        "the VM's resources row: properties.networkProfile.networkInterfaces is an object, expected an array")
    assert facts["vm2"]["nics"] == [] and "nics" not in facts["vm2"].get("unknownReasons", {})


def test_pressure_of_an_hourly_policy_is_judged_in_every_hour_a_backup_starts() -> None:
    """Window 08:00 UTC, every 4 h for 16 h: backups are scheduled at 08, 12, 16 and 20 UTC, and each may start
    up to 2 hours later. A peak at 16 UTC counts, and one at 21 UTC; one at 10 UTC (between two starts) and one
    at 00 UTC (outside the window) do not."""
    vm = vm_row("h1")
    policy = backup_policy_v2(hourly=True, zone="UTC")
    item = protected_item(vm["id"], policy["id"])
    cpu = [{"timeStamp": f"2026-11-19T{hour:02}:00:00Z", "maximum": peak}
           for hour, peak in ((0, 99.0), (8, 20.0), (10, 98.0), (12, 30.0), (16, 95.5), (20, 10.0))]
    memory = [{"timeStamp": "2026-11-19T21:00:00Z", "minimum": 4.0},
              {"timeStamp": "2026-11-19T22:00:00Z", "minimum": 1.0}]
    metrics = [{"id": vm["id"], "name": "Percentage CPU", "data": cpu},
               {"id": vm["id"], "name": "Available Memory Percentage", "data": memory}]
    f = facts_by_name(snapshot_doc([vm], recoveryservicesresources=[item, policy], metrics=metrics))["h1"]
    assert f["backup"]["slots"] == ["08:00 UTC", "12:00 UTC", "16:00 UTC", "20:00 UTC"]
    assert f["pressure"] == {"backupHourUtc": 8, "backupHoursUtc": [8, 9, 12, 13, 16, 17, 20, 21],
                             "cpuPeakPercent": 95.5,
                             "memoryPeakPercent": 96.0, "samples": 5}


def test_vms_of_one_resource_group_share_its_name_and_their_subscriptions_id() -> None:
    # A scan keeps these in every finding of every VM: one copy each, not one per VM (docs/performance.md).
    rows = [vm_row(f"vm{i}", rg="RG-App" if i % 2 else "rg-app") for i in range(4)]
    doc = json.loads(json.dumps(snapshot_doc(rows)))  # every string its own object, as decoded from a file
    facts = list(facts_by_name(doc).values())
    assert {f["resourceGroup"] for f in facts} == {"rg-app"}
    assert len({id(f["resourceGroup"]) for f in facts}) == len({id(f["subscriptionId"]) for f in facts}) == 1


@pytest.mark.parametrize(("row", "view", "fact", "reason"), [
    ("PowerState/unknown", "PowerState/running", "running", None),
    ("PowerState/unknown", None, None, "the VM's resources row: properties.extended.instanceView.powerState.code "
                                      "is 'PowerState/unknown': Azure does not know the power state"),
    ("PowerState/Unknown", "PowerState/unknown", None, "the VM's resources row: properties.extended.instanceView"
                                                       ".powerState.code is 'PowerState/Unknown': Azure does not "
                                                       "know the power state"),
    (None, "PowerState/unknown", None, "the VM's instanceviews row: statuses[].code is 'PowerState/unknown': "
                                       "Azure does not know the power state"),
    ("PowerState/running", "PowerState/unknown", "running", None),
])
def test_a_power_state_azure_calls_unknown_is_no_state(row: str | None, view: str | None, fact: str | None,
                                                        reason: str | None) -> None:
    """PowerState/unknown (a value of Compute's enum) passed VMBK-POWER-001 as 'not stopped' and made the checks
    of running VMs not applicable; it is unknown unless the other source knows the state."""
    vm = vm_row("vm1", power=row)
    views = []
    if view is not None:
        views = [instance_view(vm["id"])]
        views[0]["instanceView"]["statuses"][1]["code"] = view
    facts = facts_by_name(snapshot_doc([vm], instanceviews=views))["vm1"]
    assert facts.get("powerState") == fact
    assert facts.get("unknownReasons", {}).get("powerState") == reason
    [power] = [f for f in evaluate(CATALOG, [facts]) if f.policy_id == "VMBK-POWER-001"]
    assert power.status == ("pass" if fact else "unknown")
