"""What several reports say the same way: text hygiene, exemption and baseline wording, VM grouping.

Everything here reads a ScanResult; nothing recomputes a verdict.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backup_preflight.findings import (
    ERROR,
    EXEMPT,
    FAIL,
    SEVERITY_RANK,
    UNKNOWN,
    Finding,
    annotated,
    count_by,
    with_status,
)
from backup_preflight.results import ScanResult
from backup_preflight.text import safe

#: Statuses a reader has to look at; passes and not-applicable ones are only counted.
ATTENTION = (FAIL, ERROR, UNKNOWN, EXEMPT)

EXIT_MEANING = {0: "passed", 1: "failing findings at or above the gate", 2: "usage or input error",
                3: "incomplete: some scope was not collected, or nothing was evaluated or assessed"}

def clean(text: str, limit: int) -> str:
    """Untrusted text made safe (text.safe: secrets redacted; controls, ANSI, bidi overrides and CI
    commands shown as escapes, which also leaves nothing an XML consumer rejects) and capped,
    saying how much was cut."""
    text = safe(text, keep_newlines=True)
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text) - limit} more characters in results.json)"
    return text


def subscription_label(subscription_id: str, name: str) -> str:
    """'Display Name (GUID)' when the display name is known, else the GUID alone."""
    return f"{name} ({subscription_id})" if name else subscription_id


def unnamed_note(result: ScanResult) -> str:
    """One sentence when some subscriptions have no known display name, else ''."""
    unnamed = result.coverage.get("subscriptionsWithoutName") or []
    if not unnamed:
        return ""
    why = ("resourcecontainers was not collected" if "resourcecontainers" in result.coverage.get("notCollected", [])
           else "resourcecontainers has no row for them")
    return (f"Display name unknown for {len(unnamed)} subscription{'' if len(unnamed) == 1 else 's'} ({why}); "
            "their GUID is shown.")


def exemption_note(finding: Finding) -> str:
    """'exempt (waiver EX-1, owner …, ticket …, expires …): justification' — or '' when not exempt."""
    ex = finding.annotations.get("exemption")
    if finding.status != EXEMPT or not ex:
        return ""
    details = [f"{ex['category']} {ex['id']}", f"owner {ex['owner']}"]
    details += [f"ticket {ex['ticket']}"] if ex.get("ticket") else []
    details += [f"expires {ex['expiresOn']}"] if ex.get("expiresOn") else []
    return f"exempt ({', '.join(details)}; verdict {finding.annotations.get('verdict')}): {ex['justification']}"


def accepted_in_baseline(finding: Finding, result: ScanResult) -> bool:
    """Does --fail-on-new let this finding through because the baseline already had it?"""
    return result.gate.fail_on_new and finding.annotations.get("baseline") == "unchanged"


@dataclass(slots=True)
class VmView:
    """One VM's findings that need attention, for the per-VM sections and the worst-VM tables."""

    resource_id: str
    name: str
    subscription_id: str
    resource_group: str
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ATTENTION, 0))
    subscription_name: str = ""


#: A VM's severity rank when it has no failure: after every failing one.
NO_FAILURE = 9


def attention_order(worst: int, failures: int, unknowns: int, key: str) -> tuple[int, int, int, str]:
    """Where a VM comes wherever VMs are listed (summary.md, report.html): most severe failure first (its
    SEVERITY_RANK, NO_FAILURE without one), then most failures, then most unknowns; its lowercase id breaks ties."""
    return (worst, -failures, -unknowns, key)


def worst_vms(result: ScanResult, limit: int) -> tuple[int, list[VmView]]:
    """The `limit` VMs with a failure (fail or error) that come first (`attention_order`), each with its
    findings that need attention, and how many VMs have a failure.

    Only the VMs with a failure are counted, and only the ones shown get a view: a view of every VM
    needing attention, sorted, took 11 s at 1,000,000 VMs (nearly all have an unknown finding).
    """
    ranks: dict[str, list[Any]] = {}  # lowercase id -> [most severe failure's rank, failures, unknowns]
    for f in with_status(result.findings, (FAIL, ERROR)):
        rank = ranks.setdefault(f.resource_id.lower(), [NO_FAILURE, 0, 0])
        rank[0] = min(rank[0], SEVERITY_RANK[f.severity])
        rank[1] += 1
    for f in with_status(result.findings, (UNKNOWN,)):
        if (rank := ranks.get(f.resource_id.lower())) is not None:
            rank[2] += 1
    first = heapq.nsmallest(limit, ranks.items(), key=lambda kv: attention_order(*kv[1], kv[0]))
    shown = {key for key, _ in first}
    vms: dict[str, VmView] = {}
    for f in with_status(result.findings, ATTENTION):
        key = f.resource_id.lower()
        if key not in shown:
            continue
        vm = vms.get(key)
        if vm is None:  # named as its first finding that needs attention names it
            vm = vms[key] = VmView(f.resource_id, f.resource_name, f.subscription_id, f.resource_group,
                                   subscription_name=result.subscription_name(f.subscription_id))
        vm.findings.append(f)
        vm.counts[f.status] += 1
    ordered = [vms[key] for key, _ in first]  # every VM ranked has a failure, so a view
    for vm in ordered:
        vm.findings.sort(key=lambda f: (_STATUS_ORDER[f.status], SEVERITY_RANK[f.severity], f.policy_id))
    return len(ranks), ordered


