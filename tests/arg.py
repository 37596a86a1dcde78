"""Builders for Azure Resource Graph rows in the shapes Azure really returns.

Bodies come from the REST examples in fixtures/rest-examples (copied from
Azure/azure-rest-api-specs); `to_arg` turns a REST body into an ARG row the way Resource
Graph does: lowercase `type` and `resourceGroup`, `subscriptionId` from the id.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from backup_preflight import snapshot
from backup_preflight.estate import build_estate

FIXTURES = Path(__file__).parent / "fixtures"
SUB = "00000000-0000-0000-0000-000000000001"


@cache
def _example(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "rest-examples" / f"{name}.json").read_text())


def rest_body(name: str) -> dict[str, Any]:
    """A fresh copy of the 200 response body of a REST example."""
    return copy.deepcopy(_example(name)["responses"]["200"]["body"])


def to_arg(body: dict[str, Any]) -> dict[str, Any]:
    row = copy.deepcopy(body)
    parts = row["id"].split("/")
    lowered = [p.lower() for p in parts]
    row["type"] = row["type"].lower()
    row["subscriptionId"] = parts[lowered.index("subscriptions") + 1]
    if "resourcegroups" in lowered:
        row["resourceGroup"] = parts[lowered.index("resourcegroups") + 1].lower()
    row.setdefault("tenantId", "72f988bf-86f1-41af-91ab-2d7cd011db47")
    return row


def rid(kind: str, name: str, rg: str = "RG-App", sub: str = SUB) -> str:
    provider = {
        "vm": "Microsoft.Compute/virtualMachines", "nic": "Microsoft.Network/networkInterfaces",
        "vnet": "Microsoft.Network/virtualNetworks", "nsg": "Microsoft.Network/networkSecurityGroups",
        "rt": "Microsoft.Network/routeTables", "avset": "Microsoft.Compute/availabilitySets",
        "sqlvm": "Microsoft.SqlVirtualMachine/sqlVirtualMachines",
    }[kind]
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{provider}/{name}"


def vm_row(name: str = "vm1", *, os: str = "Linux", power: str | None = "PowerState/running",
           provision: bool | None = True, nics: list[str] | None = None, rg: str = "RG-App",
           managed: bool = True, avset: str | None = None, tags: dict[str, str] | None = None) -> dict[str, Any]:
    """A VM row like Resource Graph returns it (see arg-data-model.md §2.1)."""
    config_key = "linuxConfiguration" if os == "Linux" else "windowsConfiguration"
    props: dict[str, Any] = {
        "vmId": f"uuid-{name}",
        "hardwareProfile": {"vmSize": "Standard_D2s_v3"},
        "storageProfile": {"osDisk": {"osType": os, "name": f"{name}_OsDisk",
                                      **({"managedDisk": {"storageAccountType": "Premium_LRS"}} if managed
                                         else {"vhd": {"uri": "https://x.blob.core.windows.net/v/d.vhd"}})}},
        "networkProfile": {"networkInterfaces": [{"id": n} for n in (nics or [])]},
        "provisioningState": "Succeeded",
    }
    if provision is not None:
        props["osProfile"] = {"computerName": name, config_key: {"provisionVMAgent": provision}}
    if power is not None:
        props["extended"] = {"instanceView": {"computerName": name, "osName": os.lower(),
                                              "powerState": {"code": power, "level": "Info",
                                                             "displayStatus": "VM " + power.split("/")[1]}}}
    if avset:
        props["availabilitySet"] = {"id": rid("avset", avset, rg).upper()}
    vm_id = rid("vm", name, rg)
    return {"id": vm_id, "name": name, "type": "microsoft.compute/virtualmachines", "location": "westeurope",
            "resourceGroup": rg.lower(), "subscriptionId": SUB, "tags": tags or {}, "properties": props}


def extension_row(vm_id: str, ext_type: str = "VMSnapshotLinux", state: str = "Succeeded",
                  version: str = "1.0") -> dict[str, Any]:
    body = rest_body("VirtualMachineExtension_Get_MaximumSet_Gen")
    return {"id": f"{vm_id}/extensions/{ext_type}", "name": ext_type,
            "type": "microsoft.compute/virtualmachines/extensions", "location": "westeurope",
            "subscriptionId": SUB, "resourceGroup": vm_id.split("/")[4].lower(),
            "properties": {**{k: v for k, v in body["properties"].items() if k != "instanceView"},
                           "publisher": "Microsoft.Azure.RecoveryServices", "type": ext_type,
                           "typeHandlerVersion": version, "provisioningState": state}}


def instance_view(vm_id: str, *, agent_version: str = "2.11.1.4", status: str = "Ready",
                  handler: tuple[str, str, str] | None = None) -> dict[str, Any]:
    """An instanceviews row built on the real VirtualMachine_Get_InstanceView example."""
    view = rest_body("VirtualMachine_Get_InstanceView")
    view["vmAgent"]["vmAgentVersion"] = agent_version
    view["vmAgent"]["statuses"][0]["displayStatus"] = status
    if handler:
        htype, hversion, hstatus = handler
        view["vmAgent"]["extensionHandlers"].append(
            {"type": htype, "typeHandlerVersion": hversion,
             "status": {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": hstatus}})
    return {"id": vm_id, "instanceView": view}


def backup_handler(view_row: dict[str, Any], *, linux: bool = True, version: str = "1.0.9117.0",
                   status: str = "Ready", code: str = "ProvisioningState/succeeded", level: str = "Info",
                   message: str | None = None, extension: tuple[str, str, str] | None = None) -> dict[str, Any]:
    """Add the backup extension as today's Azure reports it: the agent's handler in the instance view and,
    when `extension` = (code, level, message) is given, the instance view's extensions[] entry. No ARM row."""
    ext_type = "VMSnapshotLinux" if linux else "VMSnapshot"
    full = f"Microsoft.Azure.RecoveryServices.{ext_type}"
    view = view_row["instanceView"]
    handler_status: dict[str, Any] = {"code": code, "level": level, "displayStatus": status}
    if message is not None:
        handler_status["message"] = message
    view["vmAgent"]["extensionHandlers"].append({"type": full, "typeHandlerVersion": version,
                                                 "status": handler_status})
    if extension is not None:
        ecode, elevel, emessage = extension
        view["extensions"].append({"name": ext_type, "type": full, "typeHandlerVersion": version, "statuses": [
            {"code": ecode, "level": elevel, "displayStatus": "Provisioning " + ecode.split("/")[1],
             "message": emessage}]})
    return view_row


