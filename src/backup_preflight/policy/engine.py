"""Evaluate every policy on every VM: one finding per (policy, VM).

Verdicts are three-valued; an unknown applicability or assertion gives an `unknown` finding
that says which fact was missing. A policy that raises on one VM gives that one finding the
status `error`, and the scan goes on.
"""

from __future__ import annotations

from array import array
from collections.abc import Collection
from contextlib import suppress
from itertools import chain, compress, repeat
from operator import not_
from typing import Any, NamedTuple

from backup_preflight.estate.index import segment_after
from backup_preflight.findings import ERROR, FAIL, PASS, UNKNOWN, Finding
from backup_preflight.plain_passes import PLAIN, PartFindings
from backup_preflight.policy.conditions import REASONS_FIELD, unknown_reason
from backup_preflight.policy.grouped import evaluate_grouped
from backup_preflight.policy.loader import Policy, PolicySet
from backup_preflight.policy.paths import FieldPath
from backup_preflight.policy.verdict import (
    EVIDENCE,
    FROZEN,
    Facts,
    frozen_value,
    interned,
    judge_one,
    make_finding,
    policy_reads,
)
from backup_preflight.snapshot import query_key


def evaluate(policies: PolicySet, vms: list[Facts], queries: dict[str, dict[str, Any]] | None = None) -> list[Finding]:
    """All findings, ordered by policy id and then resource id (stable between runs).

    `queries` holds the rows of custom Resource Graph queries by query key (snapshot.queries);
    a resourceGraphQuery policy judges those rows instead of the VMs.
    """
    return list(evaluate_held(policies, vms, queries))


def evaluate_held(policies: PolicySet, vms: list[Facts], queries: dict[str, dict[str, Any]] | None = None,
                  keep: Collection[str] = ()) -> PartFindings:
    """`evaluate`'s findings with their plain passes held as numbers (plain_passes.py): seven in ten findings
    are passes with nothing to say, and a VM that shares its facts with one judged before gets its plain passes
    without a Python step or an object each (docs/performance.md). The targets whose lowercase id is in `keep`
    get every finding as an object, for what changes findings after judging (policy/observed.py)."""
    try:
        return _evaluate(policies, vms, queries, keep)
    finally:
        EVIDENCE.clear()


def _evaluate(policies: PolicySet, vms: list[Facts], queries: dict[str, dict[str, Any]] | None,
              keep: Collection[str]) -> PartFindings:
    # Every target by its number: the VMs (when a policy judges them), then each query policy's rows.
    table = list(vms) if any(p.query is None for p in policies.policies) else []
    on_vms, every_vm = _Columns(vms), array("I", range(len(vms)))  # the VMs' facts as read once for every policy
    kept_vms = _positions(vms, keep)
    numbers, policy_numbers, plain, kept = array("I"), array("I"), bytearray(), []
    for number, policy in enumerate(policies.policies):
        if policy.query is None:
            targets, numbered = vms, every_vm
            marks, found = _judged(policy, targets, on_vms, kept_vms)
        else:
            key = query_key(policy.query)
            stored = (queries or {}).get(key)
            if stored is None:
                target, finding = _query_not_collected(policy, key)
                targets, marks, found = [target], b"\0", [finding]
            else:
                targets = query_targets(key, stored.get("rows") or [])
                marks, found = _judged(policy, targets, _Columns(targets), _positions(targets, keep))
            numbered = array("I", range(len(table), len(table) + len(targets)))
            table.extend(targets)
        numbers += numbered
        policy_numbers += array("I", repeat(number, len(targets)))
        plain += marks
        kept += found
    return PartFindings(tuple(tuple(t[field] for t in table) for field in _VM_FIELDS),
                        tuple(tuple(getattr(p, field) for p in policies.policies) for field in _POLICY_FIELDS),
                        numbers, policy_numbers, bytes(plain), kept)


def _positions(targets: list[Facts], ids: Collection[str]) -> set[int]:
    """Where the targets whose lowercase id is among `ids` are."""
    return {i for i, target in enumerate(targets) if target["id"].lower() in ids} if ids else set()


#: What a finding holds of its target and of its policy, in the order PartFindings holds them.
_VM_FIELDS = ("id", "name", "subscriptionId", "resourceGroup")
_POLICY_FIELDS = ("id", "severity", "cause")


def _plain(finding: Finding) -> bool:
    """A pass with nothing more to say: held as its VM's number."""
    return finding.status == PASS and not finding.message and not finding.evidence and finding.notes is None


def _judged(policy: Policy, targets: list[Facts], columns: _Columns,
            keep: Collection[int]) -> tuple[bytes, list[Finding]]:
    """The targets' plain marks (PLAIN for a plain pass) and, in order, the findings that are not plain passes."""
    if policy.group_by:
        return _held(list(evaluate_grouped(policy, targets)), keep)
    return _evaluate_shared(policy, targets, columns, keep)


def _held(found: list[Finding], keep: Collection[int]) -> tuple[bytes, list[Finding]]:
    """Findings judged one by one, as their plain marks and the findings that are not plain passes."""
    marks = bytes(PLAIN if _plain(f) and i not in keep else 0 for i, f in enumerate(found))
    return marks, [f for f, mark in zip(found, marks, strict=True) if not mark]


class _Column(NamedTuple):
    """One fact path over the targets: its values, their types, the targets on which reading it failed, and the
    estate's reason for its absence on each target that has reasons (_Columns.with_reasons)."""

    values: list[Any]
    kinds: list[type]
    failed: set[int]
    reasons: list[str | None]


