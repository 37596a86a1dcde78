"""`merge`: the results of shards (`scan --shard-name`) as one scan of their union, exactly.

A matrix of CI jobs scans the estate split by subscription; merge joins their results.json into
the reports a single scan of all their snapshot files would write (`scan --snapshot A --snapshot
B …`, in the order given), apart from the times. That holds because every verdict but a grouped
one depends on one VM's rows, and grouped ones are checked to stay inside a shard (review/shard.py);
everything a shard cannot decide alone — summary, exit code, "nothing assessed", job diagnoses, the
order of findings, the gate — is recomputed here from the findings with the scan's own functions.

The review step (exemptions, baseline) runs here, on the union, as the scan runs it on its
findings: a baseline's "fixed" list is about the whole estate, so shards are scanned without one.

Shards are refused (exit 2, naming the files) when they could not come from one scan: different
tool or library versions, policy sets or parameters, service tags, tables collected or settings;
a VM in two shards; a group of a grouped policy with members in two shards; backup slots that
would move at the union's collection time (daylight saving); or shards scanned with a review step
or a what-if, which judge the whole estate.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from backup_preflight import runtime, snapshot
from backup_preflight.errors import InputError, Problem
from backup_preflight.estate.backup import utc_instant
from backup_preflight.findings import SEVERITIES, STATUSES, Finding
from backup_preflight.policy.conditions import Node
from backup_preflight.policy.loader import MessageTemplate, Policy
from backup_preflight.results import Gate, ScanResult, exit_code, nothing_assessed, summarize
from backup_preflight.results_reader import iter_finding_documents, require, scan_tags
from backup_preflight.review import Review
from backup_preflight.review.baseline import load_results
from backup_preflight.review.jobs import diagnose
from backup_preflight.snapshot import SourceFile
from backup_preflight.timestamps import earliest, latest, parse_instant

#: The fields of a finding document; any other key is an annotation (observedInGuest, …).
FINDING_FIELDS = ("policyId", "resourceId", "resourceName", "subscriptionId", "resourceGroup", "status",
                  "severity", "cause", "message", "evidence", "remediation")
#: Review steps that judge the estate as a whole (a baseline lists what is gone from all of it).
WHOLE_ESTATE = {"exemptions": "--exemptions", "baseline": "--baseline", "whatIf": "--what-if"}
#: Settings that may differ between shards: the scope (joined like snapshot scopes), and the gate and
#: review files, which are the merge's own.
SCOPE_SETTINGS = ("subscription", "management-group")
MERGE_SETTINGS = ("fail-on", "strict", "fail-on-new", "exemptions", "baseline")
#: Conflicts named per pair of files before the rest are counted.
SHOWN = 3


@dataclass(slots=True)
class Shard:
    """One shard's results as merge reads them: per-(policy, VM) finding documents and the run around them."""

    path: str
    sha256: str
    tool: dict[str, Any]
    scan: dict[str, Any]
    policies: list[dict[str, Any]]
    #: In the order the scan wrote them (policy, then VM); made from the documents as the file is read,
    #: so no more than one shard's parsed file is held at a time.
    findings: list[Finding]
    coverage: dict[str, Any]
    diagnoses: list[dict[str, Any]]
    #: What the reports show beside the GUIDs: tags per VM (ScanResult.tags) and the subscriptions' names.
    tags: dict[str, dict[str, dict[str, str]]]
    subscriptions: dict[str, dict[str, Any]]

    @property
    def name(self) -> str:
        return str((self.scan.get("shard") or {}).get("name", ""))


