"""The engine judges once per combination of the facts a policy reads and shares the verdict
(engine._evaluate_shared); held to an oracle that judges every (policy, VM) alone.

What may be shared is the intricate part: only the reasons for the facts a policy reads (not every
reason a VM has), and a `network` fact shared by NIC placement and region, not by NIC id. The VMs are
the demo estate's, perturbed: reasons for read and unread facts, texts that name the VM, facts taken
away, NICs moved to another VM's place, to another region, to a NIC that is not collected, or doubled.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backup_preflight import snapshot
from backup_preflight.demo import generate
from backup_preflight.estate.build import build_estate
from backup_preflight.estate.network_facts import NetworkFacts
from backup_preflight.findings import Finding
from backup_preflight.plain_passes import PLAIN
from backup_preflight.policy import engine, verdict
from backup_preflight.policy.loader import PolicySet, bundled_policy_dir, load_policies
from backup_preflight.policy.paths import check_row_path
from held_helpers import plain

from policy_helpers import compile_json

POLICIES = load_policies([bundled_policy_dir()])
UNGROUPED = [p for p in POLICIES.policies if not p.group_by]
VMS = build_estate(snapshot.from_document(generate(40, seed=3, subscriptions=2), "demo")).vms
#: Fact paths the bundled policies read, and some they do not.
REASON_PATHS = ["agent.version", "agent.status", "agent", "backupExtension.installed", "backupExtension.handlerStatus",
                "powerState", "pressure.cpuPeakPercent", "backup.protected", "network", "guest.useVssCopyBackup",
                "tags.owner", "vmSize"]
TAKEN = ["agent", "powerState", "backupExtension", "pressure", "osType", "guest", "sql"]
SECOND_NIC = VMS[0]["network"].nic_ids
GHOST_NIC = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/" \
            "Microsoft.Network/networkInterfaces/not-collected"


def alone(vms: list[dict[str, Any]]) -> list[Finding]:
    """The oracle: every ungrouped policy judges every VM on its own, in the engine's order."""
    return [verdict.judge_one(policy, vm, vm) for policy in UNGROUPED for vm in vms]


def shared(vms: list[dict[str, Any]]) -> list[Finding]:
    ungrouped = {p.id for p in UNGROUPED}
    return [f for f in engine.evaluate(POLICIES, vms) if f.policy_id in ungrouped]


change = st.one_of(
    st.tuples(st.just("reason"), st.sampled_from(REASON_PATHS), st.booleans()),
    st.tuples(st.just("take"), st.sampled_from(TAKEN), st.none()),
    st.tuples(st.just("nic"), st.integers(0, len(VMS) - 1), st.sampled_from(["same", "other region", "ghost",
                                                                             "two", "two elsewhere"])),
)


def perturbed(changes: list[tuple[int, tuple[str, Any, Any]]]) -> list[dict[str, Any]]:
    vms = [dict(vm) for vm in VMS]
    for i, (kind, what, how) in changes:
        vm = vms[i]
        if kind == "reason":  # a text shared by many VMs, or one naming this VM
            text = f"VM '{vm['name']}' has no row for {what}" if how else f"{what} was not reported"
            vm["unknownReasons"] = {**(vm.get("unknownReasons") or {}), what: text}
            if how:
                vm.pop(what.split(".")[0], None)
        elif kind == "take":
            vm.pop(what, None)
        else:
            net: NetworkFacts = VMS[what]["network"]
            own: NetworkFacts = VMS[i]["network"]
            nics = {"same": net.nic_ids, "other region": net.nic_ids, "ghost": (GHOST_NIC,),
                    "two": (*net.nic_ids, *SECOND_NIC), "two elsewhere": (*net.nic_ids, *SECOND_NIC)}[how]
            region = "eastus2" if how in ("other region", "two elsewhere") else own.region
            vm["network"] = NetworkFacts(net.model, nics, region)
    return vms


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(VMS) - 1), change), max_size=40))
def test_shared_verdicts_are_the_verdicts_of_each_vm_alone(changes: list[tuple[int, Any]]) -> None:
    vms = perturbed(changes)
    assert shared(vms) == alone(vms)


def test_the_demo_estate_as_collected_too() -> None:
    assert shared(VMS) == alone(VMS)


class _Unreadable(dict):  # type: ignore[type-arg]
    """A fact whose reading fails in a way the field getters do not expect (not a missing key or a wrong type)."""

    def __getitem__(self, key: Any) -> Any:
        raise RuntimeError(f"cannot read {key}")


class _HashFails:
    """A fact whose hash raises an error other than the TypeError of a list, a map or a set."""

    def __hash__(self) -> int:
        raise RuntimeError("no hash")


