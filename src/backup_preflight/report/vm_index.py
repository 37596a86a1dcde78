"""The compact per-VM index report.html renders its VM list from: every VM of the estate, at any size.

Listing 1.7 M findings as HTML would not open; capping them hid failing VMs. Instead every VM is
one short JSON row — name, where it lives, one status letter per cause, and only its findings
that need attention (fail, error, unknown, exempt) or a pass that rests on an assumption (one with
evidence) — and repeated text (messages, evidence, resource-id prefixes, subscriptions with their
display names, sets of tags) is stored once and referred to by number. The page's script pages,
sorts, searches and opens a VM from that. VMs whose only problems are unknowns are also grouped by
reason, because those are fixed per reason (enable metrics), not per VM.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import msgspec

from backup_preflight.findings import (
    ERROR,
    EXEMPT,
    FAIL,
    NOT_APPLICABLE,
    PASS,
    SEVERITY_RANK,
    UNKNOWN,
    Finding,
    walk,
)
from backup_preflight.report.view import NO_FAILURE, attention_order, diagnoses_by_vm, exemption_note, job_headline
from backup_preflight.results import ScanResult
from backup_preflight.text import safe

#: One letter per status; for a cause, the VM shows its worst letter (first in this order).
LETTERS = {FAIL: "f", ERROR: "e", UNKNOWN: "u", EXEMPT: "x", PASS: "p", NOT_APPLICABLE: "-"}
_RANK = {letter: i for i, letter in enumerate("feuxp-")}
#: Evidence lines kept per finding; results.json has them all.
MAX_EVIDENCE = 12
#: Each VM's row is kept as its JSON text, as the page will hold it: with rows of lists and numbers the
#: index held 98 MB instead of 42 at 100,000 VMs, and the 1,000,000-VM scan peaked while building it
#: (docs/performance.md).
_ENCODE = msgspec.json.Encoder(order="sorted").encode


class _Strings:
    """Each distinct text once, made inert (text.safe); rows refer to it by position."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._pos: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        pos = self._pos.get(text)
        if pos is None:
            pos = self._pos[text] = len(self.items)
            self.items.append(safe(text, keep_newlines=True))
        return pos


class _TagSets:
    """Each distinct set of tags once, as [[name, value], …] sorted by name and made inert; -1 is none."""

    def __init__(self) -> None:
        self.items: list[list[list[str]]] = []
        self._pos: dict[tuple[tuple[str, str], ...], int] = {}

    def __call__(self, tags: dict[str, str] | None) -> int:
        if not tags:
            return -1
        key = tuple(sorted(tags.items()))
        pos = self._pos.get(key)
        if pos is None:
            pos = self._pos[key] = len(self.items)
            self.items.append([[safe(k), safe(v)] for k, v in key])
        return pos


class _Vm:
    __slots__ = ("causes", "findings", "id", "name", "rg", "sname", "sub")

    def __init__(self, f: Finding, ncauses: int, sname: str) -> None:
        self.id, self.name, self.sub, self.rg = f.resource_id, f.resource_name, f.subscription_id, f.resource_group
        self.sname = sname
        self.causes = ["-"] * ncauses
        self.findings: list[Finding] = []


def build(result: ScanResult, http_url: Any) -> dict[str, Any]:
    """The index as plain JSON-able data; `http_url` keeps only http(s) links from policy files."""
    causes = sorted({p.cause for p in result.policies})
    policy_pos = {p.id: i for i, p in enumerate(result.policies)}
    ordered = sorted(_vms(result, causes), key=_sort_key)
    text, prefixes = _Strings(), _Strings()
    where: list[list[Any]] = []
    subs, tagsets = _Strings(), _TagSets()
    sub_names: list[str] = []
    sub_tags: list[int] = []
    rows = []
    groups: Counter[tuple[int, int]] = Counter()
    for vm in ordered:
        tags = result.tags.get(vm.id.lower(), {})
        prefix, _, last = vm.id.rpartition("/")
        before = len(prefixes.items)
        p = prefixes(prefix + "/" if prefix else "")
        if p == before:
            known = len(subs.items)
            sub = subs(vm.sub)
            if sub == known:
                sub_names.append(safe(vm.sname))
                sub_tags.append(tagsets(tags.get("subscription")))
            where.append([sub, safe(vm.rg.lower()), tagsets(tags.get("resourceGroup"))])
        vm.findings.sort(key=lambda f: (_RANK[LETTERS[f.status]], SEVERITY_RANK[f.severity], f.policy_id))
        row: list[Any] = [safe(vm.name), p, "".join(vm.causes), [_finding(f, policy_pos, text) for f in vm.findings]]
        if last != vm.name:  # optional tail: the id's last segment (a string), the VM's tag set (a number)
            row.append(safe(last))
        if (own := tagsets(tags.get("vm"))) >= 0:
            row.append(own)
        rows.append(msgspec.Raw(_ENCODE(row)))
        attention = [f for f in vm.findings if f.status != PASS]
        if attention and all(f.status == UNKNOWN for f in attention):
            groups.update({(policy_pos[f.policy_id], text(f.message)) for f in attention})
    return {
        "causes": causes,
        "policies": [{"id": p.id, "title": p.title, "severity": p.severity, "cause": p.cause,
                      "fix": p.remediation,
                      "refs": [[r.get("title") or "docs", u] for r in p.references if (u := http_url(r.get("url")))]}
                     for p in result.policies],
        "subs": subs.items,
        "subNames": sub_names,
        "subTags": sub_tags,
        "tagsets": tagsets.items,
        "prefixes": [[s, *w] for s, w in zip(prefixes.items, where, strict=True)],
        "text": text.items,
        "vms": rows,
        "groups": [[pol, msg, n] for (pol, msg), n in sorted(groups.items(), key=lambda kv: (-kv[1], kv[0]))],
        "jobs": _jobs(result, ordered, policy_pos, http_url),
    }


