"""junit.xml: one testsuite per policy, one testcase per (policy, VM) that needs attention, streamed.

Consumers title a test by `name` (Azure DevOps), show classname and name (GitLab) or group by
classname (Jenkins), so classname is the policy id and name reads as the VM: `vm (resource
group, subscription)` — unique and stable between runs, never the message (the subscription is its
GUID: a display name can be renamed); the full resource id is in `system-out`, and the policy's
title and the subscriptions' display names are suite properties, said once. Statuses map as:
fail → <failure>, error → <error>, unknown → <skipped> (<failure> with --strict), exempt →
<skipped> with the exemption, and with --fail-on-new a finding the baseline already had →
<skipped message="accepted in baseline: …">.

Size: GitLab parses at most 30 MB per file. A 100,000-VM estate has ~1.2 M passes and ~235,000
unknowns — at ~250 bytes even a bare testcase each would be 60 MB — so by default passes become
one testcase per policy (`--junit-passes`), saying how many VMs it stands for. Skipped
unknowns (`--junit-unknowns auto`, the default) stay one testcase per VM when their reason concerns
at most AUTO_EACH_UP_TO VMs of the policy — a problem of those VMs — and become one testcase for the
reason when it concerns more: a collection gap (metrics not collected), fixed once for all of them.
Failures, errors, exempt findings and (under --strict) unknowns stay one testcase per VM, with
the policy's fix and docs link rather than its whole text. Not-applicable findings are not tests.
Every text is stripped of XML-illegal characters and capped, so the file always parses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape, quoteattr

import msgspec

from backup_preflight import __version__
from backup_preflight.findings import ERROR, EXEMPT, FAIL, NOT_APPLICABLE, PASS, UNKNOWN, Finding, held, plain_passes
from backup_preflight.policy.loader import Policy
from backup_preflight.report.view import (
    accepted_in_baseline,
    clean,
    diagnoses_by_vm,
    exemption_note,
    job_headline,
    run_problems,
    shard_sentence,
)
from backup_preflight.results import ScanResult
from backup_preflight.timestamps import parse_instant

MESSAGE_LIMIT = 1000
BODY_LIMIT = 32_000
#: A property value (parameters, subscription names as JSON) is cut only when it is absurdly long.
PROPERTY_LIMIT = 100_000
EVIDENCE_LINES = 50
SUITE_PREFIX = "backup-preflight"
#: `--junit-passes`: one testcase per policy for all its passes, one per passing VM, or none.
PASSES = ("aggregate", "each", "none")
#: `--junit-unknowns`: skipped unknowns one per VM for a reason of a few VMs and one per reason beyond
#: (auto), always one per policy and reason (aggregate), or always one per VM (each).
UNKNOWNS = ("auto", "aggregate", "each")
#: Under `auto`, a (policy, reason) of at most this many VMs keeps one testcase per VM.
AUTO_EACH_UP_TO = 50
#: Name of the aggregated pass testcase: fixed, so its history is kept; the count is in system-out.
PASSES_NAME = "VMs that pass"
#: Prefix of an aggregated unknown testcase's name; the rest is the reason, which is its identity.
UNKNOWN_PREFIX = "not assessed: "

FAILURE, ERROR_EL, SKIPPED = "failure", "error", "skipped"


def writer(passes: str, unknowns: str = "auto") -> partial[None]:
    """The junit.xml writer for one `--junit-passes` / `--junit-unknowns` choice."""
    return partial(write, passes=passes, unknowns=unknowns)


def write(result: ScanResult, path: Path, passes: str = "aggregate", unknowns: str = "auto") -> None:
    if passes not in PASSES or unknowns not in UNKNOWNS:
        raise ValueError(f"passes must be one of {PASSES}, unknowns one of {UNKNOWNS}")
    with path.open("w", encoding="utf-8", newline="\n") as out:
        _stream(result, out, passes, unknowns)


def outcome(finding: Finding, result: ScanResult) -> tuple[str, str] | None:
    """(element, message) for a testcase, or None for a passing one. The message leads with the finding's."""
    status = finding.status
    if status == PASS:
        return None
    if status == EXEMPT:
        return SKIPPED, exemption_note(finding)
    if accepted_in_baseline(finding, result):
        return SKIPPED, f"accepted in baseline: {finding.message}"
    if status == FAIL:
        return FAILURE, finding.message
    if status == ERROR:
        return ERROR_EL, finding.message
    if result.gate.strict:
        return FAILURE, f"{finding.message} (not assessed; fails under --strict)"
    return SKIPPED, finding.message


def reason_name(reason: str) -> str:
    """Name of the testcase for one policy's unknowns with this reason (the engine's reasons already
    start "Not assessed (…)"; others get the prefix)."""
    return reason if reason.lower().startswith(UNKNOWN_PREFIX[:-2]) else UNKNOWN_PREFIX + reason


def case_name(f: Finding) -> str:
    """`vm (resource group, subscription)`: what a CI test view shows as the test's title."""
    where = ", ".join(part for part in (f.resource_group, f.subscription_id) if part)
    return f"{f.resource_name} ({where})" if where else f.resource_name or f.resource_id


