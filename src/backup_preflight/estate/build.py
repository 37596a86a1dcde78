"""Build the estate: every VM's fact record, plus what was (not) collected."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backup_preflight.estate.index import Index
from backup_preflight.estate.network_facts import NetworkModel
from backup_preflight.estate.vm import vm_facts
from backup_preflight.service_tags import ServiceTags
from backup_preflight.snapshot import Snapshot


@dataclass(slots=True)
class Estate:
    """The facts of every VM in scope, in a stable order, and the snapshot's coverage."""

    vms: list[dict[str, Any]]
    collected_tables: list[str]
    errors: list[dict[str, Any]] = field(default_factory=list)


def build_estate(snap: Snapshot, service_tags: ServiceTags | None = None) -> Estate:
    """`service_tags`: Microsoft's published prefixes (`--service-tags`), which decide network overlaps exactly."""
    index = Index(snap)
    model = NetworkModel(index.by_id, service_tags)
    vms = [vm_facts(row, index, model) for row in index.vms]
    vms.sort(key=lambda f: f["id"].lower())
    return Estate(vms=vms, collected_tables=sorted(index.collected), errors=list(snap.errors))