def test_a_fact_that_fails_to_read_makes_only_its_vm_judged_alone() -> None:
    """The engine reads each fact path over all VMs at once (engine._Columns); when reading one VM's fact raises,
    that VM is judged alone (an `error` finding where a policy reads it) and every other VM as before."""
    vms = [dict(vm) for vm in VMS]
    broken = [3, 17]
    for i in broken:
        vms[i]["agent"] = _Unreadable()
    # Before each, its twin whose agent facts are null: had the broken VM been keyed like the others, it would
    # share the twin's verdict, since its unreadable facts must be held by some value in the columns.
    twins = [{**vms[i], "id": vms[i]["id"] + "-twin", "name": vms[i]["name"] + "-twin",
              "agent": {"installed": None, "status": None, "version": None}} for i in broken]
    vms = [*vms[:3], twins[0], *vms[3:17], twins[1], *vms[17:]]
    broken = [4, 19]
    vms[25]["powerState"] = {"running"}  # a value no key can hold, not even frozen: that VM is judged alone too
    vms[30]["powerState"] = _HashFails()  # a value whose hash raises, not as unhashable values do: alone too
    assert shared(vms) == alone(vms)
    errors = {(f.policy_id, f.resource_name) for f in shared(vms) if f.status == "error"}
    assert {name for _, name in errors} == {vms[i]["name"] for i in broken}
    assert {"VMBK-AGENT-001", "VMBK-AGENT-003"} <= {policy for policy, _ in errors}


def test_vms_behind_one_nic_placement_are_judged_once(monkeypatch: Any) -> None:
    """Sharing is what the engine is for: the network policies judge each NSG/subnet placement once, and a
    reason for a fact a policy does not read does not make a VM be judged alone."""
    calls: dict[str, int] = {}
    judge = verdict.judge_one

    def counting(policy: Any, vm: dict[str, Any], facts: dict[str, Any]) -> Finding:
        calls[policy.id] = calls.get(policy.id, 0) + 1
        return judge(policy, vm, facts)

    monkeypatch.setattr(engine, "judge_one", counting)
    vms = [{**vm, "unknownReasons": {"tags.owner": f"VM '{vm['name']}' has no tags row"}} for vm in VMS]
    shared(vms)
    places = {(vm.get("powerState"), vm["network"].model.sharing_key(vm["network"].nic_ids, vm["network"].region))
              for vm in VMS}
    assert calls["VMBK-NET-001"] == len(places) < len(VMS)
    assert calls["VMBK-POWER-001"] == len({vm.get("powerState") for vm in VMS})


def test_network_facts_are_equal_by_placement_and_region() -> None:
    a = VMS[0]["network"]
    model = a.model
    assert NetworkFacts(model, a.nic_ids, a.region) == a and hash(NetworkFacts(model, a.nic_ids, a.region)) == hash(a)
    placed = [vm["network"] for vm in VMS if vm["network"].nic_ids]
    twins = [(x, y) for x in placed for y in placed
             if x.nic_ids != y.nic_ids and model.sharing_key(x.nic_ids, x.region) == model.sharing_key(y.nic_ids,
                                                                                                       y.region)]
    assert twins  # two VMs' own NICs in one place
    x, y = twins[0]
    assert x == y and hash(x) == hash(y)
    assert NetworkFacts(model, x.nic_ids, "East US 2") != NetworkFacts(model, y.nic_ids, "West Europe")
    assert NetworkFacts(model, (GHOST_NIC,), x.region) != NetworkFacts(model, (GHOST_NIC + "2",), x.region)
    assert NetworkFacts(model, (GHOST_NIC,), x.region) == NetworkFacts(model, (GHOST_NIC,), x.region)
    assert NetworkFacts(model, (*x.nic_ids, *y.nic_ids), x.region) != NetworkFacts(model, (*y.nic_ids, *x.nic_ids),
                                                                                   x.region)
    assert NetworkFacts(model, (*x.nic_ids, *y.nic_ids), "westeurope") != NetworkFacts(model, (*x.nic_ids, *y.nic_ids),
                                                                                        "eastus2")
    assert x != x.nic_ids


#: Policies that count array elements: the bundled DHCP policy's shape (the array also read as a field), a
#: `where` that reads a fact outside the element, and a bare count. (No fact holds an array in an array's
#: elements: a count of an element's own array is held to its reads below.)
COUNTING = {
    "COUNT-OUTSIDE": {"count": {"field": "machineConfiguration[*]", "where": {"anyOf": [
        {"field": "machineConfiguration[*].complianceStatus", "equals": "NonCompliant"},
        {"field": "powerState", "equals": "stopped"}]}}, "lessOrEquals": 0},
    "COUNT-BARE": {"count": {"field": "machineConfiguration[*]"}, "less": 2},
}


