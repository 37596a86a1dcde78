"""Read a results.json of either schema version as its complete per-(policy, VM) finding documents.

Version 1 lists every finding in full. Version 2 (docs/reports.md) lists each VM once in `vms`,
gives every policy one verdict letter per VM in `verdicts`, and writes full documents only for
the findings that need attention or carry more than their status. Everything that reads
results.json (baseline, verify, merge) goes through `iter_finding_documents`, so none of it
depends on the version, and a version 2 file expands to exactly the documents version 1 had.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from backup_preflight.errors import InputError, Problem
from backup_preflight.findings import ERROR, EXEMPT, FAIL, NOT_APPLICABLE, PASS, UNKNOWN
from backup_preflight.snapshot import check_instant, json_kind

#: One letter per status in a verdict column; `NO_FINDING` where the policy does not judge that entry.
LETTER = {PASS: "p", FAIL: "f", UNKNOWN: "u", ERROR: "e", EXEMPT: "x", NOT_APPLICABLE: "-"}
STATUS_OF = {letter: status for status, letter in LETTER.items()}
NO_FINDING = "."
#: Statuses a verdict letter alone records completely (no message, evidence or remediation).
COMPACT = frozenset({PASS, NOT_APPLICABLE})
#: The keys of a version 2 finding document that are not copied to the expanded document as annotations.
CORE = ("policyId", "vm", "status", "severity", "cause", "message", "evidence")
VERSIONS = (1, 2)
V1_KEYS = ("policyId", "resourceId", "status")
VM_KEYS = ("id", "name", "subscriptionId", "resourceGroup")


def iter_finding_documents(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every (policy, VM) finding of a results.json, version 1 or 2, as a version 1 finding document.

    `doc` is the parsed file, checked by `check` (review.baseline.load_results does both). The
    documents come ordered by policy (as `verdicts` and `policies` list them), then by VM, as the
    scan wrote them. Version 2 documents are new dicts; version 1 ones are the parsed file's own.
    """
    if doc["schemaVersion"] == 1:
        yield from doc["findings"]
        return
    policies = {p["id"]: p for p in doc["policies"]}
    vms = doc["vms"]
    full: dict[str, dict[int, dict[str, Any]]] = {}
    for f in doc["findings"]:
        full.setdefault(f["policyId"], {})[f["vm"]] = f
    for policy_id, column in doc["verdicts"].items():
        policy, documents = policies[policy_id], full.get(policy_id, {})
        for i, letter in enumerate(column):
            if letter != NO_FINDING:
                yield _expand(policy, vms[i], documents.get(i) or {"status": STATUS_OF[letter]})


def resource_group_key(subscription_id: str, resource_group: str) -> str:
    """How `resourceGroups` is keyed: the group's id, lowercase."""
    return f"/subscriptions/{subscription_id}/resourcegroups/{resource_group}".lower()


def scan_tags(doc: dict[str, Any]) -> dict[str, dict[str, dict[str, str]]]:
    """The tags a scan showed per VM (ScanResult.tags: by lowercase VM id, the VM's own, its resource
    group's and its subscription's), rebuilt from a version 2 file's `vms`, `resourceGroups` and
    `subscriptions`; a version 1 file recorded none."""
    if doc["schemaVersion"] == 1:
        return {}
    groups, subscriptions = doc.get("resourceGroups") or {}, doc.get("subscriptions") or {}
    out: dict[str, dict[str, dict[str, str]]] = {}
    for vm in doc["vms"]:
        kinds = {"vm": vm.get("tags"),
                 "resourceGroup": groups.get(resource_group_key(vm["subscriptionId"], vm["resourceGroup"])),
                 "subscription": (subscriptions.get(vm["subscriptionId"].lower()) or {}).get("tags")}
        if any(kinds.values()):
            out[vm["id"].lower()] = {kind: tags for kind, tags in kinds.items() if tags}
    return out


def _expand(policy: dict[str, Any], vm: dict[str, Any], f: dict[str, Any]) -> dict[str, Any]:
    status = f["status"]
    doc = {"policyId": policy["id"], "resourceId": vm["id"], "resourceName": vm["name"],
           "subscriptionId": vm["subscriptionId"], "resourceGroup": vm["resourceGroup"], "status": status,
           "severity": f.get("severity", policy["severity"]), "cause": f.get("cause", policy["cause"]),
           "message": f.get("message", ""), "evidence": list(f.get("evidence", ())),
           "remediation": "" if status in COMPACT else policy["remediation"]}
    doc.update((k, v) for k, v in f.items() if k not in CORE)
    return doc


