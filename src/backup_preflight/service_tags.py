"""Microsoft's service-tag file (`--service-tags`): which addresses a tag such as Storage.WestEurope holds.

Without it, an NSG rule or route naming a public CIDR cannot be proven to cover or miss the
Storage tag, so the network verdict is unknown; with it, overlaps are decided exactly. Two shapes
are accepted, both `{"changeNumber", "cloud", "values": [{"name", "id", "properties":
{"addressPrefixes": [...], ...}}]}`: the weekly `ServiceTags_Public_YYYYMMDD.json` download and the
output of `az network list-service-tags` (keys compared case-insensitively, so PowerShell's
`ConvertTo-Json` output of `Get-AzNetworkServiceTag` reads too). Read here, in the input layer;
the estate receives the parsed prefixes and never touches files.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backup_preflight.errors import InputError, Problem
from backup_preflight.snapshot import json_kind, read_json

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class ServiceTags:
    """Address prefixes per tag name (lowercase, e.g. `storage.westeurope`), with the file's identity."""

    path: str
    sha256: str
    change_number: str | None
    cloud: str | None
    prefixes: Mapping[str, tuple[Network, ...]]

    def get(self, name: str) -> tuple[Network, ...] | None:
        """The prefixes of a tag (`Storage`, `Storage.WestEurope`, any case, spaces ignored), or None."""
        return self.prefixes.get(name.replace(" ", "").lower())

    def describe(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "changeNumber": self.change_number,
                "cloud": self.cloud, "tags": len(self.prefixes)}


def load(path: Path) -> ServiceTags:
    """Read and check a service-tag file; every malformed entry is reported with its JSON pointer."""
    label = str(path)
    doc, digest = read_json(path)
    if not isinstance(doc, dict) or not isinstance(_get(doc, "values"), list):
        found = json_kind(doc) if not isinstance(doc, dict) else "an object without a 'values' array"
        raise InputError.one(label, "/", f"not a service-tag file (ServiceTags_Public_*.json or "
                                         f"`az network list-service-tags` output): found {found}")
    problems: list[Problem] = []
    prefixes: dict[str, tuple[Network, ...]] = {}
    for i, value in enumerate(_get(doc, "values")):
        where = f"/values/{i}"
        name = _get(value, "name") if isinstance(value, dict) else None
        if not isinstance(name, str) or not name:
            problems.append(Problem(label, where, "entry has no 'name' string"))
            continue
        raw = _get(_get(value, "properties"), "addressPrefixes")
        if not isinstance(raw, list):
            problems.append(Problem(label, f"{where}/properties/addressPrefixes",
                                    f"tag {name!r}: expected an array of address prefixes, found {json_kind(raw)}"))
            continue
        nets = []
        for j, text in enumerate(raw):
            try:
                if not isinstance(text, str):
                    raise TypeError(text)
                nets.append(ipaddress.ip_network(text, strict=False))
            except (TypeError, ValueError):
                problems.append(Problem(label, f"{where}/properties/addressPrefixes/{j}",
                                        f"tag {name!r}: {text!r} is not an address prefix"))
        prefixes[name.replace(" ", "").lower()] = tuple(nets)
    if problems:
        raise InputError(problems)
    change = _get(doc, "changeNumber")
    cloud = _get(doc, "cloud")
    return ServiceTags(label, digest, None if change is None else str(change),
                       cloud if isinstance(cloud, str) else None, prefixes)


def _get(obj: Any, key: str) -> Any:
    """A key of a JSON object compared case-insensitively (az prints camelCase, PowerShell PascalCase)."""
    if not isinstance(obj, dict):
        return None
    if key in obj:
        return obj[key]
    lowered = key.lower()
    return next((v for k, v in obj.items() if isinstance(k, str) and k.lower() == lowered), None)
