"""The VM's last failed backup job, and the causes its error code points at.

Why: the error code of the backup that failed is what an operator arrives with; tying it to our
causes lets the report say which precondition to look at first.

Jobs are `microsoft.recoveryservices/vaults/backupjobs` rows (Resource Graph keeps 14 days) of
Azure VM backups, matched to the VM by `dataSourceId` / `virtualMachineId`, else by the vault of one
of the VM's protected items and the item's friendly name (when both carry a `containerName`, it
must agree too: two VMs of one name in different resource groups can share a vault). Only `Backup`
operations count. The latest failed one (by start time, rows without one being oldest; the id breaks
ties, so row order never matters) is the VM's last failed job — unless a later backup completed: a
job row that completed and started after it, or a protected item whose last backup completed after
it. Error codes map to causes through `job_errors.json` (data, see docs/job-diagnosis.md); a numeric
code (the REST model's type) or a missing one is looked up by its documented message.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from backup_preflight.estate.index import Index, Row, entity_key, props, vault_name, vault_of
from backup_preflight.timestamps import parse_instant

COMPLETED = frozenset({"completed", "completedwithwarnings"})
_OLDEST = datetime.min.replace(tzinfo=UTC)


@cache
def error_table() -> dict[str, Any]:
    """job_errors.json: `pages` (name → URL) and `codes` (error code → message, causes, page, anchor, note)."""
    return json.loads(resources.files("backup_preflight.estate").joinpath("job_errors.json").read_text("utf-8"))


@cache
def _lookups() -> tuple[dict[str, tuple[str, dict[str, Any]]], dict[str, tuple[str, dict[str, Any]]]]:
    codes = error_table()["codes"]
    by_code = {code.lower(): (code, entry) for code, entry in codes.items()}
    by_message = {_plain(entry["message"]): (code, entry) for code, entry in codes.items()}
    return by_code, by_message


def _plain(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(" .")


def explain(code: str | None, message: str | None) -> dict[str, Any]:
    """The documented causes of an error code (or, for a numeric or missing code, of its message)."""
    by_code, by_message = _lookups()
    found = by_code.get(code.lower()) if code else None
    found = found or (by_message.get(_plain(message)) if message else None)
    if found is None:
        note = (f"error code {code} is not in the table of documented codes (docs/job-diagnosis.md)" if code
                else "the job row carries no error code or a message nobody documented")
        return {"causes": [], "note": note}
    name, entry = found
    out: dict[str, Any] = {"causes": list(entry["causes"]), "note": entry["note"],
                           "reference": f"{error_table()['pages'][entry['page']]}#{entry['anchor']}"}
    if name != code:
        out["documentedCode"] = name
    if entry["causes"]:
        out["cause"] = entry["causes"][0]
    return out


def last_failed_job(vm_id: str, index: Index, backup: dict[str, Any] | None) -> dict[str, Any] | None:
    """The VM's last failed backup job no later backup made good, as facts; None when there is none."""
    jobs = [j for j in _jobs_of(vm_id, index) if str(props(j).get("operation", "Backup")).lower() == "backup"]
    failed = [j for j in jobs if str(props(j).get("status", "")).lower() == "failed"]
    if not failed:
        return None
    last = max(failed, key=lambda j: (_started(j), j["id"].lower()))
    at = _started(last)
    if any(str(props(j).get("status", "")).lower() in COMPLETED and _started(j) > at for j in jobs):
        return None
    made_good = backup and str(backup.get("lastBackupStatus", "")).lower() in COMPLETED \
        and (parse_instant(backup.get("lastBackupTime")) or _OLDEST) > at
    return None if made_good else _describe(last)


def _jobs_of(vm_id: str, index: Index) -> list[Row]:
    jobs = {j["id"].lower(): j for j in index.jobs_by_source.get(vm_id, ())}
    for item in index.protected_items.get(vm_id, ()):
        p = props(item)
        name = p.get("friendlyName") if isinstance(p.get("friendlyName"), str) else vm_id.rsplit("/", 1)[-1]
        container = str(p.get("containerName", "")).lower()
        for job in index.jobs_by_entity.get(entity_key(vault_of(item["id"]), name), ()):
            other = str(props(job).get("containerName", "")).lower()
            if not (container and other) or container == other:
                jobs[job["id"].lower()] = job
    return list(jobs.values())


def _started(job: Row) -> datetime:
    p = props(job)
    return parse_instant(_text(p.get("startTime"))) or parse_instant(_text(p.get("endTime"))) or _OLDEST


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _describe(job: Row) -> dict[str, Any]:
    p = props(job)
    details = [d for d in p.get("errorDetails") or () if isinstance(d, dict)] \
        if isinstance(p.get("errorDetails"), list) else []
    detail = details[0] if details else {}
    raw = detail.get("errorCode")
    code = raw if isinstance(raw, str) and raw else str(raw) if isinstance(raw, int) and not isinstance(raw, bool) \
        else None
    message = _text(detail.get("errorString")) or None
    facts: dict[str, Any] = {"jobId": job["id"], "status": str(p.get("status"))}
    for key, fact in (("startTime", "time"), ("endTime", "endTime"), ("operation", "operation"),
                      ("entityFriendlyName", "entityFriendlyName")):
        if _text(p.get(key)):
            facts[fact] = p[key]
    vault = vault_name(job["id"])
    if vault:
        facts["vault"] = vault
    if code:
        facts["errorCode"] = code
    if _text(job.get("errorDetailsFrom")):  # filled in by collection from the vault's jobs list
        facts["errorDetailsFrom"] = job["errorDetailsFrom"]
    if message:
        facts["message"] = message
    recommendations = [r for r in detail.get("recommendations") or () if isinstance(r, str)] \
        if isinstance(detail.get("recommendations"), list) else []
    if recommendations:
        facts["recommendations"] = recommendations
    facts.update(explain(code, message))
    return facts
