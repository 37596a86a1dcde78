"""The whole fact record of a VM (facts.schema.json is the contract policies and reports read), on a
rich and on a sparse Resource Graph row: every field, not only the one a scenario is about."""

from __future__ import annotations

from typing import Any

import pytest

from backup_preflight import snapshot
from backup_preflight.estate import build_estate
from backup_preflight.findings import Finding
from backup_preflight.policy.engine import evaluate
from backup_preflight.policy.loader import bundled_policy_dir, load_policies
from network_helpers import nsg, rule

from arg import SUB, extension_row, facts_by_name, instance_view, rest_body, rid, snapshot_doc, to_arg, vm_row

NIC_BASE = "/subscriptions/subid/resourceGroups/rg1/providers/Microsoft.Network"
SUBNET = f"{NIC_BASE}/virtualNetworks/rg1-vnet/subnets/default"


def judge(doc: dict[str, Any], policy_id: str) -> dict[str, Finding]:
    loaded = load_policies([bundled_policy_dir()])
    loaded.policies = [p for p in loaded.policies if p.id == policy_id]
    return {f.resource_name: f for f in evaluate(loaded, build_estate(snapshot.from_document(doc, "t")).vms)}


def nic_row(name: str, nsg_name: str, *, public_ip: bool = True) -> dict[str, Any]:
    """The real NetworkInterfaceGet example as an ARG row, renamed, with its own NSG."""
    row = to_arg(rest_body("NetworkInterfaceGet"))
    row["id"] = row["id"].replace("test-nic", name)
    row["name"] = name
    row["properties"]["networkSecurityGroup"]["id"] = f"{NIC_BASE}/networkSecurityGroups/{nsg_name}"
    if not public_ip:
        for config in row["properties"]["ipConfigurations"]:
            config["properties"].pop("publicIPAddress", None)
    return row


def test_a_full_row_gives_every_fact() -> None:
    nic, other = nic_row("web-nic", "web-nsg"), nic_row("backend-nic", "backend-nsg", public_ip=False)
    vm = vm_row("Web01", os="Windows", avset="AvSet-Web", tags={"Env": "prod"})
    vm["tags"]["CostCenter"] = 4711  # not a string: left out, with a reason
    # Listed second, but flagged primary: its id is spelled in upper case as some API versions do.
    vm["properties"]["networkProfile"]["networkInterfaces"] = [
        {"id": other["id"]}, {"id": nic["id"].upper(), "properties": {"primary": True}}]
    ext = extension_row(vm["id"].lower(), "VMSnapshot", "Succeeded", "1.0.9")
    f = facts_by_name(snapshot_doc([vm, nic, other, ext]))["Web01"]
    network = f.pop("network")
    assert f == {
        "id": vm["id"], "name": "Web01", "subscriptionId": SUB, "resourceGroup": "rg-app", "location": "westeurope",
        "tags": {"Env": "prod"}, "instanceViewCollected": False, "osType": "Windows", "managedDisks": True,
        "vmSize": "Standard_D2s_v3", "computerName": "Web01", "provisioningState": "Succeeded",
        "availabilitySet": "avset-web", "placementGroup": f"{SUB}/rg-app/avset-web", "powerState": "running",
        "agent": {"provisioned": True, "installed": True,
                  "installedFrom": "osProfile.windowsConfiguration.provisionVMAgent is true"},
        "extensions": [{"name": "VMSnapshot", "publisher": "Microsoft.Azure.RecoveryServices", "type": "VMSnapshot",
                        "typeHandlerVersion": "1.0.9", "provisioningState": "Succeeded"}],
        "backupExtension": {"name": "VMSnapshot", "type": "VMSnapshot", "provisioningState": "Succeeded",
                            "installed": True, "sources": ["armExtension"], "failed": False},
        "nics": [{"id": other["id"], "name": "backend-nic", "hasPublicIp": False, "subnetId": SUBNET,
                  "networkSecurityGroupId": f"{NIC_BASE}/networkSecurityGroups/backend-nsg"},
                 {"id": nic["id"].upper(), "name": "WEB-NIC", "hasPublicIp": True, "subnetId": SUBNET,
                  "networkSecurityGroupId": f"{NIC_BASE}/networkSecurityGroups/web-nsg"}],
        "sql": {"registered": False},
        "unknownReasons": {"tags.CostCenter": "the VM's resources row: tags.CostCenter is a number, "
                                              "expected a string"},
    }
    assert network.nic_ids == (nic["id"].upper(),)  # the flagged NIC carries the backup traffic