class _Names:
    """Testcase names, unique within a suite: resources that would read the same (only possible for hand-made or
    non-VM rows) each get their full resource id appended, which is unique, so a name means one resource in every
    run that has the clash, whichever of them comes first."""

    def __init__(self, findings: Iterable[Finding]) -> None:
        self._by_id: dict[str, str] = {}
        first: dict[str, str] = {}  # lowercase case name -> the first resource id read so
        seen: set[str] = set()
        self._clashes: set[str] = set()
        for f in findings:
            if (key := f.resource_id.lower()) not in seen:
                seen.add(key)
                if first.setdefault(name := case_name(f).lower(), key) != key:
                    self._clashes.add(name)

    def __call__(self, f: Finding) -> str:
        key = f.resource_id.lower()
        name = self._by_id.get(key)
        if name is None:
            name = case_name(f)
            if name.lower() in self._clashes:
                name = f"{name} [{f.resource_id}]"
            self._by_id[key] = name = quoteattr(clean(name, 2000))
        return name


def _stream(result: ScanResult, out: IO[str], passes: str, unknowns: str) -> None:
    policies = {p.id: p for p in result.policies}
    cases: dict[str, list[Finding]] = {p.id: [] for p in result.policies}
    passing: dict[str, int] = dict.fromkeys(policies, 0)
    reasons: dict[str, Counter[str]] = {pid: Counter() for pid in policies}
    skipped_unknowns: dict[str, dict[str, list[Finding]]] = {pid: {} for pid in policies}
    tally: dict[str, dict[str, int]] = {p.id: {"tests": 0, FAILURE: 0, ERROR_EL: 0, SKIPPED: 0}
                                        for p in result.policies}
    findings: Iterable[Finding] = result.findings
    if passes != "each":  # a plain pass is only counted
        for (policy_id, _, _), n in plain_passes(result.findings).items():
            passing[policy_id] += n
        findings = held(result.findings)
    for f in findings:
        if f.status == NOT_APPLICABLE:
            continue
        got = outcome(f, result)
        counts = tally[f.policy_id]
        if got is None:
            passing[f.policy_id] += 1
            if passes != "each":
                continue
        elif f.status == UNKNOWN and got[0] == SKIPPED and unknowns != "each":
            skipped_unknowns[f.policy_id].setdefault(got[1], []).append(f)
            continue
        else:
            counts[got[0]] += 1
        cases[f.policy_id].append(f)
        counts["tests"] += 1
    for pid, counts in tally.items():
        for reason, found in skipped_unknowns[pid].items():
            if unknowns == "auto" and len(found) <= AUTO_EACH_UP_TO:
                cases[pid].extend(found)
                counts["tests"] += len(found)
                counts[SKIPPED] += len(found)
            else:
                reasons[pid][reason] = len(found)
        aggregated = len(reasons[pid]) + (1 if passes == "aggregate" and passing[pid] else 0)
        counts["tests"] += aggregated
        counts[SKIPPED] += len(reasons[pid])
    problems = run_problems(result)
    total = {k: sum(c[k] for c in tally.values()) + (len(problems) if k in ("tests", ERROR_EL) else 0)
             for k in ("tests", FAILURE, ERROR_EL)}
    props = _properties(result, passes, unknowns)
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(f'<testsuites name="{SUITE_PREFIX}" tests="{total["tests"]}" failures="{total[FAILURE]}" '
              f'errors="{total[ERROR_EL]}" time="{_duration(result)}">\n')
    if problems:
        classname = f"{SUITE_PREFIX}.coverage"
        _suite_head(out, classname, {"tests": len(problems), FAILURE: 0, ERROR_EL: len(problems), SKIPPED: 0},
                    result, props)
        for name, message in problems:
            _case(out, quoteattr(classname), quoteattr(clean(name, MESSAGE_LIMIT)), ERROR_EL,
                  message, "coverage", message, "")
        out.write("  </testsuite>\n")
    names = _Names(f for found in cases.values() for f in found)
    jobs = diagnoses_by_vm(result)
    for pid, policy_cases in cases.items():
        policy = policies[pid]
        _suite_head(out, pid, tally[pid], result, {**props, "policy.title": policy.title})
        classname = quoteattr(pid)
        for f in policy_cases:
            got = outcome(f, result)  # recomputed rather than kept: 1.6M tuples are not free
            system_out = f"<system-out>{escape(clean(f.resource_id, 2000))}</system-out>"
            if got is None:
                out.write(f'    <testcase classname={classname} name={names(f)} time="0">{system_out}</testcase>\n')
            else:
                _case(out, classname, names(f), got[0], got[1], f"{f.severity}/{f.cause}",
                      _body(f, policy, jobs.get(f.resource_id.lower())), system_out)
        for reason, n in sorted(reasons[pid].items(), key=lambda kv: (-kv[1], kv[0])):
            vms = f"{n:,} VM{'' if n == 1 else 's'}"
            _case(out, classname, quoteattr(clean(reason_name(reason), 2000)), SKIPPED, f"{vms}: {reason}",
                  f"{policy.severity}/{policy.cause}", "",
                  f"<system-out>{vms} not assessed for this reason; each one is in results.json and report.html "
                  "(or use --junit-unknowns each)</system-out>")
        if passes == "aggregate" and passing[pid]:
            n = passing[pid]
            out.write(f'    <testcase classname={classname} name="{PASSES_NAME}" time="0">'
                      f"<system-out>{n:,} VM{'' if n == 1 else 's'} pass {escape(pid)}; each one is in "
                      "results.json (or use --junit-passes each)</system-out></testcase>\n")
        out.write("  </testsuite>\n")
    out.write("</testsuites>\n")


