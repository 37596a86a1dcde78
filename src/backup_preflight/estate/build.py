"""Build the estate: every VM's fact record, plus what was (not) collected."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from backup_preflight.estate.index import Index, Lookup
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
    #: The rows by lowercase id, as the facts were read from them: a what-if's blame finds a subnet's NSG and
    #: route table in its VNet here (whatif/blame.py), through the same lookup a part notes misses with.
    by_id: Mapping[str, Any] = field(default_factory=dict)

    def tags(self) -> dict[str, dict[str, dict[str, str]]]:
        """By lowercase VM id, the tags of the VM (`vm`), its `resourceGroup` and `subscription`, for
        the reports to show and search; VMs without any tag are left out.

        The run keeps these to the end, so equal sets of tags (a resource group's and subscription's,
        copied into each of their VMs' facts; VMs tagged alike) and equal combinations of them are one
        object each, read-only: at 24,000 VMs, 24 MB with a copy per VM (docs/performance.md)."""
        out = {}
        sets: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
        combined: dict[tuple[tuple[str, int], ...], dict[str, dict[str, str]]] = {}
        for vm in self.vms:
            kinds = {kind: sets.setdefault(tuple(vm[fact].items()), vm[fact]) for kind, fact in _TAG_FACTS
                     if vm.get(fact)}
            if kinds:
                out[vm["id"].lower()] = combined.setdefault(tuple((k, id(v)) for k, v in kinds.items()), kinds)
        return out

    def subscriptions(self) -> dict[str, dict[str, Any]]:
        """By lowercase subscription id, what resourcecontainers said of each subscription of the
        estate's VMs: `displayName`, `state` and `tags`, each when known; subscriptions without a row
        are left out (see unnamed_subscriptions)."""
        out: dict[str, dict[str, Any]] = {}
        for vm in self.vms:
            key = vm["subscriptionId"].lower()
            if key not in out and "subscriptionTags" in vm:  # set whenever the subscription's row is there
                out[key] = {name: vm[fact] for name, fact in _SUBSCRIPTION_FACTS if fact in vm}
        return dict(sorted(out.items()))

    def unnamed_subscriptions(self) -> list[str]:
        """Subscriptions (lowercase ids) of VMs whose display name is unknown (no resourcecontainers row for
        them, or one without a name)."""
        return sorted({vm["subscriptionId"].lower() for vm in self.vms if "subscriptionName" not in vm})


_SUBSCRIPTION_FACTS = (("displayName", "subscriptionName"), ("state", "subscriptionState"),
                       ("tags", "subscriptionTags"))
_TAG_FACTS = (("vm", "tags"), ("resourceGroup", "resourceGroupTags"), ("subscription", "subscriptionTags"))


def build_estate(snap: Snapshot, now: datetime | None = None, service_tags: ServiceTags | None = None,
                 lookup: Lookup = dict) -> Estate:
    """`now` is the scan's clock, the reference instant for daylight saving when the snapshot has no
    collectedAt; the stage itself never reads a clock. `service_tags`: Microsoft's published prefixes
    (`--service-tags`), which decide network overlaps exactly. `lookup`: see Index."""
    index = Index(snap, now, lookup)
    model = NetworkModel(index.by_id, service_tags, lookup)
    vms = [vm_facts(row, index, model) for row in index.vms]
    vms.sort(key=lambda f: f["id"].lower())
    return Estate(vms=vms, collected_tables=sorted(index.collected), errors=list(snap.errors), by_id=index.by_id)
