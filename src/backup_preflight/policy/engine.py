"""Evaluate every policy on every VM: one finding per (policy, VM).

Verdicts are three-valued; an unknown applicability or assertion gives an `unknown` finding
that says which fact was missing. A policy that raises on one VM gives that one finding the
status `error`, and the scan goes on.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, NamedTuple

from backup_preflight.estate.index import segment_after
from backup_preflight.findings import ERROR, FAIL, NOT_APPLICABLE, PASS, UNKNOWN, Finding
from backup_preflight.policy.conditions import REASONS_FIELD, Context, Node, unknown_reason
from backup_preflight.policy.loader import Policy, PolicySet
from backup_preflight.policy.paths import MISSING, FieldPath
from backup_preflight.snapshot import query_key

Facts = dict[str, Any]


def evaluate(policies: PolicySet, vms: list[Facts], queries: dict[str, dict[str, Any]] | None = None) -> list[Finding]:
    """All findings, ordered by policy id and then resource id (stable between runs).

    `queries` holds the rows of custom Resource Graph queries by query key (snapshot.queries);
    a resourceGraphQuery policy judges those rows instead of the VMs.
    """
    try:
        return _evaluate(policies, vms, queries)
    finally:
        _EVIDENCE.clear()


#: One copy of each distinct evidence while `evaluate` runs: VMs judged alone (those with reasons) and
#: failing VMs get equal evidence tuples, which findings would otherwise each keep (docs/performance.md).
_EVIDENCE: dict[tuple[str, ...], tuple[str, ...]] = {}


def _shared(evidence: tuple[str, ...]) -> tuple[str, ...]:
    return _EVIDENCE.setdefault(evidence, evidence)


def _text(message: str) -> str:
    """One copy of each distinct message: thousands of unknown findings say the same thing."""
    return sys.intern(message)


def _evaluate(policies: PolicySet, vms: list[Facts], queries: dict[str, dict[str, Any]] | None) -> list[Finding]:
    findings: list[Finding] = []
    on_vms = _Columns(vms)  # the VMs' facts as read once for every policy that reads them
    for policy in policies.policies:
        if policy.query is None:
            targets, columns = vms, on_vms
        else:
            key = query_key(policy.query)
            stored = (queries or {}).get(key)
            if stored is None:
                findings.append(_query_not_collected(policy, key))
                continue
            targets = query_targets(key, stored.get("rows") or [])
            columns = _Columns(targets)
        if policy.group_by:
            findings.extend(_evaluate_grouped(policy, targets))
        else:
            findings.extend(_evaluate_shared(policy, targets, columns))
    return findings


class _Column(NamedTuple):
    """One fact path over the targets: its values, their types, and the targets on which reading it failed."""

    values: list[Any]
    kinds: list[type]
    failed: set[int]


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
                values = list(map(path.get, self._targets))
            except Exception:  # a fact that fails to read: find the targets it fails on
                values = []
                for i, target in enumerate(self._targets):
                    try:
                        values.append(path.get(target))
                    except Exception:
                        values.append(None)
                        failed.add(i)
            column = self._read[path.text] = _Column(values, list(map(type, values)), failed)
        return column


def _evaluate_shared(policy: Policy, targets: list[Facts], columns: _Columns) -> Iterator[Finding]:
    """Judge once per distinct combination of the facts the policy reads, and share the verdict.

    Thousands of VMs agree on power state, OS type and agent version; a VM with the same values
    of every fact the conditions read gets the same status and evidence (only the message, which
    may name the VM, is rendered again). Values are keyed with their type, so True and 1 differ;
    a list or a map (a `count`'s array) by its frozen form, which keeps the types of what it holds.
    """
    reads = _reads(policy)
    read = [columns.read(path) for path in reads]
    alone = set().union(*(c.failed for c in read))
    reasons: list[tuple[str | None, ...] | None] = [None] * len(targets)
    texts = tuple(path.text for path in reads)
    for i in columns.with_reasons:
        reasons[i] = tuple(unknown_reason(targets[i], text) for text in texts)
    memo: dict[tuple[Any, ...], Finding] = {}
    keys = zip(*(c.values for c in read), reasons, *(c.kinds for c in read), strict=True)
    for i, (target, key) in enumerate(zip(targets, keys, strict=True)):
        if alone and i in alone:
            yield _judge(policy, target, target)
            continue
        try:
            try:
                seen = memo.get(key)
            except TypeError:  # a list or a map among them
                key = (_FROZEN, *map(_frozen, key))
                seen = memo.get(key)
        except Exception:  # an unhashable fact of another kind: judge it alone
            yield _judge(policy, target, target)
            continue
        if seen is None or seen.status == ERROR:
            seen = memo[key] = _judge(policy, target, target)
            yield seen
            continue
        message = _text(policy.message.render(target)) if seen.status == FAIL else seen.message
        yield _finding(policy, target, seen.status, message, seen.evidence)


#: Marks a key of frozen values: no key of plain values starts with it.
_FROZEN = object()


def _frozen(value: Any) -> Any:
    """A list or a map as a hashable value equal only to one with the same items, of the same types, in
    the same order (an explanation may list them in that order); anything else with its type."""
    if value.__class__ is list:
        return list, tuple(map(_frozen, value))
    if value.__class__ is dict:
        return dict, tuple((name, _frozen(item)) for name, item in value.items())
    return type(value), value


def _reads(policy: Policy) -> list[FieldPath]:
    paths = [] if policy.applies is None else policy.applies.reads()
    return list({p.text: p for p in [*paths, *policy.assertion.reads()]}.values())


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


def _query_not_collected(policy: Policy, key: str) -> Finding:
    target = {"id": f"query:{key[:16]}", "name": f"{policy.id} query", "subscriptionId": "", "resourceGroup": ""}
    return _finding(policy, target, UNKNOWN,
                    "Not assessed: the rows of this policy's Resource Graph query are not in the snapshot; "
                    "collect them with `backup-preflight collect --policies DIR` or scan live",
                    (f"query {key[:16]}… was not collected",))


_CTX = Context()  # conditions outside `count` never read or change it


def _judge(policy: Policy, vm: Facts, facts: Facts) -> Finding:
    """One finding; `facts` is the VM's record, possibly overlaid with its group."""
    ctx = _CTX
    try:
        if policy.applies is not None:
            applies = policy.applies.eval(facts, ctx)
            if applies is False:
                return _finding(policy, vm, NOT_APPLICABLE)
            if applies is None:
                return _unknown(policy, vm, policy.applies, facts, "whether the policy applies")
        verdict = policy.assertion.eval(facts, ctx)
        if verdict is True:
            assumed = policy.assertion.assumptions(facts, ctx) if policy.assertion.assumes else ()
            return _finding(policy, vm, PASS, evidence=_shared(tuple(dict.fromkeys(assumed))))
        if verdict is None:
            return _unknown(policy, vm, policy.assertion, facts, "the assertion")
        evidence = _shared(tuple(dict.fromkeys(policy.assertion.explain(facts, ctx))))
        return _finding(policy, vm, FAIL, _text(policy.message.render(facts)), evidence)
    except Exception as exc:  # a broken policy must not stop the scan: this finding says so
        return _finding(policy, vm, ERROR, f"evaluation error: {type(exc).__name__}: {exc}")


def _unknown(policy: Policy, vm: Facts, node: Node, facts: Facts, what: str) -> Finding:
    reasons = _shared(tuple(dict.fromkeys(node.explain(facts, Context()))))
    missing = "; ".join(reasons) if reasons else "a fact it needs was not collected"
    return _finding(policy, vm, UNKNOWN, _text(f"Not assessed ({what}): {missing}"), reasons)


def _finding(policy: Policy, vm: Facts, status: str, message: str = "",
             evidence: tuple[str, ...] = ()) -> Finding:
    return Finding(policy.id, vm["id"], vm["name"], status, policy.severity, policy.cause, message, evidence,
                   vm["subscriptionId"], vm["resourceGroup"])


def _evaluate_grouped(policy: Policy, vms: list[Facts]) -> Iterator[Finding]:
    """Two passes: group the VMs the policy applies to, then judge each with its group.

    A list-valued group field (a VM snapshotted at several instants: `backup.slots`) puts the VM in
    one group per value; it is judged with each, and the worst verdict (fail, then unknown) stands.
    """
    ctx = Context()
    keys: dict[int, list[tuple[Any, ...]]] = {}
    groups: defaultdict[tuple[Any, ...], list[Facts]] = defaultdict(list)
    labels: dict[tuple[Any, ...], str] = {}  # as the group's first member spells it
    early: dict[int, Finding] = {}
    for i, vm in enumerate(vms):
        try:
            applies = True if policy.applies is None else policy.applies.eval(vm, ctx)
        except Exception as exc:
            early[i] = _finding(policy, vm, ERROR, f"evaluation error: {type(exc).__name__}: {exc}")
            continue
        if applies is False:
            early[i] = _finding(policy, vm, NOT_APPLICABLE)
        elif applies is None:
            early[i] = _unknown(policy, vm, policy.applies, vm, "whether the policy applies")
        else:
            spelled = group_keys(policy, vm)
            keys[i] = [tuple(v.lower() if isinstance(v, str) else v for v in key) for key in spelled]
            for key, text in zip(keys[i], spelled, strict=True):
                groups[key].append(vm)
                labels.setdefault(key, " / ".join(str(v) for v in text))
    described: dict[tuple[Any, ...], dict[str, Any]] = {}
    for i, vm in enumerate(vms):
        if i in early:
            yield early[i]
            continue
        if not keys[i]:
            missing = [p.text for p in policy.group_by if p.get(vm) in (MISSING, None, [])]
            yield _finding(policy, vm, UNKNOWN, f"Not assessed: the group key {', '.join(missing)} "
                                                f"was not collected", tuple(f"{m} was not collected"
                                                                            for m in missing))
            continue
        verdicts = []
        for key in keys[i]:
            group = described.get(key)
            if group is None:  # once per group, shared by its members
                members = groups[key]
                group = described[key] = {"key": labels[key], "size": len(members),
                                          "members": [m["name"] for m in members]}
            verdicts.append(_judge(policy, vm, {**vm, "group": group}))
        yield min(verdicts, key=lambda f: _WORST_FIRST.get(f.status, 3))


_WORST_FIRST = {ERROR: 0, FAIL: 1, UNKNOWN: 2}


def group_keys(policy: Policy, vm: Facts) -> list[tuple[Any, ...]]:
    """Every group the VM falls in (one per combination of list values), as spelled; none when a key is
    missing. Values are compared ignoring case by the caller."""
    keys: list[tuple[Any, ...]] = [()]
    for path in policy.group_by:
        value = path.get(vm)
        values = value if isinstance(value, list) else [value]
        distinct = {v.lower() if isinstance(v, str) else v: v for v in values if isinstance(v, str | int | float)}
        keys = [(*k, v) for k in keys for v in distinct.values()]
    return keys
