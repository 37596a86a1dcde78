"""Grouped policies (`groupBy`): each VM judged with the group it falls in, a group per combination of values.

Schedule spread groups VMs by placement and by the instants of the week their snapshots start at; a VM with
several instants is in several groups. Groups with the same members are found and judged once (_classes).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from backup_preflight.findings import ERROR, FAIL, NOT_APPLICABLE, UNKNOWN, Finding
from backup_preflight.policy.conditions import REASONS_FIELD, Context, unknown_reason
from backup_preflight.policy.loader import Policy
from backup_preflight.policy.paths import MISSING
from backup_preflight.policy.verdict import (
    FROZEN,
    Facts,
    frozen_value,
    interned,
    judge_one,
    make_finding,
    policy_reads,
    unknown_finding,
)


def evaluate_grouped(policy: Policy, vms: list[Facts]) -> Iterator[Finding]:
    """Two passes: group the VMs the policy applies to, then judge each with its group.

    A list-valued group field (a VM snapshotted at several instants: `backup.weeklySlots`) puts the VM in
    one group per value; it is judged with each, and the worst verdict (fail, then unknown; the first of its
    groups among equals) stands. Values that every VM has all or none of (the seven days of a daily backup's
    slot, where no weekly backup starts then) make groups with the same members, hence the same verdicts, so
    the VM is judged once for them, in the first of them (_classes): what each VM gets is what judging it in
    every one of its groups gives, whatever else the part holds (tests/policy/test_group_classes.py).
    """
    ctx = Context()
    read = group_value_reader()
    values: dict[int, list[dict[Any, Any]]] = {}  # per VM and group field: its distinct values, compared → spelled
    early: dict[int, Finding] = {}
    for i, vm in enumerate(vms):
        try:
            applies = True if policy.applies is None else policy.applies.eval(vm, ctx)
        except Exception as exc:
            early[i] = make_finding(policy, vm, ERROR, f"evaluation error: {type(exc).__name__}: {exc}")
            continue
        if applies is False:
            early[i] = make_finding(policy, vm, NOT_APPLICABLE)
        elif applies is None:
            early[i] = unknown_finding(policy, vm, policy.applies, vm, "whether the policy applies")
        else:
            values[i] = [read(path.get(vm)) for path in policy.group_by]
    classes = _classes(values.values(), len(policy.group_by))
    members = _Members(policy)
    keys: dict[int, list[tuple[tuple[Any, ...], tuple[Any, ...]]]] = {}
    for i, fields in values.items():
        if all(fields):
            keys[i] = _keys(fields, classes)
            for group, _ in keys[i]:
                members.add(group, vms[i], fields)
    for i, vm in enumerate(vms):
        if i in early:
            yield early[i]
        elif i not in keys:
            missing = [p.text for p in policy.group_by if p.get(vm) in (MISSING, None, [])]
            yield make_finding(policy, vm, UNKNOWN,
                               f"Not assessed: the group key {', '.join(missing)} was not collected",
                               tuple(f"{m} was not collected" for m in missing))
        else:
            yield members.judge(vm, keys[i])


def group_value_reader() -> Callable[[Any], dict[Any, Any]]:
    """`group_values`, worked out once per list: the VMs of a backup policy share its list of slots."""
    seen: dict[int, tuple[Any, dict[Any, Any]]] = {}

    def read(value: Any) -> dict[Any, Any]:
        if value.__class__ is not list:
            return group_values(value)
        hit = seen.get(id(value))
        if hit is None or hit[0] is not value:  # the list itself is kept, so its id is not reused meanwhile
            hit = seen[id(value)] = (value, group_values(value))
        return hit[1]

    return read


def group_values(value: Any) -> dict[Any, Any]:
    """A group field's values (one, or a list's) that can key a group, in order, text compared ignoring case."""
    if value.__class__ is str:  # the common case, first
        return {value.lower(): value}
    values = value if value.__class__ is list else [value]
    return {v.lower() if isinstance(v, str) else v: v for v in values if isinstance(v, str | int | float)}


def _classes(fields: Iterable[list[dict[Any, Any]]], count: int) -> list[dict[Any, Any]]:
    """Per group field, each value's class: the values that appear in exactly the same VMs' lists (all of a
    class or none of it in every VM's list). Values of one class make groups with the same members."""
    out: list[dict[Any, Any]] = []
    lists = [{tuple(f[n]) for f in fields} for n in range(count)] if count else []
    for n in range(count):
        seen_in: defaultdict[Any, list[int]] = defaultdict(list)
        for number, listed in enumerate(lists[n]):
            for value in listed:
                seen_in[value].append(number)
        out.append({value: tuple(numbers) for value, numbers in seen_in.items()})
    return out


def _keys(fields: list[dict[Any, Any]], classes: list[dict[Any, Any]]) -> list[tuple[tuple[Any, ...],
                                                                                    tuple[Any, ...]]]:
    """The VM's groups, as (group: the class of each field's value, the value in it the VM is judged in: the
    first of its class in the VM's list), in the order of its values."""
    keys: list[tuple[tuple[Any, ...], tuple[Any, ...]]] = [((), ())]
    for field, classes_of in zip(fields, classes, strict=True):
        firsts = {}
        for value in field:
            firsts.setdefault(classes_of[value], value)
        keys = [((*group, cls), (*chosen, value)) for group, chosen in keys for cls, value in firsts.items()]
    return keys


class _Members:
    """A grouped policy's groups and verdicts, shared by the VMs that read alike in groups that read alike.

    A verdict depends only on the values (with their types) of what the conditions read: of the group (its
    size) and of the VM (with the VM's unknown reasons for them). So each distinct combination is judged once,
    on the first VM that has it, and a VM's finding is that verdict for its worst group; its message is
    rendered for its own group and VM, once per group when the message reads nothing but the group.
    """

    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._members: defaultdict[tuple[Any, ...], list[Facts]] = defaultdict(list)
        self._first: dict[tuple[Any, ...], list[dict[Any, Any]]] = {}  # the values of the group's first member
        reads = policy_reads(policy)
        self._own_paths = [path for path in reads if path.segments[0] != "group"]
        self._group_paths = [path for path in reads if path.segments[0] == "group"]
        self._group_message = all(path.segments[0] == "group" for _, path in policy.message.fields)
        self._described: dict[tuple[Any, ...], tuple[dict[str, Any], Any]] = {}
        self._verdicts: dict[Any, Finding] = {}
        self._messages: dict[tuple[Any, ...], str] = {}

    def add(self, group: tuple[Any, ...], vm: Facts, fields: list[dict[Any, Any]]) -> None:
        self._members[group].append(vm)
        self._first.setdefault(group, fields)

    def judge(self, vm: Facts, keys: list[tuple[tuple[Any, ...], tuple[Any, ...]]]) -> Finding:
        """The VM's finding: judged with each of its groups, the worst verdict (the first of them)."""
        own = self._own(vm)
        worst: tuple[Finding, tuple[Any, ...]] | None = None
        for key in keys:
            group, values = self._group(key)
            if own is None:
                verdict = judge_one(self._policy, vm, {**vm, "group": group})
            else:
                verdict = self._verdicts.get((values, own))
                if verdict is None or verdict.status == ERROR:  # an error is the VM's own: never shared
                    verdict = judge_one(self._policy, vm, {**vm, "group": group})
                    self._verdicts.setdefault((values, own), verdict)
            if worst is None or _WORST_FIRST.get(verdict.status, 3) < _WORST_FIRST.get(worst[0].status, 3):
                worst = verdict, key
        assert worst is not None  # keys is not empty
        verdict, key = worst
        if verdict.resource_id == vm["id"]:  # judged on this VM
            return verdict
        message = self._message(vm, key) if verdict.status == FAIL else verdict.message
        return make_finding(self._policy, vm, verdict.status, message, verdict.evidence)

    def _group(self, key: tuple[tuple[Any, ...], tuple[Any, ...]]) -> tuple[dict[str, Any], Any]:
        """The group's facts (once per group and value judged in, shared by its members) and the values the
        conditions read of them. Its key is spelled as its first member spells it."""
        described = self._described.get(key)
        if described is None:
            cls, chosen = key
            found, first = self._members[cls], self._first[cls]
            label = " / ".join(str(spelled[value]) for spelled, value in zip(first, chosen, strict=True))
            group = {"key": label, "size": len(found), "members": [m["name"] for m in found]}
            values = tuple(path.get({"group": group}) for path in self._group_paths)
            described = self._described[key] = group, _hashable((values, tuple(map(type, values))))
        return described

    def _own(self, vm: Facts) -> Any:
        """What the conditions read of the VM, as a hashable key; None when it cannot be hashed (judged alone)."""
        values = tuple(path.get(vm) for path in self._own_paths)
        reasons = tuple(unknown_reason(vm, path.text) for path in self._own_paths) if vm.get(REASONS_FIELD) else None
        return _hashable((values, tuple(map(type, values)), reasons))

    def _message(self, vm: Facts, key: tuple[tuple[Any, ...], tuple[Any, ...]]) -> str:
        facts = {**vm, "group": self._described[key][0]}
        if not self._group_message:
            return interned(self._policy.message.render(facts))
        message = self._messages.get(key)
        if message is None:
            message = self._messages[key] = interned(self._policy.message.render(facts))
        return message


def _hashable(key: tuple[Any, ...]) -> Any:
    """`key` (the values read, then what else tells verdicts apart), or its frozen form when a value read is a
    list or a map; None when neither can be hashed."""
    try:
        hash(key)
        return key
    except Exception:  # a list or a map among them, or a value that cannot be hashed
        pass
    try:
        frozen = (FROZEN, tuple(map(frozen_value, key[0])), *key[1:])
        hash(frozen)
        return frozen
    except Exception:
        return None


_WORST_FIRST = {ERROR: 0, FAIL: 1, UNKNOWN: 2}
