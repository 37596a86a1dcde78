"""A grouped policy judges each VM once per class of equal groups: the findings must be exactly those of judging
it in every one of its groups, the first worst standing, whatever else the estate holds.

The oracle below is the rule written out as plainly as possible: every combination of a VM's values is a group,
its members are the VMs with that combination, it is spelled as its first member spells it, and the VM's finding
is its first worst verdict. The engine shares verdicts between VMs and between groups with the same members
(policy/grouped.py, _classes and _Members); the two must agree on status, message and evidence.
"""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from backup_preflight.policy import grouped
from backup_preflight.policy.engine import evaluate
from backup_preflight.policy.loader import load_policies

SLOTS = ["Mon 01", "mon 01", "Tue 01", "Wed 02", "Sun 23"]
GROUPS = ["g1", "G1", "g2"]


def policy(tmp: Path, maximum: int, names_the_vm: bool, reads_the_vm: bool) -> Any:
    rule: dict[str, Any] = {"field": "group.size", "lessOrEquals": maximum}
    if reads_the_vm:
        rule = {"allOf": [rule, {"field": "tags.env", "notEquals": "bad"}]}
    (tmp / "p.json").write_text(json.dumps({
        "id": "T-CLASSES", "title": "t", "cause": "schedule-spread", "severity": "medium", "remediation": "r",
        "applies": {"field": "tags.on", "equals": "yes"},
        "groupBy": ["placementGroup", "backup.weeklySlots", "backup.slots"],
        "assert": rule,
        "message": "{group.size} in {group.key}: {group.members}" + (" ({name})" if names_the_vm else "")}))
    return load_policies([tmp])


def facts(i: int, on: str | None, group: str, week: list[str], day: list[Any], env: str) -> dict[str, Any]:
    rid = f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm{i}"
    vm = {"id": rid, "name": f"vm{i}", "subscriptionId": "s", "resourceGroup": "rg",
          "placementGroup": group, "backup": {"weeklySlots": week, "slots": day}}
    if on != "uncollected":  # without tags, whether the policy applies is unknown
        vm["tags"] = {"env": env} | ({"on": on} if on is not None else {})
    return vm


def oracle(vms: list[dict[str, Any]], maximum: int, names_the_vm: bool,
           reads_the_vm: bool) -> dict[str, tuple[str, str]]:
    def distinct(value: Any) -> dict[Any, Any]:
        values = value if isinstance(value, list) else [value]
        return {v.lower() if isinstance(v, str) else v: v for v in values if isinstance(v, str | int | float)}

    def combinations(vm: dict[str, Any]) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
        fields = [distinct(vm["placementGroup"]), distinct(vm["backup"]["weeklySlots"]),
                  distinct(vm["backup"]["slots"])]
        return [(tuple(k for k, _ in combo), tuple(v for _, v in combo))
                for combo in product(*(list(f.items()) for f in fields))]

    judged = [vm for vm in vms if vm.get("tags", {}).get("on") == "yes"]
    members: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    spelled: dict[tuple[Any, ...], str] = {}
    for vm in judged:
        for key, text in combinations(vm):
            members.setdefault(key, []).append(vm)
            spelled.setdefault(key, " / ".join(str(v) for v in text))
    out = {}
    for vm in vms:
        if "tags" not in vm:
            out[vm["name"]] = ("unknown", "")
            continue
        if vm["tags"].get("on") != "yes":  # a tag the VM does not have is no match
            out[vm["name"]] = ("notApplicable", "")
            continue
        keys = [key for key, _ in combinations(vm)]
        if not keys:
            out[vm["name"]] = ("unknown", "")
            continue
        verdicts = []
        for key in keys:
            group = members[key]
            ok = len(group) <= maximum and not (reads_the_vm and vm["tags"]["env"] == "bad")
            message = f"{len(group)} in {spelled[key]}: {', '.join(m['name'] for m in group)}"
            verdicts.append(("pass", "") if ok else ("fail", message + (f" ({vm['name']})" if names_the_vm else "")))
        out[vm["name"]] = next((v for v in verdicts if v[0] == "fail"), verdicts[0])
    return out


