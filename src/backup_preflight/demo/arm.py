"""The Resource Graph row envelope and the ways ARM spells ids and times, shared by every row builder.

Why: real sources disagree on casing (lowercase resourceGroup, upper-case back-references, vaults
that lowercase a VM id), and the demo must reproduce each spelling exactly where Azure uses it.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from backup_preflight.demo.plan import Estate

Row = dict[str, Any]


def arg_row(estate: Estate, rid: str, name: str, rtype: str, sub: str, rg: str, location: str,
            properties: Row, tags: dict[str, str] | None = None, sku: Row | None = None) -> Row:
    """The columns every Resource Graph objectArray row carries (lowercase type and resourceGroup)."""
    return {"id": rid, "name": name, "type": rtype, "tenantId": estate.tenant, "kind": "",
            "location": location, "resourceGroup": _lower(rg), "subscriptionId": sub, "managedBy": "",
            "sku": sku, "plan": None, "properties": properties, "tags": tags or {}, "identity": None,
            "zones": None, "extendedLocation": None}


_lower = functools.lru_cache(maxsize=4096)(str.lower)  # one lowercase string per resource group


@functools.lru_cache(maxsize=512)  # a few hundred distinct times recur in every estate
def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _upper_rg(resource_id: str) -> str:
    """`.../resourceGroups/RG-APP-01/...`: how ARM spells back-references."""
    parts = resource_id.split("/")
    parts[4] = parts[4].upper()
    return "/".join(parts)


def upper_tail(resource_id: str) -> str:
    """`.../resourceGroups/RG-APP-01/providers/Microsoft.Compute/AVAILABILITYSETS/AVSET-X`."""
    parts = _upper_rg(resource_id).split("/")
    parts[-2:] = [p.upper() for p in parts[-2:]]
    return "/".join(parts)


def spell(resource_id: str, style: str) -> str:
    if style == "lower":
        return resource_id.lower()
    if style == "upper-rg":
        return _upper_rg(resource_id)
    return resource_id
