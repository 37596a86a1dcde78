"""A small estate in Resource Graph shapes and what-if changes in the shapes `az … what-if` prints.

Estate: VNet vnet-app with subnet snet-app (NSG nsg-app, route table rt-app) holding vm1..vm3, and
subnet snet-db (no NSG, no route table) holding vmdb. Rows come from the REST examples through
`arg.to_arg`, as the other estate tests build theirs.

What-if changes follow `WhatIfChange` (Resources API 2024-03-01) as `--no-pretty-print` serialises
it: `resourceId`, `changeType`, `before`, `after` (the full resource body with `apiVersion`, `id`,
`name`, `type`), `delta` (`path`, `propertyChangeType`, `before`, `after`, `children`, array items
with their index as `path`), `unsupportedReason`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from backup_preflight import snapshot

from arg import SUB, extension_row, instance_view, rest_body, rid, snapshot_doc, to_arg, vm_row

WHATIF_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "whatif"
NET = f"/subscriptions/{SUB}/resourceGroups/RG-App/providers/Microsoft.Network"
NSG_ID = f"{NET}/networkSecurityGroups/nsg-app"
RT_ID = f"{NET}/routeTables/rt-app"
VNET_ID = f"{NET}/virtualNetworks/vnet-app"
SNET_APP = f"{VNET_ID}/subnets/snet-app"
SNET_DB = f"{VNET_ID}/subnets/snet-db"
APP_VMS = ("vm1", "vm2", "vm3")
API = "2024-05-01"


def nsg_row() -> dict[str, Any]:
    """The NetworkSecurityGroupGet example (one inbound rule, the six default rules) as nsg-app."""
    body = rest_body("NetworkSecurityGroupGet")
    text = json.dumps(body).replace(body["id"], NSG_ID)
    row = to_arg(json.loads(text))
    row["name"] = "nsg-app"
    return row


def route_table_row() -> dict[str, Any]:
    """The RouteTableGet example (route1 10.0.3.0/24 → VirtualNetworkGateway) as rt-app."""
    body = rest_body("RouteTableGet")
    row = to_arg(json.loads(json.dumps(body).replace(body["id"], RT_ID)))
    row["name"] = "rt-app"
    return row


def subnet(sid: str, prefix: str, nsg: str | None = None, rt: str | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {"provisioningState": "Succeeded", "addressPrefix": prefix,
                         "privateEndpointNetworkPolicies": "Disabled"}
    if nsg:
        p["networkSecurityGroup"] = {"id": nsg}
    if rt:
        p["routeTable"] = {"id": rt}
    return {"name": sid.rsplit("/", 1)[-1], "id": sid, "type": "Microsoft.Network/virtualNetworks/subnets",
            "properties": p}


def vnet_row() -> dict[str, Any]:
    # Resource Graph spells this VNet's ids `resourcegroups`, as estates often do: joins must ignore case.
    return {"id": VNET_ID.replace("resourceGroups", "resourcegroups"), "name": "vnet-app",
            "type": "microsoft.network/virtualnetworks", "location": "westeurope", "resourceGroup": "rg-app",
            "subscriptionId": SUB, "tags": None,
            "properties": {"provisioningState": "Succeeded", "addressSpace": {"addressPrefixes": ["10.1.0.0/16"]},
                           "subnets": [subnet(SNET_APP, "10.1.1.0/24", NSG_ID, RT_ID),
                                       subnet(SNET_DB, "10.1.2.0/24")]}}


def nic_row(name: str, subnet_id: str) -> dict[str, Any]:
    """The NetworkInterfaceGet example, one primary IP configuration in `subnet_id`, no NIC NSG, no public IP."""
    body = rest_body("NetworkInterfaceGet")
    nic_id = rid("nic", name)
    config = body["properties"]["ipConfigurations"][0]
    config["id"] = f"{nic_id}/ipConfigurations/ipconfig1"
    config["properties"]["subnet"] = {"id": subnet_id}
    del config["properties"]["publicIPAddress"]
    body["properties"]["ipConfigurations"] = [config]
    body["properties"].pop("networkSecurityGroup", None)
    body.update(id=nic_id, name=name, type="Microsoft.Network/networkInterfaces")
    return to_arg(body)


def estate_doc() -> dict[str, Any]:
    """Four healthy running VMs with agents and the backup extension."""
    resources = [vnet_row(), nsg_row(), route_table_row()]
    views = []
    for name, sid in [*((n, SNET_APP) for n in APP_VMS), ("vmdb", SNET_DB)]:
        nic = nic_row(f"nic-{name}", sid)
        vm = vm_row(name, nics=[nic["id"]])
        resources += [nic, vm, extension_row(vm["id"])]
        views.append(instance_view(vm["id"], handler=("Microsoft.Azure.RecoveryServices.VMSnapshotLinux",
                                                      "1.0.9", "Ready")))
    return snapshot_doc(resources, instanceviews=views)


def estate() -> snapshot.Snapshot:
    return snapshot.from_document(estate_doc(), "estate")


def without_view(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """The document without the instance view of the VM `name`, so that provisionVMAgent alone says whether its
    agent is installed (an agent reporting a version says it is, whatever the flag)."""
    vm = next(r for r in doc["tables"]["resources"] if r["name"] == name)
    doc["tables"]["instanceviews"] = [v for v in doc["tables"]["instanceviews"] if v["id"] != vm["id"]]
    return doc


# ------------------------------------------------------------------ what-if shapes


def change(change_type: str, resource_id: str, *, before: dict[str, Any] | None = None,
           after: dict[str, Any] | None = None, delta: list[dict[str, Any]] | None = None,
           reason: str | None = None) -> dict[str, Any]:
    return {"after": after, "before": before, "changeType": change_type, "delta": delta, "deploymentId": None,
            "identifiers": None, "resourceId": resource_id, "symbolicName": None, "unsupportedReason": reason}


def az_output(*changes: dict[str, Any]) -> dict[str, Any]:
    """`az deployment group what-if --no-pretty-print` output."""
    return {"changes": list(changes), "diagnostics": None, "error": None, "potentialChanges": None,
            "status": "Succeeded"}


def body(resource_id: str, rtype: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A what-if `before`/`after` body: the resource as the provider would return it, with apiVersion."""
    return {"apiVersion": API, "id": resource_id, "name": resource_id.rsplit("/", 1)[-1], "type": rtype,
            "properties": properties, **extra}