def _vms(result: ScanResult, causes: list[str]) -> Iterable[_Vm]:
    """Every VM with its worst letter per cause and the findings it lists (those that need attention, and
    passes with evidence); ids that differ only in case are one VM, named by its first finding.

    One loop over every finding: a VM's findings share one id string, so nearly every lookup is of the
    same object. Sorting the passes out in C first (several passes over the findings and a tuple per pass)
    took twice as long (docs/performance.md). A plain pass held as a number (findings.walk) is never made: it
    only sets its cause's letter."""
    cause_pos = {c: i for i, c in enumerate(causes)}
    vms: dict[str, _Vm] = {}
    spelled: dict[str, _Vm] = {}  # by the id as written, so no lower() each

    def vm_of(f: Finding) -> _Vm:
        vm = vms.get(key := f.resource_id.lower())
        if vm is None:
            vm = vms[key] = _Vm(f, len(causes), result.subscription_name(f.subscription_id))
        spelled[f.resource_id] = vm
        return vm

    known: dict[int, list[_Vm | None]] = {}  # by where plain passes are held: each VM number's VM
    passed, pass_rank, slot, numbered = LETTERS[PASS], _RANK[LETTERS[PASS]], 0, []
    for held, number, items in walk(result.findings):
        if held is not None:
            slot, numbered = cause_pos[held.causes[number]], known.setdefault(id(held), [None] * len(held.ids))
        for f in items:
            if isinstance(f, int):  # a plain pass of held's VM number f: only its letter counts
                vm = numbered[f]
                if vm is None:
                    vm = numbered[f] = vm_of(held.made(f, number))
                if pass_rank < _RANK[vm.causes[slot]]:
                    vm.causes[slot] = passed
                continue
            vm = spelled.get(f.resource_id) or vm_of(f)
            letter, at = LETTERS[f.status], cause_pos[f.cause]
            if _RANK[letter] < _RANK[vm.causes[at]]:
                vm.causes[at] = letter
            if f.status in (FAIL, ERROR, UNKNOWN, EXEMPT) or (f.status == PASS and f.evidence):
                vm.findings.append(f)
    return vms.values()


def _sort_key(vm: _Vm) -> tuple[int, int, int, str]:
    """The VM's place in the list (view.attention_order)."""
    failing = [f for f in vm.findings if f.status in (FAIL, ERROR)]
    worst = min((SEVERITY_RANK[f.severity] for f in failing), default=NO_FAILURE)
    return attention_order(worst, len(failing), sum(f.status == UNKNOWN for f in vm.findings), vm.id.lower())


def _finding(f: Finding, policy_pos: dict[str, int], text: Any) -> list[Any]:
    """[policy, status letter, message, [evidence…], extras?]; extras only when annotated."""
    row: list[Any] = [policy_pos[f.policy_id], LETTERS[f.status], text(f.message),
                      [text(e) for e in f.evidence[:MAX_EVIDENCE]]]
    if len(f.evidence) > MAX_EVIDENCE:
        row[3].append(text(f"… {len(f.evidence) - MAX_EVIDENCE} more in results.json"))
    extras: dict[str, Any] = {}
    if note := exemption_note(f):  # an exemption file's text: untrusted like Azure's
        extras["note"] = safe(note, keep_newlines=True)
    if mark := f.annotations.get("baseline"):
        extras["baseline"] = safe(mark)
    if expired := f.annotations.get("expiredExemption"):
        extras["expired"] = safe(f"Exemption {expired['id']} expired on {expired['expiresOn']} – no longer exempt.")
    if extras:
        row.append(extras)
    return row


def _jobs(result: ScanResult, ordered: list[_Vm], policy_pos: dict[str, int], http_url: Any) -> dict[str, Any]:
    """VM row position → its last failed backup job: headline, Microsoft's note and page, Azure's
    recommendations, and each cause it points at with that cause's verdict and policies on this VM."""
    diagnoses = diagnoses_by_vm(result)
    out: dict[str, Any] = {}
    for pos, vm in enumerate(ordered):
        d = diagnoses.get(vm.id.lower())
        if d is None:
            continue
        job = d["lastFailedJob"]
        out[str(pos)] = {"head": safe(job_headline(job), keep_newlines=True),
                         "note": safe(job["note"], keep_newlines=True), "ref": http_url(job.get("reference")),
                         "recs": [safe(r, keep_newlines=True) for r in job.get("recommendations", [])[:MAX_EVIDENCE]],
                         "causes": [[c["cause"], c["status"],
                                     [[policy_pos[p["policyId"]], LETTERS[p["status"]]] for p in c["policies"]]]
                                    for c in d["causes"]]}
    return out
