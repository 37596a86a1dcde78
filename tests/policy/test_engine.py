"""The engine: one finding per (policy, VM), statuses, groupBy, errors that do not stop the scan."""

import json
from pathlib import Path
from typing import Any

from backup_preflight.policy.engine import evaluate
from backup_preflight.policy.loader import load_policies
from backup_preflight.policy.parameters import parse_cli_params


def vm(name: str, **facts: Any) -> dict[str, Any]:
    return {"id": f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/{name}",
            "name": name, "subscriptionId": "s", "resourceGroup": "rg", "tags": {}, **facts}


def load(tmp: Path, *docs: dict[str, Any], params: list[str] | None = None) -> Any:
    for i, doc in enumerate(docs):
        base = {"title": "t", "cause": "vm-agent", "severity": "high", "message": "m {name}",
                "remediation": "r"}
        (tmp / f"p{i}.json").write_text(json.dumps({**base, **doc}))
    return load_policies([tmp], parse_cli_params(params or []))


def test_statuses_and_messages(tmp_path: Path) -> None:
    policies = load(tmp_path, {"id": "T-1", "applies": {"field": "powerState", "equals": "running"},
                               "assert": {"field": "agent.status", "equals": "Ready"}})
    vms = [vm("ok", powerState="running", agent={"status": "Ready"}),
           vm("bad", powerState="running", agent={"status": "Not Ready"}),
           vm("noview", powerState="running", agent={}),
           vm("off", powerState="deallocated", agent={}),
           vm("nopower", agent={})]
    got = {f.resource_name: f for f in evaluate(policies, vms)}
    assert {n: f.status for n, f in got.items()} == {
        "ok": "pass", "bad": "fail", "noview": "unknown", "off": "notApplicable", "nopower": "unknown"}
    assert got["bad"].message == "m bad"
    assert got["bad"].evidence == ('agent.status is "Not Ready": equals "Ready" does not hold',)
    assert "agent.status was not collected" in got["noview"].message
    assert "powerState was not collected" in got["nopower"].message


def test_group_by_fails_every_member_of_an_oversized_group(tmp_path: Path) -> None:
    policies = load(tmp_path, {
        "id": "T-SCHED", "cause": "schedule-spread",
        "parameters": {"key": {"type": "field", "default": "placementGroup"},
                       "max": {"type": "integer", "default": 2}},
        "groupBy": [{"parameter": "key"}, "backup.slots"],
        "assert": {"field": "group.size", "lessOrEquals": {"parameter": "max"}},
        "message": "{group.size} VMs in {group.key}: {group.members}"})
    vms = [vm(f"a{i}", placementGroup="avset-a", backup={"slots": ["02:00 UTC"]}) for i in range(3)]
    vms += [vm("b1", placementGroup="avset-a", backup={"slots": ["03:00 UTC"]}),
            vm("c1", placementGroup="AVSET-A", backup={"slots": ["03:00 utc"]}),
            vm("nobackup", placementGroup="avset-a")]
    got = {f.resource_name: f for f in evaluate(policies, vms)}
    assert [got[f"a{i}"].status for i in range(3)] == ["fail"] * 3
    assert got["a0"].message == "3 VMs in avset-a / 02:00 UTC: a0, a1, a2"
    assert got["b1"].status == got["c1"].status == "pass"   # keys compare case-insensitively
    assert got["nobackup"].status == "unknown"
    # the same estate passes when the maximum is raised
    raised = load(tmp_path, params=["max=3"])
    assert {f.status for f in evaluate(raised, vms) if f.resource_name != "nobackup"} == {"pass"}


def test_an_error_on_one_vm_does_not_stop_the_scan(tmp_path: Path) -> None:
    policies = load(tmp_path, {"id": "T-1", "assert": {"field": "osType", "equals": "Linux"}})

    class Exploding(dict):
        def __getitem__(self, key: str) -> Any:
            if key == "osType" and self.get("explode"):
                raise RuntimeError("boom")
            return super().__getitem__(key)

    broken = Exploding(vm("vm-x", osType="Linux"))
    broken["explode"] = True
    findings = evaluate(policies, [vm("vm-a", osType="Linux"), broken, vm("other", osType="Windows")])
    assert [f.status for f in findings] == ["pass", "error", "fail"]
    assert "RuntimeError: boom" in findings[1].message


