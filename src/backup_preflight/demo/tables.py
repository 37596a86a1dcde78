"""Rendering a planned estate into the snapshot's tables, in a fixed order.

Why: shared infrastructure first, then each VM's own rows, so the same plan always yields the same
bytes; metric noise comes from its own random stream, drawn after planning so it never shifts a plan.
"""

from __future__ import annotations

import random
from collections import Counter

from backup_preflight.demo.arm import Row
from backup_preflight.demo.plan import Estate
from backup_preflight.demo.scenarios import ALL_POLICIES, SCENARIOS
from backup_preflight.demo.shared_rows import avset_row, container_rows, policy_row, site_rows
from backup_preflight.demo.side_rows import SideTables
from backup_preflight.demo.vm_rows import backup_job_rows, protected_item_rows, vm_resource_rows

_CAUSES = {s.name: s.cause for s in SCENARIOS}


def render(estate: Estate) -> dict[str, list[Row]]:
    """All tables; shared infrastructure first, then each VM's own rows."""
    resources: list[Row] = []
    recovery: list[Row] = []
    used = Counter((vm.site.vault_id, vm.policy) for vm in estate.vms
                   if vm.protected and vm.protection_state in ("Protected", "ProtectionError"))
    for site in estate.sites:
        resources.extend(site_rows(estate, site))
        recovery.extend(policy_row(estate, site, spec, used[site.vault_id, spec.name]) for spec in ALL_POLICIES)
    resources.extend(avset_row(estate, avset_id, members) for avset_id, members in estate.avsets.items())
    side = SideTables(random.Random(estate.seed + 1))
    for vm in estate.vms:
        resources.extend(vm_resource_rows(estate, vm))
        if vm.protected:
            recovery.extend(protected_item_rows(estate, vm))
            recovery.extend(backup_job_rows(estate, vm, _CAUSES[vm.scenario]))
        side.add(estate, vm)
    return {"resources": resources, "recoveryservicesresources": recovery,
            "guestconfigurationresources": side.assignments, "instanceviews": side.instance_views,
            "guestfacts": side.guestfacts, "metrics": side.metrics, "resourcecontainers": container_rows(estate)}
