"""az graph query input as Resource Graph really returns it: pages, table routing and case."""

import json
import random
from pathlib import Path
from typing import Any

import pytest

from backup_preflight import demo, snapshot
from backup_preflight.estate import build_estate
from backup_preflight.policy.engine import evaluate
from backup_preflight.policy.loader import bundled_policy_dir, load_policies

from arg import SUB, protected_item, snapshot_doc, vm_row
from cli_helpers import run

VAULT = f"/subscriptions/{SUB}/resourceGroups/RG-Backup/providers/Microsoft.RecoveryServices/vaults/rsv-weu"


def write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc))
    return path


def vault_row(rtype: str = "microsoft.recoveryservices/vaults", rid: str = VAULT) -> dict[str, Any]:
    """A vault as Resource Graph's `resources` table returns it (no protected items inside)."""
    return {"id": rid, "name": rid.rsplit("/", 1)[-1], "type": rtype, "location": "westeurope",
            "resourceGroup": "rg-backup", "subscriptionId": SUB, "sku": {"name": "RS0", "tier": "Standard"},
            "properties": {"provisioningState": "Succeeded"}}


def statuses(snap: snapshot.Snapshot, policy: str | None = None) -> dict[tuple[str, str], str]:
    findings = evaluate(load_policies([bundled_policy_dir()]), build_estate(snap).vms, snap.queries)
    return {(f.policy_id, f.resource_id.lower()): f.status for f in findings
            if policy is None or f.policy_id == policy}


# --- vaults live in `resources` -------------------------------------------------------------

@pytest.mark.parametrize("rtype", ["microsoft.recoveryservices/vaults", "Microsoft.RecoveryServices/vaults",
                                   "MICROSOFT.RECOVERYSERVICES/VAULTS", "Microsoft.DataProtection/backupVaults"])
def test_vault_rows_do_not_make_recovery_services_resources_collected(tmp_path: Path, rtype: str) -> None:
    out = {"count": 2, "data": [vm_row("vm1"), vault_row(rtype)], "skip_token": None, "total_records": 2}
    snap = snapshot.load(write(tmp_path / "az.json", out))
    assert set(snap.tables) == {"resources"} and len(snap.tables["resources"]) == 2
    # nothing says whether vm1 is protected: unknown, not "not protected"
    assert statuses(snap, "VMBK-PROT-001") == {("VMBK-PROT-001", vm_row("vm1")["id"].lower()): "unknown"}


@pytest.mark.parametrize(("rtype", "table"), [
    ("microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems",
     "recoveryservicesresources"),
    ("Microsoft.RecoveryServices/vaults/backupPolicies", "recoveryservicesresources"),
    ("microsoft.recoveryservices/vaults/backupjobs", "recoveryservicesresources"),
    ("Microsoft.DataProtection/backupVaults/backupInstances", "recoveryservicesresources"),
    ("Microsoft.RecoveryServices/vaults", "resources"),
    ("microsoft.dataprotection/backupvaults", "resources"),
    ("Microsoft.DataProtection/resourceGuards", "resources"),
    ("Microsoft.GuestConfiguration/guestConfigurationAssignments", "guestconfigurationresources"),
    ("Microsoft.Compute/virtualMachines", "resources"),
])
def test_rows_are_routed_to_resource_graph_tables_in_any_case(rtype: str, table: str) -> None:
    assert snapshot.table_for_type(rtype) == table


def test_with_protected_items_the_vault_row_changes_nothing(tmp_path: Path) -> None:
    vm = vm_row("vm1")
    item = protected_item(vm["id"], VAULT + "/backupPolicies/DefaultPolicy")
    rows = snapshot.load(write(tmp_path / "rows.json", [vm, vault_row(), item]))
    assert {t: len(r) for t, r in rows.tables.items()} == {"resources": 2, "recoveryservicesresources": 1}
    assert statuses(rows, "VMBK-PROT-001") == {("VMBK-PROT-001", vm["id"].lower()): "pass"}


# --- truncated pages ------------------------------------------------------------------------

@pytest.mark.parametrize("page", [
    {"count": 2, "skip_token": "ew0KICAiJGlkIjogIjEiLA0K", "total_records": 5},        # az graph query
    {"count": 2, "$skipToken": "ew0KICAiJGlkIjogIjEiLA0K", "totalRecords": 5,          # REST QueryResponse
     "resultTruncated": "false", "facets": []},
    {"count": 2, "skip_token": "ew0KICAiJGlkIjogIjEiLA0K"},                              # a token and no total
    {"count": 2, "totalRecords": 3, "resultTruncated": "true"},                         # paging impossible
    {"count": 2, "total_records": 2, "result_truncated": "true"},
])
def test_a_truncated_page_is_a_coverage_error_naming_the_file(tmp_path: Path, page: dict[str, Any]) -> None:
    path = write(tmp_path / "page1.json", {**page, "data": [vm_row("vm1"), vm_row("vm2")]})
    snap = snapshot.load(path)
    assert len(snap.tables["resources"]) == 2   # the rows read are still there to be judged
    [error] = snap.errors
    assert error["scope"] == str(path) and error["status"] == "truncated" and error["table"] == "resources"
    assert "truncated" in error["message"] and "2 " in error["message"]


