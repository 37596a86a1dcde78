"""The fact record of one VM, built from its ARG row and the rows joined to it.

Absent keys mean "not collected" and make conditions on them unknown; that is why values
are only set when their source was really there (for example agent.version only from an
instance view, agent.provisioned only from an osProfile).
"""

from __future__ import annotations

from typing import Any

from backup_preflight.estate.backup import backup_facts
from backup_preflight.estate.guest import guest_facts, machine_configuration, pressure_facts
from backup_preflight.estate.index import Index, Row, last_segment, props, row_name, segment_after, strings
from backup_preflight.estate.network_facts import NetworkFacts, NetworkModel

BACKUP_PUBLISHER = "microsoft.azure.recoveryservices"
BACKUP_EXTENSION_TYPES = ("vmsnapshot", "vmsnapshotlinux")


def vm_facts(row: Row, index: Index, network: NetworkModel) -> dict[str, Any]:
    """Everything a policy may ask about one VM (see facts.schema.json)."""
    vm_id = row["id"].lower()
    p = props(row)
    view = index.instance_views.get(vm_id)
    facts: dict[str, Any] = {
        "id": row["id"],
        "name": row_name(row),
        "subscriptionId": row.get("subscriptionId") or segment_after(row["id"], "subscriptions"),
        "resourceGroup": (row.get("resourceGroup") or segment_after(row["id"], "resourcegroups")).lower(),
        "location": row.get("location") or "",
        "tags": row["tags"] if isinstance(row.get("tags"), dict) else {},
        "instanceViewCollected": view is not None,
    }
    _identity(facts, p, view)
    power = _power_state(p, view)
    if power:
        facts["powerState"] = power
    facts["agent"] = _agent(p, view)
    extensions = index.extensions.get(vm_id, [])
    facts["extensions"] = [_extension(e) for e in extensions]
    facts["backupExtension"] = _backup_extension(extensions, view)
    refs = [n for n in _list(p.get("networkProfile"), "networkInterfaces")
            if isinstance(n, dict) and isinstance(n.get("id"), str)]
    facts["nics"] = [_nic(n["id"], index) for n in refs]
    primary = _primary_nic(refs)
    facts["network"] = NetworkFacts(network, (primary,) if primary else (), facts["location"])
    backup = backup_facts(vm_id, index)
    if backup is not None:
        facts["backup"] = backup
    sql = index.sql_vms.get(vm_id)
    facts["sql"] = _sql(sql)
    guest = guest_facts(vm_id, index)
    if guest is not None:
        facts["guest"] = guest
    assignments = machine_configuration(vm_id, index)
    if assignments is not None:
        facts["machineConfiguration"] = assignments
    pressure = pressure_facts(vm_id, index, (backup or {}).get("scheduleHourUtc"))
    if pressure is not None:
        facts["pressure"] = pressure
    return facts


def _identity(facts: dict[str, Any], p: dict[str, Any], view: dict[str, Any] | None) -> None:
    storage = p.get("storageProfile") if isinstance(p.get("storageProfile"), dict) else {}
    os_disk = storage.get("osDisk") if isinstance(storage.get("osDisk"), dict) else {}
    os_profile = p.get("osProfile") if isinstance(p.get("osProfile"), dict) else {}
    os_type = os_disk.get("osType")
    if not isinstance(os_type, str):
        os_type = ("Windows" if "windowsConfiguration" in os_profile
                   else "Linux" if "linuxConfiguration" in os_profile else None)
    if isinstance(os_type, str):
        facts["osType"] = "Windows" if os_type.lower() == "windows" else "Linux"
    if os_disk:
        facts["managedDisks"] = isinstance(os_disk.get("managedDisk"), dict)
    size = (p.get("hardwareProfile") or {}).get("vmSize") if isinstance(p.get("hardwareProfile"), dict) else None
    if isinstance(size, str):
        facts["vmSize"] = size
    name = os_profile.get("computerName") or (view or {}).get("computerName")
    if isinstance(name, str):
        facts["computerName"] = name
    if isinstance(p.get("provisioningState"), str):
        facts["provisioningState"] = p["provisioningState"]
    avset = (p.get("availabilitySet") or {}).get("id") if isinstance(p.get("availabilitySet"), dict) else None
    if isinstance(avset, str) and avset:
        facts["availabilitySet"] = last_segment(avset).lower()
    # Resource group and availability set names repeat across subscriptions: qualify them.
    home = f"{facts['subscriptionId']}/{facts['resourceGroup']}".lower()
    facts["placementGroup"] = f"{home}/{facts['availabilitySet']}" if "availabilitySet" in facts else home


