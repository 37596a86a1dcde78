"""Planned changes in words a reviewer of a pull request recognises.

A gate that fails a deployment has to say which part of the deployment it objects to, in the
terms of the template: "security rule DenyStorage443 (Deny Outbound, priority 50, to Storage port
443) created by this deployment on NSG nsg-app", not a JSON diff.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from backup_preflight.estate.index import (
    BACKUP_POLICY_TYPE,
    EXTENSION_TYPE,
    PROTECTED_ITEM_TYPE,
    VM_TYPE,
    last_segment,
    props,
)
from backup_preflight.whatif.parse import Change
from backup_preflight.whatif.shapes import (
    EMBEDDED_CHILDREN,
    NSG_TYPE,
    ROUTE_TABLE_TYPE,
    VNET_TYPE,
    parent_id,
    resource_type,
)

_LABELS = {
    NSG_TYPE: "NSG", f"{NSG_TYPE}/securityrules": "security rule",
    VNET_TYPE: "VNet", f"{VNET_TYPE}/subnets": "subnet",
    ROUTE_TABLE_TYPE: "route table", f"{ROUTE_TABLE_TYPE}/routes": "route",
    "microsoft.network/networkinterfaces": "NIC", VM_TYPE: "VM", EXTENSION_TYPE: "VM extension",
    PROTECTED_ITEM_TYPE: "protected item", BACKUP_POLICY_TYPE: "backup policy",
    "microsoft.recoveryservices/vaults": "Recovery Services vault",
}
_VERBS = {"Create": "created", "Delete": "deleted", "Modify": "modified", "Deploy": "redeployed",
          "Unsupported": "changed in a way what-if cannot predict"}
#: Delta lines named in one description; the rest are counted.
MAX_DELTA_LINES = 5


@dataclass(frozen=True, slots=True)
class PlannedChange:
    """One change the deployment will make, and the estate row it lands in."""

    resource_id: str
    change_type: str
    resource_type: str
    #: Lowercase id of the row the change lands in: the parent NSG, VNet or route table for a rule,
    #: subnet or route (Resource Graph stores those inside their parent), else the resource itself.
    target_id: str
    description: str

    def to_dict(self) -> dict[str, str]:
        return {"resourceId": self.resource_id, "changeType": self.change_type,
                "resourceType": self.resource_type, "description": self.description}


def planned(change: Change, rtype: str) -> PlannedChange:
    """The PlannedChange of a what-if change of a resource of type `rtype`."""
    rid = change.resource_id
    return PlannedChange(rid, change.change_type, rtype, target_of(rid, rtype), describe(change, rtype))


def target_of(resource_id: str, rtype: str) -> str:
    """Lowercase id of the row a change of this resource lands in: its parent's for a rule, subnet or route."""
    return (parent_id(resource_id) if rtype in EMBEDDED_CHILDREN else resource_id).lower()


def label(rtype: str) -> str:
    """Short name of a resource type ("NSG", "route table"), or the type itself."""
    return _LABELS.get(rtype, rtype)


def describe(change: Change, rtype: str) -> str:
    rid = change.resource_id
    body = change.after or change.before or {}
    name = last_segment(body["name"]) if isinstance(body.get("name"), str) and body["name"] else last_segment(rid)
    summary = summarize(props(body))
    text = f"{label(rtype)} {name}{f' ({summary})' if summary else ''} " \
           f"{_VERBS[change.change_type]} by this deployment"
    if rtype in EMBEDDED_CHILDREN:
        parent = parent_id(rid)
        ptype = resource_type(parent)
        text += f" {'on' if ptype == NSG_TYPE else 'in'} {label(ptype)} {last_segment(parent)}"
    if change.change_type == "Unsupported" and change.unsupported_reason:
        text += f" ({change.unsupported_reason})"
    lines = delta_lines(change.delta)
    if lines:
        shown = lines[:MAX_DELTA_LINES]
        more = len(lines) - len(shown)
        text += ": " + "; ".join(shown) + (f"; and {more} more" if more else "")
    return text


def summarize(p: dict[str, Any]) -> str:
    """The facts of a rule, route, subnet or VM that decide backup preconditions, recognised by shape."""
    if "access" in p or "direction" in p:
        return (f"{p.get('access', '?')} {p.get('direction', '?')}, priority {p.get('priority', '?')}, "
                f"to {_either(p, 'destinationAddressPrefix')} port {_either(p, 'destinationPortRange')}")
    if "nextHopType" in p:
        hop = " ".join(str(v) for v in (p["nextHopType"], p.get("nextHopIpAddress")) if v)
        return f"{_either(p, 'addressPrefix')} → {hop}"
    agent = _provision_vm_agent(p)
    if agent is not None:
        return f"provisionVMAgent {json.dumps(agent)}"
    if "addressPrefix" in p or "addressPrefixes" in p:
        return _either(p, "addressPrefix")
    return ""


def delta_lines(delta: Iterable[dict[str, Any]], prefix: str = "", indexed: bool = False) -> list[str]:
    """One line per changed leaf of a what-if `delta`; array items are `path[i]`, `properties.` is dropped."""
    lines: list[str] = []
    for item in delta:
        raw = str(item.get("path", ""))
        path = f"{prefix}[{raw}]" if indexed else ".".join(
            s for s in [prefix, *raw.split(".")] if s and s != "properties")
        kind = item.get("propertyChangeType")
        children = [c for c in item.get("children") or () if isinstance(c, dict)]
        if kind == "Array":
            lines.extend(delta_lines(children, path, indexed=True))
        elif kind == "Modify" and children:
            lines.extend(delta_lines(children, path))
        elif kind == "Create":
            lines.append(f"{path} {_value(item.get('after'))} created")
        elif kind == "Delete":
            lines.append(f"{path} {_value(item.get('before'))} deleted")
        elif kind == "Modify":
            lines.append(f"{path} {_value(item.get('before'))} → {_value(item.get('after'))}")
    return lines


def _value(value: Any) -> str:
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        summary = summarize(props(value))
        return f"{value['name']} ({summary})" if summary else value["name"]
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def _either(p: dict[str, Any], singular: str) -> str:
    """A singular field or its plural list (ARM allows either), as text."""
    values = [p[singular]] if isinstance(p.get(singular), str) and p[singular] else []
    plural = p.get(singular + "es")
    values += [str(v) for v in plural if v] if isinstance(plural, list) else []
    return ",".join(values) or "?"


def _provision_vm_agent(p: dict[str, Any]) -> bool | None:
    os_profile = p.get("osProfile") if isinstance(p.get("osProfile"), dict) else {}
    for key in ("linuxConfiguration", "windowsConfiguration"):
        config = os_profile.get(key)
        if isinstance(config, dict) and isinstance(config.get("provisionVMAgent"), bool):
            return config["provisionVMAgent"]
    return None
