"""`verify`: re-evaluate a snapshot and confirm that a results.json says exactly what it would say now.

Audit evidence: the snapshot hash, the policy set hash (documents + effective parameters), the
exemptions and service-tag file hashes, every finding, the summary's counts and (without a baseline
or a what-if plan, whose marks it does not compare) the exit code under the recorded gate must match.
The exemptions and what-if files a result was produced with must be given again and are checked by
SHA-256 before anything is evaluated: a different file is refused (exit 2), since comparing against
it would prove nothing. Exemption expiry is judged at the original scan's start time, so a
results.json verifies the same way next year. Baseline marks are left out of the comparison: they
describe another file, not the estate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backup_preflight import __version__, scan
from backup_preflight.errors import InputError, Problem
from backup_preflight.policy.loader import PolicySet
from backup_preflight.report.results_json import finding_document
from backup_preflight.results import Gate
from backup_preflight.results_reader import iter_finding_documents, require
from backup_preflight.review import Review
from backup_preflight.review.baseline import load_results
from backup_preflight.service_tags import ServiceTags
from backup_preflight.whatif.parse import WhatIf

#: Keys that describe a comparison with another results.json rather than the finding itself.
IGNORED = frozenset({"baseline"})
MAX_SHOWN = 20


@dataclass(slots=True)
class VerifyReport:
    """Each check as (what, ok, detail), and the finding differences found."""

    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return all(ok for _, ok, _ in self.checks)

    def render(self) -> str:
        lines = [f"{'ok      ' if ok else 'MISMATCH'} {what}: {detail}" for what, ok, detail in self.checks]
        lines += [f"  {d}" for d in self.differences[:MAX_SHOWN]]
        if len(self.differences) > MAX_SHOWN:
            lines.append(f"  … and {len(self.differences) - MAX_SHOWN} more differences")
        lines += [f"note: {n}" for n in self.notes]
        lines.append("VERIFIED: the results match a re-evaluation of the snapshot" if self.matches
                     else "NOT VERIFIED: the results do not match a re-evaluation of the snapshot")
        return "\n".join(lines) + "\n"


def verify(results_path: Path, snapshots: list[Path], policies: PolicySet, review: Review,
           what_if: WhatIf | None = None, service_tags: ServiceTags | None = None,
           doc: dict[str, Any] | None = None) -> VerifyReport:
    """`doc` is the results.json at `results_path` when the caller has read it already (load_results)."""
    if doc is None:
        doc, _ = load_results(results_path)
    require(str(results_path), _recorded(doc))
    recorded = doc["scan"]
    given_ex = review.exemptions
    problems = same_inputs(str(results_path), "exemptions", [(recorded.get("exemptions") or {}).get("sha256")],
                           [given_ex.sha256] if given_ex else [], "--exemptions")
    problems += same_inputs(str(results_path), "whatIf/files",
                            [f.get("sha256") for f in (recorded.get("whatIf") or {}).get("files", [])],
                            [f["sha256"] for f in what_if.describe()] if what_if else [], "--what-if")
    if problems:
        raise InputError(problems)
    source = scan.snapshot_source(snapshots)
    source.service_tags = service_tags
    gate = Gate(fail_on=doc["gate"].get("failOn", "high"), strict=doc["gate"].get("strict") is True)
    result = scan.run_scan(source, policies, gate, review, as_of=recorded.get("startedAt"), what_if=what_if)
    report = VerifyReport()
    _same(report, "snapshot sha256", recorded.get("source", {}).get("sha256"), source.sha256)
    _same(report, "policy set sha256", recorded.get("policySetSha256"), policies.sha256)
    if recorded.get("policySetSha256") != policies.sha256:
        report.differences += _policy_differences(doc, result.run["parameters"], {p.id for p in policies.policies})
    _same(report, "service tags sha256", (recorded.get("serviceTags") or {}).get("sha256"),
          service_tags.sha256 if service_tags else None)
    _same(report, "exemptions sha256", (recorded.get("exemptions") or {}).get("sha256"),
          (result.run.get("exemptions") or {}).get("sha256"))
    remediation = {p.id: p.remediation for p in policies.policies}
    now = {_key(d): d for d in (_comparable(finding_document(f, remediation[f.policy_id]))
                                 for f in result.findings)}
    before = {_key(d): _comparable(d) for d in iter_finding_documents(doc)}
    differences = _finding_differences(before, now)
    report.checks.append(("findings", not differences,
                          f"{len(before)} recorded, {len(now)} re-evaluated, {len(differences)} differ"))
    report.differences += differences
    _same_counts(report, doc["summary"], result.summary)
    if recorded.get("baseline") is None and recorded.get("whatIf") is None:
        _same(report, "exit code", doc["gate"].get("exitCode"), result.exit_code)
    else:  # --fail-on-new (implied by --what-if) judges by the baseline's marks, which verify does not compare
        report.notes.append("the exit code was not compared: with a baseline or a what-if plan it depends on "
                            "findings of another scan")
    recorded_version = doc.get("tool", {}).get("version")
    if recorded_version != __version__:
        report.notes.append(f"results written by backup-preflight {recorded_version}, verified with {__version__}")
    return report


def _recorded(doc: dict[str, Any]) -> Iterator[tuple[str, Any, type]]:
    """(JSON pointer, value, type) of what verify reads beyond results_reader.check: the tool version, the recorded
    inputs' hashes and parameters. Lazy: a part is yielded once the block holding it has passed `require`."""
    scan = doc["scan"]
    yield "/tool", doc.get("tool", {}), dict
    yield "/gate", doc.get("gate"), dict
    yield "/gate/failOn", doc["gate"].get("failOn", "high"), str
    yield "/summary", doc.get("summary"), dict
    yield "/scan/source", scan.get("source", {}), dict
    yield from ((f"/scan/{block}", scan[block], dict) for block in ("serviceTags", "exemptions", "whatIf")
                if scan.get(block) is not None)
    if (scan.get("exemptions") or {}).get("sha256") is not None:
        yield "/scan/exemptions/sha256", scan["exemptions"]["sha256"], str
    files = (scan.get("whatIf") or {}).get("files", [])
    yield "/scan/whatIf/files", files, list
    for i, file in enumerate(files):
        yield f"/scan/whatIf/files/{i}", file, dict
        if file.get("sha256") is not None:
            yield f"/scan/whatIf/files/{i}/sha256", file["sha256"], str
    parameters = scan.get("parameters", {})
    yield "/scan/parameters", parameters, dict
    yield from ((f"/scan/parameters/{pid}", values, dict) for pid, values in parameters.items())
    policies = doc.get("policies", [])
    yield "/policies", policies, list
    for i, policy in enumerate(policies):
        yield f"/policies/{i}", policy, dict
        yield f"/policies/{i}/id", policy.get("id"), str


