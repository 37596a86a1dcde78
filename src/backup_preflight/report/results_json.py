"""results.json: the machine-readable contract (docs/reports.md), schema version 2, streamed.

Every (policy, VM) verdict is recorded, but a pass is one letter in its policy's verdict column,
not a document: 1.2 M passes at 100,000 VMs made version 1 files of 786 MB. The order of keys,
VMs and findings is fixed so two scans of the same snapshot differ only in their timestamps.
results_reader.py reads both versions back as the same finding documents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import msgspec

from backup_preflight import runtime
from backup_preflight.findings import PASS, Finding, walk
from backup_preflight.policy.loader import Policy
from backup_preflight.results import RESULTS_SCHEMA_VERSION, ScanResult
from backup_preflight.results_reader import COMPACT, LETTER, NO_FINDING, resource_group_key
from backup_preflight.text import redact

_encode = msgspec.json.Encoder().encode


def _indented(doc: Any) -> bytes:
    return msgspec.json.format(_encode(doc), indent=2)


def finding_document(f: Finding, remediation: str) -> dict[str, Any]:
    """One finding as a complete document: as version 1 wrote it, as the reader expands version 2, as
    verify compares it. Remediation is given where there is something to do: a pass or a
    not-applicable finding carries "" (the policy's text is under `policies`)."""
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
        "remediation": "" if f.status in COMPACT else remediation,
    }
    doc.update(f.annotations)
    return doc


def policy_document(result: ScanResult) -> list[dict[str, Any]]:
    return [{**p.summary(), "description": p.description, "remediation": p.remediation,
             "references": p.references, "parameters": p.parameters, "file": Path(p.file).name}
            for p in result.policies]


