"""How rows of the snapshot's tables join to a VM (estate/index.py): by ids in any letter case, by the
target a row names or else its parent, and only rows of the kind that concern the VM's own backup."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from backup_preflight import snapshot
from backup_preflight.errors import InputError
from backup_preflight.estate import build_estate
from backup_preflight.estate.index import Index, last_segment, parent_vm_id, vault_of

from arg import SUB, backup_policy_v1, extension_row, facts_by_name, protected_item, rid, snapshot_doc, vm_row


def test_a_broken_path_names_the_step_that_is_not_an_object() -> None:
    vm = vm_row("vm1")
    vm["properties"]["storageProfile"] = "Premium_LRS"
    vm["properties"]["osProfile"]["linuxConfiguration"] = 5
    f = facts_by_name(snapshot_doc([vm]))["vm1"]
    said = "the VM's resources row: "
    assert f["unknownReasons"]["managedDisks"] == said + "properties.storageProfile is a string, expected an object"
    assert f["unknownReasons"]["agent.provisioned"] == (
        said + "properties.osProfile.linuxConfiguration is a number, expected an object")
    assert "managedDisks" not in f and f["agent"] == {}


def test_null_on_the_way_is_not_reported_and_names_nothing() -> None:
    vm = vm_row("vm1")
    vm["properties"]["hardwareProfile"] = None
    vm["properties"]["storageProfile"]["osDisk"] = None
    f = facts_by_name(snapshot_doc([vm]))["vm1"]
    assert not {"vmSize", "managedDisks"} & set(f)
    assert f["osType"] == "Linux"  # from the osProfile, the disk not reporting it
    assert not {"vmSize", "managedDisks", "osType"} & set(f.get("unknownReasons", {}))


def backup_slot(collected_at: str | None, now: datetime | None = None, time: str = "02:00") -> list[str] | None:
    vm, policy = vm_row("vm1"), backup_policy_v1(time=f"2018-01-24T{time}:00Z", zone="W. Europe Standard Time")
    doc = snapshot_doc([vm], recoveryservicesresources=[protected_item(vm["id"], policy["id"]), policy])
    doc["collectedAt"] = collected_at
    [facts] = build_estate(snapshot.from_document(doc, "t"), now).vms
    return facts["backup"].get("slots")


@pytest.mark.parametrize(("collected_at", "slots"), [
    ("2026-07-15T06:00:00Z", ["00:00 UTC"]),        # CEST
    ("2026-07-15T06:00:00", ["00:00 UTC"]),         # no offset: UTC
    ("2026-01-15T06:00:00+01:00", ["01:00 UTC"]),   # CET
    ("2026-03-29T00:30:00Z", ["01:00 UTC"]),        # 29 March, before the switch at 01:00 UTC
    ("2026-03-29T23:30:00Z", ["00:00 UTC"]),        # already 30 March in Berlin
])
def test_daylight_saving_is_taken_at_collected_at_in_any_iso_spelling(collected_at: str, slots: list[str]) -> None:
    assert backup_slot(collected_at) == slots


def test_the_offset_of_collected_at_decides_the_local_date() -> None:
    """00:30 at +02:00 on 29 March is 22:30 UTC on 28 March: still winter in Berlin, so 12:00 is 11:00 UTC
    (read as 00:30 UTC it would be 29 March, summer time, 10:00 UTC)."""
    assert backup_slot("2026-03-29T00:30:00+02:00", time="12:00") == ["11:00 UTC"]
    assert backup_slot("2026-03-29T00:30:00Z", time="12:00") == ["10:00 UTC"]


def test_a_snapshot_without_collected_at_is_read_at_the_scans_clock() -> None:
    assert backup_slot(None, datetime(2026, 7, 1, tzinfo=UTC)) == ["00:00 UTC"]
    assert backup_slot(None) is None


@pytest.mark.parametrize("collected_at", ["15/07/2026", ""])
def test_an_unreadable_collected_at_is_an_input_error_not_the_scans_clock(collected_at: str) -> None:
    with pytest.raises(InputError) as caught:
        backup_slot(collected_at, datetime(2026, 7, 1, tzinfo=UTC))
    assert [(p.file, p.place) for p in caught.value.problems] == [("t", "/collectedAt")]


def test_guest_configuration_assignments_join_by_target_else_by_parent() -> None:
    vm1, vm2 = vm_row("vm1"), vm_row("vm2")
    by_target = {"id": f"/subscriptions/{SUB}/resourceGroups/other/providers/Microsoft.GuestConfiguration/"
                       "guestConfigurationAssignments/Dhcp",
                 "name": "Dhcp", "type": "Microsoft.GuestConfiguration/guestConfigurationAssignments",
                 "properties": {"targetResourceId": vm1["id"].upper(), "complianceStatus": "Compliant",
                                "lastComplianceStatusChecked": "2026-11-19T00:00:00Z"}}
    by_parent = {"id": f"{vm2['id'].lower()}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments/Base",
                 "type": "microsoft.guestconfiguration/guestconfigurationassignments",
                 "properties": {"targetResourceId": "", "complianceStatus": 5}}
    other_kind = {"id": f"{vm2['id']}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments/x/reports/1",
                  "type": "microsoft.guestconfiguration/guestconfigurationassignments/reports", "properties": {}}
    got = facts_by_name(snapshot_doc([vm1, vm2], guestconfigurationresources=[by_target, by_parent, other_kind]))
    assert got["vm1"]["machineConfiguration"] == [
        {"name": "Dhcp", "configurationName": "Dhcp", "complianceStatus": "Compliant",
         "lastChecked": "2026-11-19T00:00:00Z"}]
    assert got["vm2"]["machineConfiguration"] == [{"name": "Base", "configurationName": "Base"}]
    assert "machineConfiguration" not in facts_by_name(snapshot_doc([vm1]))["vm1"]  # table not collected


@pytest.mark.parametrize("name", ["extensions", "Extensions", "providers", "vm1"])
def test_a_vms_children_are_its_own_whatever_the_vm_is_called(name: str) -> None:
    """A VM may be called `extensions`: its extensions and assignments are still its own, not a VM id cut at
    its name (`parent_vm_id` once cut every id at the first `/extensions/`)."""
    vm, other = vm_row(name), vm_row("vm-other")
    ext = extension_row(vm["id"], "VMSnapshotLinux", state="Failed")
    assignment = {"id": f"{vm['id']}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments/Dhcp",
                  "type": "microsoft.guestconfiguration/guestconfigurationassignments", "name": "Dhcp",
                  "properties": {"complianceStatus": "NonCompliant"}}
    got = facts_by_name(snapshot_doc([vm, other, ext], guestconfigurationresources=[assignment]))
    assert [e["type"] for e in got[name]["extensions"]] == ["VMSnapshotLinux"]
    assert got[name]["machineConfiguration"] == [{"name": "Dhcp", "configurationName": "Dhcp",
                                                  "complianceStatus": "NonCompliant"}]
    assert got["vm-other"]["extensions"] == [] and got["vm-other"]["machineConfiguration"] == []


def test_the_vm_of_a_vms_own_id_or_of_an_id_under_no_vm() -> None:
    vm = rid("vm", "VM1")
    assert parent_vm_id(vm) == parent_vm_id(f"{vm}/extensions/AzureMonitorLinuxAgent") == vm.lower()
    arc = f"/subscriptions/{SUB}/resourceGroups/RG/providers/Microsoft.HybridCompute/machines/m1/extensions/x"
    assert parent_vm_id(arc) == arc.lower()


def test_a_recovery_services_id_outside_any_vault_is_its_own_vault_key() -> None:
    """An item or job whose id names no vault is never put in a vault with another such row."""
    odd = f"/subscriptions/{SUB}/resourceGroups/RG-Backup/providers/Other.Provider/things/t1/backupJobs/j1"
    assert vault_of(odd) == odd.lower()
    assert vault_of(f"{odd}/") == f"{odd}/".lower()


@pytest.mark.parametrize(("resource_id", "name"), [
    (rid("vm", "APP-BOX"), "APP-BOX"), (rid("vm", "vm1") + "/", "vm1"), ("vm1", "vm1")])
def test_a_resources_own_name_is_its_ids_last_segment(resource_id: str, name: str) -> None:
    assert last_segment(resource_id) == name


def test_a_job_naming_its_vm_by_a_friendly_name_that_is_not_text_is_set_aside() -> None:
    vault = f"/subscriptions/{SUB}/resourceGroups/RG-Backup/providers/Microsoft.RecoveryServices/vaults/rsv"
    job = {"id": f"{vault}/backupJobs/j1", "type": "microsoft.recoveryservices/vaults/backupjobs",
           "properties": {"jobType": "AzureIaaSVMJob", "operation": "Backup", "status": "Failed",
                          "entityFriendlyName": 5}}
    doc = snapshot_doc([vm_row("vm1")], recoveryservicesresources=[job])
    index = Index(snapshot.from_document(doc, "t"))
    assert dict(index.jobs_by_entity) == {} and dict(index.jobs_by_source) == {}


def sql_row(props: dict[str, Any]) -> dict[str, Any]:
    return {"id": rid("sqlvm", "sql1"), "type": "Microsoft.SqlVirtualMachine/sqlVirtualMachines", "name": "sql1",
            "properties": props}


@pytest.mark.parametrize(("props", "registered"), [
    ({"virtualMachineResourceId": "VM"}, True),
    ({"virtualMachineResourceId": ""}, False),
    ({"virtualMachineResourceId": 5}, False),
    ({}, False),
])
def test_a_sql_registration_joins_by_the_vm_it_names(props: dict[str, Any], registered: bool) -> None:
    vm = vm_row("sql1", os="Windows")
    if props.get("virtualMachineResourceId") == "VM":
        props = {"virtualMachineResourceId": vm["id"].upper()}
    assert facts_by_name(snapshot_doc([vm, sql_row(props)]))["sql1"]["sql"]["registered"] is registered


@pytest.mark.parametrize(("changes", "protected"), [
    ({}, True),
    ({"backupManagementType": None}, True),        # absent: an Azure VM item, as Resource Graph mostly has it
    ({"backupManagementType": "AZUREIAASVM"}, True),
    ({"backupManagementType": "AzureWorkload"}, False),  # a SQL-in-VM item names the VM too
    ({"sourceResourceId": None}, True),            # then virtualMachineId
    ({"sourceResourceId": "", "virtualMachineId": None}, False),
])
def test_protected_items_join_by_the_vm_they_back_up(changes: dict[str, Any], protected: bool) -> None:
    vm, policy = vm_row("vm1"), backup_policy_v1(zone="UTC")
    item = protected_item(vm["id"], policy["id"])
    for key, value in changes.items():
        if value is None:
            item["properties"].pop(key)
        else:
            item["properties"][key] = value
    b = facts_by_name(snapshot_doc([vm], recoveryservicesresources=[item, policy]))["vm1"]["backup"]
    assert b["protected"] is protected
    if not protected:
        assert b["state"] == "no protected item in any vault in scope"


def test_extensions_join_their_vm_by_the_id_in_any_case_and_other_types_do_not() -> None:
    vm = vm_row("vm1")
    ext = {"id": f"{vm['id'].upper()}/extensions/VMSnapshotLinux",
           "type": "Microsoft.Compute/virtualMachines/extensions", "name": "VMSnapshotLinux",
           "properties": {"publisher": "Microsoft.Azure.RecoveryServices", "type": "VMSnapshotLinux",
                          "provisioningState": "Succeeded"}}
    scale_set_ext = {**ext, "id": f"{vm['id']}Set/extensions/VMSnapshotLinux",
                     "type": "microsoft.compute/virtualmachinescalesets/extensions"}
    f = facts_by_name(snapshot_doc([vm, ext, scale_set_ext]))["vm1"]
    assert f["extensions"] == [{"name": "VMSnapshotLinux", "publisher": "Microsoft.Azure.RecoveryServices",
                                "type": "VMSnapshotLinux", "provisioningState": "Succeeded"}]
    assert f["backupExtension"]["sources"] == ["armExtension"]


def test_the_estate_lists_vms_by_id_whatever_the_case_the_tables_collected_and_the_errors() -> None:
    vms = [vm_row("b-vm"), vm_row("A-vm"), vm_row("c-vm", rg="aa"), vm_row("ba-vm"), vm_row("b_vm")]
    error = {"scope": f"/subscriptions/{SUB}", "table": "guestfacts", "message": "probe timed out"}
    doc = snapshot_doc(vms, recoveryservicesresources=[], metrics=None, guestfacts=[])
    doc["errors"] = [error]
    estate = build_estate(snapshot.from_document(doc, "t"))
    # By lowercase id: resourcegroups/aa/... first, then a-vm, b-vm, b_vm, ba-vm ('_' sorts between '-' and
    # lower-case letters; compared in upper case it would sort after the letters).
    assert [f["name"] for f in estate.vms] == ["c-vm", "A-vm", "b-vm", "b_vm", "ba-vm"]
    assert estate.collected_tables == ["guestfacts", "recoveryservicesresources", "resources"]
    assert estate.errors == [error]
