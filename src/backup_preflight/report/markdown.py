"""summary.md: a short Markdown summary for a PR comment or a GitHub job summary.

Short by construction (top lists are capped, cells truncated) and link-free; every text that
came from Azure or a policy file is escaped so a VM name cannot break the table or inject
Markdown/HTML into the comment, nor, posted on GitHub, mention someone (`@team`), reference an issue
(`#12`, `GH-12`) or become a link (`https://…`, `www.…`): a zero-width space after `@`, `#`, `GH`,
the scheme's `:` and `www` keeps the text as it reads and GitHub from acting on it.
"""

from __future__ import annotations

import re
from pathlib import Path

from backup_preflight.findings import ERROR, EXEMPT, FAIL, SEVERITIES, STATUSES, UNKNOWN
from backup_preflight.report import guest_hint
from backup_preflight.report.view import (
    EXIT_MEANING,
    clean,
    deployment_causes,
    job_headline,
    review_meta,
    review_sentences,
    shard_sentence,
    subscription_label,
    unnamed_note,
    worst_vms,
)
from backup_preflight.results import ScanResult

TOP = 10
CELL_LIMIT = 120
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")
#: Characters that only mean something at the start of a line (headings, lists, quotes).
_LEADING = re.compile(r"^([#+\-=!]|\d+[.)])")
#: What GitHub turns into a notification, a cross-reference or a link in a comment.
_ACTIVE = re.compile(r"(?i)([@#](?=\w)|\bgh(?=-\d)|\b[a-z][a-z0-9+.\-]*:(?=//)|\bwww(?=\.))")


def md(text: object, limit: int = CELL_LIMIT) -> str:
    """Escape Markdown/HTML-significant characters, flatten newlines and cap the length."""
    flat = " ".join(clean(str(text), limit).split())
    escaped = _ACTIVE.sub("\\1\u200b", _SPECIAL.sub(r"\\\1", flat))
    return _LEADING.sub(lambda m: f"{m[0][:-1]}\\{m[0][-1]}", escaped)


def write(result: ScanResult, path: Path) -> None:
    path.write_text(render(result), encoding="utf-8")


def render(result: ScanResult) -> str:
    s, cov, run, gate = result.summary, result.coverage, result.run, result.gate
    verdict = "PASSED" if result.exit_code == 0 else ("FAILED" if result.exit_code == 1 else "INCOMPLETE")
    gate_text = f"fail on {gate.fail_on}" + (", strict" if gate.strict else "") + (
        ", new failures only" if gate.fail_on_new else "")
    lines = [
        f"## backup-preflight: {verdict} (exit {result.exit_code}: {EXIT_MEANING.get(result.exit_code, '')})",
        "",
        f"{cov['vms']} VMs × {cov['policies']} policies · source {md(run['source']['kind'])} "
        f"`{run['source']['sha256'][:12]}` · policy set `{run['policySetSha256'][:12]}` · "
        f"collected {md(run.get('collectedAt') or 'unknown')} · gate: {gate_text} → "
        f"**{s['gateFailures']} gate failures**",
        "",
    ]
    lines += [md(shard, 2000), ""] if (shard := shard_sentence(result)) else []
    lines += _deployment_lines(result)
    if cov["errors"]:
        lines += [f"### ⚠ Not collected ({len(cov['errors'])} scope errors)", "",
                  "Findings that depend on these are unknown.", ""]
        lines += [f"- {md(e.get('scope', '?'))} \\[{md(e.get('table', '?'))}\\]: {md(e.get('message', ''))}"
                  for e in cov["errors"][:TOP]]
        lines += [f"- … and {len(cov['errors']) - TOP} more (see results.json)"] if len(cov["errors"]) > TOP else []
        lines.append("")
    if cov.get("nothingAssessed"):
        lines += ["### ⚠ Nothing assessed", "", md(cov["nothingAssessed"]), ""]
    unnamed = unnamed_note(result)
    lines += [unnamed, ""] if unnamed else []
    lines += ["| severity | " + " | ".join(STATUSES) + " |", "|---|" + "---:|" * len(STATUSES)]
    lines += [f"| {sev} | " + " | ".join(str(s["bySeverity"][sev][st]) for st in STATUSES) + " |"
              for sev in SEVERITIES]
    lines += ["| **total** | " + " | ".join(f"**{s['byStatus'][st]}**" for st in STATUSES) + " |", ""]
    lines += _review_lines(result)
    hint, odd = guest_hint.sentence(result), guest_hint.disagreement_sentence(result)
    lines += [hint, ""] if hint else []  # our own words and policy ids only
    lines += [md(odd, limit=2000), ""] if odd else []  # names VMs: Azure text, escaped
    lines += _failing_policies(result)
    lines += _worst_vms(result)
    lines += _job_lines(result)
    lines.append("Full details: report.html, results.json, junit.xml.")
    return "\n".join(lines) + "\n"


