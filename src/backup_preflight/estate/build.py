"""Build the estate: every VM's fact record, plus what was (not) collected."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
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


def build_estate(snap: Snapshot, now: datetime | None = None, service_tags: ServiceTags | None = None) -> Estate:
    """`now` is the scan's clock, the reference instant for daylight saving when the snapshot has no
    collectedAt; the stage itself never reads a clock. `service_tags`: Microsoft's published prefixes
    (`--service-tags`), which decide network overlaps exactly."""
    index = Index(snap, now)
    model = NetworkModel(index.by_id, service_tags)
    vms = [vm_facts(row, index, model) for row in index.vms]
    vms.sort(key=lambda f: f["id"].lower())
    return Estate(vms=vms, collected_tables=sorted(index.collected), errors=list(snap.errors))