def snapshot_doc(resources: list[dict[str, Any]], **tables: list[dict[str, Any]] | None) -> dict[str, Any]:
    """A snapshot document; tables passed as None are left out (= not collected)."""
    doc_tables: dict[str, Any] = {"resources": resources}
    doc_tables.update({k: v for k, v in tables.items() if v is not None})
    return {"schemaVersion": 1, "collectedAt": "2026-11-20T06:00:00Z",
            "scope": {"subscriptions": [SUB]}, "tables": doc_tables, "errors": []}


def subscription_row(name: str | None, *, sub: str = SUB, tags: dict[str, Any] | None = None) -> dict[str, Any]:
    """A resourcecontainers subscription row as Resource Graph returns it: `name` is the display name."""
    return {"id": f"/subscriptions/{sub}", "name": name, "type": "microsoft.resources/subscriptions",
            "tenantId": "tenant-1", "kind": "", "location": "", "resourceGroup": "", "subscriptionId": sub,
            "managedBy": "", "sku": None, "plan": None, "tags": tags or {}, "identity": None, "zones": None,
            "properties": {"state": "Enabled", "managedByTenants": [], "managementGroupAncestorsChain": [
                {"displayName": "Tenant Root Group", "name": "tenant-1"}],
                "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "spendingLimit": "Off",
                                         "quotaId": "EnterpriseAgreement_2014-09-01"}}}


def resource_group_row(rg: str = "RG-App", *, sub: str = SUB, tags: dict[str, Any] | None = None) -> dict[str, Any]:
    """A resourcecontainers resource group row (lowercase resourceGroup, the name as created)."""
    return {"id": f"/subscriptions/{sub}/resourceGroups/{rg}", "name": rg,
            "type": "microsoft.resources/subscriptions/resourcegroups", "tenantId": "tenant-1", "kind": "",
            "location": "westeurope", "resourceGroup": rg.lower(), "subscriptionId": sub, "managedBy": "",
            "sku": None, "plan": None, "tags": tags or {}, "identity": None, "zones": None,
            "properties": {"provisioningState": "Succeeded"}}


def protected_item(vm_id: str, policy_id: str, *, status: str = "Completed") -> dict[str, Any]:
    """A recoveryservicesresources protected item, from the real Compute_ProtectedItem_Get example."""
    row = to_arg(rest_body("Compute_ProtectedItem_Get"))
    name = vm_id.rsplit("/", 1)[-1]
    row["id"] = row["id"].replace("iaasvm-1", name)
    row["properties"].update(sourceResourceId=vm_id.lower(), virtualMachineId=vm_id, policyId=policy_id,
                             friendlyName=name, lastBackupStatus=status)
    return row


def backup_policy_v1(name: str = "DailyPolicy", time: str = "2018-01-24T02:00:00Z",
                     zone: str = "Pacific Standard Time") -> dict[str, Any]:
    """The real V1 ProtectionPolicies_Get example (its id starts with /Subscriptions/)."""
    row = to_arg(rest_body("ProtectionPolicies_Get"))
    row["id"] = row["id"].replace("testPolicy1", name)
    row["name"] = name
    row["properties"]["schedulePolicy"]["scheduleRunTimes"] = [time]
    row["properties"]["timeZone"] = zone
    return row


def backup_policy_v2(name: str = "EnhancedPolicy", *, hourly: bool = False, time: str = "2018-01-24T10:00:00Z",
                     zone: str = "UTC") -> dict[str, Any]:
    """A V2 (Enhanced) policy in the shape of the spec's v2-Get-Policy / IaaS_v2_hourly examples."""
    row = backup_policy_v1(name, zone=zone)
    schedule: dict[str, Any] = {"schedulePolicyType": "SimpleSchedulePolicyV2"}
    if hourly:
        schedule.update(scheduleRunFrequency="Hourly", hourlySchedule={
            "interval": 4, "scheduleWindowStartTime": "2021-12-17T08:00:00Z", "scheduleWindowDuration": 16})
    else:
        schedule.update(scheduleRunFrequency="Daily", dailySchedule={"scheduleRunTimes": [time]})
    row["properties"].update(policyType="V2", schedulePolicy=schedule, snapshotConsistencyType="OnlyCrashConsistent")
    return row


def facts_by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Build the estate of a snapshot document: each VM's facts by VM name."""
    return {f["name"]: f for f in build_estate(snapshot.from_document(doc, "t")).vms}
