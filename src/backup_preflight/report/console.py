"""The console summary: counts per status and severity, failing policies, coverage problems."""

from __future__ import annotations

from typing import TextIO

from tabulate import tabulate

from backup_preflight.findings import SEVERITIES, STATUSES
from backup_preflight.report import guest_hint
from backup_preflight.report.view import deployment_causes, review_sentences, shard_sentence
from backup_preflight.results import ScanResult

#: Planned changes (and notes on the plan) the console names; the rest are counted, as summary.md counts its.
CAUSES_SHOWN = 5
_EXIT_MEANING = {0: "passed", 1: "failing findings at or above the gate",
                 3: "incomplete: some scope was not collected, or nothing was evaluated or assessed"}


def _review(result: ScanResult) -> str:
    """The planned deployment, baseline and exemptions, when the scan used them."""
    lines = []
    plan = result.run.get("whatIf")
    if plan:
        causes = deployment_causes(result)
        lines.append(f"This deployment introduces {plan['newFindings']} new findings:")
        lines += [f"  - {sentence}" for sentence, _ in causes[:CAUSES_SHOWN]]
        if len(causes) > CAUSES_SHOWN:
            lines.append(f"  - … and {len(causes) - CAUSES_SHOWN} more (see report.html)")
        lines += [f"  - note: {n.get('scope', '')}: {n.get('message', '')}" for n in plan["notes"][:CAUSES_SHOWN]]
    lines += review_sentences(result)
    return "".join(f"\n{line}" for line in lines) + ("\n" if lines else "")


def render(result: ScanResult, out: TextIO, max_policies: int = 20) -> None:
    s = result.summary
    rows = [[sev, *(s["bySeverity"][sev][st] for st in STATUSES)] for sev in SEVERITIES]
    rows.append(["total", *(s["byStatus"][st] for st in STATUSES)])
    src = result.run["source"]
    out.write(f"backup-preflight: {result.coverage['vms']} VMs, {result.coverage['policies']} policies, "
              f"source {src['kind']} sha256 {src['sha256'][:12]}\n\n")
    if shard := shard_sentence(result):
        out.write(f"{shard}\n\n")
    out.write(tabulate(rows, headers=["severity", *STATUSES], tablefmt="github") + "\n")
    titles = {p.id: (p.severity, p.title) for p in result.policies}
    failing = list(s["failingPolicies"].items())
    if failing:
        table = [[pid, titles[pid][0], count, titles[pid][1]] for pid, count in failing[:max_policies]]
        out.write("\nFailing policies:\n")
        out.write(tabulate(table, headers=["policy", "severity", "failing VMs", "title"],
                           tablefmt="github") + "\n")
        if len(failing) > max_policies:
            out.write(f"... and {len(failing) - max_policies} more (see results.json)\n")
    out.write(_review(result))
    for hint in (guest_hint.sentence(result, code=""), guest_hint.disagreement_sentence(result)):
        if hint:
            out.write(f"\n{hint}\n")
    errors = result.coverage["errors"]
    if errors:
        out.write(f"\nNOT COLLECTED ({len(errors)} scope errors): findings that depend on them are unknown\n")
        for e in errors[:10]:
            out.write(f"  - {e.get('scope', '?')} [{e.get('table', '?')}]: {e.get('message', '')}\n")
    if result.coverage.get("nothingAssessed"):
        out.write(f"\n{result.coverage['nothingAssessed']}\n")
    gate = result.gate
    out.write(f"\nGate: fail on {gate.fail_on}{' (strict: unknown fails)' if gate.strict else ''}; "
              f"{s['gateFailures']} gate failures; exit {result.exit_code} "
              f"({_EXIT_MEANING.get(result.exit_code, '')})\n")
