"""results.json: the machine-readable contract (docs/reports.md), streamed finding by finding.

Streaming keeps memory flat at 100,000 VMs; the order of keys and findings is fixed so two
scans of the same snapshot differ only in their timestamps.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import msgspec

from backup_preflight import runtime
from backup_preflight.findings import NOT_APPLICABLE, PASS, Finding
from backup_preflight.results import RESULTS_SCHEMA_VERSION, ScanResult
from backup_preflight.text import redact

_encode = msgspec.json.Encoder().encode


def _indented(doc: Any) -> bytes:
    return msgspec.json.format(_encode(doc), indent=2)


def finding_document(f: Finding, remediation: str) -> dict[str, Any]:
    """One finding as results.json has it. Remediation is given where there is something to do:
    a pass or a not-applicable finding carries "" (the policy's text is under `policies`)."""
    doc: dict[str, Any] = {
        "policyId": f.policy_id,
        "resourceId": f.resource_id,
        "resourceName": f.resource_name,
        "subscriptionId": f.subscription_id,
        "resourceGroup": f.resource_group,
        "status": f.status,
        "severity": f.severity,
        "cause": f.cause,
        "message": redact(f.message),
        "evidence": [redact(e) for e in f.evidence],
        "remediation": "" if f.status in (PASS, NOT_APPLICABLE) else remediation,
    }
    doc.update(f.annotations)
    return doc


def policy_document(result: ScanResult) -> list[dict[str, Any]]:
    return [{**p.summary(), "description": p.description, "remediation": p.remediation,
             "references": p.references, "parameters": p.parameters, "file": Path(p.file).name}
            for p in result.policies]


def write(result: ScanResult, path: Path) -> None:
    with path.open("wb") as out:
        _stream(result, out)


def _stream(result: ScanResult, out: IO[bytes]) -> None:
    head = {
        "schemaVersion": RESULTS_SCHEMA_VERSION,
        "tool": runtime.versions(),
        "scan": result.run,
        "gate": {"failOn": result.gate.fail_on, "strict": result.gate.strict, "exitCode": result.exit_code},
        "policies": policy_document(result),
    }
    body = _indented(head)
    out.write(body[:-2])  # reopen the object: drop the closing "\n}"
    out.write(b',\n  "findings": [')
    remediation = {p.id: p.remediation for p in result.policies}
    for i, finding in enumerate(result.findings):
        out.write(b"\n    " if i == 0 else b",\n    ")
        out.write(_encode(finding_document(finding, remediation[finding.policy_id])))
    out.write(b"\n  ],\n")
    tail = _indented({"summary": result.summary, "coverage": result.coverage, "jobDiagnosis": result.diagnoses,
                      "subscriptions": result.subscriptions})
    out.write(b"  " + tail[1:].lstrip())
    out.write(b"\n")
