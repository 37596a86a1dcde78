"""Subscription and resource-group facts from resourcecontainers rows, in the shapes Resource Graph and
other tools give them; a row that is absent or malformed never breaks a VM's facts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from backup_preflight import scan, snapshot
from backup_preflight.estate import build_estate
from backup_preflight.policy.loader import bundled_policy_dir, load_policies
from backup_preflight.results import Gate

from arg import SUB, facts_by_name, resource_group_row, snapshot_doc, subscription_row, vm_row

SUB2 = "00000000-0000-0000-0000-000000000002"


def doc_with(*containers: dict[str, Any], vms: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return snapshot_doc(vms or [vm_row("vm1", tags={"Env": "prod"})], resourcecontainers=list(containers))


def container_reasons(facts: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in facts.get("unknownReasons", {}).items() if k.startswith(("subscription", "resourceGroup"))}


def test_the_vm_gets_its_subscription_name_state_and_tags_and_its_group_tags() -> None:
    f = facts_by_name(doc_with(subscription_row("Contoso Prod", tags={"cc": "CC-1"}),
                               resource_group_row("RG-App", tags={"team": "app"}),
                               resource_group_row("RG-Other", tags={"team": "other"})))["vm1"]
    assert (f["subscriptionName"], f["subscriptionState"]) == ("Contoso Prod", "Enabled")
    assert (f["tags"], f["subscriptionTags"], f["resourceGroupTags"]) == (
        {"Env": "prod"}, {"cc": "CC-1"}, {"team": "app"})
    assert container_reasons(f) == {}


def test_ids_and_types_join_in_any_letter_case() -> None:
    sub = {**subscription_row("Contoso Prod"), "id": f"/Subscriptions/{SUB.upper()}",
           "type": "Microsoft.Resources/Subscriptions"}
    group = {**resource_group_row("RG-App", tags={"team": "app"}), "id": f"/subscriptions/{SUB}/resourcegroups/rg-app",
             "type": "Microsoft.Resources/subscriptions/resourceGroups"}
    f = facts_by_name(doc_with(sub, group))["vm1"]
    assert f["subscriptionName"] == "Contoso Prod" and f["resourceGroupTags"] == {"team": "app"}


def test_a_subscription_whose_guid_has_letters_joins_in_any_letter_case() -> None:
    """Azure's GUIDs carry a-f; Resource Graph spells them lower case, other tools may not (SUB is all digits)."""
    sub = "5d2f7a1c-9b3e-4c8d-a1f0-0e9d8c7b6a5f"
    vm = vm_row("vm1")
    vm = {**vm, "id": vm["id"].replace(SUB, sub.upper()), "subscriptionId": sub.upper()}
    f = facts_by_name(doc_with({**subscription_row("Contoso Prod", sub=sub), "id": f"/subscriptions/{sub}"},
                               resource_group_row("RG-App", sub=sub.upper(), tags={"team": "app"}), vms=[vm]))["vm1"]
    assert f["subscriptionName"] == "Contoso Prod" and f["resourceGroupTags"] == {"team": "app"}


@pytest.mark.parametrize(("row", "name"), [
    (subscription_row(SUB), None),  # a name that is only the GUID names nothing
    ({**subscription_row(None), "properties": {"displayName": "From properties"}}, "From properties"),
    ({**subscription_row(SUB), "properties": {"displayName": "From properties"}}, "From properties"),
    ({**subscription_row(""), "properties": None}, None),
])
def test_the_display_name_is_the_row_name_else_properties_display_name(row: dict[str, Any], name: str | None) -> None:
    assert facts_by_name(doc_with(row))["vm1"].get("subscriptionName") == name


def test_no_row_leaves_the_facts_absent_and_a_wrong_type_says_why() -> None:
    f = facts_by_name(doc_with(resource_group_row("RG-Other")))["vm1"]
    assert not {"subscriptionName", "subscriptionState", "subscriptionTags", "resourceGroupTags"} & set(f)
    broken = {**subscription_row(["not", "text"], tags={"cc": 7, "ok": "yes"})}
    g = facts_by_name(doc_with(broken, {**resource_group_row("RG-App"), "tags": "oops"}))["vm1"]
    assert "subscriptionName" not in g and g["subscriptionTags"] == {"ok": "yes"} and g["resourceGroupTags"] == {}
    assert container_reasons(g) == {
        "subscriptionName": f"resourcecontainers row /subscriptions/{SUB}: name is an array, expected a string",
        "subscriptionTags.cc": f"resourcecontainers row /subscriptions/{SUB}: tags.cc is a number, expected a string",
        "resourceGroupTags": f"resourcecontainers row /subscriptions/{SUB}/resourceGroups/RG-App: tags is a string, "
                             "expected an object"}