def check(doc: Any, label: str) -> None:
    """Raise InputError naming the place when `doc` is not a results.json this version can read.

    Checks what the reader relies on (the rest is the JSON Schema's job): that `scan` is an object whose
    `startedAt`, if any, is an instant (review.Review.apply judges expiry at it), and in version 2, that
    every verdict column has one letter per VM, that every full document names a known policy and
    VM and agrees with its letter, and that every letter needing a document has one.
    """
    if not isinstance(doc, dict) or "findings" not in doc or "scan" not in doc:
        raise InputError.one(label, "/", "not a backup-preflight results.json (no 'scan' and 'findings')")
    version = doc.get("schemaVersion")
    if version.__class__ is not int or version not in VERSIONS:  # true == 1 in Python, and is no version
        raise InputError.one(label, "/schemaVersion", f"unsupported schemaVersion {json.dumps(version)}, "
                                                      f"expected one of {', '.join(map(str, VERSIONS))}")
    if not isinstance(doc["scan"], dict):
        raise InputError.one(label, "/scan", f"expected an object, found {json_kind(doc['scan'])}")
    problems: list[Problem] = []  # exemptions expire at the recorded start when verify or merge re-applies them
    check_instant(doc["scan"].get("startedAt"), label, "/scan/startedAt", problems)
    if problems:
        raise InputError(problems)
    if not isinstance(doc["findings"], list):
        raise InputError.one(label, "/findings", "must be a list")
    if version == 1:
        for i, f in enumerate(doc["findings"]):
            if not isinstance(f, dict) or not all(isinstance(f.get(k), str) for k in V1_KEYS):
                raise InputError.one(label, f"/findings/{i}", "finding needs string policyId, resourceId and status")
        return
    _check_v2(doc, label)


_KINDS = {dict: "an object", list: "an array", str: "a string", int: "an integer"}


def require(label: str, shapes: Iterable[tuple[str, Any, type]]) -> None:
    """Raise InputError at the first (JSON pointer, value, type) whose value is not of its type: what a command
    reads beyond `check`, checked before it reads any, so a hand-edited file is exit 2 and never a traceback."""
    for pointer, value, kind in shapes:
        if not isinstance(value, kind):
            raise InputError.one(label, pointer, f"expected {_KINDS[kind]}, as a scan writes it")


def _tag_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _tag_sets(doc: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(JSON pointer, tags) of the resource groups' and subscriptions' tags that scan_tags reads."""
    for name in ("resourceGroups", "subscriptions"):
        block = doc.get(name, {})
        if not isinstance(block, dict):
            yield f"/{name}", None
            continue
        for key, value in block.items():
            if name == "resourceGroups":
                yield f"/resourceGroups/{key}", value
            elif not isinstance(value, dict):
                yield f"/subscriptions/{key}", None
            elif "tags" in value:
                yield f"/subscriptions/{key}/tags", value["tags"]


def _check_v2(doc: dict[str, Any], label: str) -> None:
    def fail(place: str, reason: str) -> InputError:
        return InputError.one(label, place, reason)

    policies, vms, verdicts = doc.get("policies"), doc.get("vms"), doc.get("verdicts")
    if not isinstance(policies, list) or not all(
            isinstance(p, dict) and all(isinstance(p.get(k), str) for k in ("id", "severity", "cause", "remediation"))
            for p in policies):
        raise fail("/policies", "every policy needs string id, severity, cause and remediation")
    if not isinstance(vms, list) or not all(
            isinstance(v, dict) and all(isinstance(v.get(k), str) for k in VM_KEYS) for v in vms):
        raise fail("/vms", "every VM needs string id, name, subscriptionId and resourceGroup")
    for i, vm in enumerate(vms):
        if "tags" in vm and not _tag_map(vm["tags"]):
            raise fail(f"/vms/{i}/tags", "must be an object of string tag values")
    for place, tags in _tag_sets(doc):
        if not _tag_map(tags):
            raise fail(place, "must be an object of string tag values")
    if not isinstance(verdicts, dict):
        raise fail("/verdicts", "must be an object of verdict columns by policy id")
    known = {p["id"] for p in policies}
    for policy_id, column in verdicts.items():
        place = f"/verdicts/{policy_id}"
        if policy_id not in known:
            raise fail(place, "not a policy listed under 'policies'")
        if not isinstance(column, str) or len(column) != len(vms):
            raise fail(place, f"must be a string of one letter per VM ({len(vms)})")
        odd = set(column) - STATUS_OF.keys() - {NO_FINDING}
        if odd:
            raise fail(place, f"unknown verdict letter(s) {''.join(sorted(odd))!r}")
    documented: set[tuple[str, int]] = set()
    needed: Counter[str] = Counter()  # documents whose letter needs one, per policy
    for i, f in enumerate(doc["findings"]):
        place = f"/findings/{i}"
        if not isinstance(f, dict) or not isinstance(f.get("policyId"), str) or not isinstance(f.get("status"), str):
            raise fail(place, "finding needs string policyId and status and an integer vm")
        column, vm = verdicts.get(f["policyId"]), f.get("vm")
        if column is None:
            raise fail(place, f"policy {f['policyId']!r} has no verdict column")
        if not isinstance(vm, int) or isinstance(vm, bool) or not 0 <= vm < len(vms):
            raise fail(place, f"vm must be an index into 'vms' (0 to {len(vms) - 1})")
        if LETTER.get(f["status"]) != column[vm]:
            raise fail(place, f"status {f['status']!r} disagrees with the verdict letter {column[vm]!r} "
                              f"at /verdicts/{f['policyId']} position {vm}")
        if (f["policyId"], vm) in documented:
            raise fail(place, "a second document for the same policy and VM")
        documented.add((f["policyId"], vm))
        needed[f["policyId"]] += f["status"] not in COMPACT
    needing = [letter for status, letter in LETTER.items() if status not in COMPACT]
    for policy_id, column in verdicts.items():
        if sum(map(column.count, needing)) != needed[policy_id]:  # every document matched a letter
            vm = next(i for i, letter in enumerate(column) if letter in needing and (policy_id, i) not in documented)
            raise fail(f"/verdicts/{policy_id}", f"VM {vm} has verdict {STATUS_OF[column[vm]]!r} but no document "
                                                 f"under 'findings'")
