"""Which planned change can have caused each new failure, and what the deployment changes in the verdicts.

A failure is new when the scan of the predicted estate has it and the scan of the current estate
does not. For each one we name the planned changes to resources the failing check depends on:
the VM and its extensions, its NICs, the NSGs on those NICs and on their subnets, the subnets and
VNets, the subnets' route tables, its protected item and backup policy — restricted by the
policy's cause, so an NSG rule is never blamed for an agent failure on the same VM.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from backup_preflight.estate.index import Row, last_segment, parent_vm_id, props, segment_after
from backup_preflight.findings import UNKNOWN, Finding
from backup_preflight.whatif.describe import PlannedChange

_NETWORK = frozenset({"vm", "nic", "nsg", "subnet", "vnet", "routeTable"})
_BACKUP = frozenset({"vm", "protectedItem", "backupPolicy"})
_GUEST = frozenset({"vm", "extension"})
#: Policy cause → the roles of related resources whose change can alter its verdict.
CAUSE_ROLES: dict[str, frozenset[str]] = {
    "outbound-connectivity": _NETWORK,
    "backup-protection": _BACKUP,
    "schedule-spread": _BACKUP,
    "resource-pressure": _BACKUP | _GUEST,
    "vm-agent": _GUEST,
    "backup-extension": _GUEST | _BACKUP,
    "guest-shutdown": _GUEST,
    "guest-dhcp": _GUEST,
    "sql-vss-backup": _GUEST,
}
_ALL_ROLES = _NETWORK | _BACKUP | _GUEST

NOT_TRACED = ("no planned change touches this VM or the resources this check depends on; the new verdict "
              "comes from elsewhere in the plan (for example other VMs joining its backup schedule slot)")

Key = tuple[str, str]


def related_resources(vm: Mapping[str, Any], rows_by_id: Mapping[str, Row]) -> dict[str, tuple[str, str]]:
    """Lowercase id → (role, how it relates) for every resource a VM's checks depend on.

    `vm` is the VM's fact record; `rows_by_id` maps lowercase ids to rows of the predicted estate
    (`Index(snapshot).by_id`), used to find each subnet's NSG and route table in its VNet row.
    Extensions are matched by prefix (see `blame`), not listed here.
    """
    related: dict[str, tuple[str, str]] = {vm["id"].lower(): ("vm", "the VM itself")}
    for nic in vm.get("nics") or ():
        nic_name = nic.get("name") or last_segment(nic["id"])
        related.setdefault(nic["id"].lower(), ("nic", f"its NIC {nic_name}"))
        nsg = nic.get("networkSecurityGroupId")
        if nsg:
            related.setdefault(nsg.lower(), ("nsg", f"the NSG on its NIC {nic_name}"))
        subnet_id = nic.get("subnetId")
        if not subnet_id:
            continue
        vnet_id = subnet_id.lower().split("/subnets/")[0]
        where = f"{segment_after(subnet_id, 'virtualnetworks')}/{last_segment(subnet_id)}"
        related.setdefault(subnet_id.lower(), ("subnet", f"its subnet {where}"))
        related.setdefault(vnet_id, ("vnet", f"the VNet of its subnet {where}"))
        subnet = _subnet(rows_by_id, vnet_id, subnet_id.lower())
        for key, role, what in (("networkSecurityGroup", "nsg", "the NSG"), ("routeTable", "routeTable",
                                                                            "the route table")):
            ref = props(subnet).get(key)
            if isinstance(ref, dict) and isinstance(ref.get("id"), str):
                related.setdefault(ref["id"].lower(), (role, f"{what} of its subnet {where}"))
    backup = vm.get("backup") or {}
    for key, role, what in (("itemId", "protectedItem", "its protected item"),
                            ("policyId", "backupPolicy", "its backup policy")):
        if isinstance(backup.get(key), str):
            related.setdefault(backup[key].lower(), (role, what))
    return related


def _subnet(rows_by_id: Mapping[str, Row], vnet_id: str, subnet_id: str) -> Row | None:
    """The subnet as its VNet row embeds it, else a standalone subnet row."""
    for subnet in props(rows_by_id.get(vnet_id)).get("subnets") or ():
        if isinstance(subnet, dict) and str(subnet.get("id", "")).lower() == subnet_id:
            return subnet
    return rows_by_id.get(subnet_id)


Related = dict[str, tuple[str, str]]


def relations(vms: Iterable[Mapping[str, Any]], rows_by_id: Mapping[str, Row],
              changes: Iterable[PlannedChange]) -> dict[str, Related]:
    """By lowercase VM id, the resources of `related_resources` that the plan changes, for every VM with one
    or with a planned change to one of its extensions: all that `blame_related` needs of a VM, so that an
    estate judged in parts gives it for each part's VMs and lets their facts go."""
    targets = {change.target_id for change in changes}
    extended = {parent_vm_id(t) for t in targets if "/extensions/" in t}
    out: dict[str, Related] = {}
    for vm in vms:
        vm_id = vm["id"].lower()
        related = {rid: how for rid, how in related_resources(vm, rows_by_id).items() if rid in targets}
        if related or vm_id in extended:
            out[vm_id] = related
    return out


