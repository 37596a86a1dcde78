"""junit.xml: one testsuite per policy, one testcase per (policy, VM), streamed (see DESIGN.md).

Testcase identity is (classname = policy id, name = full resource id): unique and stable between
runs, never containing the message, so CI trend views (GitLab, Jenkins, Azure DevOps) track it.
Statuses map as: fail → <failure>, error → <error>, unknown → <skipped> (<failure> with
--strict), exempt → <skipped> with the exemption, and with --fail-on-new a finding the baseline
already had → <skipped message="accepted in baseline: …">. Not-applicable findings are not tests.
Every text is stripped of XML-illegal characters and capped, so the file always parses.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO
from xml.sax.saxutils import escape, quoteattr

import orjson

from backup_preflight import __version__
from backup_preflight.findings import ERROR, EXEMPT, FAIL, NOT_APPLICABLE, PASS, Finding
from backup_preflight.policy.loader import Policy
from backup_preflight.report.view import accepted_in_baseline, clean, exemption_note
from backup_preflight.results import ScanResult

MESSAGE_LIMIT = 1000
BODY_LIMIT = 32_000
EVIDENCE_LINES = 50
SUITE_PREFIX = "backup-preflight"

FAILURE, ERROR_EL, SKIPPED = "failure", "error", "skipped"


def write(result: ScanResult, path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as out:
        _stream(result, out)


def outcome(finding: Finding, result: ScanResult) -> tuple[str, str] | None:
    """(element, message) for a testcase, or None for a passing one."""
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
        return FAILURE, f"not assessed (fails under --strict): {finding.message}"
    return SKIPPED, finding.message


def _stream(result: ScanResult, out: IO[str]) -> None:
    policies = {p.id: p for p in result.policies}
    cases: dict[str, list[Finding]] = {p.id: [] for p in result.policies}
    tally: dict[str, dict[str, int]] = {p.id: {"tests": 0, FAILURE: 0, ERROR_EL: 0, SKIPPED: 0}
                                        for p in result.policies}
    for f in result.findings:
        if f.status == NOT_APPLICABLE:
            continue
        cases[f.policy_id].append(f)
        got = outcome(f, result)
        counts = tally[f.policy_id]
        counts["tests"] += 1
        if got is not None:
            counts[got[0]] += 1
    problems = _run_problems(result)
    total = {k: sum(c[k] for c in tally.values()) + (len(problems) if k in ("tests", ERROR_EL) else 0)
             for k in ("tests", FAILURE, ERROR_EL)}
    props = _properties(result)
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(f'<testsuites name="{SUITE_PREFIX}" tests="{total["tests"]}" failures="{total[FAILURE]}" '
              f'errors="{total[ERROR_EL]}">\n')
    if problems:
        classname = f"{SUITE_PREFIX}.coverage"
        _suite_head(out, classname, {"tests": len(problems), FAILURE: 0, ERROR_EL: len(problems), SKIPPED: 0},
                    result, props)
        for name, message in problems:
            _case(out, classname, quoteattr(clean(name, MESSAGE_LIMIT)), ERROR_EL, message, message)
        out.write("  </testsuite>\n")
    names: dict[str, str] = {}  # resource id → escaped attribute, built once per VM
    for pid, policy_cases in cases.items():
        _suite_head(out, pid, tally[pid], result, props)
        classname = quoteattr(pid)
        for f in policy_cases:
            got = outcome(f, result)  # recomputed rather than kept: 1.6M tuples are not free
            name = names.get(f.resource_id)
            if name is None:
                name = names[f.resource_id] = quoteattr(clean(f.resource_id, 2000))
            if got is None:
                out.write(f"    <testcase classname={classname} name={name}/>\n")
            else:
                _case(out, pid, name, got[0], got[1], _body(f, policies[pid]))
        out.write("  </testsuite>\n")
    out.write("</testsuites>\n")


def _run_problems(result: ScanResult) -> list[tuple[str, str]]:
    """Testcases that say why a run is incomplete: scope not collected, or nothing evaluated."""
    cov = result.coverage
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for e in cov["errors"]:
        name = f"{e.get('scope', '?')} [{e.get('table', '?')}]"
        while name in seen:
            name += "'"
        seen.add(name)
        problems.append((name, f"not collected: {e.get('message', '')} - findings that depend on it are unknown"))
    if cov["vms"] == 0 or cov["policies"] == 0:
        problems.append(("nothing evaluated", f"nothing was evaluated: {cov['vms']} VMs, {cov['policies']} "
                                              "policies in scope; an empty scan is never green"))
    if cov.get("nothingAssessed"):
        problems.append(("nothing assessed", cov["nothingAssessed"]))
    return problems


def _properties(result: ScanResult) -> str:
    run = result.run
    values = {
        "tool.name": "backup-preflight",
        "tool.version": __version__,
        "source.kind": run["source"]["kind"],
        "snapshot.sha256": run["source"]["sha256"],
        "snapshot.collectedAt": run.get("collectedAt") or "",
        "policySet.sha256": run["policySetSha256"],
        "parameters": orjson.dumps(run["parameters"], option=orjson.OPT_SORT_KEYS).decode(),
        "scan.startedAt": run["startedAt"],
        "gate.failOn": result.gate.fail_on,
        "gate.strict": str(result.gate.strict).lower(),
        "gate.failOnNew": str(result.gate.fail_on_new).lower(),
        "gate.exitCode": str(result.exit_code),
    }
    for block in ("exemptions", "baseline"):
        if run.get(block):
            values[f"{block}.file"] = run[block]["file"]
            values[f"{block}.sha256"] = run[block]["sha256"]
    lines = "".join(f"      <property name={quoteattr(k)} value={quoteattr(clean(v, 4000))}/>\n"
                    for k, v in values.items())
    return f"    <properties>\n{lines}    </properties>\n"


def _suite_head(out: IO[str], name: str, counts: dict[str, int], result: ScanResult, props: str) -> None:
    out.write(f"  <testsuite name={quoteattr(name)} tests=\"{counts['tests']}\" failures=\"{counts[FAILURE]}\" "
              f"errors=\"{counts[ERROR_EL]}\" skipped=\"{counts[SKIPPED]}\" "
              f"timestamp={quoteattr(result.run['startedAt'])}>\n")
    out.write(props)


def _case(out: IO[str], classname: str, name_attr: str, element: str, message: str, body: str) -> None:
    out.write(f"    <testcase classname={quoteattr(classname)} name={name_attr}>\n"
              f"      <{element} message={quoteattr(clean(message, MESSAGE_LIMIT))} type={quoteattr(element)}>"
              f"{escape(clean(body, BODY_LIMIT))}</{element}>\n"
              f"    </testcase>\n")


def _body(f: Finding, policy: Policy) -> str:
    """The text a CI test view shows: what is wrong, the evidence, how to fix it and where to read more."""
    lines = [f"{policy.id} ({f.severity}, {f.cause}): {policy.title}", f"Resource: {f.resource_id}",
             f"Status: {f.status}"]
    note = exemption_note(f)
    if note:
        lines.append(f"Exemption: {note}")
    if "baseline" in f.annotations:
        lines.append(f"Baseline: {f.annotations['baseline']}")
    if f.message:
        lines.append(f"Message: {clean(f.message, 4 * MESSAGE_LIMIT)}")
    if f.evidence:
        lines.append("Evidence:")
        lines += [f"  - {clean(e, MESSAGE_LIMIT)}" for e in f.evidence[:EVIDENCE_LINES]]
        if len(f.evidence) > EVIDENCE_LINES:
            lines.append(f"  … {len(f.evidence) - EVIDENCE_LINES} more in results.json")
    lines.append(f"Remediation: {policy.remediation}")
    if policy.references:
        lines.append("Docs:")
        lines += [f"  - {r.get('title', '')}: {r.get('url', '')}" for r in policy.references]
    return "\n".join(lines)