_STATUS_ORDER = {FAIL: 0, ERROR: 1, UNKNOWN: 2, EXEMPT: 3}


def policy_counts(result: ScanResult) -> dict[str, dict[str, int]]:
    """Per policy id: count of findings by status."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (policy_id, status), n in count_by(result.findings, ("policy_id", "status")).items():
        counts[policy_id][status] = n
    return counts


def deployment_causes(result: ScanResult) -> list[tuple[str, int]]:
    """With --what-if: each planned change blamed for new findings, with how many findings it explains."""
    counts: Counter[str] = Counter()
    for notes in (f.notes for f in annotated(result.findings)):  # only annotated findings can carry one
        counts.update(notes.get("plannedChanges", ()))
    return counts.most_common()


def review_sentences(result: ScanResult, esc: Callable[[str], str] = str, strong: Callable[[str], str] = str,
                     limit: int = 10) -> list[str]:
    """One sentence each for the baseline and the exemptions a scan used; `esc` escapes file names and ids,
    `strong` marks what needs attention (expired exemptions)."""
    s, meta, out = result.summary, review_meta(result), []
    if meta["baseline"]:
        b = s["baseline"]
        out.append(f"Baseline ({esc(meta['baseline']['file'])}): {b['new']} new, {b['unchanged']} unchanged, "
                   f"{len(meta['baseline']['fixed'])} fixed")
    if meta["exemptions"]:
        ex = s["exempt"]
        line = f"Exemptions ({esc(meta['exemptions']['file'])}): {ex['waiver']} waived, {ex['mitigated']} mitigated"
        expired = [e for e in meta["exemptions"]["entries"] if e["expired"]]
        if expired:
            line += (f"; {strong(f'{len(expired)} expired')} ({', '.join(esc(e['id']) for e in expired[:limit])}), "
                     f"{ex['expired']} findings count again")
        out.append(line)
        warned = [f"{esc(e['id'])} {esc(w)}" for e in meta["exemptions"]["entries"] for w in e.get("warnings", ())]
        if warned:
            out.append(f"{strong('Exemption warnings')}: {'; '.join(warned[:limit])}"
                       + (f" (and {len(warned) - limit} more)" if len(warned) > limit else ""))
    return out


def review_meta(result: ScanResult) -> dict[str, Any]:
    """The exemptions and baseline blocks of the run, empty dicts when not used."""
    return {"exemptions": result.run.get("exemptions") or {}, "baseline": result.run.get("baseline") or {}}


def shard_sentence(result: ScanResult) -> str:
    """What part of a split estate this is: one shard (`scan --shard-name`) or the merge of several; '' when whole."""
    if shard := result.run.get("shard"):
        return f"Partial run: shard {shard['name']}, one part of a split estate (backup-preflight merge joins them)"
    if shards := result.run.get("shards"):
        return f"Merged from {len(shards)} shards: {', '.join(s['name'] for s in shards)}"
    return ""


def job_headline(job: dict[str, Any]) -> str:
    """'2026-11-24T02:17:00Z Backup: ExtensionSnapshotFailedNoNetwork – Snapshot operation failed …'."""
    code = job.get("errorCode") or "no error code in the job row"
    if job.get("documentedCode") and job["documentedCode"] != job.get("errorCode"):
        code += f" ({job['documentedCode']})"
    text = f"{job.get('time', 'time unknown')} {job.get('operation', 'Backup')}: {code}"
    return f"{text} – {job['message']}" if job.get("message") else text


def diagnoses_by_vm(result: ScanResult) -> dict[str, dict[str, Any]]:
    """The job diagnosis of each VM that has one, by lowercase resource id."""
    return {d["resourceId"].lower(): d for d in result.diagnoses}


def run_problems(result: ScanResult) -> list[tuple[str, str]]:
    """(name, message) of each reason the run is incomplete: a scope not collected, nothing evaluated or nothing
    assessed; junit.xml makes each an error testcase, findings.csv a row."""
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