def test_shared_verdicts_keep_each_vms_identity_and_never_conflate_types(tmp_path: Path) -> None:
    policies = load(tmp_path, {"id": "T-1", "assert": {"field": "agent.provisioned", "equals": True},
                               "message": "agent off on {name}"})
    vms = [vm("a", agent={"provisioned": False}), vm("b", agent={"provisioned": False}),
           vm("c", agent={"provisioned": True}), vm("d", agent={"provisioned": 1}), vm("e", agent={})]
    got = {f.resource_name: f for f in evaluate(policies, vms)}
    assert {n: f.status for n, f in got.items()} == {"a": "fail", "b": "fail", "c": "pass", "d": "fail",
                                                     "e": "unknown"}
    assert (got["a"].message, got["b"].message) == ("agent off on a", "agent off on b")
    assert got["b"].resource_id.endswith("/b") and got["a"].evidence == got["b"].evidence


SCHED: dict[str, Any] = {
    "id": "T-SCHED", "cause": "schedule-spread",
    "applies": {"field": "powerState", "equals": "running"},
    "groupBy": ["placementGroup", "backup.scheduleTime"],
    "assert": {"field": "group.size", "lessOrEquals": 1},
    "message": "{group.size} in {group.key}: {group.members}"}


def test_group_by_judges_applicability_first_and_names_a_missing_key(tmp_path: Path) -> None:
    policies = load(tmp_path, SCHED)
    vms = [vm("a", powerState="running", placementGroup="pg", backup={"scheduleTime": "01:00"}),
           vm("b", powerState="running", placementGroup="PG", backup={"scheduleTime": "01:00"}),
           vm("off", powerState="deallocated", placementGroup="pg", backup={"scheduleTime": "01:00"}),
           vm("nopower", placementGroup="pg", backup={"scheduleTime": "01:00"}),
           vm("noslot", powerState="running", placementGroup="pg", backup={}),
           vm("nullslot", powerState="running", placementGroup=None, backup={"scheduleTime": None}),
           vm("alone", powerState="running", placementGroup="other", backup={"scheduleTime": "01:00"})]
    got = {f.resource_name: f for f in evaluate(policies, vms)}
    assert {n: f.status for n, f in got.items()} == {
        "a": "fail", "b": "fail", "off": "notApplicable", "nopower": "unknown", "noslot": "unknown",
        "nullslot": "unknown", "alone": "pass"}
    assert got["a"].message == got["b"].message == "2 in pg / 01:00: a, b"
    assert got["a"].evidence == ("group.size is 2: lessOrEquals 1 does not hold",)
    assert got["nopower"].message == "Not assessed (whether the policy applies): powerState was not collected"
    assert got["noslot"].message == "Not assessed: the group key backup.scheduleTime was not collected"
    assert got["noslot"].evidence == ("backup.scheduleTime was not collected",)
    assert got["nullslot"].message == ("Not assessed: the group key placementGroup, backup.scheduleTime "
                                       "was not collected")
    assert got["nullslot"].evidence == ("placementGroup was not collected", "backup.scheduleTime was not collected")
    assert [f.resource_name for f in evaluate(policies, vms)] == [v["name"] for v in vms]  # input order kept


def test_group_members_are_the_same_object_for_every_member(tmp_path: Path) -> None:
    unconditional = {k: v for k, v in SCHED.items() if k != "applies"}
    policies = load(tmp_path, {**unconditional, "assert": {"field": "group.members", "equals": ["x"]}})
    vms = [vm(n, placementGroup="pg", backup={"scheduleTime": "s"}) for n in ("x", "y")]
    got = evaluate(policies, vms)
    assert [f.status for f in got] == ["fail", "fail"]
    assert got[0].evidence == got[1].evidence == ('group.members is ["x", "y"]: equals ["x"] does not hold',)


def test_an_error_while_deciding_applicability_of_a_grouped_policy_is_that_vms_error(tmp_path: Path) -> None:
    policies = load(tmp_path, SCHED)

    class Exploding(dict):
        def __getitem__(self, key: str) -> Any:
            if key == "powerState":
                raise RuntimeError("boom")
            return super().__getitem__(key)

    vms = [Exploding(vm("x", powerState="running", placementGroup="pg", backup={"scheduleTime": "s"})),
           vm("y", powerState="running", placementGroup="pg", backup={"scheduleTime": "s"})]
    got = evaluate(policies, vms)
    assert [f.status for f in got] == ["error", "pass"]
    assert got[0].message == "evaluation error: RuntimeError: boom"