class _Columns:
    """Each fact path's values over the targets, read once and shared by every policy that reads it: the
    bundled policies read 23 distinct paths 51 times, and these reads were most of judging a VM."""

    def __init__(self, targets: list[Facts]) -> None:
        self._targets = targets
        self._read: dict[str, _Column] = {}
        self.with_reasons = [i for i, target in enumerate(targets) if target.get(REASONS_FIELD)]

    def read(self, path: FieldPath) -> _Column:
        """The path's column; a target on which reading it fails is judged alone."""
        column = self._read.get(path.text)
        if column is None:
            failed: set[int] = set()
            try:
                values = path.column(self._targets)
                if values is None:  # a value of a type other than JSON's on the way: each target's own getter
                    values = list(map(path.get, self._targets))
            except Exception:  # a fact that fails to read: find the targets it fails on
                values = []
                for i, target in enumerate(self._targets):
                    try:
                        values.append(path.get(target))
                    except Exception:
                        values.append(None)
                        failed.add(i)
            reasons = [unknown_reason(self._targets[i], path.text) for i in self.with_reasons]
            column = self._read[path.text] = _Column(values, list(map(type, values)), failed, reasons)
        return column


def _evaluate_shared(policy: Policy, targets: list[Facts], columns: _Columns,
                     keep: Collection[int]) -> tuple[bytes, list[Finding]]:
    """Judge once per distinct combination of the facts the policy reads, and share the verdict: the targets'
    plain marks (PLAIN for a plain pass) and, in order, the findings that are not plain passes.

    Thousands of VMs agree on power state, OS type and agent version; a VM with the same values
    of every fact the conditions read gets the same status and evidence (only the message, which
    may name the VM, is rendered again). Values are keyed with their type, so True and 1 differ;
    a list or a map (a `count`'s array) by its frozen form, which keeps the types of what it holds.
    A target whose key cannot be read or hashed, or whose shared verdict is an error, is judged alone.
    """
    reads = policy_reads(policy)
    read = [columns.read(path) for path in reads]
    alone = set().union(*(c.failed for c in read))
    reasons: list[tuple[str | None, ...] | None] = [None] * len(targets)
    for i, said in zip(columns.with_reasons, zip(*(c.reasons for c in read), strict=True), strict=False):
        reasons[i] = said  # none when the policy reads no fact
    keys: list[Any] = list(zip(*(c.values for c in read), reasons, *(c.kinds for c in read), strict=True))
    firsts = None  # each target's key's first target, by number: each key is hashed once, in C
    if not alone:
        with suppress(Exception):  # a list or a map among them, or a value that cannot be hashed
            firsts = list(map({}.setdefault, keys, range(len(keys))))
    if firsts is None:
        first: dict[Any, int] = {}
        firsts = [_first(first, key, i, alone) for i, key in enumerate(keys)]
    seen = {i: judge_one(policy, targets[i], targets[i]) for i in dict.fromkeys(firsts) if i >= 0}
    plain = bytearray(len(keys))
    for i, verdict in seen.items():
        plain[i] = PLAIN if _plain(verdict) else 0
    marks = bytearray(map(plain.__getitem__, firsts))
    for i in chain(alone, keep):
        marks[i] = 0
    found = []
    for i in compress(range(len(keys)), map(not_, marks)):
        target, at = targets[i], firsts[i]
        if at < 0 or (at != i and seen[at].status == ERROR):
            found.append(judge_one(policy, target, target))
        elif at == i:
            found.append(seen[at])
        else:
            verdict = seen[at]
            message = interned(policy.message.render(target)) if verdict.status == FAIL else verdict.message
            found.append(make_finding(policy, target, verdict.status, message, verdict.evidence))
    return bytes(marks), found


def _first(first: dict[Any, int], key: tuple[Any, ...], i: int, alone: set[int]) -> int:
    """The first target with target i's key, as `first` has them so far; a key holding a list or a map by its
    frozen form. A target judged alone, or whose key cannot be hashed even frozen, is no other's first: -1,
    and it is judged alone."""
    if i in alone:
        return -1
    try:
        return first.setdefault(key, i)
    except Exception:  # a list or a map among them, or a value whose hash fails
        pass
    try:
        return first.setdefault((FROZEN, *map(frozen_value, key)), i)
    except Exception:  # an unhashable fact of another kind
        alone.add(i)
        return -1


def query_targets(key: str, rows: list[Any]) -> list[Facts]:
    """A custom query's rows as targets, `row.<column>` in conditions; an id-less row is named by position. A
    row's subscription and resource group are its columns, else (a query that projects neither) its id's."""
    targets = []
    for i, row in enumerate(rows):
        cells = row if isinstance(row, dict) else {}
        rid = cells["id"] if isinstance(cells.get("id"), str) else f"query:{key[:16]}/{i}"
        name = cells["name"] if isinstance(cells.get("name"), str) else rid.rsplit("/", 1)[-1]
        group = _cell(cells, "resourceGroup") or segment_after(rid, "resourcegroups")
        targets.append({"id": rid, "name": name, "row": cells,
                        "subscriptionId": _cell(cells, "subscriptionId") or segment_after(rid, "subscriptions"),
                        "resourceGroup": group.lower()})
    targets.sort(key=lambda t: t["id"].lower())
    return targets


def _cell(cells: dict[str, Any], column: str) -> str:
    value = cells.get(column)
    return value if isinstance(value, str) else ""


def _query_not_collected(policy: Policy, key: str) -> tuple[Facts, Finding]:
    """The one target of a query policy whose rows were not collected (the query itself), and its finding."""
    target = {"id": f"query:{key[:16]}", "name": f"{policy.id} query", "subscriptionId": "", "resourceGroup": ""}
    return target, make_finding(policy, target, UNKNOWN,
                            "Not assessed: the rows of this policy's Resource Graph query are not in the snapshot; "
                            "collect them with `backup-preflight collect --policies DIR` or scan live",
                            (f"query {key[:16]}… was not collected",))
