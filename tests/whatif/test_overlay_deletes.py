"""Deletions in the overlay remove exactly the rows of deleted resources and those under them, in every table,
as the definition says.

The oracle is the definition written out: a row goes when its lowercase id is the id of a deleted resource
(that was not created again) or starts with it followed by '/'. Mixed inputs: ids in any case, ids of
different lengths, extensions under VMs, instance views (a table the plan does not touch, keyed by the VM's
id), deletions of VMs and of whole resource groups (whose table was not collected), of rows that exist, do
not exist, or are re-created by the same plan.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from backup_preflight.snapshot import Snapshot
from backup_preflight.whatif import overlay
from backup_preflight.whatif.parse import from_document
from whatif.plan import az_output, change

from arg import SUB

VM_TYPE = "Microsoft.Compute/virtualMachines"
VMS = ("vm1", "vm-12", "vm-123", "VM1x", "vm-app-0001")


def vm_id(name: str, group: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{group}/providers/{VM_TYPE}/{name}"


def vm_body(resource_id: str) -> dict[str, Any]:
    return {"apiVersion": "2024-07-01", "id": resource_id, "name": resource_id.rsplit("/", 1)[-1], "type": VM_TYPE,
            "location": "westeurope", "properties": {"storageProfile": {"osDisk": {"osType": "Linux"}}}}


def row(resource_id: str, rtype: str) -> dict[str, Any]:
    return {"id": resource_id, "name": resource_id.rsplit("/", 1)[-1], "type": rtype.lower(), "properties": {}}


GROUPS = ("RG-App", "rg-app-long", "rg")
ids = st.tuples(st.sampled_from(VMS), st.sampled_from(GROUPS))


def group_id(group: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{group}"


Case = tuple[list[dict[str, Any]], list[dict[str, Any]], list[tuple[str, str]]]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    rows, views = [], []
    for name, group in draw(st.lists(ids, unique=True, max_size=8)):
        vid = vm_id(name, group)
        rows.append(row(draw(st.sampled_from((vid, vid.upper()))), VM_TYPE))
        for extension in draw(st.lists(st.sampled_from(("VMSnapshot", "AzureMonitorAgent")), unique=True)):
            rows.append(row(f"{vid}/extensions/{extension}", f"{VM_TYPE}/extensions"))
        if draw(st.booleans()):
            views.append({"id": vid, "instanceView": {}})
    plan = [draw(st.one_of(st.tuples(st.sampled_from(("Delete", "Delete", "Create")), ids.map(lambda i: vm_id(*i))),
                           st.tuples(st.just("Delete"), st.sampled_from(GROUPS).map(group_id))))
            for _ in range(draw(st.integers(0, 6)))]
    return rows, views, plan


def oracle(rows: list[dict[str, Any]], views: list[dict[str, Any]],
           plan: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """Lowercase ids that remain in each table, in the order the overlay keeps them (current rows, then new)."""
    current = {r["id"].lower(): r for r in rows}
    deleted: set[str] = set()
    for kind, resource_id in plan:
        lid = resource_id.lower()
        if kind == "Delete":
            current.pop(lid, None)
            deleted.add(lid)
        else:
            current[lid] = row(resource_id, VM_TYPE)
            deleted.discard(lid)

    def stays(lid: str) -> bool:
        return not any(lid == d or lid.startswith(d + "/") for d in deleted)

    return [lid for lid in current if stays(lid)], [v["id"].lower() for v in views if stays(v["id"].lower())]


@settings(max_examples=300, deadline=None)
@given(cases())
def test_deletes_remove_exactly_the_rows_of_and_under_deleted_resources_in_every_table(case: Case) -> None:
    rows, views, plan = case
    snap = Snapshot(tables={"resources": rows, "instanceviews": views})
    changes = [change(kind, rid, after=vm_body(rid) if kind == "Create" else None) for kind, rid in plan]
    after, _, _ = overlay(snap, from_document(az_output(*changes), "whatif.json"))
    assert ([r["id"].lower() for r in after.tables["resources"]],
            [r["id"].lower() for r in after.tables["instanceviews"]]) == oracle(rows, views, plan)
