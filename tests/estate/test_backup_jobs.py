"""backup.lastFailedJob: Resource Graph backupjobs rows matched to their VM; the last failure wins
whatever the row order, and a later completed backup makes it good."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backup_preflight import snapshot
from backup_preflight.estate import build_estate
from backup_preflight.estate.jobs import error_table, explain

from arg import SUB, backup_policy_v1, protected_item, rid, snapshot_doc, vm_row

VAULT = f"/subscriptions/{SUB}/resourceGroups/RG-Backup/providers/Microsoft.RecoveryServices/vaults/rsv-weu"
JOB_TYPE = "microsoft.recoveryservices/vaults/backupjobs"
DAY = datetime(2026, 11, 19, 2, 0, tzinfo=UTC)


def job(n: int, status: str, hours: float, *, vm: str = "vm1", source: str | None = None,
        code: Any = None, message: str | None = None, vault: str = VAULT, **extra: Any) -> dict[str, Any]:
    """A backupjobs row as Resource Graph returns it: the REST AzureIaaSVMJob body (Job Details - Get),
    lowercase type, resourceGroup and subscriptionId columns; errorDetails only when given."""
    start = DAY + timedelta(hours=hours)
    props: dict[str, Any] = {
        "jobType": "AzureIaaSVMJob", "duration": "00:20:23.0896697", "actionsInfo": [1],
        "virtualMachineVersion": "Compute", "entityFriendlyName": vm, "backupManagementType": "AzureIaasVM",
        "operation": "Backup", "status": status, "startTime": start.isoformat().replace("+00:00", "Z"),
        "endTime": (start + timedelta(minutes=20)).isoformat().replace("+00:00", "Z"),
        "activityId": f"00000000-0000-0000-0000-{n:012d}", **extra}
    if source is not None:
        props["dataSourceId"] = source
    if code is not None or message is not None:
        props["errorDetails"] = [{"errorCode": code, "errorString": message, "errorTitle": "",
                                  "recommendations": ["Ensure the VM agent is running."]}]
    guid = f"7ddead57-bcb9-4269-ac31-{n:012d}"
    return {"id": f"{vault.lower()}/backupJobs/{guid}", "name": guid, "type": JOB_TYPE,
            "subscriptionId": SUB, "resourceGroup": "rg-backup", "location": "westeurope", "properties": props}


def item(vm: str = "vm1", *, status: str = "Failed", last: float = 0.0, rg: str = "RG-App") -> dict[str, Any]:
    row = protected_item(rid("vm", vm, rg), f"{VAULT}/backupPolicies/DailyPolicy", status=status)
    container = f"iaasvmcontainerv2;{rg.lower()};{vm}"
    row["id"] = f"{VAULT}/backupFabrics/Azure/protectionContainers/IaasVMContainer;{container}/protectedItems/VM;{vm}"
    row["properties"]["containerName"] = container
    row["properties"]["lastBackupTime"] = (DAY + timedelta(hours=last)).isoformat().replace("+00:00", "Z")
    return row


def facts(rows: list[dict[str, Any]], items: list[dict[str, Any]] | None = None,
          vms: tuple[str, ...] = ("vm1",)) -> dict[str, dict[str, Any]]:
    recovery = [backup_policy_v1(), *(items if items is not None else [item(v) for v in vms]), *rows]
    doc = snapshot_doc([vm_row(v) for v in vms], recoveryservicesresources=recovery)
    estate = build_estate(snapshot.from_document(doc, "t"))
    return {vm["name"]: vm.get("backup", {}) for vm in estate.vms}


def last(rows: list[dict[str, Any]], **kw: Any) -> dict[str, Any] | None:
    return facts(rows, **kw)["vm1"].get("lastFailedJob")


def test_the_job_is_matched_by_data_source_id_in_any_letter_case() -> None:
    vm_id = rid("vm", "vm1").upper().replace("/SUBSCRIPTIONS/", "/Subscriptions/")
    found = last([job(1, "Failed", 0, vm="renamed", source=vm_id, code="GuestAgentSnapshotTaskStatusError",
                      message="Could not communicate with the VM agent for snapshot status")])
    assert found is not None
    assert found["errorCode"] == "GuestAgentSnapshotTaskStatusError"
    assert found["message"] == "Could not communicate with the VM agent for snapshot status"
    assert found["time"] == "2026-11-19T02:00:00Z" and found["operation"] == "Backup" and found["vault"] == "rsv-weu"
    assert found["cause"] == "vm-agent" and found["causes"][0] == "vm-agent" and "guest-dhcp" in found["causes"]
    assert found["recommendations"] == ["Ensure the VM agent is running."]
    assert found["reference"].startswith("https://learn.microsoft.com/azure/backup/")


def test_without_a_vm_id_the_job_is_matched_by_the_vault_and_friendly_name_of_the_vms_item() -> None:
    assert last([job(1, "Failed", 0, vm="VM1", code="ExtensionSnapshotFailedNoNetwork")])["errorCode"] == \
        "ExtensionSnapshotFailedNoNetwork"
    other_vault = VAULT.replace("rsv-weu", "rsv-neu")
    assert last([job(1, "Failed", 0, vault=other_vault)]) is None  # the VM has no item there
    assert last([job(1, "Failed", 0, vm="vm2")]) is None
    # Two VMs named vm1 in different resource groups, one vault: the container tells them apart.
    items = [item("vm1"), item("vm1", rg="RG-Other")]
    row = job(1, "Failed", 0, containerName="iaasvmcontainerv2;rg-other;vm1")
    assert last([row], items=items) is None


def test_missing_error_details_give_no_code_and_no_cause_with_a_reason() -> None:
    found = last([job(1, "Failed", 0)])
    assert found is not None and "errorCode" not in found and "message" not in found
    assert found["causes"] == [] and "cause" not in found
    assert found["note"] == "the job row carries no error code or a message nobody documented"


@pytest.mark.parametrize("details", [5, {"errorCode": "UserErrorGuestAgentStatusUnavailable"}, "ExtensionFailed", True])
def test_error_details_that_are_not_an_array_give_no_code_and_never_raise(details: Any) -> None:
    row = job(1, "Failed", 0)
    row["properties"]["errorDetails"] = details
    found = last([row])
    assert found is not None and "errorCode" not in found and found["causes"] == []


def test_where_collection_took_the_error_details_from_is_kept_when_it_is_text() -> None:
    said = job(1, "Failed", 0, code="UserErrorGuestAgentStatusUnavailable")
    said["errorDetailsFrom"] = "rest"  # beside properties, as collect/backup_jobs.py marks it
    found = last([said])
    assert found is not None and found["errorDetailsFrom"] == "rest"
    odd = job(1, "Failed", 0, code="UserErrorGuestAgentStatusUnavailable")
    odd["errorDetailsFrom"] = 5
    found = last([odd])
    assert found is not None and "errorDetailsFrom" not in found and found["errorCode"] == odd["properties"][
        "errorDetails"][0]["errorCode"]


def test_a_numeric_code_is_explained_by_its_documented_message() -> None:
    found = last([job(1, "Failed", 0, code=400240,
                      message="Backup failed with an internal error - Please retry the operation in a few minutes.")])
    assert found["errorCode"] == "400240" and found["documentedCode"] in ("BackUpOperationFailed",
                                                                          "BackUpOperationFailedV2")
    assert found["cause"] == "vm-agent"
    unknown = last([job(1, "Failed", 0, code="SomethingNew", message="Brand new failure")])
    assert unknown["causes"] == [] and "SomethingNew is not in the table" in unknown["note"]


def test_the_last_failure_wins_whatever_the_row_order() -> None:
    rows = [job(1, "Failed", 0, code="ExtensionSnapshotFailedNoNetwork"),
            job(2, "Failed", 48, code="GuestAgentSnapshotTaskStatusError"),
            job(3, "Completed", -24), job(4, "Failed", 24, code="UserErrorVmNotInDesirableState")]
    for order in itertools.permutations(rows):
        assert last(list(order), items=[item(last=48)])["errorCode"] == "GuestAgentSnapshotTaskStatusError"


def test_a_later_completed_backup_makes_the_failure_good() -> None:
    failed = job(1, "Failed", 0, code="GuestAgentSnapshotTaskStatusError")
    assert last([failed, job(2, "Completed", 24)]) is None
    assert last([failed, job(2, "CompletedWithWarnings", 24)]) is None
    assert last([job(2, "Completed", -24), failed])["errorCode"] == "GuestAgentSnapshotTaskStatusError"
    assert last([failed, job(2, "InProgress", 24)]) is not None  # running is not made good
    assert last([failed, job(2, "Cancelled", 24)]) is not None
    # Only failed jobs are collected live: the protected item's last completed backup says it too.
    assert last([failed], items=[item(status="Completed", last=24)]) is None
    assert last([failed], items=[item(status="Completed", last=-24)]) is not None
    assert last([failed], items=[item(status="Failed", last=24)]) is not None


def test_restores_and_workload_jobs_are_not_the_vms_backup() -> None:
    restore = job(1, "Failed", 0, code="UserErrorSkuNotAvailable", operation="Restore")
    sql = job(2, "Failed", 0, code="UserErrorSQLPODoesNotExist", backupManagementType="AzureWorkload",
              jobType="AzureWorkloadJob")
    assert last([restore, sql]) is None


def test_jobs_only_matter_where_recovery_services_rows_were_collected() -> None:
    doc = snapshot_doc([vm_row("vm1")])
    vm = build_estate(snapshot.from_document(doc, "t")).vms[0]
    assert "backup" not in vm


def test_every_mapped_cause_is_a_cause_of_the_catalog_and_every_code_cites_a_learn_page() -> None:
    from backup_preflight.policy.loader import bundled_policy_dir, load_policies
    causes = {p.cause for p in load_policies([bundled_policy_dir()]).policies}
    table = error_table()
    for code, entry in table["codes"].items():
        assert set(entry["causes"]) <= causes, code
        assert table["pages"][entry["page"]].startswith("https://learn.microsoft.com/"), code
        assert entry["message"] and entry["note"], code
    assert explain("guestagentsnapshottaskstatuserror", None)["documentedCode"] == "GuestAgentSnapshotTaskStatusError"


STATUSES = ("Failed", "Completed", "CompletedWithWarnings", "InProgress", "Cancelled")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(STATUSES), st.integers(-300, 300)), min_size=1, max_size=6),
       st.randoms(use_true_random=False))
def test_matches_a_brute_force_oracle(spec: list[tuple[str, int]], rnd: Any) -> None:
    """Oracle: a failed job is the answer when no other failed job is later (the id breaks ties) and no
    completed job started after it."""
    rows = [job(n, status, hours, code=f"Code{n}") for n, (status, hours) in enumerate(spec)]
    expected = None
    for n, (status, hours) in enumerate(spec):
        if status != "Failed":
            continue
        beaten = any(s == "Failed" and (h, m) > (hours, n) for m, (s, h) in enumerate(spec))
        made_good = any(s.startswith("Completed") and h > hours for s, h in spec)
        if not beaten and not made_good:
            expected = f"Code{n}"
    rnd.shuffle(rows)
    found = last(rows, items=[item(last=-1000)])
    assert (found or {}).get("errorCode") == expected


def test_docs_table_is_the_mapping_file() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "job-diagnosis.md").read_text()
    table = error_table()
    rows = [line for line in doc.splitlines() if line.startswith("| [`")]
    assert len(rows) == len(table["codes"])
    for row, (code, entry) in zip(rows, table["codes"].items(), strict=True):
        assert row.startswith(f"| [`{code}`]({table['pages'][entry['page']]}#{entry['anchor']}) | {entry['message']} |")
        causes = ", ".join(f"`{c}`" for c in entry["causes"]) or "— (none this tool checks)"
        assert f"| {causes} |" in row


def test_the_whole_record_of_a_failed_job() -> None:
    code, message = "GuestAgentSnapshotTaskStatusError", "Could not communicate with the VM agent for snapshot status"
    row = job(7, "Failed", 0, code=code, message=message)
    entry, table = error_table()["codes"][code], error_table()
    assert last([row]) == {
        "jobId": row["id"], "status": "Failed", "time": "2026-11-19T02:00:00Z", "endTime": "2026-11-19T02:20:00Z",
        "operation": "Backup", "entityFriendlyName": "vm1", "vault": "rsv-weu", "errorCode": code, "message": message,
        "recommendations": ["Ensure the VM agent is running."], "causes": entry["causes"], "cause": entry["causes"][0],
        "note": entry["note"], "reference": f"{table['pages'][entry['page']]}#{entry['anchor']}"}


def test_a_code_less_job_is_explained_by_its_message_whatever_its_case_spacing_and_full_stop() -> None:
    code = "ExtensionSnapshotFailedNoNetwork"
    documented = error_table()["codes"][code]["message"]
    found = last([job(1, "Failed", 0, message=f"  {documented.upper().replace(' ', '   ')}. ")])
    assert found["documentedCode"] == code and "errorCode" not in found
    assert found["causes"] == error_table()["codes"][code]["causes"]


@pytest.mark.parametrize(("changes", "matched"), [
    ({"entityFriendlyName": "renamed", "virtualMachineId": "VM"}, True),
    ({"entityFriendlyName": "renamed", "sourceResourceId": "VM"}, True),
    ({"entityFriendlyName": "renamed", "dataSourceId": "", "virtualMachineId": "VM"}, True),
    ({"jobType": "AzureIaaSVMJobV2"}, True), ({"jobType": "AZUREIAASVMJOB"}, True), ({"jobType": None}, True),
    ({"backupManagementType": None}, True),
    ({"jobType": "AzureStorageJob"}, False), ({"backupManagementType": "AzureStorage"}, False),
    ({"operation": None}, True), ({"operation": "ConfigureBackup"}, False),
    ({"entityFriendlyName": None}, False), ({"entityFriendlyName": ""}, False),
])
def test_which_job_rows_are_the_vms_backup(changes: dict[str, Any], matched: bool) -> None:
    row = job(1, "Failed", 0, code="ExtensionSnapshotFailedNoNetwork")
    for key, value in changes.items():
        if value is None:
            row["properties"].pop(key, None)
        else:
            row["properties"][key] = rid("vm", "vm1").upper() if value == "VM" else value
    assert (last([row]) is not None) is matched


def test_a_job_without_a_start_time_is_placed_by_its_end_time_and_one_without_either_is_the_oldest() -> None:
    by_end = job(1, "Failed", 0, code="ByEnd")
    by_end["properties"].pop("startTime")
    by_end["properties"]["endTime"] = "2026-11-20T00:00:00Z"
    undated = job(2, "Failed", 0, code="Undated")
    undated["properties"].update(startTime=None, endTime=20261119)
    older = job(3, "Failed", 12, code="Older")
    for rows in ([by_end, undated, older], [older, undated, by_end]):
        found = last(rows)
        assert found["errorCode"] == "ByEnd" and "time" not in found and found["endTime"] == "2026-11-20T00:00:00Z"
    found = last([undated])
    assert (found["errorCode"], found["status"]) == ("Undated", "Failed") and "time" not in found
    assert last([undated, job(4, "Completed", -100)]) is None  # undated is oldest: any dated success is later


@pytest.mark.parametrize(("details", "code", "recommendations"), [
    ("not a list", None, None),
    ([5, {"errorCode": True, "recommendations": "retry"}], None, None),
    ([{"errorCode": 0, "recommendations": ["retry", 5, None]}], "0", ["retry"]),
    ([{"errorCode": "", "errorString": ""}], None, None),
])
def test_odd_error_details(details: Any, code: str | None, recommendations: list[str] | None) -> None:
    row = job(1, "Failed", 0)
    row["properties"]["errorDetails"] = details
    found = last([row])
    assert found.get("errorCode") == code and found.get("recommendations") == recommendations
    assert "message" not in found and found["causes"] == []


def test_jobs_are_ordered_by_when_they_started_not_when_they_ended() -> None:
    """A long backup that started first and ended last is the earlier job: a shorter one started after it is later."""
    long_failure = job(1, "Failed", 0, code="LongOne")
    long_failure["properties"]["endTime"] = "2026-11-19T06:00:00Z"
    short_failure = job(2, "Failed", 1, code="ShortOne")  # 03:00 to 03:20
    assert last([long_failure, short_failure])["errorCode"] == "ShortOne"
    assert last([long_failure, job(3, "Completed", 1)]) is None  # a success started after the failure started


def test_vaults_in_a_resource_group_named_vaults_are_told_apart() -> None:
    """A job naming no VM is matched by its vault and the item's friendly name: two vaults in a resource
    group called 'Vaults' are two vaults."""
    home = f"/subscriptions/{SUB}/resourceGroups/Vaults/providers/Microsoft.RecoveryServices/vaults"
    mine = item()
    mine["id"] = mine["id"].replace(VAULT, f"{home}/rsv-a")
    other_vault = job(1, "Failed", 0, code="ExtensionSnapshotFailedNoNetwork", vault=f"{home}/rsv-b")
    same_vault = job(2, "Failed", -1, code="GuestAgentSnapshotTaskStatusError", vault=f"{home}/rsv-a")
    assert last([other_vault], items=[mine]) is None
    found = last([other_vault, same_vault], items=[mine])
    assert (found["errorCode"], found["vault"]) == ("GuestAgentSnapshotTaskStatusError", "rsv-a")


def test_a_backup_completed_at_the_instant_the_failure_started_is_not_later() -> None:
    failed = job(1, "Failed", 0, code="GuestAgentSnapshotTaskStatusError")
    assert last([failed], items=[item(status="Completed", last=0)]) is not None
    assert last([failed, job(2, "Completed", 0)]) is not None
    assert last([failed], items=[item(status="Completed", last=0.01)]) is None


def test_an_item_without_a_friendly_name_is_known_by_the_vms_name() -> None:
    nameless = item()
    del nameless["properties"]["friendlyName"]
    found = last([job(1, "Failed", 0, vm="VM1", code="ExtensionSnapshotFailedNoNetwork")], items=[nameless])
    assert found is not None and found["entityFriendlyName"] == "VM1"
    assert last([job(1, "Failed", 0, vm="vm2")], items=[nameless]) is None


def test_a_job_whose_container_is_the_items_in_another_case_is_the_vms() -> None:
    items = [item("vm1"), item("vm1", rg="RG-Other")]
    row = job(1, "Failed", 0, code="ExtensionSnapshotFailedNoNetwork", containerName="IaasVMContainerV2;RG-App;VM1")
    assert last([row], items=items)["errorCode"] == "ExtensionSnapshotFailedNoNetwork"


def test_an_item_without_a_container_name_matches_a_job_that_has_one() -> None:
    bare = item()
    del bare["properties"]["containerName"]
    row = job(1, "Failed", 0, code="ExtensionSnapshotFailedNoNetwork", containerName="iaasvmcontainerv2;rg-x;vm1")
    assert last([row], items=[bare])["errorCode"] == "ExtensionSnapshotFailedNoNetwork"
