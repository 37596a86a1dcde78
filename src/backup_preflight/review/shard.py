"""`scan --shard-name`: what a partial run records so that `merge` can prove its shards add up exactly.

A per-VM verdict depends on that VM's rows only, so shards that split the VMs merge by union. A
grouped policy (schedule spread: `groupBy`) judges a VM with the other members of its group, so a
group whose members sit in two shards would be judged on part of its members in each. A shard
therefore records, per grouped policy, the key of every group its VMs fall in (as the engine
compares them: text lowercased); `merge` refuses shards that share a group key.

Backup slots are UTC instants taken with the daylight saving in force at a reference instant (the
snapshot's collectedAt); a scan of all shards' files takes the latest one. So a shard also records
its reference and the zones of its backup policies, and `merge` refuses a shard whose slots would
move at the union's reference (a daylight-saving change between the collections).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import product
from typing import Any

from backup_preflight.findings import NOT_APPLICABLE, Finding, held
from backup_preflight.policy.engine import query_targets
from backup_preflight.policy.grouped import group_value_reader
from backup_preflight.policy.loader import PolicySet
from backup_preflight.snapshot import query_key

Groups = dict[str, set[tuple[Any, ...]]]


def group_keys(policies: PolicySet, vms: list[dict[str, Any]], findings: Sequence[Finding],
               queries: dict[str, dict[str, Any]]) -> Groups:
    """Per grouped policy, the key of every group its targets fall in, as the engine compares them (text
    lowercased). A VM counts in a policy's groups unless the policy does not apply to it; counting VMs
    whose applicability is unknown too can only make `merge` refuse more, never accept a split group."""
    grouped = [p for p in policies.policies if p.group_by]
    ids = {p.id for p in grouped}
    outside = {(f.policy_id, f.resource_id.lower()) for f in held(findings)  # no plain pass is notApplicable
               if f.status == NOT_APPLICABLE and f.policy_id in ids}
    groups: Groups = {}
    read = group_value_reader()
    for policy in grouped:
        keys = groups[policy.id] = set()
        targets = vms if policy.query is None else query_targets(
            query_key(policy.query), (queries.get(query_key(policy.query)) or {}).get("rows") or [])
        for vm in targets:
            if (policy.id, vm["id"].lower()) not in outside:  # a group per combination of the fields' values
                keys.update(product(*(read(path.get(vm)) for path in policy.group_by)))
    return groups


def time_zones(vms: list[dict[str, Any]]) -> set[str]:
    """The time zones the VMs' backup policies are written in."""
    return {b["timeZone"] for vm in vms
            if isinstance(b := vm.get("backup"), dict) and isinstance(b.get("timeZone"), str)}


def shard_record(name: str, groups: Groups, zones: set[str], reference: datetime) -> dict[str, Any]:
    """`scan.shard` of results.json: the shard's name, the group keys of each grouped policy (group_keys),
    and the instant its backup schedules were turned into UTC slots at with the time zones they are
    written in (a scan of the union takes them at the latest collectedAt; `merge` checks that nothing
    changes)."""
    return {"name": name,
            "groups": {policy: [list(k) for k in sorted(keys, key=repr)] for policy, keys in groups.items()},
            "slotReference": reference.isoformat().replace("+00:00", "Z"), "timeZones": sorted(zones)}