def load_shard(path: Path) -> Shard:
    """Read one shard's results.json, of either schema version, as its per-(policy, VM) findings."""
    doc, digest = load_results(path)
    label = str(path)
    require(label, _required(doc))
    problems: list[Problem] = []
    snapshot.check_scope(doc["scan"]["scope"], label, "/scan/scope", problems)  # the union's reports show it
    snapshot.check_instant(doc["scan"].get("collectedAt"), label, "/scan/collectedAt", problems)
    snapshot.check_instant(doc["scan"]["finishedAt"], label, "/scan/finishedAt", problems)  # the union's end
    if problems:
        raise InputError(problems)
    for i, d in enumerate(doc.get("jobDiagnosis") or []):
        if not (isinstance(d, dict) and isinstance(d.get("resourceId"), str)
                and isinstance(d.get("lastFailedJob"), dict) and "note" in d["lastFailedJob"]):
            raise InputError.one(label, f"/jobDiagnosis/{i}", "needs resourceId and lastFailedJob")
    position = {p["id"]: i for i, p in enumerate(doc["policies"])}
    findings = [finding(d, label, n, position) for n, d in enumerate(iter_finding_documents(doc))]
    return Shard(label, digest, doc["tool"], doc["scan"], doc["policies"], findings,
                 doc["coverage"], doc.get("jobDiagnosis") or [], scan_tags(doc), doc.get("subscriptions") or {})


def _required(doc: dict[str, Any]) -> Iterable[tuple[str, Any, type]]:
    """(JSON pointer, value, type) of everything merge reads, checked before it reads any."""
    scan, coverage = doc["scan"], doc.get("coverage")
    yield "/tool", doc.get("tool"), dict
    yield "/policies", doc.get("policies"), list
    yield "/coverage", coverage, dict
    yield "/scan", scan, dict
    if isinstance(scan, dict):
        yield from ((f"/scan/{k}", scan.get(k), t) for k, t in (
            ("startedAt", str), ("finishedAt", str), ("source", dict), ("scope", dict), ("parameters", dict)))
        if isinstance(shard := scan.get("shard"), dict):
            yield "/scan/shard/slotReference", shard.get("slotReference"), str
            yield "/scan/shard/timeZones", shard.get("timeZones"), list
            yield from ((f"/scan/shard/timeZones/{i}", zone, str) for i, zone in enumerate(shard["timeZones"]))
            groups = shard.get("groups")
            yield "/scan/shard/groups", groups, dict
            for policy, keys in groups.items():  # reached only once groups passed as an object
                yield f"/scan/shard/groups/{policy}", keys, list
                yield from ((f"/scan/shard/groups/{policy}/{i}", key, list) for i, key in enumerate(keys))
    if isinstance(coverage, dict):
        yield from ((f"/coverage/{k}", coverage.get(k), t) for k, t in (
            ("vms", int), ("tables", dict), ("notCollected", list), ("errors", list)))
    for i, policy in enumerate(doc.get("policies") or []):
        yield f"/policies/{i}", policy, dict
        if isinstance(policy, dict):
            yield f"/policies/{i}/id", policy.get("id"), str


def load_shards(paths: list[Path]) -> list[Shard]:
    """Every shard, then every reason they cannot be merged, all reported together."""
    shards = [load_shard(p) for p in paths]
    problems = check_shards(shards)
    if problems:
        raise InputError(problems)
    return shards


def check_shards(shards: list[Shard]) -> list[Problem]:
    """Why these shards are not parts of one scan; empty when they are."""
    problems: list[Problem] = []
    names: dict[str, str] = {}
    for s in shards:
        if not isinstance(s.scan.get("shard"), dict) or not s.name:
            problems.append(Problem(s.path, "/scan/shard", "not a shard: scan it with --shard-name NAME"))
        elif s.name in names:
            problems.append(Problem(s.path, "/scan/shard/name", f"shard name {s.name!r} is also {names[s.name]}'s"))
        else:
            names[s.name] = s.path
        problems += [Problem(s.path, f"/scan/{key}", f"scanned with {flag}, which judges the whole estate: scan "
                                                     "the shards without it"
                                                     + ("" if key == "whatIf" else " and give it to merge"))
                     for key, flag in WHOLE_ESTATE.items() if s.scan.get(key)]
    if problems:
        return problems
    problems += _same_run(shards)
    problems += _overlapping_vms(shards)
    problems += _split_groups(shards)
    problems += _moved_slots(shards)
    return problems


