"""groupBy on a list-valued field: a VM in several groups (an hourly backup in several slots)."""

import json
from pathlib import Path
from typing import Any

from backup_preflight.policy.engine import evaluate
from backup_preflight.policy.loader import load_policies


def vm(name: str, slots: list[str] | None, group: str = "g") -> dict[str, Any]:
    rid = f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/{name}"
    facts: dict[str, Any] = {"id": rid, "name": name, "subscriptionId": "s", "resourceGroup": "rg", "tags": {},
                             "placementGroup": group}
    if slots is not None:
        facts["backup"] = {"slots": slots}
    return facts


def judge(tmp: Path, vms: list[dict[str, Any]], maximum: int = 2) -> dict[str, Any]:
    (tmp / "p.json").write_text(json.dumps({
        "id": "T-SLOTS", "title": "t", "cause": "schedule-spread", "severity": "medium", "remediation": "r",
        "groupBy": ["placementGroup", "backup.slots"],
        "assert": {"field": "group.size", "lessOrEquals": maximum},
        "message": "{group.size} in {group.key}: {group.members}"}))
    return {f.resource_name: f for f in evaluate(load_policies([tmp]), vms)}


def test_a_vm_in_several_slots_is_judged_in_each_and_the_fullest_counts(tmp_path: Path) -> None:
    vms = [vm("hourly", ["08:00 UTC", "12:00 UTC", "16:00 UTC"]), vm("d12a", ["12:00 UTC"]),
           vm("d12b", ["12:00 utc"]), vm("d16", ["16:00 UTC"]), vm("other-group", ["12:00 UTC"], "h")]
    got = judge(tmp_path, vms)
    assert {n: f.status for n, f in got.items()} == {
        "hourly": "fail", "d12a": "fail", "d12b": "fail", "d16": "pass", "other-group": "pass"}
    assert got["hourly"].message == "3 in g / 12:00 UTC: hourly, d12a, d12b"  # spelled as its first member
    assert judge(tmp_path, vms, maximum=3)["hourly"].status == "pass"


def test_repeated_values_count_once_and_an_empty_list_is_unknown(tmp_path: Path) -> None:
    got = judge(tmp_path, [vm("twice", ["01:00 UTC", "01:00 utc", "01:00 UTC"]), vm("one", ["01:00 UTC"]),
                           vm("none", []), vm("missing", None)])
    assert got["twice"].status == "pass" and got["twice"].message == ""
    assert got["none"].status == got["missing"].status == "unknown"
    assert "backup.slots was not collected" in got["none"].message