def test_unhashable_facts_are_judged_one_by_one_and_errors_are_not_shared(tmp_path: Path) -> None:
    policies = load(tmp_path, {"id": "T-1", "assert": {"field": "agent.version", "equals": "1"},
                               "message": "old {name}"})
    vms = [vm("a", agent={"version": ["1"]}), vm("b", agent={"version": ["1"]}), vm("c", agent={"version": "1"}),
           vm("d", agent={"version": "1"}), vm("e", agent={"version": 2})]
    got = {f.resource_name: f for f in evaluate(policies, vms)}
    assert {n: f.status for n, f in got.items()} == {"a": "fail", "b": "fail", "c": "pass", "d": "pass",
                                                     "e": "fail"}
    assert (got["a"].message, got["b"].message) == ("old a", "old b")
    assert got["d"].resource_id.endswith("/d") and got["d"].subscription_id == "s" and got["d"].resource_group == "rg"


def test_list_facts_that_python_finds_equal_but_json_does_not_are_not_shared(tmp_path: Path) -> None:
    """[1], [true] and [1.0] are equal in Python and hash alike; a list is keyed by its frozen form, which keeps
    each item's type, so each VM's evidence shows its own value."""
    policies = load(tmp_path, {"id": "T-1", "assert": {"field": "agent.version", "equals": "1"}})
    vms = [vm("a", agent={"version": [1]}), vm("b", agent={"version": [True]}), vm("c", agent={"version": [1.0]}),
           vm("d", agent={"version": [True]})]
    got = {f.resource_name: f.evidence for f in evaluate(policies, vms)}
    shown = {"a": "[1]", "b": "[true]", "c": "[1.0]", "d": "[true]"}
    assert got == {n: (f'agent.version is {v}: equals "1" does not hold',) for n, v in shown.items()}


def test_an_unknown_verdict_without_a_reason_still_says_so(tmp_path: Path) -> None:
    policies = load(tmp_path, {"id": "T-1", "assert": {"value": 1, "greater": "a"}})
    [finding] = evaluate(policies, [vm("a")])
    assert finding.status == "unknown"
    assert finding.message == ('Not assessed (the assertion): value 1 is 1, which cannot be compared by greater '
                               'with "a"')
    assert finding.evidence == ('value 1 is 1, which cannot be compared by greater with "a"',)