def _redacted(value: Any) -> Any:
    """`value` with every string redacted (text.redact): a backup job's error text and recommendations come from
    Azure and may carry a SAS URL, as finding messages may."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    return value


def compact_document(f: Finding, vm: int, policy: Policy) -> dict[str, Any]:
    """A finding as version 2 writes it under `findings`: the VM by its index into `vms`, severity and
    cause only where they differ from the policy's, remediation never (the reader takes the policy's)."""
    doc: dict[str, Any] = {"policyId": f.policy_id, "vm": vm, "status": f.status}
    if f.severity != policy.severity:
        doc["severity"] = f.severity
    if f.cause != policy.cause:
        doc["cause"] = f.cause
    doc["message"] = redact(f.message)
    doc["evidence"] = [redact(e) for e in f.evidence]
    doc.update(f.annotations)
    return doc


def needs_document(f: Finding, policy: Policy) -> bool:
    """Does a verdict letter say less than this finding? Passes and not-applicable findings with
    nothing more than their status are letters only."""
    return (f.status not in COMPACT or bool(f.message) or bool(f.evidence) or f.notes is not None
            or f.severity != policy.severity or f.cause != policy.cause)


@dataclass(slots=True)
class VerdictTable:
    """The VM table, one verdict column per policy, and the findings that need a full document.

    Built in one pass over the findings; memory is the table, one byte per (policy, VM) and the
    documented findings, never one object per pass. A VM is one entry per distinct (id, name,
    subscription, resource group); a policy that judges the same entry twice (a custom query
    returning a row twice) gets a second entry, so every finding keeps its own letter. A plain pass
    held as numbers (findings.walk) is read as its VM's number, never made: a part's VM is looked up
    once, its first entry kept by its number.
    """

    vms: list[tuple[str, str, str, str]] = field(default_factory=list)
    columns: dict[str, bytearray] = field(default_factory=dict)
    documented: list[tuple[Finding, int]] = field(default_factory=list)

    @classmethod
    def of(cls, result: ScanResult) -> VerdictTable:
        table = cls(columns={p.id: bytearray() for p in result.policies})
        policies = {p.id: p for p in result.policies}
        entries: dict[tuple[str, str, str, str], list[int]] = {}
        letters = {status: ord(letter) for status, letter in LETTER.items()}
        blank, passed = _BLANK[0], letters[PASS]
        firsts: dict[int, list[int]] = {}  # by where plain passes are held: each VM number's first entry, or -1
        policy, column = None, bytearray()
        for held, number, items in walk(result.findings):
            if held is not None:
                policy = policies[held.policy_ids[number]]
                column = table.columns[policy.id]
                column.extend(_BLANK * (len(table.vms) - len(column)))
                first = firsts.setdefault(id(held), [-1] * len(held.ids))
                plain_letter = policy.severity == held.severities[number] and policy.cause == held.causes[number]
            for f in items:
                if isinstance(f, int):  # a plain pass of held's VM number f
                    vm = first[f]
                    if vm < 0 or column[vm] != blank or not plain_letter:
                        key = (held.ids[f], held.names[f], held.subscriptions[f], held.groups[f])
                        vm = table._entry(entries.get(key), key, entries, column)
                        first[f] = entries[key][0]
                        if not plain_letter:
                            table.documented.append((held.made(f, number), vm))
                    column[vm] = passed
                    continue
                if policy is None or f.policy_id != policy.id:
                    policy, column = policies[f.policy_id], table.columns[f.policy_id]
                    column.extend(_BLANK * (len(table.vms) - len(column)))
                key = (f.resource_id, f.resource_name, f.subscription_id, f.resource_group)
                candidates = entries.get(key)
                vm = candidates[0] if candidates else -1
                if vm < 0 or column[vm] != blank:  # a new entry, or this policy's second finding on it
                    vm = table._entry(candidates, key, entries, column)
                column[vm] = letters[f.status]
                if needs_document(f, policy):
                    table.documented.append((f, vm))
        for column in table.columns.values():
            column.extend(_BLANK * (len(table.vms) - len(column)))
        return table

    def _entry(self, candidates: list[int] | None, key: tuple[str, str, str, str],
               entries: dict[tuple[str, str, str, str], list[int]], column: bytearray) -> int:
        """The first entry for `key` this policy's column has no letter for yet (a new one if none),
        with the column grown to reach it."""
        for vm in candidates or ():
            if vm >= len(column) or column[vm] == _BLANK[0]:
                break
        else:
            vm = len(self.vms)
            self.vms.append(key)
            entries.setdefault(key, []).append(vm)
        if len(column) <= vm:
            column.extend(_BLANK * (vm + 1 - len(column)))
        return vm


_BLANK = NO_FINDING.encode()


def write(result: ScanResult, path: Path) -> None:
    with path.open("wb") as out:
        _stream(result, out)


def _stream(result: ScanResult, out: IO[bytes]) -> None:
    table = VerdictTable.of(result)
    head = {
        "schemaVersion": RESULTS_SCHEMA_VERSION,
        "tool": runtime.versions(),
        "scan": result.run,
        "gate": {"failOn": result.gate.fail_on, "strict": result.gate.strict, "exitCode": result.exit_code},
        "policies": policy_document(result),
    }
    body = _indented(head)
    out.write(body[:-2])  # reopen the object: drop the closing "\n}"
    out.write(b',\n  "vms": [')
    group_tags: dict[str, dict[str, str]] = {}
    for i, (rid, name, subscription, group) in enumerate(table.vms):
        out.write(b"\n    " if i == 0 else b",\n    ")
        entry: dict[str, Any] = {"id": rid, "name": name, "subscriptionId": subscription, "resourceGroup": group}
        kinds = result.tags.get(rid.lower()) or {}
        if kinds.get("vm"):
            entry["tags"] = kinds["vm"]
        if kinds.get("resourceGroup"):
            group_tags[resource_group_key(subscription, group)] = kinds["resourceGroup"]
        out.write(_encode(entry))
    out.write(b"\n  ],\n  \"verdicts\": {")
    for i, (policy_id, column) in enumerate(table.columns.items()):
        out.write(b"\n    " if i == 0 else b",\n    ")
        out.write(_encode(policy_id) + b": \"" + column + b"\"")
    out.write(b"\n  },\n  \"findings\": [")
    policies = {p.id: p for p in result.policies}
    for i, (finding, vm) in enumerate(table.documented):
        out.write(b"\n    " if i == 0 else b",\n    ")
        out.write(_encode(compact_document(finding, vm, policies[finding.policy_id])))
    out.write(b"\n  ],\n")
    tail = _indented({"summary": result.summary, "coverage": result.coverage,
                      "jobDiagnosis": _redacted(result.diagnoses),
                      "subscriptions": result.subscriptions, "resourceGroups": dict(sorted(group_tags.items()))})
    out.write(b"  " + tail[1:].lstrip())
    out.write(b"\n")