def _duration(result: ScanResult) -> str:
    """Seconds the scan took (`finishedAt - startedAt`); single verdicts are not timed and say 0."""
    start, end = (parse_instant(result.run.get(k)) for k in ("startedAt", "finishedAt"))  # naive means UTC
    if start is None or end is None:
        return "0"
    return f"{max((end - start).total_seconds(), 0):.3f}"


def _properties(result: ScanResult, passes: str, unknowns: str) -> dict[str, str]:
    """The run's metadata, repeated in every suite (a consumer may read any one of them)."""
    run = result.run
    values = {
        "tool.name": "backup-preflight",
        "tool.version": __version__,
        "source.kind": run["source"]["kind"],
        "snapshot.sha256": run["source"]["sha256"],
        "snapshot.collectedAt": run.get("collectedAt") or "",
        "policySet.sha256": run["policySetSha256"],
        "parameters": msgspec.json.encode(run["parameters"], order="sorted").decode(),
        "scan.startedAt": run["startedAt"],
        "gate.failOn": result.gate.fail_on,
        "gate.strict": str(result.gate.strict).lower(),
        "gate.failOnNew": str(result.gate.fail_on_new).lower(),
        "gate.exitCode": str(result.exit_code),
        "junit.passes": passes,
        "junit.unknowns": unknowns,
    }
    if shard := shard_sentence(result):
        values["shards"] = shard
    names = {sub: d["displayName"] for sub, d in result.subscriptions.items() if d.get("displayName")}
    if names:  # once per suite, not per testcase: the testcase names keep the GUID, which a rename leaves
        values["subscription.names"] = msgspec.json.encode(names, order="sorted").decode()
    for block in ("exemptions", "baseline"):
        if run.get(block):
            values[f"{block}.file"] = run[block]["file"]
            values[f"{block}.sha256"] = run[block]["sha256"]
    return values


def _suite_head(out: IO[str], name: str, counts: dict[str, int], result: ScanResult, props: dict[str, str]) -> None:
    """The suite's element and its properties: the run's, and the policy's title once (not per testcase)."""
    out.write(f"  <testsuite name={quoteattr(name)} tests=\"{counts['tests']}\" failures=\"{counts[FAILURE]}\" "
              f"errors=\"{counts[ERROR_EL]}\" skipped=\"{counts[SKIPPED]}\" time=\"0\" "
              f"timestamp={quoteattr(result.run['startedAt'])}>\n")
    lines = "".join(f"      <property name={quoteattr(k)} value={quoteattr(clean(v, PROPERTY_LIMIT))}/>\n"
                    for k, v in props.items())
    out.write(f"    <properties>\n{lines}    </properties>\n")


def _case(out: IO[str], classname_attr: str, name_attr: str, element: str, message: str, kind: str,
          body: str, system_out: str) -> None:
    text = escape(clean(body, BODY_LIMIT))
    out.write(f'    <testcase classname={classname_attr} name={name_attr} time="0">'
              f"<{element} message={quoteattr(clean(message, MESSAGE_LIMIT))} type={quoteattr(kind)}"
              + (f">{text}</{element}>" if text else "/>") + f"{system_out}</testcase>\n")


def _body(f: Finding, policy: Policy, diagnosis: dict[str, Any] | None = None) -> str:
    """What a CI test view shows under the message: evidence, the VM's last failed backup job, the fix and
    where to read more. The message is the element's `message`, the resource id its `system-out`."""
    lines = []  # the policy: its id is the classname, its title the suite's property policy.title
    if diagnosis is not None:
        job = diagnosis["lastFailedJob"]
        causes = job["causes"]
        points = ("no precondition this tool checks" if not causes else "this policy's cause" if f.cause in causes
                  else f"{', '.join(causes)}, not this policy's cause")
        lines.append(f"Last failed backup job: {clean(job_headline(job), MESSAGE_LIMIT)} (points at {points})")
    note = exemption_note(f)
    if note:
        lines.append(f"Exemption: {note}")
    if "baseline" in f.annotations:
        lines.append(f"Baseline: {f.annotations['baseline']}")
    if f.evidence:
        lines.append("Evidence:")
        lines += [f"  - {clean(e, MESSAGE_LIMIT)}" for e in f.evidence[:EVIDENCE_LINES]]
        if len(f.evidence) > EVIDENCE_LINES:
            lines.append(f"  … {len(f.evidence) - EVIDENCE_LINES} more in results.json")
    lines.append(f"Fix: {policy.remediation}")
    lines += [f"Docs: {r.get('url', '')}" for r in policy.references[:1]]
    return "\n".join(lines)