@pytest.mark.parametrize(("blocked", "status"), [("web-nsg", "fail"), ("backend-nsg", "pass")])
def test_outbound_is_judged_on_the_nic_flagged_primary(blocked: str, status: str) -> None:
    nic, other = nic_row("web-nic", "web-nsg"), nic_row("backend-nic", "backend-nsg")
    vm = vm_row("Web01")
    vm["properties"]["networkProfile"]["networkInterfaces"] = [
        {"id": other["id"], "properties": {"primary": False}}, {"id": nic["id"], "properties": {"primary": True}}]
    vnet = to_arg({"id": f"{NIC_BASE}/virtualNetworks/rg1-vnet", "name": "rg1-vnet",
                   "type": "Microsoft.Network/virtualNetworks", "location": "westeurope",
                   "properties": {"subnets": [{"id": SUBNET, "name": "default",
                                               "properties": {"addressPrefix": "172.20.2.0/24"}}]}})
    nsgs = [nsg(f"{NIC_BASE}/networkSecurityGroups/{name}",
                *([rule("DenyStorage", 100, "Deny", dest="Storage", port="443")] if name == blocked else []))
            for name in ("web-nsg", "backend-nsg")]
    found = judge(snapshot_doc([vm, nic, other, vnet, *nsgs]), "VMBK-NET-001")["Web01"]
    assert found.status == status
    if status == "fail":
        assert "blocked by NSG 'web-nsg' on the NIC rule 'DenyStorage'" in " ".join(found.evidence)


def test_without_a_flag_the_first_nic_carries_the_traffic() -> None:
    first, second = nic_row("first-nic", "nsg"), nic_row("second-nic", "nsg")
    vm = vm_row("vm1", nics=[first["id"], second["id"]])
    f = facts_by_name(snapshot_doc([vm, first, second]))["vm1"]
    assert f["network"].nic_ids == (first["id"],)
    assert [n["name"] for n in f["nics"]] == ["first-nic", "second-nic"]


def test_a_sparse_row_reads_the_id_the_os_profile_and_the_instance_view() -> None:
    """No subscriptionId, resourceGroup, location, tags, osType, vmSize, computerName or provisioningState
    on the row; the computer name and the power state come from the instance view."""
    vm = vm_row("Db01", power=None, managed=False, rg="Data-RG")
    for key in ("subscriptionId", "resourceGroup", "location", "tags"):
        del vm[key]
    p = vm["properties"]
    del p["storageProfile"]["osDisk"]["osType"], p["osProfile"]["computerName"], p["hardwareProfile"]
    del p["provisioningState"]
    view = instance_view(vm["id"].upper())
    view["instanceView"]["computerName"] = "db01.corp"
    view["instanceView"]["statuses"][1]["code"] = "PowerState/Deallocated"
    f = facts_by_name(snapshot_doc([vm], instanceviews=[view]))["Db01"]
    f.pop("network")
    f.pop("unknownReasons")  # the backup extension's: see test_extension_sources
    assert f == {
        "id": vm["id"], "name": "Db01", "subscriptionId": SUB, "resourceGroup": "data-rg", "location": "",
        "tags": {}, "instanceViewCollected": True, "osType": "Linux", "managedDisks": False,
        "computerName": "db01.corp", "placementGroup": f"{SUB}/data-rg", "powerState": "deallocated",
        "agent": {"provisioned": True, "installed": True, "version": "2.11.1.4", "status": "Ready",
                  "statusMessage": "GuestAgent is running and accepting new configurations.",
                  "installedFrom": "osProfile.linuxConfiguration.provisionVMAgent is true"},
        "extensions": [], "backupExtension": {}, "nics": [], "sql": {"registered": False},
    }