@pytest.mark.parametrize("page", [
    {"count": 2, "skip_token": None, "total_records": 2},
    {"count": 2, "$skipToken": "", "totalRecords": 2, "resultTruncated": "false"},
    {"count": 2, "skip_token": "stale-token", "total_records": 2},   # every row is here whatever the token says
    {},
])
def test_a_complete_response_has_no_coverage_error(tmp_path: Path, page: dict[str, Any]) -> None:
    snap = snapshot.load(write(tmp_path / "all.json", {**page, "data": [vm_row("vm1"), vm_row("vm2")]}))
    assert snap.errors == []


def test_scanning_a_truncated_page_exits_3_and_every_report_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "page1.json", {"count": 1, "data": [vm_row("vm1")], "skip_token": "abc",
                                           "total_records": 1400})
    out = tmp_path / "out"
    proc = run("scan", "--snapshot", path, "--output-dir", out, "--fail-on", "never")
    assert proc.returncode == 3, proc.stderr
    assert f"{path} [resources]: az graph query output is truncated: 1 of 1400 rows" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    assert [e["scope"] for e in results["coverage"]["errors"]] == [str(path)]
    for report in ("summary.md", "junit.xml", "report.html"):
        assert "page1.json" in (out / report).read_text(), report


# --- case: a bare list in ARM's case joins like Resource Graph's lowercase ----------------------

def _recase(value: Any, rng: random.Random) -> Any:
    """Every `type` and every ARM id, at any depth, in a random mix of upper and lower case."""
    if isinstance(value, dict):
        return {k: (_mix(v, rng) if k == "type" and isinstance(v, str) else _recase(v, rng)) for k, v in value.items()}
    if isinstance(value, list):
        return [_recase(v, rng) for v in value]
    if isinstance(value, str) and value.lower().startswith("/subscriptions/"):
        return _mix(value, rng)
    return value


def _mix(text: str, rng: random.Random) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in text)


def test_a_bare_row_list_in_any_case_gives_the_same_verdicts_as_lowercase_resource_graph(tmp_path: Path) -> None:
    doc = demo.demo_document()
    graph = [row for name in snapshot.GRAPH_TABLES for row in doc["tables"].get(name, [])]
    side = {**doc, "tables": {name: doc["tables"][name] for name in snapshot.SIDE_TABLES}}
    write(tmp_path / "side.json", side)
    lower = [{**row, "type": row["type"].lower()} for row in graph]
    mixed = _recase(graph, random.Random(10))
    assert any(row["type"] != row["type"].lower() for row in mixed)
    expected = statuses(snapshot.load_many([write(tmp_path / "lower.json", lower), tmp_path / "side.json"]))
    got = statuses(snapshot.load_many([write(tmp_path / "mixed.json", mixed), tmp_path / "side.json"]))
    assert got == expected
    assert {"pass", "fail"} <= set(expected.values())


def test_table_names_of_our_format_ignore_case(tmp_path: Path) -> None:
    vm = vm_row("vm1")
    doc = snapshot_doc([vm])
    doc["tables"] = {"Resources": [vm], "RecoveryServicesResources": [protected_item(vm["id"], VAULT + "/p")]}
    snap = snapshot.load(write(tmp_path / "s.json", doc))
    assert set(snap.tables) == {"resources", "recoveryservicesresources"}
    assert statuses(snap, "VMBK-PROT-001") == {("VMBK-PROT-001", vm["id"].lower()): "pass"}


@pytest.mark.parametrize(("rid", "expected"), [
    ("/subscriptions/s/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/vm1",
     "microsoft.compute/virtualmachines"),
    ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/default",
     "microsoft.network/virtualnetworks/subnets"),
    ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1/providers/"
     "Microsoft.GuestConfiguration/guestConfigurationAssignments/AzureWindowsBaseline",
     "microsoft.guestconfiguration/guestconfigurationassignments"),
    ("/subscriptions/s/resourceGroups/rg", "microsoft.resources/subscriptions/resourcegroups"),
    ("/Subscriptions/S", "microsoft.resources/subscriptions"),
    ("/subscriptions/s/resourceGroups", None),
    ("/subscriptions/s/resourceGroups/rg/extra", None),
    ("/subscriptions//resourceGroups/rg", None),
    ("/tenants/t", None),
    ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines", None),
    ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute//vm1", None),
])
def test_type_from_id_reads_the_last_provider_segment(rid: str, expected: str | None) -> None:
    assert snapshot.type_from_id(rid) == expected


def test_rows_projected_without_type_take_it_from_their_id(tmp_path: Path) -> None:
    """`az graph query -q "resources | project id, name, properties"` drops `type`: the id still says it."""
    vm = vm_row("vm1")
    projected = {key: vm[key] for key in ("id", "name", "properties")}
    path = write(tmp_path / "q.json", {"totalRecords": 1, "count": 1, "data": [projected], "skip_token": None})
    snap = snapshot.load(path)
    [row] = snap.tables["resources"]
    assert row["type"] == "microsoft.compute/virtualmachines"
    assert [v["name"] for v in build_estate(snap).vms] == ["vm1"]


def test_a_row_without_type_whose_id_names_no_resource_is_still_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path / "q.json", [{"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute",
                                        "name": "rg"}])
    with pytest.raises(snapshot.InputError) as info:
        snapshot.load(path)
    [problem] = info.value.problems
    assert problem.place == "/0" and "row has no 'type' string" in problem.reason
