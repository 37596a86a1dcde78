"""Compute instance views through the real azure-mgmt-compute client against the fake Azure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backup_preflight import snapshot
from backup_preflight.collect import Tuning
from backup_preflight.collect.instance_view import parse_vm_id, running_vm_ids
from collect.fakeazure import Fault, Request, make_estate, subscription_ids


def for_vm(name: str) -> Any:
    def match(request: Request) -> bool:
        return request.kind == "instanceview" and f"/virtualMachines/{name}/" in request.path

    return match


def test_instance_views_only_for_running_vms_some_failing(serve: Any, run: Any) -> None:
    subs = subscription_ids(2)
    estate = make_estate(30, subs, running_every=3)  # vm000000, vm000003, … are running
    deleted = next(k for k in estate.instance_views if k.endswith("/vm000006"))
    del estate.instance_views[deleted]  # deleted between the ARG query and the instance view call
    fake = serve(estate)
    fake.add_fault(Fault(for_vm("vm000009"), status=500, times=99))
    fake.add_fault(Fault(for_vm("vm000012"), status=503, times=1))
    snap, collector = run(fake, subscriptions=subs, instance_view=True, tuning=Tuning(max_attempts=3))

    running = running_vm_ids(snap.tables["resources"])
    assert len(running) == 10
    asked = {r.path.split("/virtualMachines/")[1].split("/")[0] for r in fake.view_requests()}
    assert asked == {vm_id.rsplit("/", 1)[1] for vm_id in running}
    assert all("api-version=" in r.path for r in fake.view_requests())

    rows = snap.tables["instanceviews"]
    assert [r["id"] for r in rows] == [v for v in running if not v.endswith(("vm000006", "vm000009"))]
    for row in rows:
        assert row["instanceView"] == estate.instance_views[row["id"].lower()]  # raw camelCase JSON
    assert rows[0]["instanceView"]["vmAgent"]["vmAgentVersion"] == "2.9.1.1"

    errors = {e["scope"]: e for e in snap.errors}
    assert set(errors) == {f"vm {v}" for v in running if v.endswith(("vm000006", "vm000009"))}
    by_vm = {scope.rsplit("/", 1)[1]: e for scope, e in errors.items()}
    assert by_vm["vm000006"]["status"] == 404 and by_vm["vm000006"]["table"] == "instanceviews"
    assert by_vm["vm000009"]["status"] == 500
    assert len([r for r in fake.view_requests() if "vm000009" in r.path]) == 3
    assert len([r for r in fake.view_requests() if "vm000006" in r.path]) == 1  # 404 is not retried
    assert collector.stats.view_requests == len(fake.view_requests()) == 10 + 2 + 1


def test_an_instance_view_that_is_no_object_is_retried_then_an_error(serve: Any, run: Any, tmp_path: Path) -> None:
    """A 200 whose body is JSON but no object (`null`, `[]`) is no instance view: once, it is asked again; if it
    stays so, the VM gets an error entry and no row, and the snapshot saved reads back (a row holding `null`
    was refused by `load`, so `collect` wrote a file `scan --snapshot` rejected)."""
    subs = subscription_ids(1)
    fake = serve(make_estate(8, subs))  # vm000000, vm000002, vm000004, vm000006 are running
    fake.add_fault(Fault(for_vm("vm000002"), status=200, raw=b"null", times=99))
    fake.add_fault(Fault(for_vm("vm000004"), status=200, raw=b"[]"))
    snap, _ = run(fake, subscriptions=subs, instance_view=True, tuning=Tuning(max_attempts=3))

    assert [(e["scope"].rsplit("/", 1)[1], e["table"], e["status"]) for e in snap.errors] == [
        ("vm000002", "instanceviews", 200)]
    assert "not a JSON object" in snap.errors[0]["message"]
    assert len([r for r in fake.view_requests() if "vm000002" in r.path]) == 3
    assert [r["id"].rsplit("/", 1)[1] for r in snap.tables["instanceviews"]] == ["vm000000", "vm000004", "vm000006"]
    snapshot.save(snap, tmp_path / "estate.json")
    assert snapshot.load(tmp_path / "estate.json").errors == snap.errors


def test_throttled_instance_view_waits_and_retries(serve: Any, run: Any, clock: Any) -> None:
    subs = subscription_ids(1)
    fake = serve(make_estate(4, subs))
    fake.add_fault(Fault(for_vm("vm000002"), status=429, headers={"Retry-After": "17"}))
    snap, _ = run(fake, subscriptions=subs, instance_view=True)

    assert snap.errors == []
    assert len(snap.tables["instanceviews"]) == 2
    assert 17.0 in clock.waits


def test_instance_view_can_be_skipped(serve: Any, run: Any) -> None:
    subs = subscription_ids(1)
    fake = serve(make_estate(4, subs))
    snap, _ = run(fake, subscriptions=subs, instance_view=False)

    assert "instanceviews" not in snap.tables
    assert fake.view_requests() == []


def test_no_running_vm_gives_an_empty_collected_table(serve: Any, run: Any) -> None:
    subs = subscription_ids(1)
    fake = serve(make_estate(3, subs, running_every=99))
    fake.estate.instance_views.clear()
    snap, _ = run(fake, subscriptions=subs, instance_view=True)

    assert snap.tables["instanceviews"] == []  # collected: there was nothing to read


def test_running_vm_ids_reads_the_arg_power_state() -> None:
    base = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/"

    def vm(name: str, code: Any) -> dict[str, Any]:
        view = {} if code is None else {"powerState": {"code": code}}
        return {"id": base + name, "type": "Microsoft.Compute/virtualMachines",
                "properties": {"extended": {"instanceView": view}}}

    rows = [vm("a", "PowerState/running"), vm("b", "PowerState/stopped"), vm("c", None),
            vm("d", "powerstate/RUNNING"), {"id": base + "e/extensions/x", "type": "x"}]
    assert running_vm_ids(rows) == [base + "a", base + "d"]


def test_parse_vm_id() -> None:
    assert parse_vm_id("/subscriptions/S/resourcegroups/G/providers/microsoft.compute/virtualmachines/V") == \
        ("S", "G", "V")
    assert parse_vm_id("/subscriptions/S/resourceGroups/G/providers/Microsoft.Network/networkInterfaces/n") is None
    assert parse_vm_id("/subscriptions/S/resourceGroups/G/providers/Microsoft.Compute/virtualMachines/V/x") is None
