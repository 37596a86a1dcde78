"""One pass over the snapshot's rows into lookups by lowercase ARM id.

Every join in the estate goes through here, so ids are compared case-insensitively in one
place: Resource Graph, the Backup service and the Compute API disagree on the case of the
same id (`/Subscriptions/` vs `/subscriptions/`, `resourceGroups/RG1` vs `rg1`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

import msgspec

from backup_preflight.snapshot import RESOURCE_GROUP_TYPE, SUBSCRIPTION_TYPE, Snapshot, instance_view_body, json_kind
from backup_preflight.timestamps import parse_instant

Row = dict[str, Any]
#: Makes an empty table of rows by lowercase id (estate/parts.py passes one that notes misses).
Lookup = Callable[[], dict[str, Any]]

VM_TYPE = "microsoft.compute/virtualmachines"
EXTENSION_TYPE = "microsoft.compute/virtualmachines/extensions"
SQL_VM_TYPE = "microsoft.sqlvirtualmachine/sqlvirtualmachines"
PROTECTED_ITEM_TYPE = "microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems"
BACKUP_POLICY_TYPE = "microsoft.recoveryservices/vaults/backuppolicies"
BACKUP_JOB_TYPE = "microsoft.recoveryservices/vaults/backupjobs"
GC_ASSIGNMENT_TYPE = "microsoft.guestconfiguration/guestconfigurationassignments"


def props(row: Row | None) -> dict[str, Any]:
    """A row's `properties`, or an empty dict when it is missing or null."""
    value = row.get("properties") if row else None
    return value if isinstance(value, dict) else {}


def strings(source: Any, keys: dict[str, str] | tuple[str, ...]) -> dict[str, str]:
    """The string values among `keys` of `source` (renamed where `keys` maps source → fact name).

    Rows from Azure may lack a key or carry null or a wrong type; a fact is only set from a string.
    """
    if not isinstance(source, dict):
        return {}
    pairs = keys.items() if isinstance(keys, dict) else ((k, k) for k in keys)
    return {dst: source[src] for src, dst in pairs if isinstance(source.get(src), str)}


#: JSON types as facts.schema.json names them, and the Python types a parsed value of each has.
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "boolean": (bool,), "object": (dict,), "array": (list,),
    "number": (int, float), "integer": (int,), "null": (type(None),)}
_EXPECTED = {"string": "a string", "boolean": "true or false", "object": "an object", "array": "an array",
             "number": "a number", "integer": "an integer"}


_NUMERIC = ("number", "integer")
_CLASSES = {kind: frozenset(types) for kind, types in JSON_TYPES.items()}


def has_type(value: Any, kind: str) -> bool:
    """True when `value` is of the JSON type `kind` (booleans are not numbers)."""
    if value.__class__ is bool and kind in _NUMERIC:
        return False
    return isinstance(value, JSON_TYPES[kind])


