"""A small estate whose VMs have backup jobs: one failure tied to a failing policy, one with hostile,
code-less text, one made good by a later backup; and the scan of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backup_preflight.results import ScanResult
from scan_helpers import XSS_IMG, XSS_SCRIPT, estate, run, write_snapshot

from arg import SUB, backup_policy_v1, protected_item

VAULT = f"/subscriptions/{SUB}/resourceGroups/RG-Backup/providers/Microsoft.RecoveryServices/vaults/rsv-weu"
JOB_TYPE = "microsoft.recoveryservices/vaults/backupjobs"
HOSTILE = f"Snapshot failed {XSS_SCRIPT} {XSS_IMG}"


def job_row(n: int, vm_id: str, status: str, start: str, code: Any = None,
            message: str | None = None) -> dict[str, Any]:
    """A backupjobs row as Resource Graph returns it (REST AzureIaaSVMJob properties), naming its VM by
    dataSourceId in upper case."""
    props: dict[str, Any] = {"jobType": "AzureIaaSVMJob", "backupManagementType": "AzureIaasVM", "operation": "Backup",
                             "status": status, "entityFriendlyName": vm_id.rsplit("/", 1)[-1], "startTime": start,
                             "dataSourceId": vm_id.upper(), "activityId": f"a-{n}"}
    if code or message:
        props["errorDetails"] = [{"errorCode": code, "errorString": message, "recommendations": [XSS_SCRIPT]}]
    return {"id": f"{VAULT}/backupJobs/job-{n}", "name": f"job-{n}", "type": JOB_TYPE,
            "subscriptionId": SUB, "resourceGroup": "rg-backup", "properties": props}


def job_estate() -> dict[str, Any]:
    doc = estate()
    ids = {vm["name"]: vm["id"] for vm in doc["tables"]["resources"]}
    policy = backup_policy_v1()
    items = [protected_item(ids[name], policy["id"], status="Failed") for name in ("vm-noagent", "vm-stopped")]
    items.append(protected_item(ids["vm-ok"], policy["id"], status="Completed"))
    for it in items:
        it["id"] = it["id"].replace("iaasvm-1", it["properties"]["friendlyName"])
        it["properties"]["lastBackupTime"] = "2026-11-19T02:10:00Z"
    jobs = [job_row(1, ids["vm-noagent"], "Failed", "2026-11-19T02:00:00Z", "UserErrorGuestAgentStatusUnavailable",
                    "VM Agent unable to communicate with Azure Backup"),
            job_row(2, ids["vm-stopped"], "Failed", "2026-11-19T02:00:00Z", None, HOSTILE),
            job_row(3, ids["vm-ok"], "Failed", "2026-11-18T02:00:00Z", "GuestAgentSnapshotTaskStatusError",
                    "Could not communicate with the VM agent for snapshot status")]
    doc["tables"]["recoveryservicesresources"] = [policy, *items, *jobs]
    return doc


def job_result(tmp_path: Path) -> ScanResult:
    return run(write_snapshot(tmp_path / "jobs.json", job_estate()))
