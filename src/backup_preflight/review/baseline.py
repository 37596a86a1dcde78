"""Baseline: compare this scan with a previous results.json so a gate can break on new failures only.

Identity is (policy id, full resource id lowercased); a finding is `unchanged` only when the
baseline had the same verdict for it, so a VM whose unknown became a confirmed failure shows
as new, and one the baseline had exempt is new once it is no longer exempt. Accepted findings
stay in every report; only the gate (`--fail-on-new`) treats them differently. Baseline failures
that now pass, no longer apply or whose VM or policy is gone are listed as fixed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backup_preflight.findings import ERROR, EXEMPT, FAIL, PASS, UNKNOWN, Finding, held, plain_passes_of
from backup_preflight.results_reader import check, iter_finding_documents
from backup_preflight.snapshot import read_json

#: Verdicts a baseline can accept: the ones a gate can break on.
ACCEPTABLE = (FAIL, ERROR, UNKNOWN)
NEW, UNCHANGED = "new", "unchanged"


def verdict(doc_or_finding: dict[str, Any] | Finding) -> str:
    """The real verdict: an exempt finding keeps it under `verdict`."""
    if isinstance(doc_or_finding, Finding):
        return doc_or_finding.annotations.get("verdict", doc_or_finding.status)
    return doc_or_finding.get("verdict", doc_or_finding["status"])


def load_results(path: Path) -> tuple[dict[str, Any], str]:
    """A results.json written by `scan` (schema version 1 or 2), checked enough to read its findings
    with `iter_finding_documents`, and its SHA-256."""
    doc, digest = read_json(path)
    check(doc, str(path))
    return doc, digest


@dataclass(frozen=True, slots=True)
class Baseline:
    path: str
    sha256: str
    started_at: str | None
    #: key → the baseline finding, for findings with an acceptable verdict only.
    accepted: dict[tuple[str, str], dict[str, Any]]


def load(path: Path) -> Baseline:
    doc, digest = load_results(path)
    accepted = {(f["policyId"], f["resourceId"].lower()): f for f in iter_finding_documents(doc)
                if verdict(f) in ACCEPTABLE}
    return Baseline(str(path), digest, doc["scan"].get("startedAt"), accepted)


def from_findings(findings: Iterable[Finding], label: str, sha256: str) -> Baseline:
    """A baseline made from another scan in the same run: `scan --what-if` compares the predicted
    estate with the current one exactly as with a previous results.json."""
    accepted = {}
    held: dict[str, str] = {}  # one copy of each VM's id, lowered id and name, whatever its number of findings
    for f in findings:
        if f.status in ACCEPTABLE:
            rid = held.setdefault(f.resource_id, f.resource_id)
            low = rid.lower()
            accepted[(f.policy_id, held.setdefault(low, low))] = {
                "policyId": f.policy_id, "resourceId": rid, "resourceName": held.setdefault(f.resource_name,
                                                                                           f.resource_name),
                "status": f.status}
    return Baseline(label, sha256, None, accepted)


def _lost_exemption(before: dict[str, Any], finding: Finding) -> bool:
    """The baseline accepted an exempt finding only while it is exempt: once its exemption expires or is removed,
    the finding counts again (docs/reports.md), under --fail-on-new too, so it is new."""
    return before["status"] == EXEMPT and finding.status != EXEMPT


def apply(findings: Sequence[Finding], baseline: Baseline, fail_on_new: bool) -> dict[str, Any]:
    """Mark each failing/unknown/error finding new or unchanged; list what the baseline had that is gone.

    Only the verdicts of what the baseline accepted are kept to find what is gone (17 million findings at
    1,000,000 VMs would hold several GB as keys). Plain passes, which nothing marks, are read only for the VMs of
    accepted findings that no other finding gave a verdict: a pass now, else gone."""
    current: dict[tuple[str, str], str] = {}
    accepted = baseline.accepted
    for finding in held(findings):
        key = finding.key()
        finding_verdict = verdict(finding)
        if key in accepted:
            current[key] = finding_verdict
        if finding_verdict in ACCEPTABLE:
            before = accepted.get(key)
            same = before is not None and verdict(before) == finding_verdict and not _lost_exemption(before, finding)
            finding.annotate("baseline", UNCHANGED if same else NEW)
    for finding in plain_passes_of(findings, {key[1] for key in accepted if key not in current}):
        if (key := finding.key()) in accepted:
            current[key] = PASS
    fixed = []
    for key, before in baseline.accepted.items():
        now = current.get(key, "absent")
        if now not in ACCEPTABLE:
            fixed.append({"policyId": before["policyId"], "resourceId": before["resourceId"],
                          "resourceName": before.get("resourceName", ""), "was": verdict(before), "now": now})
    fixed.sort(key=lambda f: (f["policyId"], f["resourceId"].lower()))
    return {"file": baseline.path, "sha256": baseline.sha256, "baselineStartedAt": baseline.started_at,
            "failOnNew": fail_on_new, "fixed": fixed}