class Counting(dict):
    """A VM's facts that count how often each top-level fact is read."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.reads: dict[str, int] = {}

    def __getitem__(self, key: str) -> Any:
        self.reads[key] = self.reads.get(key, 0) + 1
        return super().__getitem__(key)


def test_vms_with_the_same_facts_share_one_judgement(tmp_path: Path) -> None:
    policies = load(tmp_path, {"id": "T-1", "assert": {"field": "osType", "equals": "Windows"},
                               "message": "not Windows: {name}"})
    first, second = Counting(vm("a", osType="Linux")), Counting(vm("b", osType="Linux"))
    got = evaluate(policies, [first, second])
    assert [(f.status, f.message) for f in got] == [("fail", "not Windows: a"), ("fail", "not Windows: b")]
    assert got[0].evidence == got[1].evidence == ('osType is "Linux": equals "Windows" does not hold',)
    assert second.reads["osType"] == 1 < first.reads["osType"]   # b: only read to find a's verdict


def test_findings_carry_the_policy_and_the_vm_and_only_failures_have_a_message(tmp_path: Path) -> None:
    policies = load(tmp_path, {"id": "T-1", "severity": "medium", "cause": "guest-dhcp",
                               "applies": {"field": "powerState", "equals": "running"},
                               "assert": {"field": "osType", "equals": "Linux"}})
    vms = [vm("a", powerState="running", osType="Linux"), vm("b", powerState="running", osType="Linux"),
           vm("c", powerState="stopped"), vm("d", powerState="stopped"), vm("e", powerState="running"),
           vm("f", powerState="running")]
    got = evaluate(policies, vms)
    assert {(f.policy_id, f.severity, f.cause) for f in got} == {("T-1", "medium", "guest-dhcp")}
    assert [(f.status, f.message) for f in got[:4]] == [("pass", ""), ("pass", ""), ("notApplicable", ""),
                                                        ("notApplicable", "")]
    assert got[4].message == got[5].message == "Not assessed (the assertion): osType was not collected"


def test_unknown_applicability_says_why_even_when_the_fact_was_collected(tmp_path: Path) -> None:
    for extra in ({}, {"groupBy": ["placementGroup"]}):
        policies = load(tmp_path, {"id": "T-1", "applies": {"field": "powerState", "greater": 5},
                                   "assert": {"field": "osType", "equals": "Linux"}, **extra})
        [finding] = evaluate(policies, [vm("a", powerState="running", placementGroup="pg")])
        assert finding.message == ('Not assessed (whether the policy applies): powerState is "running", which '
                                   'cannot be compared by greater with 5'), extra


def test_two_missing_facts_are_both_named(tmp_path: Path) -> None:
    policies = load(tmp_path, {"id": "T-1", "assert": {"anyOf": [{"field": "osType", "equals": "Linux"},
                                                                 {"field": "vmSize", "equals": "x"}]}})
    [finding] = evaluate(policies, [vm("a")])
    assert finding.message == "Not assessed (the assertion): osType was not collected; vmSize was not collected"


def test_group_keys_that_are_not_text_are_kept_as_they_are(tmp_path: Path) -> None:
    policy = {**{k: v for k, v in SCHED.items() if k != "applies"}, "groupBy": ["backup.scheduleTime"]}
    got = evaluate(load(tmp_path, policy), [vm("a", backup={"scheduleTime": 1}), vm("b", backup={"scheduleTime": 1}),
                                            vm("c", backup={"scheduleTime": "1"})])
    assert [f.status for f in got] == ["fail", "fail", "pass"]


def test_every_query_policy_is_judged_even_after_one_not_collected(tmp_path: Path) -> None:
    from backup_preflight.snapshot import query_key

    first = {"id": "Q-1", "target": "resourceGraphQuery", "query": "resources | project id",
             "assert": {"field": "row.id", "exists": True}, "message": "m"}
    second = {**first, "id": "Q-2", "query": "resources | project id, name"}
    rows = [{"id": "plain"}, {"id": "/x/ab"}, {"id": "/x/a_1"}, {"name": "anonymous"}]
    got = evaluate(load(tmp_path, first, second), [], {query_key(second["query"]): {"rows": rows}})
    key = query_key(second["query"])[:16]
    assert [(f.policy_id, f.resource_id, f.resource_name) for f in got] == [
        ("Q-1", f"query:{query_key(first['query'])[:16]}", "Q-1 query"),
        ("Q-2", "/x/a_1", "a_1"), ("Q-2", "/x/ab", "ab"), ("Q-2", "plain", "plain"),
        ("Q-2", f"query:{key}/3", "anonymous")]


def test_equal_evidence_and_messages_are_kept_once_however_many_vms_give_them(tmp_path: Path) -> None:
    # VMs with reasons are judged one by one, so each builds its own evidence and message; a scan keeps
    # every finding, so equal ones must be one object (docs/performance.md), and nothing outlives the run.
    from backup_preflight.policy import verdict

    policies = load(tmp_path, {"id": "T-1", "assert": {"field": "agent.status", "equals": "Ready"},
                               "message": "agent of {location}"})
    reasons = {"agent.status": "the instance view was not collected"}
    vms = [vm(f"u{i}", agent={}, reasons=dict(reasons), location="westeurope") for i in range(3)]
    vms += [vm(f"f{i}", agent={"status": "Not Ready"}, reasons={"x": "y"}, location="westeurope") for i in range(3)]
    got = evaluate(policies, vms)
    unknown, failed = got[:3], got[3:]
    assert [f.status for f in unknown] == ["unknown"] * 3 and [f.status for f in failed] == ["fail"] * 3
    for same in (unknown, failed):
        assert len({id(f.evidence) for f in same}) == len({id(f.message) for f in same}) == 1
        assert same[0].evidence and same[0].message
    assert verdict.EVIDENCE == {}