@pytest.mark.parametrize(("disk_os", "profile", "expected"), [
    ("windows", None, "Windows"), ("LINUX", None, "Linux"), ("Windows", "linuxConfiguration", "Windows"),
    (None, "windowsConfiguration", "Windows"), (None, "linuxConfiguration", "Linux"), (None, None, None),
])
def test_os_type_from_the_disk_else_the_os_profile(disk_os: str | None, profile: str | None,
                                                   expected: str | None) -> None:
    vm = vm_row("vm1", provision=None)
    disk = vm["properties"]["storageProfile"]["osDisk"]
    disk.pop("osType")
    if disk_os is not None:
        disk["osType"] = disk_os
    if profile is not None:
        vm["properties"]["osProfile"] = {"computerName": "vm1", profile: {}}
    assert facts_by_name(snapshot_doc([vm]))["vm1"].get("osType") == expected


def test_power_state_from_the_row_wins_and_other_codes_are_not_power_states() -> None:
    vm = vm_row("vm1", power="PowerState/Running")
    view = instance_view(vm["id"])
    view["instanceView"]["statuses"][1]["code"] = "PowerState/stopped"
    assert facts_by_name(snapshot_doc([vm], instanceviews=[view]))["vm1"]["powerState"] == "running"
    odd = vm_row("vm2", power=None)
    odd_view = instance_view(odd["id"])
    odd_view["instanceView"]["statuses"] = [{"code": "ProvisioningState/succeeded"}, "PowerState/running",
                                            {"code": 5}, {"code": "powerstate/Stopped"}]
    f = facts_by_name(snapshot_doc([odd], instanceviews=[odd_view]))["vm2"]
    assert f["powerState"] == "stopped"
    bare = vm_row("vm3", power="ProvisioningState/succeeded")
    assert "powerState" not in facts_by_name(snapshot_doc([bare]))["vm3"]
    assert judge(snapshot_doc([bare]), "VMBK-POWER-001")["vm3"].status == "unknown"


def test_sql_registration_copies_only_string_properties() -> None:
    vm = vm_row("sql1", os="Windows")
    sql = {"id": rid("sqlvm", "sql1"), "type": "Microsoft.SqlVirtualMachine/SqlVirtualMachines", "name": "sql1",
           "properties": {"virtualMachineResourceId": vm["id"].lower(), "sqlImageOffer": None,
                          "sqlServerLicenseType": "AHUB"}}
    assert facts_by_name(snapshot_doc([vm, sql]))["sql1"]["sql"] == {
        "registered": True, "id": sql["id"], "licenseType": "AHUB"}


def test_a_nic_row_not_collected_keeps_its_id_and_name_only() -> None:
    vm = vm_row("vm1", nics=[f"{NIC_BASE}/networkInterfaces/Gone-Nic"])
    assert facts_by_name(snapshot_doc([vm]))["vm1"]["nics"] == [
        {"id": f"{NIC_BASE}/networkInterfaces/Gone-Nic", "name": "Gone-Nic"}]


def test_a_nic_without_nsg_or_subnet_and_its_second_config_flagged_primary() -> None:
    nic = nic_row("nic1", "nsg")
    del nic["properties"]["networkSecurityGroup"]
    first, second = nic["properties"]["ipConfigurations"]
    first["properties"]["primary"], second["properties"]["primary"] = False, True
    second["properties"]["subnet"] = {"id": f"{NIC_BASE}/virtualNetworks/rg1-vnet/subnets/Other"}
    vm = vm_row("vm1", nics=[nic["id"]])
    [n] = facts_by_name(snapshot_doc([vm, nic]))["vm1"]["nics"]
    assert n == {"id": nic["id"], "name": "nic1", "hasPublicIp": True,  # the first config's public IP still counts
                 "subnetId": f"{NIC_BASE}/virtualNetworks/rg1-vnet/subnets/Other"}
    second["properties"]["subnet"] = "not a reference"
    nic["properties"]["networkSecurityGroup"] = "nsg"
    [n] = facts_by_name(snapshot_doc([vm, nic]))["vm1"]["nics"]
    assert n == {"id": nic["id"], "name": "nic1", "hasPublicIp": True}


def test_a_nic_without_a_flagged_ip_configuration_uses_its_first() -> None:
    nic = nic_row("nic1", "nsg", public_ip=False)
    first, second = nic["properties"]["ipConfigurations"]
    del first["properties"]["primary"], second["properties"]["primary"]
    second["properties"]["subnet"] = {"id": f"{NIC_BASE}/virtualNetworks/rg1-vnet/subnets/Other"}
    [n] = facts_by_name(snapshot_doc([vm_row("vm1", nics=[nic["id"]]), nic]))["vm1"]["nics"]
    assert n["subnetId"] == SUBNET and n["hasPublicIp"] is False