def blame(new_failures: Iterable[Finding], vms: Iterable[Mapping[str, Any]], changes: Iterable[PlannedChange],
          rows_by_id: Mapping[str, Row]) -> dict[Key, list[str]]:
    """`blame_related` for an estate held whole: `vms` are the predicted estate's facts (any superset of the
    new failures' VMs), `rows_by_id` its rows (`Index(snapshot).by_id`)."""
    new, plan = list(new_failures), list(changes)
    return blame_related(new, relations_of({f.resource_id.lower() for f in new}, vms, rows_by_id, plan), plan)


def relations_of(vm_ids: set[str], vms: Iterable[Mapping[str, Any]], rows_by_id: Mapping[str, Row],
                 changes: Iterable[PlannedChange]) -> dict[str, Related]:
    """`relations` of the VMs with these lowercase ids, of an estate held whole."""
    return relations((vm for vm in vms if vm["id"].lower() in vm_ids), rows_by_id, changes)


def blame_related(new_failures: Iterable[Finding], related: Mapping[str, Related],
                  changes: Iterable[PlannedChange]) -> dict[Key, list[str]]:
    """(policy id, lowercase resource id) → one sentence per planned change that can have caused it.

    `related` is what `relations` gives of the predicted estate. Each sentence says how many VMs newly fail
    (or newly cannot be assessed for) the same policy through that change *in the same way* (e.g. via the
    same subnet), counted over all new findings, so the bullets of one change add up instead of each
    repeating the change's total.
    """
    by_target: defaultdict[str, list[int]] = defaultdict(list)
    extensions_of: defaultdict[str, list[int]] = defaultdict(list)
    plan = list(changes)
    for i, change in enumerate(plan):
        by_target[change.target_id].append(i)
        if "/extensions/" in change.target_id:
            extensions_of[parent_vm_id(change.target_id)].append(i)
    hits: dict[Key, list[tuple[int, str]]] = {}  # finding → (change index, relation)
    #: (change index, policy id, status, relation) → VMs with that new finding through that change.
    vms_per_change: defaultdict[tuple[int, str, str, str], set[str]] = defaultdict(set)
    statuses: dict[Key, str] = {}
    for finding in new_failures:
        vm_id = finding.resource_id.lower()
        key = finding.key()
        statuses[key] = finding.status
        roles = CAUSE_ROLES.get(finding.cause, _ALL_ROLES)
        found: dict[int, str] = {}  # change index → how it relates to the VM (first relation found)
        for rid, (role, why) in related.get(vm_id, {}).items():
            for i in by_target.get(rid, ()) if role in roles else ():
                found.setdefault(i, why)
        for i in extensions_of.get(vm_id, ()) if "extension" in roles and vm_id in related else ():
            found.setdefault(i, "an extension of the VM")
        hits[key] = sorted(found.items())
        for i, why in found.items():
            vms_per_change[(i, key[0], statuses[key], why)].add(vm_id)
    return {key: [_sentence(plan[i], why, len(vms_per_change[(i, key[0], statuses[key], why)]), key[0],
                            statuses[key]) for i, why in found] or [NOT_TRACED] for key, found in hits.items()}


def _sentence(change: PlannedChange, why: str, vm_count: int, policy_id: str, status: str) -> str:
    vms = f"{vm_count} VM{'s' if vm_count != 1 else ''}"
    effect = f"newly cannot be assessed for {policy_id}" if status == UNKNOWN else \
        f"newly fail{'s' if vm_count == 1 else ''} {policy_id}"
    return f"{change.description} — {why}; {vms} {effect} through this change"
