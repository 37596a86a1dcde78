"""Job diagnosis: each VM's last failed backup job beside the verdicts of the causes its error points at.

Why: "last backup failed with X, which points at cause Y; policy Z on this VM is failing" is what
an operator needs first. This step only joins the estate's `backup.lastFailedJob` with the findings
the engine already gave; it judges nothing, and the reports render its entries as they are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from backup_preflight.findings import ERROR, EXEMPT, FAIL, PASS, UNKNOWN, Finding, of_vms

#: Order in which a cause's policy verdicts are listed: what confirms the cause first.
_ORDER = {FAIL: 0, ERROR: 1, UNKNOWN: 2, EXEMPT: 3, PASS: 4, "notApplicable": 5}


def diagnose(vms: list[dict[str, Any]], findings: Sequence[Finding]) -> list[dict[str, Any]]:
    """One entry per VM with a last failed job, in the estate's VM order."""
    with_jobs = {vm["id"].lower(): vm for vm in vms if (vm.get("backup") or {}).get("lastFailedJob")}
    if not with_jobs:
        return []
    verdicts: defaultdict[str, defaultdict[str, list[tuple[str, str]]]] = defaultdict(lambda: defaultdict(list))
    for f in of_vms(findings, with_jobs):  # in any order: each cause's verdicts are sorted
        verdicts[f.resource_id.lower()][f.cause].append((f.policy_id, f.status))
    return [_entry(vm, verdicts[key]) for key, vm in with_jobs.items()]


def _entry(vm: dict[str, Any], by_cause: dict[str, list[tuple[str, str]]]) -> dict[str, Any]:
    job = vm["backup"]["lastFailedJob"]
    causes = [{"cause": cause,
               "policies": [{"policyId": pid, "status": status}
                            for pid, status in sorted(by_cause.get(cause, ()), key=lambda v: (_ORDER[v[1]], v[0]))]}
              for cause in job.get("causes", ())]
    for c in causes:
        c["status"] = _cause_status([p["status"] for p in c["policies"]])
    confirmed = [c["cause"] for c in causes if c["status"] == "failing"]
    return {"resourceId": vm["id"], "resourceName": vm["name"], "subscriptionId": vm["subscriptionId"],
            "resourceGroup": vm["resourceGroup"], "lastFailedJob": job, "causes": causes,
            "failingCauses": confirmed, "summary": sentence(job, causes)}


def _cause_status(statuses: list[str]) -> str:
    """failing (a policy of the cause fails or errs on this VM), else unknown (one could not be assessed),
    else passing (one passes; exempt ones say nothing), else notEvaluated."""
    if any(s in (FAIL, ERROR) for s in statuses):
        return "failing"
    if UNKNOWN in statuses:
        return "unknown"
    return "passing" if PASS in statuses else "notEvaluated"


def sentence(job: dict[str, Any], causes: list[dict[str, Any]]) -> str:
    """'Last backup failed at T (Backup) with X: message; it points at cause Y: VMBK-… fail, …'."""
    code = job.get("errorCode") or "no error code"
    if job.get("documentedCode") and job["documentedCode"] != job.get("errorCode"):
        code += f" ({job['documentedCode']})"
    text = f"Last backup failed at {job.get('time', 'an unknown time')} ({job.get('operation', 'Backup')}) with {code}"
    if job.get("message"):
        text += f": {job['message'].rstrip('. ')}"
    if not causes:
        return f"{text}. It points at no precondition this tool checks: {job['note']}"
    parts = []
    for c in causes:
        listed = ", ".join(f"{p['policyId']} {p['status']}" for p in c["policies"]) or "no policy evaluated"
        parts.append(f"{c['cause']}, {c['status']} ({listed})")
    return f"{text}. It points at {'; '.join(parts)}."
