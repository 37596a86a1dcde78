"""resourcecontainers through the real Resource Graph SDK against the fake Azure: subscription display
names and the tags of subscriptions and resource groups, and what happens when they cannot be read."""

from __future__ import annotations

from typing import Any

from backup_preflight import scan
from backup_preflight.estate import build_estate
from backup_preflight.policy.loader import bundled_policy_dir, load_policies
from backup_preflight.results import EXIT_INCOMPLETE, Gate
from collect.fakeazure import Fault, make_estate, subscription_ids


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