def _power_state(p: dict[str, Any], view: dict[str, Any] | None) -> str | None:
    extended = p.get("extended") if isinstance(p.get("extended"), dict) else {}
    iv = extended.get("instanceView") if isinstance(extended.get("instanceView"), dict) else {}
    code = (iv.get("powerState") or {}).get("code") if isinstance(iv.get("powerState"), dict) else None
    if not isinstance(code, str) and view:
        code = next((s.get("code") for s in view.get("statuses") or ()
                     if isinstance(s, dict) and str(s.get("code", "")).startswith("PowerState/")), None)
    if isinstance(code, str) and code.lower().startswith("powerstate/"):
        return code.split("/", 1)[1].lower()
    return None


def _agent(p: dict[str, Any], view: dict[str, Any] | None) -> dict[str, Any]:
    agent: dict[str, Any] = {}
    os_profile = p.get("osProfile") if isinstance(p.get("osProfile"), dict) else {}
    for key in ("windowsConfiguration", "linuxConfiguration"):
        config = os_profile.get(key)
        if isinstance(config, dict) and isinstance(config.get("provisionVMAgent"), bool):
            agent["provisioned"] = config["provisionVMAgent"]
    vm_agent = (view or {}).get("vmAgent")
    if isinstance(vm_agent, dict):
        agent.update(strings(vm_agent, {"vmAgentVersion": "version"}))
        status = next((s for s in vm_agent.get("statuses") or () if isinstance(s, dict)), None)
        agent.update(strings(status, {"displayStatus": "status", "message": "statusMessage"}))
    return agent


def _extension(row: Row) -> dict[str, Any]:
    return {"name": row_name(row),
            **strings(props(row), ("publisher", "type", "typeHandlerVersion", "provisioningState"))}


def _backup_extension(rows: list[Row], view: dict[str, Any] | None) -> dict[str, Any]:
    row = next((r for r in rows if _is_backup_extension(props(r))), None)
    if row is None:
        return {"installed": False}
    p = props(row)
    facts: dict[str, Any] = {"installed": True, "name": row_name(row), **strings(p, ("type", "provisioningState"))}
    if view:
        full_type = f"{p.get('publisher', '')}.{p.get('type', '')}".lower()
        handler = next((h for h in (view.get("vmAgent") or {}).get("extensionHandlers") or ()
                        if isinstance(h, dict) and str(h.get("type", "")).lower() == full_type), None)
        if handler:
            facts.update(strings(handler, {"typeHandlerVersion": "handlerVersion"}))
            facts.update(strings(handler.get("status"),
                                 {"displayStatus": "handlerStatus", "message": "handlerMessage"}))
    return facts


def _is_backup_extension(p: dict[str, Any]) -> bool:
    return (str(p.get("publisher", "")).lower() == BACKUP_PUBLISHER
            and str(p.get("type", "")).lower() in BACKUP_EXTENSION_TYPES)


def _primary_nic(refs: list[dict[str, Any]]) -> str | None:
    """The NIC that carries the guest's default route, hence the backup traffic: the one flagged
    primary, else the first (a VM with one NIC usually has no flag)."""
    flagged = next((r for r in refs if props(r).get("primary") is True), None)
    chosen = flagged or (refs[0] if refs else None)
    return chosen["id"] if chosen else None


def _nic(nic_id: str, index: Index) -> dict[str, Any]:
    row = index.by_id.get(nic_id.lower())
    out: dict[str, Any] = {"id": nic_id, "name": last_segment(nic_id)}
    if row is None:
        return out
    p = props(row)
    nsg = (p.get("networkSecurityGroup") or {}).get("id") if isinstance(p.get("networkSecurityGroup"), dict) \
        else None
    if isinstance(nsg, str):
        out["networkSecurityGroupId"] = nsg
    configs = [c for c in p.get("ipConfigurations") or () if isinstance(c, dict)]
    primary = next((c for c in configs if props(c).get("primary")), configs[0] if configs else None)
    subnet = (props(primary).get("subnet") or {}).get("id") if primary else None
    if isinstance(subnet, str):
        out["subnetId"] = subnet
    out["hasPublicIp"] = any(isinstance(props(c).get("publicIPAddress"), dict) for c in configs)
    return out


def _sql(row: Row | None) -> dict[str, Any]:
    if row is None:
        return {"registered": False}
    return {"registered": True, "id": row["id"],
            **strings(props(row), {"sqlImageOffer": "imageOffer", "sqlServerLicenseType": "licenseType"})}


def _list(holder: Any, key: str) -> list[Any]:
    value = holder.get(key) if isinstance(holder, dict) else None
    return value if isinstance(value, list) else []
