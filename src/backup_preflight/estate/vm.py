"""The fact record of one VM, built from its ARG row and the rows joined to it.

Absent keys mean "not collected" and make conditions on them unknown; that is why values
are only set when their source was really there (for example agent.version only from an
instance view, agent.provisioned only from an osProfile). Every field is read through a typed
`Reader`: a value of the wrong type leaves its fact absent and says why in `unknownReasons`,
naming the row and field, so the unknown finding tells the user what to fix.
"""

from __future__ import annotations

import sys
from typing import Any

from backup_preflight.estate.agent import agent_facts, backup_extension_facts
from backup_preflight.estate.backup import backup_facts
from backup_preflight.estate.guest import guest_facts, machine_configuration, pressure_facts, start_hours
from backup_preflight.estate.index import Index, Reader, Row, last_segment, props, row_name, segment_after, strings
from backup_preflight.estate.jobs import last_failed_job
from backup_preflight.estate.network_facts import NetworkFacts, NetworkModel

#: Why a fact is absent although its source was collected (fact path → reason naming row and field).
REASONS = "unknownReasons"


def vm_facts(row: Row, index: Index, network: NetworkModel) -> dict[str, Any]:
    """Everything a policy may ask about one VM (see facts.schema.json)."""
    vm_id = row["id"].lower()
    reasons: dict[str, str] = {}
    vm = Reader("resources", None, reasons)
    view = index.instance_views.get(vm_id)
    if view is None:  # a VM body fetched with $expand=instanceView carries its own
        view = vm.get(row, "properties.instanceView", "object")
    iv = Reader("instanceviews", None, reasons)
    facts: dict[str, Any] = {
        "id": row["id"],
        "name": row_name(row),
        # One copy of each, not one per VM: every finding of the VM keeps them (docs/performance.md).
        "subscriptionId": sys.intern(vm.get(row, "subscriptionId", "string", "subscriptionId")
                                     or segment_after(row["id"], "subscriptions")),
        "resourceGroup": sys.intern((vm.get(row, "resourceGroup", "string", "resourceGroup")
                                     or segment_after(row["id"], "resourcegroups")).lower()),
        "location": vm.get(row, "location", "string", "location") or "",
        "tags": _tags(vm, row, "tags"),
        "instanceViewCollected": view is not None,
    }
    _containers(facts, index, reasons)
    _identity(facts, vm, row, view)
    power = _power_state(vm, iv, row, view)
    if power:
        facts["powerState"] = power
    facts["agent"] = agent_facts(row, view, vm, iv)
    extensions = index.extensions.get(vm_id, [])
    facts["extensions"] = [_extension(e) for e in extensions]
    backup = backup_facts(vm_id, index, reasons)
    facts["backupExtension"] = backup_extension_facts(extensions, view, iv, backup, reasons)
    refs = [n for n in vm.get(row, "properties.networkProfile.networkInterfaces", "array", "nics") or ()
            if isinstance(n, dict) and isinstance(n.get("id"), str)]
    if not vm.unreadable("nics"):  # an unreadable list is not "no NICs": the fact stays unknown, as its reason says
        facts["nics"] = [_nic(n["id"], index) for n in refs]
    primary = _primary_nic(refs)
    facts["network"] = NetworkFacts(network, (primary,) if primary else (), facts["location"])
    if backup is not None:
        facts["backup"] = backup
        job = last_failed_job(vm_id, index, backup)
        if job is not None:
            backup["lastFailedJob"] = job
    sql = index.sql_vms.get(vm_id)
    facts["sql"] = _sql(sql)
    guest = guest_facts(vm_id, index, reasons)
    if guest is not None:
        facts["guest"] = guest
    assignments = machine_configuration(vm_id, index)
    if assignments is not None:
        facts["machineConfiguration"] = assignments
    pressure = pressure_facts(vm_id, index, start_hours((backup or {}).get("slots", [])), reasons)
    if pressure is not None:
        facts["pressure"] = pressure
    if reasons:
        facts[REASONS] = reasons
    return facts


def _tags(read: Reader, row: Row, fact: str) -> dict[str, str]:
    """Tag values are strings in ARM; a tag of another type is left out, with a reason."""
    tags = read.get(row, "tags", "object", fact) or {}
    for key, value in tags.items():
        if not isinstance(value, str):
            read.wrong(f"{fact}.{key}", f"tags.{key}", value, "a string")
    return {k: v for k, v in tags.items() if isinstance(v, str)}