def _deployment_lines(result: ScanResult) -> list[str]:
    """With --what-if, lead with what the deployment introduces and which planned change causes it."""
    plan = result.run.get("whatIf")
    if not plan:
        return []
    fixed = len(review_meta(result)["baseline"].get("fixed", []))
    lines = [f"### This deployment introduces {plan['newFindings']} new findings and resolves {fixed}", ""]
    causes = deployment_causes(result)
    lines += [f"- {md(sentence, 400)}" for sentence, _ in causes[:TOP]]
    if len(causes) > TOP:
        lines.append(f"- … and {len(causes) - TOP} more explanations (see report.html)")
    lines += [f"- note: {md(n.get('scope', ''))}: {md(n.get('message', ''), 200)}" for n in plan["notes"][:TOP]]
    return [*lines, ""]


def _review_lines(result: ScanResult) -> list[str]:
    lines = [f"{sentence}." for sentence in review_sentences(result, md, lambda s: f"**{s}**", TOP)]
    return [*lines, ""] if lines else []


def _failing_policies(result: ScanResult) -> list[str]:
    failing = list(result.summary["failingPolicies"].items())
    if not failing:
        return []
    titles = {p.id: p for p in result.policies}
    lines = ["### Failing policies", "", "| policy | severity | cause | failing VMs | title |",
             "|---|---|---|---:|---|"]
    lines += [f"| {md(pid)} | {titles[pid].severity} | {md(titles[pid].cause)} | {count} | {md(titles[pid].title)} |"
              for pid, count in failing[:TOP]]
    if len(failing) > TOP:
        lines.append(f"\n… and {len(failing) - TOP} more policies (see report.html).")
    return [*lines, ""]


def _worst_vms(result: ScanResult) -> list[str]:
    failing, vms = worst_vms(result, TOP)
    if not vms:
        return []
    lines = [f"### Worst VMs ({failing} with failures)", "",
             "| VM | resource group | subscription | failing | unknown | exempt | failing policies |",
             "|---|---|---|---:|---:|---:|---|"]
    for vm in vms:
        policies = ", ".join(f.policy_id for f in vm.findings if f.status in (FAIL, ERROR))
        where = md(subscription_label(vm.subscription_id, vm.subscription_name))
        lines.append(f"| {md(vm.name)} | {md(vm.resource_group)} | {where} | {vm.counts[FAIL] + vm.counts[ERROR]} | "
                     f"{vm.counts[UNKNOWN]} | {vm.counts[EXEMPT]} | {md(policies, 200)} |")
    if failing > len(vms):
        lines.append(f"\n… and {failing - len(vms)} more VMs (see report.html).")
    return [*lines, ""]


def _job_lines(result: ScanResult) -> list[str]:
    """Each VM's last failed backup job and how the causes its error points at fare on that VM."""
    if not result.diagnoses:
        return []
    lines = [f"### Last failed backup jobs ({len(result.diagnoses)} VMs)", "",
             "| VM | resource group | last failed job | points at (verdict on this VM) |", "|---|---|---|---|"]
    for d in result.diagnoses[:TOP]:
        causes = "; ".join(f"{c['cause']}: {c['status']}" for c in d["causes"]) or "no precondition this tool checks"
        job = md(job_headline(d["lastFailedJob"]), 200)
        lines.append(f"| {md(d['resourceName'])} | {md(d['resourceGroup'])} | {job} | {md(causes, 300)} |")
    if len(result.diagnoses) > TOP:
        lines.append(f"\n… and {len(result.diagnoses) - TOP} more VMs (see results.json jobDiagnosis).")
    return [*lines, ""]
