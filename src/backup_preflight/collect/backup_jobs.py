"""Error details of failed backup jobs whose Resource Graph row lacks them, from the vault's jobs REST list.

Why: the error code is what ties a failed backup to its cause (estate/jobs.py), and a Resource
Graph `backupjobs` row does not always carry `errorDetails`. For each vault with such a row we
make one list call — `GET .../vaults/{vault}/backupJobs` through azure-mgmt-recoveryservicesbackup,
filtered to failed Azure VM backups in the collection window (14 days, as the Resource Graph
query) — and merge each listed job's `errorDetails` into the row of the same job, marking it
`"errorDetailsFrom": "rest"`. Rows keep their Resource Graph shape, so a saved snapshot replays
to the same diagnosis. Retries and throttling are the other collectors' (`call_with_retries`); a
vault whose list fails is an error entry naming it, never a silent gap.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from backup_preflight.collect.instance_view import ArmClients, PooledCollector
from backup_preflight.collect.progress import Progress
from backup_preflight.collect.resource_graph import PageFailed, Tuning, call_with_retries, error_entry
from backup_preflight.collect.throttle import Clock

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.mgmt.recoveryservicesbackup import RecoveryServicesBackupClient

TABLE = "recoveryservicesresources"
JOB_TYPE = "microsoft.recoveryservices/vaults/backupjobs"
WINDOW = timedelta(days=14)  # what Resource Graph keeps, and what its query asks for
MAX_PAGES = 50  # of one vault's list; past it the vault is reported incomplete
SOURCE_KEY = "errorDetailsFrom"
SOURCE_REST = "rest"
LOGGER = logging.getLogger("backup_preflight.collect")

#: (subscription, resource group, vault name) as spelled in the job ids.
Vault = tuple[str, str, str]


def has_error_code(row: dict[str, Any]) -> bool:
    """Whether a job row's `errorDetails` name an error code (a string or the REST model's integer)."""
    props = row.get("properties")
    details = props.get("errorDetails") if isinstance(props, dict) else None
    return isinstance(details, list) and any(
        isinstance(d, dict) and d.get("errorCode") not in (None, "") for d in details)


def vaults_to_ask(rows: list[dict[str, Any]]) -> dict[Vault, list[dict[str, Any]]]:
    """Failed Azure VM backup job rows without an error code, by the vault their id names."""
    out: dict[Vault, list[dict[str, Any]]] = {}
    by_key: dict[tuple[str, str, str], Vault] = {}
    for row in rows:
        if str(row.get("type", "")).lower() != JOB_TYPE or not isinstance(row.get("id"), str):
            continue
        props = row.get("properties")
        if not isinstance(props, dict) or str(props.get("status", "")).lower() != "failed" or \
                has_error_code(row) or not _vm_backup(props):
            continue
        vault = parse_job_id(row["id"])
        if vault is None:
            continue
        key = (vault[0].lower(), vault[1].lower(), vault[2].lower())
        out.setdefault(by_key.setdefault(key, vault), []).append(row)
    return out


def _vm_backup(props: dict[str, Any]) -> bool:
    """An Azure VM `Backup` job, as the estate counts them (missing fields do not exclude a row)."""
    job_type = str(props.get("jobType", "AzureIaaSVMJob")).lower()
    return job_type in ("azureiaasvmjob", "azureiaasvmjobv2") and \
        str(props.get("operation", "Backup")).lower() == "backup"


def parse_job_id(job_id: str) -> Vault | None:
    """(subscription, resource group, vault) of a `.../vaults/{vault}/backupJobs/{job}` id."""
    parts = job_id.strip("/").split("/")
    low = [p.lower() for p in parts]
    if len(parts) != 10 or low[0] != "subscriptions" or low[2] != "resourcegroups" or \
            low[4:6] != ["providers", "microsoft.recoveryservices"] or low[6] != "vaults" or low[8] != "backupjobs":
        return None
    return (parts[1], parts[3], parts[7]) if all(parts[i] for i in (1, 3, 7, 9)) else None


def job_filter(collected_at: datetime) -> str:
    """The `$filter` of failed Azure VM backups in the window; times in the service's
    `yyyy-MM-dd hh:mm:ss tt` UTC form (as the Azure CLI sends them), written out by hand so that
    no locale changes AM/PM."""
    return (f"backupManagementType eq 'AzureIaasVM' and endTime eq '{_time(collected_at)}' and "
            f"operation eq 'Backup' and startTime eq '{_time(collected_at - WINDOW)}' and status eq 'Failed'")


def _time(moment: datetime) -> str:
    hour = moment.hour % 12 or 12
    return f"{moment:%Y-%m-%d} {hour:02d}:{moment:%M:%S} {'AM' if moment.hour < 12 else 'PM'}"


class BackupClients(ArmClients["RecoveryServicesBackupClient"]):
    """A Recovery Services Backup client and a 429 gate per subscription."""

    def __init__(self, credential: TokenCredential, endpoint: str, scope: str, clock: Clock, tuning: Tuning,
                 progress: Progress) -> None:
        super().__init__(_backup_client_type, credential, endpoint, scope, clock, tuning, progress)


def _backup_client_type() -> type[RecoveryServicesBackupClient]:
    from azure.mgmt.recoveryservicesbackup import RecoveryServicesBackupClient

    return RecoveryServicesBackupClient


class JobErrorCollector(PooledCollector["RecoveryServicesBackupClient"]):
    """One jobs list per vault (paged), on a bounded pool; merges error details into the rows."""

    def collect(self, vaults: dict[Vault, list[dict[str, Any]]], collected_at: datetime) -> list[dict[str, Any]]:
        """Fill the rows of `vaults` in place; return one error entry per vault that could not be read."""
        if not vaults:
            return []
        LOGGER.info("reading failed jobs of %d vaults whose Resource Graph job rows have no error code",
                    len(vaults))
        flt = job_filter(collected_at)
        with ThreadPoolExecutor(max_workers=self._tuning.view_workers, thread_name_prefix="backup-jobs") as pool:
            outcomes = list(pool.map(lambda item: self._one(item[0], item[1], flt), vaults.items()))
        return [error for error in outcomes if error is not None]

    def _one(self, vault: Vault, rows: list[dict[str, Any]], flt: str) -> dict[str, Any] | None:
        subscription, group, name = vault
        label = (f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.RecoveryServices"
                 f"/vaults/{name}")
        try:
            jobs = self._list(vault, flt, f"failed jobs of vault {label}")
        except PageFailed as failed:
            entry = error_entry(f"vault {label}", TABLE, failed.status,
                                f"failed jobs of vault {name} (error codes Resource Graph lacks): {failed.message}")
            self._progress.error(entry)
            return entry
        filled = merge(rows, jobs)
        LOGGER.info("vault %s: error details for %d of %d job rows", label, filled, len(rows))
        return None

    def _list(self, vault: Vault, flt: str, label: str) -> list[dict[str, Any]]:
        """Every page of the vault's list; each page retried on its own from its continuation token."""
        client, gate = self._clients.get(vault[0])
        jobs: list[dict[str, Any]] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            def page(token: str | None = token) -> tuple[tuple[list[dict[str, Any]], str | None], dict[str, str]]:
                pages = client.backup_jobs.list(vault[2], vault[1], filter=flt).by_page(continuation_token=token)
                return ([job.as_dict() for job in next(pages)], pages.continuation_token), {}

            (found, token), _ = call_with_retries(page, gate, self._clock, self._tuning, self._progress, label,
                                                  self._count)
            jobs.extend(found)
            if not token:
                return jobs
        raise PageFailed(200, f"more than {MAX_PAGES} pages of failed jobs; the rest was not read")

    def _count(self) -> None:
        with self._lock:
            self.requests += 1


def merge(rows: list[dict[str, Any]], jobs: list[dict[str, Any]]) -> int:
    """Copy each listed job's `errorDetails` into the row of the same job (by job name, which is
    the last segment of both ids); return how many rows got them. Jobs without a row are not added:
    Resource Graph says which jobs there are, the list only fills in their errors."""
    details: dict[str, list[Any]] = {}
    for job in jobs:
        props = job.get("properties") if isinstance(job, dict) else None
        found = props.get("errorDetails") if isinstance(props, dict) else None
        job_id = job.get("id") if isinstance(job, dict) else None
        if isinstance(found, list) and found and isinstance(job_id, str):
            details[job_id.rstrip("/").rsplit("/", 1)[-1].lower()] = found
    filled = 0
    for row in rows:
        found = details.get(row["id"].rstrip("/").rsplit("/", 1)[-1].lower())
        if found is None:
            continue
        if not isinstance(row.get("properties"), dict):
            row["properties"] = {}
        row["properties"]["errorDetails"] = found
        row[SOURCE_KEY] = SOURCE_REST
        filled += 1
    return filled
