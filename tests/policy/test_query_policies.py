"""Policies over the rows of their own Resource Graph query (target resourceGraphQuery)."""

import json
from pathlib import Path
from typing import Any

import pytest

from backup_preflight.errors import InputError
from backup_preflight.policy.engine import evaluate
from backup_preflight.policy.loader import load_policies
from backup_preflight.snapshot import query_key

KQL = ("resources | where type =~ 'microsoft.recoveryservices/vaults' "
       "| project id, name, softDelete = tostring(properties.securitySettings.softDeleteSettings.softDeleteState)")
VAULT_ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.RecoveryServices/vaults/"
POLICY: dict[str, Any] = {
    "id": "MY-VAULT-001", "title": "Vault soft delete is on", "cause": "backup-protection", "severity": "medium",
    "target": "resourceGraphQuery", "query": KQL,
    "assert": {"field": "row.softDelete", "in": ["Enabled", "AlwaysOn"]},
    "message": "Vault {name} has soft delete {row.softDelete}", "remediation": "Enable soft delete.",
}


def load(tmp: Path, doc: dict[str, Any]) -> Any:
    (tmp / "p.json").write_text(json.dumps(doc))
    return load_policies([tmp])


def test_rows_are_judged_and_named_by_their_id(tmp_path: Path) -> None:
    policies = load(tmp_path, POLICY)
    vault = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.RecoveryServices/vaults/"
    rows = [{"id": vault + "v1", "name": "v1", "softDelete": "AlwaysOn"},
            {"id": vault + "v2", "name": "v2", "softDelete": "Disabled"},
            {"id": vault + "v3", "name": "v3"}]
    found = {f.resource_name: f for f in evaluate(policies, [], {query_key(KQL): {"query": KQL, "rows": rows}})}
    assert {n: f.status for n, f in found.items()} == {"v1": "pass", "v2": "fail", "v3": "unknown"}
    assert found["v2"].message == "Vault v2 has soft delete Disabled"
    assert found["v2"].resource_id == vault + "v2"
    assert "row.softDelete was not collected" in found["v3"].message


def test_a_query_missing_from_the_snapshot_is_one_unknown_finding(tmp_path: Path) -> None:
    [finding] = evaluate(load(tmp_path, POLICY), [{"id": "/x", "name": "vm"}], {})
    assert finding.status == "unknown"
    assert "collect --policies" in finding.message
    assert finding.resource_id == f"query:{query_key(KQL)[:16]}"


@pytest.mark.parametrize(("change", "place", "fragment"), [
    ({"query": None}, "/", "'query' is a required property"),
    ({"target": None}, "/", "should not be valid"),
    ({"assert": {"field": "softDelete", "equals": "On"}}, "/assert/field", "row.<column>"),
    ({"message": "Vault {powerState}"}, "/message", "row.<column>"),
])
def test_shape_errors(tmp_path: Path, change: dict[str, Any], place: str, fragment: str) -> None:
    doc = {k: v for k, v in {**POLICY, **change}.items() if v is not None}
    with pytest.raises(InputError) as info:
        load(tmp_path, doc)
    [problem] = info.value.problems
    assert problem.place == place and fragment in problem.reason


def test_rows_become_targets_with_their_scope_and_a_stable_order(tmp_path: Path) -> None:
    from backup_preflight.policy.engine import query_targets

    rows = [{"id": VAULT_ID + "b-vault", "subscriptionId": "sub-1", "resourceGroup": "RG-Backup"},
            {"id": VAULT_ID.upper() + "A-VAULT", "name": "display-a", "subscriptionId": None},
            {"name": "no-id"}, "not a row", {"id": 5}]
    targets = query_targets("f" * 64, rows)
    assert [(t["id"], t["name"]) for t in targets] == [
        (VAULT_ID.upper() + "A-VAULT", "display-a"), (VAULT_ID + "b-vault", "b-vault"),
        ("query:" + "f" * 16 + "/2", "no-id"), ("query:" + "f" * 16 + "/3", "3"), ("query:" + "f" * 16 + "/4", "4")]
    by_name = {t["name"]: t for t in targets}
    assert (by_name["b-vault"]["subscriptionId"], by_name["b-vault"]["resourceGroup"]) == ("sub-1", "rg-backup")
    # projected without them (or null): the id's, as Azure spells the subscription (was "" and "None")
    assert (by_name["display-a"]["subscriptionId"], by_name["display-a"]["resourceGroup"]) == ("S", "rg")
    assert (by_name["no-id"]["subscriptionId"], by_name["no-id"]["resourceGroup"]) == ("", "")
    assert by_name["3"]["row"] == {} and by_name["b-vault"]["row"] is rows[0]


def test_a_query_not_collected_names_the_query_and_no_scope(tmp_path: Path) -> None:
    [finding] = evaluate(load(tmp_path, POLICY), [], {})
    key = query_key(KQL)
    assert (finding.resource_name, finding.subscription_id, finding.resource_group) == ("MY-VAULT-001 query", "", "")
    assert finding.evidence == (f"query {key[:16]}… was not collected",)
    assert finding.message.startswith("Not assessed: the rows of this policy's Resource Graph query are not in "
                                      "the snapshot; collect them with `backup-preflight collect --policies DIR`")