@pytest.mark.parametrize(("version", "installed"), [
    ("2.7", True), ("2.11.1.4", True), ("2", False), ("v2.7", False), ("2.7.1 ", False), ("Unknown", False),
])
def test_without_the_flag_only_a_dotted_version_shows_the_agent_installed(version: str, installed: bool) -> None:
    vm = vm_row("vm1", provision=None)
    f = facts_by_name(snapshot_doc([vm], instanceviews=[instance_view(vm["id"], agent_version=version)]))["vm1"]
    assert f["agent"].get("installed") is (True if installed else None)
    if installed:
        assert f["agent"]["installedFrom"] == (
            f"no provisionVMAgent; the instance view's agent reports version {version}")


_FLAG = "osProfile.linuxConfiguration.provisionVMAgent is "
_REPORTS = "; the instance view's agent reports version 2.11.1.4"


@pytest.mark.parametrize(("flag", "version", "installed", "source"), [
    (True, "2.11.1.4", True, _FLAG + "true"),
    (True, "Unknown", True, _FLAG + "true"),
    (True, None, True, _FLAG + "true"),
    # The flag is set at creation; an agent installed by hand later reports itself and leaves the flag false.
    (False, "2.11.1.4", True, _FLAG + "false" + _REPORTS),
    (False, "Unknown", False, _FLAG + "false"),
    (False, None, False, _FLAG + "false"),
    (None, "2.11.1.4", True, "no provisionVMAgent" + _REPORTS),
    (None, "Unknown", None, None),
    (None, None, None, None),
])
def test_an_agent_reporting_a_version_is_installed_else_the_flag_says_it(
        flag: bool | None, version: str | None, installed: bool | None, source: str | None) -> None:
    vm = vm_row("vm1", provision=flag)
    views = [] if version is None else [instance_view(vm["id"], agent_version=version)]
    agent = facts_by_name(snapshot_doc([vm], instanceviews=views))["vm1"]["agent"]
    assert (agent.get("installed"), agent.get("installedFrom")) == (installed, source)


def test_identity_fields_of_the_wrong_type_fall_back_with_a_reason() -> None:
    vm = vm_row("vm1")
    vm.update(subscriptionId=5, location=["westeurope"], tags="prod")
    f = facts_by_name(snapshot_doc([vm]))["vm1"]
    said = "the VM's resources row: "
    assert (f["subscriptionId"], f["location"], f["tags"]) == (SUB, "", {})  # the id still names the subscription
    assert {k: f["unknownReasons"][k] for k in ("subscriptionId", "location", "tags")} == {
        "subscriptionId": said + "subscriptionId is a number, expected a string",
        "location": said + "location is an array, expected a string",
        "tags": said + "tags is a string, expected an object"}


@pytest.mark.parametrize("where", ["vmAgent", "vmAgentVersion"])
@pytest.mark.parametrize("flag", [False, True])
def test_an_agent_whose_instance_view_cannot_be_read_is_not_taken_as_missing(where: str, flag: bool) -> None:
    """With provisionVMAgent false, only a version the instance view reports says the agent is there (installed by
    hand): when that part of the view is of the wrong type, `installed` is unknown with its reason, not false (it
    was a fail of VMBK-AGENT-001); a true flag still says installed. Found by the type-safety property test."""
    vm = vm_row("vm1", provision=flag)
    view = instance_view(vm["id"], agent_version="2.11.1.4")
    body = view["instanceView"]
    if where == "vmAgent":
        body["vmAgent"] = "Ready"
    else:
        body["vmAgent"]["vmAgentVersion"] = 2.11
    f = facts_by_name(snapshot_doc([vm], instanceviews=[view]))["vm1"]
    reasons = f["unknownReasons"]
    said = f"the VM's instanceviews row: {where} is {'a string' if where == 'vmAgent' else 'a number'}"
    assert reasons["agent.version"].startswith(said)
    assert "version" not in f["agent"]
    if flag:
        assert f["agent"]["installed"] is True and "agent.installed" not in reasons
    else:
        assert "installed" not in f["agent"] and reasons["agent.installed"] == reasons["agent.version"]
    if where == "vmAgent":
        assert reasons["agent.status"] == reasons["agent.statusMessage"] == reasons["agent.version"]
