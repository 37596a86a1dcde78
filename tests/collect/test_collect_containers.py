"""resourcecontainers through the real Resource Graph SDK against the fake Azure: subscription display
names and the tags of subscriptions and resource groups, and what happens when they cannot be read."""

from __future__ import annotations

from typing import Any

import pytest

from backup_preflight import scan
from backup_preflight.estate import build_estate
from backup_preflight.policy.loader import bundled_policy_dir, load_policies
from backup_preflight.results import EXIT_INCOMPLETE, Gate
from collect.fakeazure import Fault, container_rows, make_estate, subscription_ids


def containers_query(request: Any) -> bool:
    return request.query.lower().startswith("resourcecontainers")


def test_subscriptions_and_resource_groups_in_scope_are_collected(serve: Any, run: Any) -> None:
    subs = subscription_ids(3)
    fake = serve(make_estate(30, subs))
    snap, _ = run(fake, subscriptions=subs[:2])

    assert snap.errors == []
    rows = snap.tables["resourcecontainers"]
    by_type: dict[str, list[str]] = {}
    for row in rows:
        by_type.setdefault(row["type"], []).append(row["id"])
    # Only the subscriptions asked for; the management group rows are left out by the type filter.
    assert sorted(by_type) == ["microsoft.resources/subscriptions", "microsoft.resources/subscriptions/resourcegroups"]
    assert sorted(by_type["microsoft.resources/subscriptions"]) == [f"/subscriptions/{s}" for s in subs[:2]]
    assert len(by_type["microsoft.resources/subscriptions/resourcegroups"]) == 2 * 8
    assert [r.body["subscriptions"] for r in fake.graph_requests() if containers_query(r)] == [subs[:2]]

    vms = build_estate(snap).vms
    assert {(vm["subscriptionId"], vm["subscriptionName"]) for vm in vms} == {
        (subs[0], "Subscription 0"), (subs[1], "Subscription 1")}
    first = next(vm for vm in vms if vm["subscriptionId"] == subs[1])
    assert first["subscriptionState"] == "Enabled"
    assert first["subscriptionTags"] == {"costCenter": "CC-1"}
    assert first["resourceGroupTags"] == {"team": first["resourceGroup"]}


def test_containers_that_cannot_be_read_are_a_coverage_error_and_leave_the_guid(serve: Any, run: Any) -> None:
    subs = subscription_ids(2)
    fake = serve(make_estate(10, subs))
    fake.add_fault(Fault(containers_query, status=403, times=99))
    snap, _ = run(fake, subscriptions=subs)

    assert "resourcecontainers" not in snap.tables
    assert sorted((e["scope"], e["table"], e["status"]) for e in snap.errors) == [
        (f"subscription {s}", "resourcecontainers", 403) for s in subs]
    result = scan.run_scan(scan.live_source(snap), load_policies([bundled_policy_dir()]), Gate())
    assert result.exit_code == EXIT_INCOMPLETE  # recorded, never silent
    assert "resourcecontainers" in result.coverage["notCollected"]
    assert result.coverage["subscriptionsWithoutName"] == sorted(subs)
    assert result.subscriptions == {} and result.findings
    assert all(result.subscription_name(f.subscription_id) == "" and f.subscription_id in subs for f in result.findings)
    assert {f.status for f in result.findings} >= {"pass"}  # the verdicts do not depend on the names


def left_out(snap: Any) -> list[tuple[str, str, int | None]]:
    return sorted((e["scope"], e["table"], e["status"]) for e in snap.errors if e["status"] == 200)