def _containers(facts: dict[str, Any], index: Index, reasons: dict[str, str]) -> None:
    """The subscription's display name, state and tags and the resource group's tags, when the
    resourcecontainers table has their rows (without it, or without read access there, they stay
    absent and the reports show the GUID alone)."""
    sub_id = facts["subscriptionId"]
    sub = index.subscriptions.get(sub_id.lower())
    if sub is not None:
        read = Reader("resourcecontainers", sub["id"], reasons)
        # Resource Graph's `name` of a subscription is its display name; other tools fill properties.displayName.
        name = read.get(sub, "name", "string", "subscriptionName")
        if not name or name.lower() == sub_id.lower():
            name = read.get(sub, "properties.displayName", "string", "subscriptionName")
        if name:
            facts["subscriptionName"] = name
        state = read.get(sub, "properties.state", "string", "subscriptionState")
        if state:
            facts["subscriptionState"] = state
        facts["subscriptionTags"] = _tags(read, sub, "subscriptionTags")
    group = index.resource_groups.get(f"{sub_id}/{facts['resourceGroup']}".lower())
    if group is not None:
        facts["resourceGroupTags"] = _tags(Reader("resourcecontainers", group["id"], reasons), group,
                                           "resourceGroupTags")


#: The OS disk's osType in any case, as the fact names it.
_OS_TYPES = {"windows": "Windows", "linux": "Linux"}


def _identity(facts: dict[str, Any], vm: Reader, row: Row, view: dict[str, Any] | None) -> None:
    os_type = _os_type(vm, row)
    if os_type is not None:
        facts["osType"] = os_type
    os_disk = vm.get(row, "properties.storageProfile.osDisk", "object", "managedDisks")
    if os_disk:
        facts["managedDisks"] = isinstance(os_disk.get("managedDisk"), dict)
    size = vm.get(row, "properties.hardwareProfile.vmSize", "string", "vmSize")
    if size is not None:
        facts["vmSize"] = size
    name = vm.get(row, "properties.osProfile.computerName", "string", "computerName")
    if name is None and view is not None and not vm.unreadable("computerName"):
        name = view.get("computerName") if isinstance(view.get("computerName"), str) else None
    if name is not None:
        facts["computerName"] = name
    state = vm.get(row, "properties.provisioningState", "string", "provisioningState")
    if state is not None:
        facts["provisioningState"] = state
    avset = vm.get(row, "properties.availabilitySet.id", "string", "availabilitySet")
    if avset:
        facts["availabilitySet"] = last_segment(avset).lower()
    # Resource group and availability set names repeat across subscriptions: qualify them.
    home = f"{facts['subscriptionId']}/{facts['resourceGroup']}".lower()
    facts["placementGroup"] = f"{home}/{facts['availabilitySet']}" if "availabilitySet" in facts else home


def _os_type(vm: Reader, row: Row) -> str | None:
    """Windows or Linux: the OS disk's osType, else (only when that is absent) the osProfile's configuration block.
    Any other value is unknown with its reason, never read as Linux: a Windows VM would pass Linux's minimums."""
    field = "properties.storageProfile.osDisk.osType"
    os_type = vm.get(row, field, "string", "osType")
    if os_type is None:
        if vm.unreadable("osType"):
            return None
        os_profile = vm.get(row, "properties.osProfile", "object") or {}
        return ("Windows" if "windowsConfiguration" in os_profile
                else "Linux" if "linuxConfiguration" in os_profile else None)
    if os_type.lower() not in _OS_TYPES:
        vm.odd("osType", field, os_type, "Windows or Linux")
    return _OS_TYPES.get(os_type.lower())


def _power_state(vm: Reader, iv: Reader, row: Row, view: dict[str, Any] | None) -> str | None:
    """The VM row's power state code, else (when it is absent, or Compute's `PowerState/unknown`) the instance
    view's PowerState status. `unknown` is no state to judge: with no other source the fact stays unknown."""
    field = "properties.extended.instanceView.powerState.code"
    code = vm.get(row, field, "string", "powerState")
    if code is not None and not code.lower().startswith("powerstate/"):
        vm.odd("powerState", field, code, "PowerState/<state>")
        return None
    said, where = vm, field
    if (code is None or _unknown(code)) and view is not None and not vm.unreadable("powerState"):
        statuses = iv.get(view, "statuses", "array", "powerState") or ()
        found = next((s["code"] for s in statuses if isinstance(s, dict) and isinstance(s.get("code"), str)
                      and s["code"].lower().startswith("powerstate/")), None)
        if found is not None and (code is None or not _unknown(found)):
            code, said, where = found, iv, "statuses[].code"
    if code is not None and _unknown(code):
        said.reasons.setdefault("powerState", said.say(f"{where} is {code!r}: Azure does not know the power state"))
        return None
    return code.split("/", 1)[1].lower() if code is not None else None


def _unknown(code: str) -> bool:
    return code.lower() == "powerstate/unknown"


def _extension(row: Row) -> dict[str, Any]:
    return {"name": row_name(row),
            **strings(props(row), ("publisher", "type", "typeHandlerVersion", "provisioningState"))}


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
    configs = [c for c in _list(p, "ipConfigurations") if isinstance(c, dict)]
    primary = next((c for c in configs if props(c).get("primary") is True), configs[0] if configs else None)
    subnet = props(primary).get("subnet")
    subnet = subnet.get("id") if isinstance(subnet, dict) else None
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