def counting_policies(folder: Any) -> Any:
    for pid, assertion in COUNTING.items():
        (folder / f"{pid.lower()}.json").write_text(json.dumps({
            "id": pid, "title": pid, "cause": "guest-dhcp", "severity": "medium", "assert": assertion,
            "message": "{name} counts", "remediation": "none"}))
    return [p for p in [*load_policies([folder]).policies, *UNGROUPED] if p.id in {*COUNTING, "VMBK-DHCP-001"}]


#: Assignment lists: equal ones on different VMs share; True and 1, key order, a non-map element and
#: timestamps naming the VM (which the evidence quotes) must not.
element = st.one_of(
    st.fixed_dictionaries({"name": st.sampled_from(["AzureBackupDhcpEnabled", "Other"]),
                           "complianceStatus": st.sampled_from(["Compliant", "NonCompliant", None, 1, True])}),
    st.just("AzureBackupDhcpEnabled"), st.none(), st.just({"complianceStatus": "NonCompliant",
                                                            "name": "AzureBackupDhcpEnabled"}))
assignments = st.one_of(st.just("absent"), st.none(), st.lists(element, max_size=3),
                        st.just("stamped"))
dhcp = st.sampled_from(["absent", True, False, 1, 0, "true", None])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(VMS) - 1), assignments, dhcp), max_size=40))
def test_counted_arrays_share_only_equal_elements(tmp_path_factory: Any, changes: list[tuple[int, Any, Any]]) -> None:
    policies = counting_policies(tmp_path_factory.mktemp("counting"))
    vms = [dict(vm) for vm in VMS]
    for i, assigned, enabled in changes:
        vm = vms[i]
        if assigned == "absent":
            vm.pop("machineConfiguration", None)
        elif assigned == "stamped":
            vm["machineConfiguration"] = [{"name": "AzureBackupDhcpEnabled", "complianceStatus": "NonCompliant",
                                           "lastChecked": vm["name"]}]
        else:
            vm["machineConfiguration"] = assigned
        guest = dict(vm.get("guest") or {})
        if enabled == "absent":
            guest.pop("dhcpEnabled", None)
        else:
            guest["dhcpEnabled"] = enabled
        vm["guest"] = guest
    for policy in policies:
        assert engine.evaluate(PolicySet([policy]), vms) == [verdict.judge_one(policy, vm, vm) for vm in vms], policy.id


def test_vms_with_equal_arrays_are_judged_once(monkeypatch: Any, tmp_path: Any) -> None:
    """The DHCP policy reads the assignment list whole: VMs whose lists are equal share one judgement."""
    calls: list[str] = []
    judge = verdict.judge_one

    def counting(policy: Any, vm: dict[str, Any], facts: dict[str, Any]) -> Finding:
        calls.append(policy.id)
        return judge(policy, vm, facts)

    monkeypatch.setattr(engine, "judge_one", counting)
    listed = [{"name": "AzureBackupDhcpEnabled", "complianceStatus": "NonCompliant"}]
    vms = [{**vm, "machineConfiguration": [dict(a) for a in listed], "guest": {"dhcpEnabled": True},
            "powerState": "running", "unknownReasons": {}} for vm in VMS]
    found = engine.evaluate(PolicySet(counting_policies(tmp_path)), vms)
    assert {p: calls.count(p) for p in sorted(set(calls))} == dict.fromkeys(sorted({*COUNTING, "VMBK-DHCP-001"}), 1)
    assert {f.status for f in found if f.policy_id == "VMBK-DHCP-001"} == {"fail"}


def test_a_count_reads_its_array_whole_and_what_its_where_reads_outside_the_element() -> None:
    def reads(condition: dict[str, Any]) -> list[str] | None:
        found = compile_json(condition, paths=check_row_path).reads()
        return None if found is None else [p.text for p in found]

    nested = {"count": {"field": "row.items[*]", "where": {"allOf": [
        {"field": "row.items[*].name", "equals": "x"}, {"field": "row.owner", "exists": True},
        {"count": {"field": "row.items[*].checks[*]", "where": {"anyOf": [
            {"field": "row.items[*].checks[*].ok", "equals": False}, {"field": "row.region", "equals": "x"}]}},
         "greater": 0}]}}, "equals": 0}
    assert reads(nested) == ["row.items", "row.owner", "row.region"]  # the elements' own arrays are in row.items
    assert reads({"count": {"field": "row.items[*]"}, "less": 2}) == ["row.items"]
    assert reads({"allOf": [{"field": "row.a", "equals": 1}, {"not": {"count": {"field": "row.b[*]"}, "equals": 0}}]}) \
        == ["row.a", "row.b"]