def rule_props(priority: int, access: str = "Deny", dest: str = "Storage", port: str = "443") -> dict[str, Any]:
    return {"protocol": "Tcp", "sourcePortRange": "*", "destinationPortRange": port, "sourceAddressPrefix": "*",
            "destinationAddressPrefix": dest, "access": access, "priority": priority, "direction": "Outbound"}


def rule_body(name: str, priority: int, **kw: Any) -> dict[str, Any]:
    return body(f"{NSG_ID}/securityRules/{name}", "Microsoft.Network/networkSecurityGroups/securityRules",
                rule_props(priority, **kw))


def route_body(name: str, prefix: str, hop: str) -> dict[str, Any]:
    return body(f"{RT_ID}/routes/{name}", "Microsoft.Network/routeTables/routes",
                {"addressPrefix": prefix, "nextHopType": hop})


def nsg_modify_with_rule(name: str, priority: int) -> dict[str, Any]:
    """An NSG Modify whose `after` is the full NSG as a template states it: custom rules only, no default rules."""
    current = nsg_row()
    before = body(NSG_ID, "Microsoft.Network/networkSecurityGroups",
                  copy.deepcopy(current["properties"]), location="westus")
    after = copy.deepcopy(before)
    del after["properties"]["defaultSecurityRules"]
    new_rule = {"name": name, "id": f"{NSG_ID}/securityRules/{name}",
                "type": "Microsoft.Network/networkSecurityGroups/securityRules", "properties": rule_props(priority)}
    after["properties"]["securityRules"].insert(0, new_rule)
    delta = [{"path": "properties.securityRules", "propertyChangeType": "Array", "before": None, "after": None,
              "children": [{"path": "0", "propertyChangeType": "Create", "before": None, "after": new_rule,
                            "children": None}]}]
    return change("Modify", NSG_ID, before=before, after=after, delta=delta)


def new_vm(name: str, *, provision: bool, subnet_id: str = SNET_APP) -> list[dict[str, Any]]:
    """Create of a NIC and a VM as a template declares them (no `extended`, no instance view yet)."""
    nic = nic_row(f"nic-{name}", subnet_id)
    nic_after = body(nic["id"], "Microsoft.Network/networkInterfaces", nic["properties"], location="westeurope")
    vm_props = copy.deepcopy(vm_row(name, nics=[nic["id"]], provision=provision, power=None)["properties"])
    vm_after = body(rid("vm", name), "Microsoft.Compute/virtualMachines", vm_props, location="West Europe")
    return [change("Create", nic["id"], after=nic_after), change("Create", vm_after["id"], after=vm_after)]


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc))
    return path