VM = st.tuples(st.sampled_from(["yes", "yes", "yes", "no", None, "uncollected"]), st.sampled_from(GROUPS),
               st.lists(st.sampled_from(SLOTS), max_size=4),
               st.lists(st.sampled_from(["01:00", "02:00", 3, True, None]), min_size=1, max_size=2),
               st.sampled_from(["ok", "ok", "bad"]))


@settings(max_examples=150, deadline=None)
@given(drawn=st.lists(VM, min_size=1, max_size=14), maximum=st.integers(1, 4), names_the_vm=st.booleans(),
       reads_the_vm=st.booleans())
def test_shared_verdicts_are_those_of_judging_every_group(tmp_path_factory: Any, drawn: list[tuple[Any, ...]],
                                                          maximum: int, names_the_vm: bool,
                                                          reads_the_vm: bool) -> None:
    vms = [facts(i, *d) for i, d in enumerate(drawn)]
    found = evaluate(policy(tmp_path_factory.mktemp("p"), maximum, names_the_vm, reads_the_vm), vms)
    got = {f.resource_name: (f.status, f.message if f.status == "fail" else "") for f in found}
    assert got == oracle(vms, maximum, names_the_vm, reads_the_vm)


def test_a_daily_crowd_is_judged_once_for_its_seven_days_and_a_weekly_vm_splits_its_day(tmp_path: Path) -> None:
    """Seven days of one slot shared by the same VMs are one class; a weekly VM on Sunday splits Sunday off."""
    week = [f"{d} 01" for d in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")]
    crowd = [facts(i, "yes", "g1", week, ["01:00"], "ok") for i in range(3)]
    weekly = facts(3, "yes", "g1", ["Sun 01"], ["01:00"], "ok")
    found = {f.resource_name: f for f in evaluate(policy(tmp_path, 3, False, False), [*crowd, weekly])}
    assert {n: f.status for n, f in found.items()} == {"vm0": "fail", "vm1": "fail", "vm2": "fail", "vm3": "fail"}
    assert found["vm0"].message == "4 in g1 / Sun 01 / 01:00: vm0, vm1, vm2, vm3"  # only Sunday is too full
    alone = {f.resource_name: f.status for f in evaluate(policy(tmp_path, 3, False, False), crowd)}
    assert set(alone.values()) == {"pass"}


def test_a_message_that_names_the_vm_is_each_members_own(tmp_path: Path) -> None:
    crowd = [facts(i, "yes", "g1", ["Mon 01", "Tue 01"], ["01:00"], "ok") for i in range(4)]
    found = evaluate(policy(tmp_path, 2, True, False), crowd)
    assert [f.message for f in found] == [f"4 in g1 / Mon 01 / 01:00: vm0, vm1, vm2, vm3 (vm{i})" for i in range(4)]


class _Unhashable(str):
    """A tag value that compares as text but cannot be hashed, even frozen: its VM is judged alone."""

    __hash__ = None  # type: ignore[assignment]


def test_a_vm_whose_facts_cannot_be_hashed_is_judged_alone_as_the_oracle_judges_it(tmp_path: Path) -> None:
    envs = ["ok", _Unhashable("bad"), "bad", _Unhashable("ok"), "ok"]
    vms = [facts(i, "yes", "g1", ["Mon 01"], ["01:00"], env) for i, env in enumerate(envs)]
    found = evaluate(policy(tmp_path, 9, True, True), vms)
    got = {f.resource_name: (f.status, f.message if f.status == "fail" else "") for f in found}
    assert got == oracle(vms, 9, True, True)
    assert got["vm1"][0] == "fail" and got["vm3"][0] == "pass"


def test_vms_and_groups_that_read_alike_are_judged_once(tmp_path: Path, monkeypatch: Any) -> None:
    """Three VMs in seven daily groups of three and a Sunday group of four: one verdict per class and size, the
    others shared (a VM whose own facts differ is judged again)."""
    calls: list[str] = []
    judge = grouped.judge_one

    def counting(policy: Any, vm: dict[str, Any], facts: dict[str, Any]) -> Any:
        calls.append(vm["name"])
        return judge(policy, vm, facts)

    monkeypatch.setattr(grouped, "judge_one", counting)
    week = [f"{d} 01" for d in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")]
    vms = [*(facts(i, "yes", "g1", week, ["01:00"], "ok") for i in range(3)),
           facts(3, "yes", "g1", ["Sun 01"], ["01:00"], "ok"), facts(4, "yes", "g2", week, ["01:00"], "bad")]
    found = evaluate(policy(tmp_path, 3, False, True), vms)
    assert calls == ["vm0", "vm0", "vm4"]  # Monday to Saturday (three), Sunday (four); vm4 reads otherwise
    assert [f.status for f in found] == ["fail", "fail", "fail", "fail", "fail"]


def custom(tmp: Path, assertion: dict[str, Any], message: str, applies: dict[str, Any] | None = None) -> Any:
    (tmp / "p.json").write_text(json.dumps({
        "id": "T-CUSTOM", "title": "t", "cause": "schedule-spread", "severity": "medium", "remediation": "r",
        "applies": applies or {"field": "tags.on", "equals": "yes"}, "groupBy": ["placementGroup", "backup.slots"],
        "assert": assertion, "message": message}))
    return load_policies([tmp])


def test_vms_missing_a_fact_for_different_reasons_keep_their_own_reasons(tmp_path: Path) -> None:
    """Two VMs that read alike but for why a fact is missing are not one verdict: each unknown names its own."""
    vms = [{**facts(i, "yes", "g1", [], ["01:00"], "ok"), "unknownReasons": {"agent.version": f"reason {i % 2}"}}
           for i in range(3)]
    found = evaluate(custom(tmp_path, {"field": "agent.version", "equals": "1"}, "{name}"), vms)
    assert [(f.status, f.evidence) for f in found] == [
        ("unknown", ("agent.version is unknown: reason 0",)), ("unknown", ("agent.version is unknown: reason 1",)),
        ("unknown", ("agent.version is unknown: reason 0",))]


def test_a_message_that_reads_only_the_vm_is_rendered_for_each_member(tmp_path: Path) -> None:
    crowd = [facts(i, "yes", "g1", [], ["01:00"], "ok") for i in range(3)]
    found = evaluate(custom(tmp_path, {"field": "group.size", "lessOrEquals": 2}, "{name} is crowded"), crowd)
    assert [f.message for f in found] == ["vm0 is crowded", "vm1 is crowded", "vm2 is crowded"]


def test_a_list_the_vm_reads_is_shared_by_its_frozen_form(tmp_path: Path, monkeypatch: Any) -> None:
    """A list among what the conditions read of a VM keys its verdict frozen, so equal lists share one."""
    calls: list[str] = []
    judge = grouped.judge_one
    monkeypatch.setattr(grouped, "judge_one", lambda p, vm, f: calls.append(vm["name"]) or judge(p, vm, f))
    vms = [facts(i, "yes", "g1", [], ["01:00", "02:00"], "ok") for i in range(3)]
    rule = {"allOf": [{"field": "group.size", "lessOrEquals": 5}, {"field": "backup.slots", "exists": True}]}
    found = evaluate(custom(tmp_path, rule, "{name}"), vms)
    assert [f.status for f in found] == ["pass"] * 3 and calls == ["vm0"]


def test_a_count_where_a_grouped_policy_applies(tmp_path: Path) -> None:
    applies = {"count": {"field": "backup.slots[*]"}, "greater": 1}
    vms = [facts(0, "yes", "g1", [], ["01:00", "02:00"], "ok"), facts(1, "yes", "g1", [], ["02:00"], "ok")]
    found = evaluate(custom(tmp_path, {"field": "group.size", "lessOrEquals": 5}, "{name}", applies), vms)
    assert [f.status for f in found] == ["pass", "notApplicable"]