def _same_run(shards: list[Shard]) -> list[Problem]:
    """What must be equal in every shard: tool, policies, parameters, tables collected, settings."""
    first = shards[0]
    ours = runtime.versions()
    problems = [] if first.tool == ours else [Problem(first.path, "/tool", f"written by {_tool(first.tool)}, "
                                                                          f"this merge is {_tool(ours)}: merge with "
                                                                          "the same version, Python and libraries")]
    checks = [("/tool", lambda s: s.tool, "tool, Python or library versions"),
              ("/scan/policySetSha256", lambda s: s.scan.get("policySetSha256"), "policy set"),
              ("/scan/parameters", lambda s: s.scan.get("parameters"), "policy parameters"),
              ("/policies", lambda s: [p.get("id") for p in s.policies], "policies"),
              ("/scan/serviceTags/sha256", lambda s: (s.scan.get("serviceTags") or {}).get("sha256"),
               "service-tag file"),
              ("/scan/source/kind", lambda s: (s.scan.get("source") or {}).get("kind"), "kind of source"),
              ("/coverage/notCollected", lambda s: s.coverage["notCollected"], "tables collected"),
              ("/scan/configuration", _settings, "settings")]
    for s in shards[1:]:
        for pointer, value, what in checks:
            if value(s) != value(first):
                problems.append(Problem(s.path, pointer, f"different {what} than {first.path}: "
                                                         f"{_short(value(s))} here, {_short(value(first))} there"))
    return problems


def _tool(tool: dict[str, Any]) -> str:
    return f"backup-preflight {tool.get('version')} on Python {tool.get('python')}"


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _settings(shard: Shard) -> Any:
    """The recorded configuration without what shards may differ in: their scope, and the gate and
    review files, which are the merge's."""
    config = shard.scan.get("configuration")
    if not isinstance(config, dict):
        return config
    settings = {k: v for k, v in (config.get("settings") or {}).items()
                if k not in SCOPE_SETTINGS and k not in MERGE_SETTINGS}
    return {**config, "settings": settings}


def _overlapping_vms(shards: list[Shard]) -> list[Problem]:
    owner: dict[str, int] = {}
    clashes: dict[tuple[int, int], list[str]] = {}
    for i, s in enumerate(shards):
        for key, rid in {f.resource_id.lower(): f.resource_id for f in s.findings}.items():
            j = owner.setdefault(key, i)
            if j != i:
                clashes.setdefault((j, i), []).append(rid)
    return [Problem(shards[i].path, "/findings", f"{len(ids)} VMs are also in {shards[j].path}, e.g. "
                                                 f"{', '.join(sorted(ids)[:SHOWN])}: shards must not overlap")
            for (j, i), ids in clashes.items()]


def _split_groups(shards: list[Shard]) -> list[Problem]:
    """A group of a grouped policy with members in two shards would be judged on part of them in each."""
    owner: dict[tuple[str, str], int] = {}
    clashes: dict[tuple[str, int, int], list[str]] = {}
    for i, s in enumerate(shards):
        for policy, keys in (s.scan["shard"].get("groups") or {}).items():
            for key in keys:
                text = " / ".join(str(v) for v in key)
                j = owner.setdefault((policy, text), i)
                if j != i:
                    clashes.setdefault((policy, j, i), []).append(text)
    return [Problem(shards[i].path, f"/scan/shard/groups/{policy}",
                    f"{len(keys)} groups of {policy} also have members in {shards[j].path}, e.g. "
                    f"{'; '.join(sorted(keys)[:SHOWN])}: each shard would judge part of a group. Split so that "
                    "every group stays in one shard (the default group key starts with the subscription), "
                    "or scan these VMs together")
            for (policy, j, i), keys in clashes.items()]