@cache
def _steps(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


class Reader:
    """Typed reads from one row: a value of the wrong type is never used, its fact gets a reason instead.

    `reasons` maps a fact path to why that fact is absent although its source was collected; the
    reason names the table, the row and the field, so an unknown finding says what to fix. A row of
    the VM's own (`row_id` None: its resources row, instance view, guest facts, metrics) is called
    "the VM's … row": the finding already names the VM, and a reason without its id is shared by every
    VM with the same gap, so reports can group them by it.
    """

    __slots__ = ("reasons", "row_id", "table")

    def __init__(self, table: str, row_id: str | None, reasons: dict[str, str]) -> None:
        self.table = table
        self.row_id = row_id
        self.reasons = reasons

    def get(self, holder: Any, path: str, kind: str, fact: str | None = None) -> Any:
        """The value at the dotted `path` under `holder` when it is of JSON type `kind`, else None.

        Absent and null mean "not reported" (None, no reason); a wrong type on the way or at the end
        records a reason for `fact` (when given) and gives None, never a fallback value.
        """
        value = holder
        for step in _steps(path):
            if value.__class__ is not dict:
                return self._broken_path(holder, path, fact)
            value = value.get(step)
            if value is None:
                return None
        if value.__class__ in _CLASSES[kind]:  # parsed JSON has exact types; bool is no number here
            return value
        self.wrong(fact, path, value, _EXPECTED[kind])
        return None

    def _broken_path(self, holder: Any, path: str, fact: str | None) -> None:
        """Name the step of `path` that is not an object."""
        steps = _steps(path)
        value = holder
        for i, step in enumerate(steps):
            if value.__class__ is not dict:
                self.wrong(fact, ".".join(steps[:i]), value, "an object")
                return
            value = value[step]

    def wrong(self, fact: str | None, field: str, value: Any, expected: str) -> None:
        """Record that `field` of this row has the wrong type, making `fact` unknown."""
        if fact is not None:
            self.reasons.setdefault(fact, self.say(f"{field} is {json_kind(value)}, expected {expected}"))

    def odd(self, fact: str, field: str, value: str, expected: str) -> None:
        """Record that `field` of this row holds a string that means nothing here, making `fact` unknown."""
        self.reasons.setdefault(fact, self.say(f"{field} is {value!r}, expected {expected}"))

    def unreadable(self, fact: str) -> bool:
        """Whether `fact` has a reason already: its field was there but could not be read, so no other
        source stands in for it (the fact stays unknown, as its reason says)."""
        return fact in self.reasons

    def say(self, what: str) -> str:
        where = f"{self.table} row {self.row_id}" if self.row_id else f"the VM's {self.table} row"
        return f"{where}: {what}"


def lower_id(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) and value else None


def last_segment(resource_id: str) -> str:
    """The resource's own name, the last segment of its id."""
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


def ref_id(props: dict, key: str) -> str:
    """The `.id` of a sub-resource reference, or ''."""
    ref = props.get(key)
    rid = ref.get("id") if isinstance(ref, dict) else None
    return rid if isinstance(rid, str) else ""


#: Where a Recovery Services child id (item, job, policy) names its vault; a bare `/vaults/` could be a
#: resource group named "vaults".
_VAULTS = "/providers/microsoft.recoveryservices/vaults/"


def vault_of(resource_id: str) -> str:
    """The lowercase id of the Recovery Services vault a child id (item, job, policy) lives in."""
    return _up_to_name(resource_id, _VAULTS)


def _up_to_name(resource_id: str, segment: str) -> str:
    """The lowercase id up to the name that follows `segment` (a lowercase provider path), whatever that name
    is; an id without the segment whole, lowercase: it names no such parent, so it joins none."""
    low = resource_id.lower()
    at = low.find(segment)
    end = low.find("/", at + len(segment)) if at >= 0 else -1
    return low if end < 0 else low[:end]


def entity_key(vault: str, name: str) -> str:
    """The key of jobs naming a VM only by friendly name in a vault: it starts with the vault's id, so a
    part of a split estate knows the subscription of a key it misses (estate/parts.py)."""
    return f"{vault}|{name.lower()}"


def vault_name(resource_id: str) -> str:
    """The name of that vault as the id spells it; '' when the id names no vault."""
    at = resource_id.lower().find(_VAULTS)
    return resource_id[at + len(_VAULTS):].split("/", 1)[0] if at >= 0 else ""


def segment_after(resource_id: str, name: str) -> str:
    """The id segment following `name` (case-insensitive), as spelled in the id; '' when absent."""
    parts = resource_id.split("/")
    lowered = [p.lower() for p in parts]
    at = lowered.index(name) + 1 if name in lowered else len(parts)
    return parts[at] if at < len(parts) else ""


def row_name(row: Row) -> str:
    """A row's `name`, else the last segment of its id."""
    name = row.get("name")
    return name if isinstance(name, str) and name else last_segment(row["id"])


#: Where an id names a VM; what follows its name is a child of that VM.
_VM_SEGMENT = "/providers/microsoft.compute/virtualmachines/"


def parent_vm_id(child_id: str) -> str:
    """The lowercase id of the VM a child resource id (extension, guest configuration assignment) belongs to:
    the id up to the VM's name, whatever that name is (a VM may be called `extensions`). An id under no Compute
    VM is returned whole, lowercase."""
    return _up_to_name(child_id, _VM_SEGMENT)


def _unique(rows: list[Row]) -> list[Row]:
    """One row per id, compared case-insensitively: a later spelling replaces an earlier one in its
    place, as when snapshots are merged (an id written in two letter cases is one resource)."""
    seen: dict[str, Row] = {}
    for row in rows:
        seen[row["id"].lower()] = row
    return list(seen.values()) if len(seen) != len(rows) else rows


class Index:
    """Lookups by lowercase id over all tables; `collected` names the tables that were present."""

    def __init__(self, snap: Snapshot, now: datetime | None = None, lookup: Lookup = dict) -> None:
        """`lookup` makes the table of rows by id (a part of a split estate notes the ids it misses)."""
        self.collected = {name for name, rows in snap.tables.items() if rows is not None}
        #: The instant daylight saving is taken at: the snapshot's collectedAt, else the scan's clock.
        self.reference = parse_instant(snap.collected_at) or now
        self.by_id: dict[str, Row] = lookup()
        self.vms: list[Row] = []
        self.extensions: defaultdict[str, list[Row]] = defaultdict(list)
        self.sql_vms: dict[str, Row] = {}
        #: Every AzureIaasVM protected item of a VM (an old stopped one and a new active one after a move).
        self.protected_items: defaultdict[str, list[Row]] = defaultdict(list)
        self.backup_policies: dict[str, Row] = lookup()
        #: Azure VM backup jobs by the VM id they name (dataSourceId / virtualMachineId), and those naming
        #: none by `entity_key` (vault id, entityFriendlyName), both lowercase: see estate/jobs.py.
        self.jobs_by_source: defaultdict[str, list[Row]] = defaultdict(list)
        self.jobs_by_entity: dict[str, list[Row]] = lookup()
        #: Schedule facts per backup policy id, filled on first use by backup.backup_facts.
        self.schedules: dict[str, dict[str, Any]] = {}
        self.assignments: defaultdict[str, list[Row]] = defaultdict(list)
        #: Instance views by VM id: the body the Compute API returned, wherever the row nests it.
        self.instance_views: dict[str, Any] = {}
        self.guest_facts: dict[str, Row] = {}
        self.metrics: defaultdict[str, list[Row]] = defaultdict(list)
        #: resourcecontainers rows: subscriptions by lowercase id, resource groups by "subscription/group".
        self.subscriptions: dict[str, Row] = {}
        self.resource_groups: dict[str, Row] = {}
        self._index_containers(_unique(snap.tables.get("resourcecontainers") or []))
        self._index_resources(_unique(snap.tables.get("resources") or []))
        self._index_recovery(_unique(snap.tables.get("recoveryservicesresources") or []))
        for row in _unique(snap.tables.get("guestconfigurationresources") or []):
            if row["type"].lower() == GC_ASSIGNMENT_TYPE:
                self.assignments[assignment_target(row)].append(row)
        for row in snap.tables.get("instanceviews") or []:
            view = instance_view_body(row)
            if view is not None:
                self.instance_views[row["id"].lower()] = view
        for row in snap.tables.get("guestfacts") or []:
            self.guest_facts[row["id"].lower()] = row
        metrics: dict[tuple[str, str], Row] = {}
        for row in snap.tables.get("metrics") or []:
            name = row.get("name")
            metrics[row["id"].lower(), name.lower() if isinstance(name, str) else repr(name)] = row
        for (vm_id, _), row in metrics.items():
            self.metrics[vm_id].append(row)

    def _index_resources(self, rows: list[Row]) -> None:
        by_id = self.by_id
        for row in rows:
            rid = row["id"].lower()
            by_id[rid] = row
            rtype = row["type"].lower()
            if rtype == VM_TYPE:
                self.vms.append(row)
            elif rtype == EXTENSION_TYPE:
                self.extensions[parent_vm_id(rid)].append(row)
            elif rtype == SQL_VM_TYPE:
                target = sql_vm_target(row)
                if target:
                    self.sql_vms[target] = row

    def _index_containers(self, rows: list[Row]) -> None:
        """Keys come from the id, which every row has (the subscriptionId column may be projected away)."""
        for row in rows:
            rtype, sub = row["type"], segment_after(row["id"], "subscriptions").lower()
            if rtype == SUBSCRIPTION_TYPE:
                self.subscriptions[sub] = row
            elif rtype == RESOURCE_GROUP_TYPE:
                self.resource_groups[f"{sub}/{segment_after(row['id'], 'resourcegroups').lower()}"] = row

    def _index_recovery(self, rows: list[Row]) -> None:
        for row in rows:
            rtype = row["type"].lower()
            if rtype == PROTECTED_ITEM_TYPE:
                source = protected_vm(row)
                if source:
                    self.protected_items[source].append(row)
            elif rtype == BACKUP_POLICY_TYPE:
                self.backup_policies[row["id"].lower()] = row
            elif rtype == BACKUP_JOB_TYPE:
                self._index_job(row)

    def _index_job(self, row: Row) -> None:
        if not is_vm_job(row):
            return
        source = job_vm(row)
        name = props(row).get("entityFriendlyName")
        if source:
            self.jobs_by_source[source].append(row)
        elif isinstance(name, str) and name:
            self.jobs_by_entity.setdefault(entity_key(vault_of(row["id"]), name), []).append(row)


# What a row that describes a VM says of which VM (lowercase id), for the index and for splitting an
# estate into parts by the VM's subscription (estate/parts.py).

class NamingProperties(msgspec.Struct):
    """The properties of a row that the functions below read (and no others): all that placing a row by the VM
    it names needs decoded of it, each left UNSET when the row has none."""

    virtualMachineResourceId: Any = msgspec.UNSET
    targetResourceId: Any = msgspec.UNSET
    backupManagementType: Any = msgspec.UNSET
    sourceResourceId: Any = msgspec.UNSET
    virtualMachineId: Any = msgspec.UNSET
    jobType: Any = msgspec.UNSET
    dataSourceId: Any = msgspec.UNSET


def sql_vm_target(row: Row) -> str | None:
    return lower_id(props(row).get("virtualMachineResourceId"))


def assignment_target(row: Row) -> str:
    """The VM a guest configuration assignment is on: its target, else the VM its id is under."""
    return lower_id(props(row).get("targetResourceId")) or parent_vm_id(row["id"])


def protected_vm(row: Row) -> str | None:
    """The VM a protected item backs up; None for SQL/SAP workload items, which name the VM too but are
    not its VM backup."""
    p = props(row)
    if str(p.get("backupManagementType", "AzureIaasVM")).lower() != "azureiaasvm":
        return None
    return lower_id(p.get("sourceResourceId")) or lower_id(p.get("virtualMachineId"))


def is_vm_job(row: Row) -> bool:
    """An Azure VM backup job: SQL/SAP workload jobs on the same VM are not its VM backup."""
    p = props(row)
    return str(p.get("backupManagementType", "AzureIaasVM")).lower() == "azureiaasvm" and \
        str(p.get("jobType", "AzureIaaSVMJob")).lower() in ("azureiaasvmjob", "azureiaasvmjobv2")


def job_vm(row: Row) -> str | None:
    """The VM a job names by id; None when it names it only by friendly name (see estate/jobs.py)."""
    p = props(row)
    return next((s for s in map(lower_id, (p.get("dataSourceId"), p.get("virtualMachineId"),
                                           p.get("sourceResourceId"))) if s), None)