def same_inputs(label: str, block: str, recorded: list[str | None], given: list[str], flag: str) -> list[Problem]:
    """The files given again must be the files recorded, by SHA-256 and in order; say which differs."""
    recorded = [r for r in recorded if r]
    if recorded == given:
        return []
    if not given:
        return [Problem(label, f"/scan/{block}", f"the results were produced with {len(recorded)} such file(s) "
                                                 f"(sha256 {', '.join(recorded)}); pass the same with {flag}")]
    if not recorded:
        return [Problem(label, f"/scan/{block}", f"the results were produced without {flag}; do not pass it")]
    return [Problem(label, f"/scan/{block}", f"{flag} files have sha256 {', '.join(given)}, the results recorded "
                                             f"{', '.join(recorded)}: not the files the results were produced with")]


def _same(report: VerifyReport, what: str, recorded: Any, now: Any) -> None:
    def shown(value: Any) -> str:
        return "none" if value is None or value == "" else str(value)  # an exit code of 0 is shown as 0

    detail = (shown(recorded) if recorded == now
              else f"results.json has {shown(recorded)}, re-evaluation has {shown(now)}")
    report.checks.append((what, recorded == now, detail))


#: The summary's counts, which follow from the findings alone; an auditor reads them first.
COUNTS = ("total", "byStatus", "bySeverity", "byCause")


def _same_counts(report: VerifyReport, recorded: dict[str, Any], now: dict[str, Any]) -> None:
    """The summary's counts as recorded against the re-evaluation's (those a results.json of an older version
    does not have are not compared); each count that differs is named."""
    differ = [f"summary.{key} in results.json is {json.dumps(recorded[key], sort_keys=True)}, re-evaluation has "
              f"{json.dumps(now.get(key), sort_keys=True)}" for key in COUNTS if key in recorded
              and recorded[key] != now.get(key)]
    compared = [key for key in COUNTS if key in recorded]
    report.checks.append(("summary counts", not differ, f"{', '.join(compared)}: "
                                                        f"{'the same' if not differ else f'{len(differ)} differ'}"))
    report.differences += differ


def _key(doc: dict[str, Any]) -> tuple[str, str]:
    return (doc["policyId"], doc["resourceId"].lower())


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in IGNORED}


def _finding_differences(before: dict[tuple[str, str], dict[str, Any]],
                         now: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    out = []
    for key in sorted(before.keys() | now.keys()):
        old, new = before.get(key), now.get(key)
        if old == new:
            continue
        if old is None and new is not None:
            out.append(f"{key[0]} {key[1]}: not in results.json, re-evaluation says {new['status']}")
        elif old is not None and new is None:
            out.append(f"{key[0]} {key[1]}: in results.json ({old['status']}), not produced by re-evaluation")
        elif old is not None and new is not None:
            fields = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
            changes = ", ".join(f"{k} {old.get(k)!r} → {new.get(k)!r}" if k == "status" else k for k in fields)
            out.append(f"{key[0]} {key[1]}: {changes}")
    return out


def _policy_differences(doc: dict[str, Any], parameters: dict[str, Any], policy_ids: set[str]) -> list[str]:
    """Why the policy set hash differs, as far as results.json can tell: ids and parameter values."""
    recorded_ids = {p["id"] for p in doc.get("policies", [])}
    out = [f"policy {pid} is in results.json only" for pid in sorted(recorded_ids - policy_ids)]
    out += [f"policy {pid} is not in results.json" for pid in sorted(policy_ids - recorded_ids)]
    recorded_params = doc["scan"].get("parameters", {})
    for pid in sorted(recorded_params.keys() | parameters.keys()):
        old, new = recorded_params.get(pid, {}), parameters.get(pid, {})
        out += [f"parameter {pid}.{name}: results.json {old.get(name)!r}, now {new.get(name)!r} (pass --param)"
                for name in sorted(old.keys() | new.keys()) if old.get(name) != new.get(name)]
    if not out:
        out.append("policy ids and parameters agree, so a policy document itself differs")
    return out
