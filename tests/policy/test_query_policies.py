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