def test_each_subscription_finds_its_own_row_and_a_missing_one_is_counted() -> None:
    other = json.loads(json.dumps(vm_row("vm2")).replace(SUB, SUB2))
    doc = doc_with(subscription_row("Contoso Prod"), vms=[vm_row("vm1"), other])
    result = scan.run_scan(scan.Source("snapshot", snapshot.from_document(doc, "t")),
                           load_policies([bundled_policy_dir()]), Gate())
    names = {(f.resource_name, result.subscription_name(f.subscription_id)) for f in result.findings}
    assert names == {("vm1", "Contoso Prod"), ("vm2", "")}
    assert result.subscriptions == {SUB: {"displayName": "Contoso Prod", "state": "Enabled", "tags": {}}}
    assert result.coverage["subscriptionsWithoutName"] == [SUB2]
    assert result.coverage["errors"] == []  # a missing name is no coverage error: verdicts do not need it


def test_az_graph_query_output_and_bare_rows_of_resourcecontainers_are_read(tmp_path: Path) -> None:
    vms, sub = tmp_path / "vms.json", tmp_path / "containers.json"
    vms.write_text(json.dumps([vm_row("vm1")]))
    projected = [{"id": f"/subscriptions/{SUB}", "name": "Contoso Prod", "tags": {"cc": "CC-1"}},  # no type
                 {"id": f"/subscriptions/{SUB}/resourceGroups/RG-App", "name": "RG-App", "tags": {"team": "app"}}]
    sub.write_text(json.dumps({"totalRecords": 2, "count": 2, "data": projected, "skip_token": None}))
    snap = snapshot.load_many([vms, sub])
    assert [r["type"] for r in snap.tables["resourcecontainers"]] == [
        "microsoft.resources/subscriptions", "microsoft.resources/subscriptions/resourcegroups"]
    [f] = build_estate(snap).vms
    assert (f["subscriptionName"], f["subscriptionTags"], f["resourceGroupTags"]) == (
        "Contoso Prod", {"cc": "CC-1"}, {"team": "app"})
    table = {"columns": [{"name": "id", "type": "string"}, {"name": "name", "type": "string"},
                         {"name": "type", "type": "string"}],
             "rows": [[f"/subscriptions/{SUB}", "Renamed", "Microsoft.Resources/subscriptions"]]}
    sub.write_text(json.dumps({"data": table}))
    assert build_estate(snapshot.load_many([vms, sub])).vms[0]["subscriptionName"] == "Renamed"


def test_merged_snapshots_keep_one_row_per_container_the_later_winning(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(doc_with(subscription_row("Old name"), resource_group_row("RG-App"))))
    later = {**subscription_row("New name"), "id": f"/SUBSCRIPTIONS/{SUB}"}
    second.write_text(json.dumps(snapshot_doc([], resourcecontainers=[later])))
    snap = snapshot.load_many([first, second])
    assert [r["name"] for r in snap.tables["resourcecontainers"]] == ["New name", "RG-App"]
    assert build_estate(snap).vms[0]["subscriptionName"] == "New name"


def test_the_tags_a_scan_keeps_are_one_object_per_distinct_set_and_keep_their_order() -> None:
    # Every VM's facts carry a copy of its subscription's and group's tags; the run keeps Estate.tags to
    # the end, so equal sets (and equal combinations of them) must be one object (docs/performance.md).
    vms = [vm_row(f"vm{i}", tags={"Env": "prod", "App": "a"}) for i in range(3)]
    vms += [vm_row("vm3", tags={"App": "a", "Env": "prod"}), vm_row("vm4", tags={"Env": "test"}), vm_row("vm5")]
    doc = json.loads(json.dumps(doc_with(subscription_row("Contoso", tags={"cc": "CC-1"}),
                                         resource_group_row("RG-App", tags={"team": "app"}), vms=vms)))
    estate = build_estate(snapshot.from_document(doc, "t"))
    tags = estate.tags()
    by_name = {vm["name"]: tags[vm["id"].lower()] for vm in estate.vms}
    assert by_name["vm0"] == {"vm": {"Env": "prod", "App": "a"}, "resourceGroup": {"team": "app"},
                              "subscription": {"cc": "CC-1"}}
    assert by_name["vm0"] is by_name["vm1"] is by_name["vm2"]
    assert list(by_name["vm3"]["vm"]) == ["App", "Env"] and by_name["vm3"] is not by_name["vm0"]
    assert by_name["vm4"]["vm"] == {"Env": "test"} and "vm" not in by_name["vm5"]
    assert len({id(kinds[kind]) for kinds in tags.values() for kind in ("resourceGroup", "subscription")}) == 2
    assert by_name["vm3"]["subscription"] is by_name["vm0"]["subscription"]