def _moved_slots(shards: list[Shard]) -> list[Problem]:
    """A shard whose backup slots, taken at its own reference instant, would be other UTC times at the
    reference a scan of the union takes (the latest collectedAt): daylight saving changed in between."""
    union = parse_instant(latest(s.scan.get("collectedAt") for s in shards))
    problems = []
    for s in shards:
        own = parse_instant(s.scan["shard"]["slotReference"])
        at = union or own
        if own is None or at is None or own == at:
            continue
        moved = [zone for zone in s.scan["shard"]["timeZones"] if _slots(zone, own) != _slots(zone, at)]
        if moved:
            problems.append(Problem(s.path, "/scan/shard/timeZones",
                                    f"backup slots in {', '.join(moved[:SHOWN])} were taken at {_iso(own)}, one scan "
                                    f"of all shards takes them at {_iso(at)}, and daylight saving differs: collect "
                                    "the shards closer together, or scan them together"))
    return problems


def _slots(zone: str, reference: datetime) -> list[str]:
    """The UTC slot of every local minute of a day in `zone`, daylight saving as at `reference`."""
    return [f"{t:%H:%M}" if (t := utc_instant(zone, f"{m // 60:02d}:{m % 60:02d}", reference)) else ""
            for m in range(0, 1440)]


def _iso(moment: datetime | None) -> str:
    return moment.isoformat().replace("+00:00", "Z") if moment else "?"


def merge(shards: list[Shard], gate: Gate, review: Review | None = None,
          settings: dict[str, Any] | None = None) -> ScanResult:
    """The union of checked shards as one ScanResult: reviewed with `review` and judged by `gate`.

    `settings` are the merge's own recorded settings (gate, review files), which replace the shards'.
    The findings come in a scan's order (policy, then VM id): each shard's are sorted on their own and
    the shards joined by a k-way merge, stable like one sort of them all but without a sort key for
    every finding of the union at once (at 1,000,000 VMs, 17 million keys).
    """
    policies = [recorded_policy(doc) for doc in shards[0].policies]
    position = {p.id: i for i, p in enumerate(policies)}

    def order(f: Finding) -> tuple[int, str]:
        return position[f.policy_id], f.resource_id.lower()

    for s in shards:
        s.findings.sort(key=order)
    findings = list(heapq.merge(*(s.findings for s in shards), key=order))
    for s in shards:
        s.findings = []
    run = _run(shards)
    run.update(review.apply(findings, run["startedAt"], [p.id for p in policies]) if review else {})
    if isinstance(shards[0].scan.get("configuration"), dict):
        run["configuration"] = _configuration(shards, settings or {})
    run["shards"] = [{"name": s.name, "results": s.path, "sha256": s.sha256, "vms": s.coverage["vms"],
                      "startedAt": s.scan["startedAt"], "finishedAt": s.scan["finishedAt"]} for s in shards]
    tables: dict[str, int] = {}
    for s in shards:
        for name, rows in s.coverage["tables"].items():
            tables[name] = tables.get(name, 0) + rows
    coverage = {
        "vms": sum(s.coverage["vms"] for s in shards),
        "policies": len(policies),
        "tables": dict(sorted(tables.items())),
        "notCollected": shards[0].coverage["notCollected"],
        "errors": [e for s in shards for e in s.coverage["errors"]],
        "nothingAssessed": nothing_assessed(findings),
        "subscriptionsWithoutName": sorted({sub for s in shards
                                            for sub in s.coverage.get("subscriptionsWithoutName", ())}),
    }
    summary = summarize(findings, gate)
    return ScanResult(run=run, policies=policies, findings=findings, coverage=coverage, gate=gate,
                      summary=summary, exit_code=exit_code(summary, coverage),
                      diagnoses=diagnose(_diagnosed_vms(shards), findings),
                      tags={vm: kinds for s in shards for vm, kinds in s.tags.items()},
                      subscriptions=dict(sorted((k, v) for s in shards for k, v in s.subscriptions.items())))


def _diagnosed_vms(shards: list[Shard]) -> list[dict[str, Any]]:
    """The VMs with a last failed job, as the estate had them (by id), rebuilt from the shards' diagnoses:
    the diagnosis is made again on the merged findings, which the review step may have exempted."""
    vms = [{"id": d["resourceId"], "name": d.get("resourceName", ""), "subscriptionId": d.get("subscriptionId", ""),
            "resourceGroup": d.get("resourceGroup", ""), "backup": {"lastFailedJob": d["lastFailedJob"]}}
           for s in shards for d in s.diagnoses]
    return sorted(vms, key=lambda vm: vm["id"].lower())


