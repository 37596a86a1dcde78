"""ARM resource bodies (what-if `before`/`after`) into the row shapes Resource Graph stores.

Resource Graph lowercases `type`, `resourceGroup` and `location` and adds `subscriptionId`; it
stores NSG rules, subnets and routes inside their parent's `properties` (not as rows of their
own), but VM extensions as rows of their own. The estate reads rows only in those shapes, so the
overlay must write them the same way.
"""

from __future__ import annotations

from typing import Any

from backup_preflight.estate.index import VM_TYPE, Row, last_segment, props, segment_after

NSG_TYPE = "microsoft.network/networksecuritygroups"
VNET_TYPE = "microsoft.network/virtualnetworks"
ROUTE_TABLE_TYPE = "microsoft.network/routetables"

#: Child type → the array of its parent's `properties` that holds it in Resource Graph.
EMBEDDED_CHILDREN = {
    f"{NSG_TYPE}/securityrules": "securityRules",
    f"{VNET_TYPE}/subnets": "subnets",
    f"{ROUTE_TABLE_TYPE}/routes": "routes",
}
_COLLECTIONS = {parent.rsplit("/", 1)[0]: key for parent, key in EMBEDDED_CHILDREN.items()}

#: Read-only `properties` a what-if `after` leaves out, kept from the current row: the NSG's default rules
#: (Azure adds them, templates never state them) and the VM's `extended` block (power state, ARG only).
KEEP_FROM_CURRENT = {NSG_TYPE: ("defaultSecurityRules",), VM_TYPE: ("extended",)}


def resource_type(resource_id: str) -> str:
    """Lowercase ARM type from an id: the namespace after the last `providers`, then every other segment."""
    parts = [p.lower() for p in resource_id.strip("/").split("/")]
    if "providers" in parts:
        at = len(parts) - 1 - parts[::-1].index("providers")
        return "/".join([parts[at + 1], *parts[at + 2::2]]) if at + 1 < len(parts) else ""
    if len(parts) >= 2 and parts[-2] in ("resourcegroups", "subscriptions"):
        return f"microsoft.resources/{parts[-2]}"
    return ""


def parent_id(resource_id: str) -> str:
    """The id one level up (`…/networkSecurityGroups/nsg/securityRules/r` → `…/networkSecurityGroups/nsg`)."""
    return resource_id.rstrip("/").rsplit("/", 2)[0]


def to_row(body: dict[str, Any], resource_id: str, rtype: str, current: Row | None) -> Row:
    """An ARG row for a top-level resource: the what-if body, normalised, with kept read-only parts.

    The current row's id spelling is kept, so the rows other tables join to stay byte-identical.
    """
    rid = current["id"] if current else resource_id
    row: Row = {k: v for k, v in body.items() if k != "apiVersion"}
    row.update(id=rid, type=rtype, name=last_segment(rid), subscriptionId=segment_after(rid, "subscriptions"))
    group = segment_after(rid, "resourcegroups")
    if group:
        row["resourceGroup"] = group.lower()
    if isinstance(row.get("location"), str):
        row["location"] = row["location"].replace(" ", "").lower()
    if not isinstance(row.get("tags"), dict):
        row["tags"] = {}
    p = dict(props(body))
    if current is not None:
        if "tenantId" in current:
            row["tenantId"] = current["tenantId"]
        kept = props(current)
        p.update({key: kept[key] for key in KEEP_FROM_CURRENT.get(rtype, ()) if key not in p and key in kept})
    key = _COLLECTIONS.get(rtype)
    if key and isinstance(p.get(key), list):
        p[key] = [_with_id(child, rid, key) for child in p[key]]
    row["properties"] = p
    return row


def embedded(body: dict[str, Any], resource_id: str) -> dict[str, Any]:
    """A child resource (rule, subnet, route) as its parent's array holds it: name, id, type, properties."""
    child = {k: v for k, v in body.items() if k != "apiVersion"}
    child.update(id=resource_id, name=last_segment(resource_id), properties=dict(props(body)))
    return child


def _with_id(child: Any, parent: str, key: str) -> Any:
    """A template may state an embedded child without `id`; the network model joins on it, so derive it."""
    if isinstance(child, dict) and not child.get("id") and isinstance(child.get("name"), str):
        return {**child, "id": f"{parent}/{key}/{child['name']}"}
    return child
