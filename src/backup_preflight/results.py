"""A finished scan: run metadata, policies, findings, coverage, summary and the exit code.

Every report renders this one object; none of them recomputes a verdict or a count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from backup_preflight.findings import (
    ERROR,
    EXEMPT,
    FAIL,
    NOT_APPLICABLE,
    PASS,
    SEVERITIES,
    SEVERITY_RANK,
    STATUSES,
    UNKNOWN,
    Finding,
    annotated,
    count_by,
    with_status,
    without_status,
)
from backup_preflight.policy.loader import Policy

EXIT_OK, EXIT_FAILING, EXIT_INPUT, EXIT_INCOMPLETE, EXIT_INTERNAL = 0, 1, 2, 3, 4
RESULTS_SCHEMA_VERSION = 2


@dataclass(slots=True)
class Gate:
    """How findings turn into an exit code: `--fail-on`, `--strict`, `--fail-on-new`."""

    fail_on: str = "high"
    strict: bool = False
    #: With a baseline: findings it already had with the same verdict do not break the gate.
    fail_on_new: bool = False

    def is_failing(self, finding: Finding) -> bool:
        """Does this finding break the gate? (Exempt ones never do; accepted ones not with --fail-on-new.)"""
        if self.fail_on == "never" or finding.status == EXEMPT:
            return False
        if self.fail_on_new and finding.annotations.get("baseline") == "unchanged":
            return False
        bad = finding.status in (FAIL, ERROR) or (self.strict and finding.status == UNKNOWN)
        return bad and SEVERITY_RANK[finding.severity] <= SEVERITY_RANK[self.fail_on]

    def count_failing(self, findings: Sequence[Finding]) -> int:
        """How many findings break the gate; passes and not-applicable ones never do, so only the
        others are asked (at 100,000 VMs, 70 % of 1.7 M findings are passes)."""
        return sum(map(self.is_failing, without_status(findings, _NEVER_FAILING)))


_NEVER_FAILING = frozenset((PASS, NOT_APPLICABLE))


@dataclass(slots=True)
class ScanResult:
    """Everything reports render; `run` also carries the review metadata (exemptions, baseline)."""

    run: dict[str, Any]
    policies: list[Policy]
    findings: Sequence[Finding]
    coverage: dict[str, Any]
    gate: Gate
    summary: dict[str, Any]
    exit_code: int
    #: Each VM's last failed backup job beside the verdicts of its causes (review/jobs.py).
    diagnoses: list[dict[str, Any]] = field(default_factory=list)
    #: By lowercase VM id: tags of the VM, its resource group and subscription (Estate.tags), for the reports.
    tags: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    #: By lowercase subscription id: displayName, state and tags when resourcecontainers had its row.
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def subscription_name(self, subscription_id: str) -> str:
        """The subscription's display name, or "" when unknown."""
        return str(self.subscriptions.get(subscription_id.lower(), {}).get("displayName", ""))


def summarize(findings: Sequence[Finding], gate: Gate) -> dict[str, Any]:
    """Counts by status, by severity and status, by cause and status, and per failing policy.

    One counting pass over (severity, status, cause) in C; only the findings that can matter for
    the rest (failures, annotated ones, those that can break the gate) are visited again. At
    100,000 VMs (1.7 M findings) this takes 0.4 s instead of 1.9 s for the one loop it replaces.
    """
    triples = count_by(findings, ("severity", "status", "cause"))
    by_status: Counter[str] = Counter()
    by_severity: dict[str, Counter[str]] = {s: Counter() for s in SEVERITIES}
    by_cause: dict[str, Counter[str]] = {}
    for (severity, status, cause), n in triples.items():
        by_status[status] += n
        by_severity[severity][status] += n
        by_cause.setdefault(cause, Counter())[status] += n
    failures = list(with_status(findings, (FAIL,)))
    failing_policies = Counter(f.policy_id for f in failures)
    exempt_by_category: Counter[str] = Counter()
    baseline_marks: Counter[str] = Counter()
    for status, notes in ((f.status, f.notes) for f in annotated(findings)):
        if status == EXEMPT:
            exempt_by_category[notes["exemption"]["category"]] += 1
        if "expiredExemption" in notes:
            exempt_by_category["expired"] += 1
        if "baseline" in notes:
            baseline_marks[notes["baseline"]] += 1
    return {
        "total": len(findings),
        "byStatus": {s: by_status.get(s, 0) for s in STATUSES},
        "bySeverity": {sev: {s: c.get(s, 0) for s in STATUSES} for sev, c in by_severity.items()},
        "byCause": {cause: {s: c.get(s, 0) for s in STATUSES} for cause, c in sorted(by_cause.items())},
        "failingPolicies": dict(sorted(failing_policies.items(), key=lambda kv: (-kv[1], kv[0]))),
        "vmsWithFailures": len({f.resource_id for f in failures}),
        "gateFailures": gate.count_failing(findings),
        #: Exempt findings by category, plus findings whose exemption has expired.
        "exempt": {k: exempt_by_category.get(k, 0) for k in ("waiver", "mitigated", "expired")},
        #: Failing, unknown and error findings by baseline mark (zero without --baseline).
        "baseline": {k: baseline_marks.get(k, 0) for k in ("new", "unchanged")},
    }


#: How many of the most often missing facts the "nothing assessed" line names.
MISSING_NAMED = 3


def nothing_assessed(findings: Sequence[Finding]) -> str | None:
    """One line when findings exist but none is a pass or a fail (exempt ones by their verdict), else None.

    A scan where every VM is unknown or not applicable has judged nothing; calling it green would
    pass a gate on data that was never there. The line names the facts most often missing.
    """
    if not findings or any(_decided(f) for f in findings):
        return None
    reasons = Counter(e for f in findings if f.status != PASS for e in f.evidence)
    missing = Counter({e: n for e, n in reasons.items() if e.endswith("not collected")}) or reasons
    named = sorted(missing.items(), key=lambda kv: (-kv[1], kv[0]))[:MISSING_NAMED]
    most = "; ".join(f"{e} ({n} finding{'s' * (n > 1)})" for e, n in named) or "no finding says which fact"
    return (f"Nothing assessed: none of the {len(findings)} findings is a pass or a fail (all unknown, "
            f"error or not applicable); most often missing: {most}")


def _decided(finding: Finding) -> bool:
    status = finding.annotations.get("verdict", finding.status) if finding.status == EXEMPT else finding.status
    return status in (PASS, FAIL)


def exit_code(summary: dict[str, Any], coverage: dict[str, Any]) -> int:
    """3 when incomplete or nothing was evaluated or assessed (fail closed), else 1 on gate failures, else 0."""
    if coverage["errors"] or coverage["vms"] == 0 or coverage["policies"] == 0 or coverage.get("nothingAssessed"):
        return EXIT_INCOMPLETE
    return EXIT_FAILING if summary["gateFailures"] else EXIT_OK
