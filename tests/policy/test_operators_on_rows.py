"""Operator semantics end to end: Resource Graph rows → estate → policy → finding."""

import json
from pathlib import Path
from typing import Any

from backup_preflight import snapshot
from backup_preflight.estate import build_estate
from backup_preflight.policy.engine import evaluate
from backup_preflight.policy.loader import load_policies
from backup_preflight.snapshot import query_key

from arg import extension_row, snapshot_doc, vm_row

FAILED_EXTENSIONS: dict[str, Any] = {
    "id": "MY-EXT-001", "title": "No extension failed", "cause": "backup-extension", "severity": "high",
    "assert": {"count": {"field": "extensions[*]", "where": {
        "field": "extensions[*].provisioningState", "equals": "Failed"}}, "equals": 0},
    "message": "{name} has a failed extension (owner {tags.owner})", "remediation": "Reinstall it.",
}
VAULT = "/subscriptions/s/resourceGroups/RG-Backup/providers/Microsoft.RecoveryServices/vaults/"
KQL = "resources | where type =~ 'microsoft.recoveryservices/vaults' | project id, name, sku = tostring(sku.name)"
VAULT_NAMES: dict[str, Any] = {
    "id": "MY-VAULT-002", "title": "Vault names follow the convention", "cause": "backup-protection",
    "severity": "low", "target": "resourceGraphQuery", "query": KQL,
    "assert": {"allOf": [{"field": "row.name", "like": "rsv-?-*"}, {"field": "row.sku", "greaterOrEquals": "rs0"}]},
    "message": "Vault {name}", "remediation": "Rename it.",
}


def policies(tmp: Path, *docs: dict[str, Any]) -> Any:
    for doc in docs:
        (tmp / f"{doc['id']}.json").write_text(json.dumps(doc))
    return load_policies([tmp])


def test_one_failed_extension_fails_even_when_another_reports_no_state(tmp_path: Path) -> None:
    vm = vm_row("vm1", tags={"owner": "{name}"})
    failed = extension_row(vm["id"], "VMSnapshotLinux", state="Failed")
    pending = extension_row(vm["id"], "CustomScript")
    del pending["properties"]["provisioningState"]   # a row caught mid-deployment
    snap = snapshot.from_document(snapshot_doc([vm, failed, pending]), "s")
    [finding] = evaluate(policies(tmp_path, FAILED_EXTENSIONS), build_estate(snap).vms)
    assert finding.status == "fail"
    assert finding.message == "vm1 has a failed extension (owner {name})"
    assert finding.evidence[0].startswith("count of extensions matching the where condition is between 1 and 2")


def test_only_the_undecided_extension_leaves_the_count_unknown(tmp_path: Path) -> None:
    vm = vm_row("vm1")
    pending = extension_row(vm["id"], "CustomScript")
    del pending["properties"]["provisioningState"]
    snap = snapshot.from_document(snapshot_doc([vm, extension_row(vm["id"]), pending]), "s")
    [finding] = evaluate(policies(tmp_path, FAILED_EXTENSIONS), build_estate(snap).vms)
    assert finding.status == "unknown"
    assert "extensions[*].provisioningState was not collected" in finding.evidence


def test_like_and_string_ordering_on_resource_graph_rows(tmp_path: Path) -> None:
    rows = [{"id": VAULT + "rsv-?-weu", "name": "rsv-?-weu", "sku": "RS0"},     # `?` literally
            {"id": VAULT + "rsv-1-weu", "name": "rsv-1-weu", "sku": "RS0"},     # not a one-character wildcard
            {"id": VAULT + "RSV-?-NEU", "name": "RSV-?-NEU", "sku": "Standard"},  # case ignored by both
            {"id": VAULT + "rsv-?-old", "name": "rsv-?-old", "sku": "A0"}]      # "a0" < "rs0" whatever the case
    found = evaluate(policies(tmp_path, VAULT_NAMES), [], {query_key(KQL): {"query": KQL, "rows": rows}})
    assert {f.resource_name: f.status for f in found} == {
        "rsv-?-weu": "pass", "rsv-1-weu": "fail", "RSV-?-NEU": "pass", "rsv-?-old": "fail"}