def _run(shards: list[Shard]) -> dict[str, Any]:
    """The run block of a scan of all the shards' files: the union's scope, latest collection, joint hash."""
    union = snapshot.Snapshot()
    union.merge(*(snapshot.Snapshot(scope=s.scan.get("scope") or {}, collected_at=s.scan.get("collectedAt"),
                                    sources=list(_sources(s))) for s in shards))
    first = shards[0].scan
    return {
        "startedAt": earliest(s.scan["startedAt"] for s in shards),  # instants, not text: 03:00+02:00 < 02:00Z
        "finishedAt": latest(s.scan["finishedAt"] for s in shards),
        "source": {"kind": first["source"]["kind"], "sha256": union.sha256,
                   "files": [{"path": f.path, "sha256": f.sha256, "format": f.kind} for f in union.sources]},
        "scope": union.scope,
        "collectedAt": union.collected_at,
        "policySetSha256": first["policySetSha256"],
        "parameters": first["parameters"],
        **({"serviceTags": first["serviceTags"]} if first.get("serviceTags") else {}),
    }


def _sources(shard: Shard) -> Iterable[SourceFile]:
    """The files a shard read; a live shard's collection stands as one source named after the shard."""
    source = shard.scan.get("source") or {}
    files = source.get("files") or [{"path": f"<{source.get('kind')} collection of shard {shard.name}>",
                                     "sha256": source.get("sha256", ""), "format": source.get("kind", "")}]
    return (SourceFile(str(f.get("path")), str(f.get("sha256")), str(f.get("format", ""))) for f in files)


def _configuration(shards: list[Shard], merged: dict[str, Any]) -> dict[str, Any]:
    """The shards' (equal) configuration, with their scopes joined and the merge's gate and review files."""
    config = dict(shards[0].scan["configuration"])
    settings = dict(config.get("settings") or {})
    for key in SCOPE_SETTINGS:
        if key in settings:
            joined: list[Any] = []
            for s in shards:
                joined += [v for v in s.scan["configuration"]["settings"].get(key) or [] if v not in joined]
            settings[key] = joined
    for key in MERGE_SETTINGS:
        if key in settings and key in merged:
            settings[key] = merged[key]
    config["settings"] = settings
    return config


def recorded_policy(doc: dict[str, Any]) -> Policy:
    """A policy as results.json records it: everything reports show; its conditions are not needed,
    since a merge renders the shards' verdicts and never evaluates."""
    return Policy(id=doc["id"], title=doc.get("title", ""), cause=doc.get("cause", ""),
                  severity=doc.get("severity", ""), assertion=Node(), message=MessageTemplate("", ()),
                  remediation=doc.get("remediation", ""), file=doc.get("file", ""), document={},
                  description=doc.get("description", ""), parameters=doc.get("parameters") or {},
                  references=doc.get("references") or [])


def finding(doc: dict[str, Any], label: str, n: int, policies: dict[str, int]) -> Finding:
    """A finding document back as a Finding; annotations are the keys beyond the fixed fields."""
    if (doc.get("policyId") not in policies or doc.get("status") not in STATUSES
            or doc.get("severity") not in SEVERITIES):
        raise InputError.one(label, f"/findings/{n}", "needs a policyId of the scan's policies, a known status "
                                                      "and severity")
    notes = {k: v for k, v in doc.items() if k not in FINDING_FIELDS}
    return Finding(doc["policyId"], doc["resourceId"], str(doc.get("resourceName", "")), doc["status"],
                   doc["severity"], str(doc.get("cause", "")), str(doc.get("message", "")),
                   tuple(doc.get("evidence") or ()), str(doc.get("subscriptionId", "")),
                   str(doc.get("resourceGroup", "")), notes or None)