@pytest.mark.parametrize("compact_rows", [False, True], ids=["rows", "compact rows"])
def test_a_named_subscription_resource_graph_leaves_out_is_a_scope_error(serve: Any, run: Any,
                                                                          compact_rows: bool) -> None:
    """Asked about several subscriptions, Resource Graph leaves out one the identity cannot read: no 403,
    no rows. Its empty tables looked like a subscription without VMs, and the run passed."""
    subs = subscription_ids(3)
    estate = make_estate(30, subs)
    estate.hidden_subscriptions = {subs[1]}
    fake = serve(estate)
    snap, _ = run(fake, subscriptions=subs, compact_rows=compact_rows)

    [error] = snap.errors
    assert error == {"scope": f"subscription {subs[1]}", "table": "resourcecontainers", "status": 200,
                     "message": f"subscription {subs[1]} returned no rows: the identity cannot read it, "
                                "or it does not exist"}
    assert [r.status for r in fake.graph_requests()] == [200] * 4  # one batch, every query answered
    snap.materialize()
    assert {vm["subscriptionId"] for vm in build_estate(snap).vms} == {subs[0], subs[2]}
    result = scan.run_scan(scan.live_source(snap), load_policies([bundled_policy_dir()]), Gate())
    assert result.exit_code == EXIT_INCOMPLETE
    assert [e["scope"] for e in result.coverage["errors"]] == [f"subscription {subs[1]}"]


def test_a_readable_subscription_without_vms_is_not_an_error(serve: Any, run: Any) -> None:
    subs = subscription_ids(2)
    estate = make_estate(10, subs[:1])
    estate.tables["resourcecontainers"] = container_rows(subs)  # subs[1] is readable and holds no VM
    snap, _ = run(serve(estate), subscriptions=subs)

    assert snap.errors == []
    assert {vm["subscriptionId"] for vm in build_estate(snap).vms} == {subs[0]}


def test_a_reader_of_some_resource_groups_only_sees_its_subscription_through_them(serve: Any, run: Any) -> None:
    """Reader on resource groups only: Resource Graph returns those groups but not the subscription's own row.
    Its subscription is seen (its resources were read as far as the identity may), so it is no scope error."""
    subs = subscription_ids(2)
    estate = make_estate(10, subs)
    own_row = "microsoft.resources/subscriptions"
    estate.tables["resourcecontainers"] = [r for r in container_rows(subs)
                                           if r["type"] != own_row or r["id"].endswith(subs[0])]
    snap, _ = run(serve(estate), subscriptions=subs)
    assert snap.errors == []
    estate.management_groups = {"mg-rg-reader": [subs[1]]}
    snap, _ = run(serve(estate), management_groups=["mg-rg-reader"])
    assert snap.errors == []


def test_a_management_group_without_a_readable_subscription_is_a_scope_error(serve: Any, run: Any) -> None:
    subs = subscription_ids(3)
    estate = make_estate(30, subs)
    estate.hidden_subscriptions = {subs[1]}
    estate.management_groups = {"mg-ok": [subs[0], subs[1]], "mg-hidden": [subs[1]], "mg-empty": []}
    snap, _ = run(serve(estate), management_groups=["mg-ok", "mg-hidden", "mg-empty"])

    # mg-ok shows subs[0] and cannot tell that subs[1] is missing: only named subscriptions are checked one by one.
    assert left_out(snap) == [("managementGroup mg-empty", "resourcecontainers", 200),
                              ("managementGroup mg-hidden", "resourcecontainers", 200)]
    assert {e["message"] for e in snap.errors} == {
        f"management group {mg} returned nothing the identity can read" for mg in ("mg-empty", "mg-hidden")}
    assert {vm["subscriptionId"] for vm in build_estate(snap).vms} == {subs[0]}


def test_a_scope_whose_containers_failed_is_not_named_a_second_time(serve: Any, run: Any) -> None:
    """A forbidden subscription (403, narrowed out of its batch) is named by its failures alone; one left out
    beside it in the same batch is still found."""
    subs = subscription_ids(4)
    estate = make_estate(40, subs)
    estate.forbidden_subscriptions = {subs[0]}
    estate.hidden_subscriptions = {subs[2]}
    estate.management_groups = {"mg-failing": [subs[3]]}
    fake = serve(estate)
    fake.add_fault(Fault(lambda r: containers_query(r) and r.management_groups == ["mg-failing"], status=400,
                         times=99))
    snap, _ = run(fake, subscriptions=subs, management_groups=["mg-failing"])

    assert left_out(snap) == [(f"subscription {subs[2]}", "resourcecontainers", 200)]
    assert sorted((e["scope"], e["status"]) for e in snap.errors if e["table"] == "resourcecontainers") == sorted([
        (f"subscription {subs[0]}", 403), (f"subscription {subs[2]}", 200), ("managementGroup mg-failing", 400)])