def test_maps_in_another_key_order_are_not_shared(tmp_path: Any) -> None:
    """The evidence quotes an assignment list as it is, keys in their order: two such lists are two verdicts."""
    first = {"name": "AzureBackupDhcpEnabled", "complianceStatus": "NonCompliant"}
    vms = [{**vm, "machineConfiguration": [first if i % 2 else dict(reversed(first.items()))],
            "guest": {"dhcpEnabled": True}, "powerState": "running", "unknownReasons": {}} for i, vm in enumerate(VMS)]
    policy = next(p for p in UNGROUPED if p.id == "VMBK-DHCP-001")
    found = engine.evaluate(PolicySet([policy]), vms)
    assert found == [verdict.judge_one(policy, vm, vm) for vm in vms]
    assert len({f.evidence for f in found}) == 2


def test_plain_passes_are_held_as_numbers_and_kept_vms_findings_as_objects() -> None:
    """evaluate_held gives evaluate's findings with every plain pass (a pass with nothing more to say) held as its
    VM's number, never made, and every other finding as the object the engine made; a VM named in `keep` (one
    whose findings note_observations may change) has every finding an object, whatever it says."""
    kept_vm = VMS[5]["id"]
    for keep in (set(), {kept_vm.lower()}):
        held = engine.evaluate_held(POLICIES, VMS, keep=keep)
        found = list(held)
        assert found == engine.evaluate(POLICIES, VMS)
        objects = [f for f in found if not plain(f) or f.resource_id.lower() in keep]
        assert held.kept == objects, "exactly the findings that are not plain passes, and the kept VM's, are objects"
        assert [f for f in held.kept if plain(f)] == [f for f in found if f.resource_id.lower() in keep and plain(f)]
    assert {f.policy_id for f in held.kept if f.resource_id == kept_vm} == {p.id for p in POLICIES.policies}
    assert held.plain.count(PLAIN) == sum(map(plain, found)) - sum(
        plain(f) for f in found if f.resource_id == kept_vm) > len(found) // 2


@pytest.mark.parametrize("erring", [(0, 3), (3,)])
def test_a_verdict_that_is_an_error_is_never_shared(tmp_path: Any, erring: tuple[int, ...]) -> None:
    """A VM whose judgement is an error shares it with no other: the VMs with the same facts are judged again, each
    alone (the error may come from what the conditions do not read). A verdict that is no error is shared."""
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "p.json").write_text(json.dumps({
        "id": "MY-ERR-001", "title": "t", "cause": "vm-agent", "severity": "high", "remediation": "r",
        "assert": {"field": "powerState", "equals": "never"}, "message": "{name} fails"}))
    policy = load_policies([folder]).policies[0]
    vms = [{**vm, "powerState": "running", "unknownReasons": {}} for vm in VMS[:6]]
    names = [vm["name"] for vm in vms]
    calls: list[str] = []
    judge = verdict.judge_one

    def erring_on_some(policy: Any, vm: dict[str, Any], facts: dict[str, Any]) -> Finding:
        calls.append(vm["name"])
        if vm["name"] in {names[i] for i in erring}:
            return verdict.make_finding(policy, vm, "error", "evaluation error: boom")
        return judge(policy, vm, facts)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "judge_one", erring_on_some)
        found = engine.evaluate(PolicySet([policy]), vms)
    if 0 in erring:  # the first VM's verdict is an error: every other VM is judged alone
        assert calls == names
        assert [f.status for f in found] == ["error" if i in erring else "fail" for i in range(len(vms))]
    else:  # the first VM's verdict is shared by all: the VM that would err is never judged
        assert calls == names[:1]
        assert [f.status for f in found] == ["fail"] * len(vms)
    assert [f.message for f in found if f.status == "fail"] == [f"{f.resource_name} fails" for f in found
                                                                if f.status == "fail"]


def test_keys_of_plain_values_are_hashed_in_c(monkeypatch: Any) -> None:
    """The VMs' keys are numbered by their first VM in one pass in C; only a policy whose keys hold a list or a map
    (VMBK-DHCP-001 reads the assignment list) or a VM judged alone takes the slow path, one VM at a time."""
    slow: list[int] = []
    first = engine._first

    def counting(seen: dict[Any, int], key: tuple[Any, ...], i: int, alone: set[int]) -> int:
        slow.append(i)
        return first(seen, key, i, alone)

    monkeypatch.setattr(engine, "_first", counting)
    plain = [p for p in UNGROUPED if p.id in ("VMBK-POWER-001", "VMBK-AGENT-003", "VMBK-NET-001")]
    assert shared(VMS) == alone(VMS)  # every ungrouped policy, the DHCP policy's lists among them
    assert slow, "the assignment lists take the slow path"
    slow.clear()
    assert engine.evaluate(PolicySet(plain), VMS) == [verdict.judge_one(p, vm, vm) for p in plain for vm in VMS]
    assert slow == []
