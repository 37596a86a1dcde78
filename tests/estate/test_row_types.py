"""Facts read from rows are checked against their types (issues 10 and 11): the crash sites a type fuzz
found, guest facts against facts.schema.json, instance-view nestings, ids in two letter cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from backup_preflight import snapshot
from backup_preflight.errors import InputError
from backup_preflight.estate import build_estate
from backup_preflight.findings import Finding
from backup_preflight.policy.engine import evaluate
from backup_preflight.policy.loader import bundled_policy_dir, load_policies

from arg import (
    SUB,
    backup_policy_v1,
    facts_by_name,
    instance_view,
    protected_item,
    rest_body,
    rid,
    snapshot_doc,
    to_arg,
    vm_row,
)
from cli_helpers import run


def judge(doc: dict[str, Any], policy_id: str) -> dict[str, Finding]:
    loaded = load_policies([bundled_policy_dir()])
    loaded.policies = [p for p in loaded.policies if p.id == policy_id]
    found = evaluate(loaded, build_estate(snapshot.from_document(doc, "t")).vms)
    assert all(f.status != "error" for f in found), [f.message for f in found]
    return {f.resource_name: f for f in found}


def sql_vm(name: str) -> list[dict[str, Any]]:
    vm = vm_row(name, os="Windows")
    sql = {"id": rid("sqlvm", name), "type": "microsoft.sqlvirtualmachine/sqlvirtualmachines", "name": name,
           "subscriptionId": SUB, "resourceGroup": "rg-app", "properties": {"virtualMachineResourceId": vm["id"]}}
    return [vm, sql]


# --- the crash sites of issue 11 -----------------------------------------------------------------


def test_resource_group_a_number_is_read_from_the_id_with_a_reason() -> None:
    vm = vm_row("vm1")
    vm["resourceGroup"] = 5
    f = facts_by_name(snapshot_doc([vm]))["vm1"]
    assert f["resourceGroup"] == "rg-app"
    assert f["unknownReasons"]["resourceGroup"] == (
        "the VM's resources row: resourceGroup is a number, expected a string")


@pytest.mark.parametrize("vm_agent", ["Ready", 5, ["Ready"], None])
def test_vm_agent_not_an_object(vm_agent: Any) -> None:
    vm = vm_row("vm1", provision=None)
    view = instance_view(vm["id"])
    view["instanceView"]["vmAgent"] = vm_agent
    doc = snapshot_doc([vm], instanceviews=[view], recoveryservicesresources=[])
    f = facts_by_name(doc)["vm1"]
    assert "version" not in f["agent"] and "installed" not in f["agent"]
    status = judge(doc, "VMBK-AGENT-002")["vm1"]
    assert status.status == "unknown"
    if vm_agent is not None:  # null is "not reported"; any other type is named
        assert "the VM's instanceviews row: vmAgent is " in status.message and "expected an object" in status.message


def test_ip_configurations_a_number_is_unknown() -> None:
    nic = to_arg(rest_body("NetworkInterfaceGet"))
    nic["properties"]["ipConfigurations"] = 5
    vm = vm_row("vm1", nics=[nic["id"]])
    doc = snapshot_doc([vm, nic])
    assert facts_by_name(doc)["vm1"]["nics"][0].get("subnetId") is None
    found = judge(doc, "VMBK-NET-001")["vm1"]
    assert found.status == "unknown" and "ipConfigurations is not an array" in found.message


def metrics_doc(cpu: list[dict[str, Any]] | Any) -> dict[str, Any]:
    vm = vm_row("vm1")
    policy = backup_policy_v1(time="2018-01-24T02:00:00Z", zone="UTC")
    metrics = [{"id": vm["id"], "name": "Percentage CPU", "data": cpu}]
    return snapshot_doc([vm], recoveryservicesresources=[protected_item(vm["id"], policy["id"]), policy],
                        metrics=metrics)


@pytest.mark.parametrize("data", [5, "x", [5], [{"timeStamp": 7, "maximum": 50.0}]])
def test_metric_data_of_the_wrong_type_is_unknown(data: Any) -> None:
    doc = metrics_doc(data)
    f = facts_by_name(doc)["vm1"]
    assert "cpuPeakPercent" not in f["pressure"]
    found = judge(doc, "VMBK-PERF-001")["vm1"]
    assert found.status == "unknown" and "the VM's metrics 'Percentage CPU' row: " in found.message


def test_a_string_maximum_is_unknown_never_the_average() -> None:
    doc = metrics_doc([{"timeStamp": "2026-11-19T02:00:00Z", "average": 20.0, "maximum": "99.5"},
                       {"timeStamp": "2026-11-18T02:00:00Z", "average": 10.0, "maximum": 30.0}])
    assert "cpuPeakPercent" not in facts_by_name(doc)["vm1"]["pressure"]
    found = judge(doc, "VMBK-PERF-001")["vm1"]
    assert found.status == "unknown"
    assert "data[0].maximum is a string, expected a number" in found.message


def test_minimum_and_maximum_differ_and_the_right_end_is_taken() -> None:
    vm = vm_row("vm1")
    policy = backup_policy_v1(time="2018-01-24T02:00:00Z", zone="UTC")
    series = [{"id": vm["id"], "name": "Percentage CPU", "data": [
                  {"timeStamp": "2026-11-19T02:00:00Z", "minimum": 5.0, "average": 40.0, "maximum": 95.5},
                  {"timeStamp": "2026-11-19T04:00:00Z", "minimum": 5.0, "average": 40.0, "maximum": 99.0}]},
              {"id": vm["id"], "name": "Available Memory Percentage", "data": [
                  {"timeStamp": "2026-11-19T02:00:00Z", "minimum": 4.0, "average": 30.0, "maximum": 60.0},
                  {"timeStamp": "2026-11-18T02:00:00Z", "minimum": None, "average": 50.0}]}]
    doc = snapshot_doc([vm], recoveryservicesresources=[protected_item(vm["id"], policy["id"]), policy],
                       metrics=series)
    pressure = facts_by_name(doc)["vm1"]["pressure"]
    assert (pressure["cpuPeakPercent"], pressure["memoryPeakPercent"], pressure["samples"]) == (95.5, 96.0, 2)


def test_lone_surrogate_in_a_name_does_not_crash() -> None:
    vm = vm_row("vm1")
    vm["name"] = "vm-\ud800"
    vm["tags"] = {"owner": "\udfff", "cost": 5}
    doc = snapshot_doc([vm])
    f = facts_by_name(doc)["vm-\ud800"]
    assert f["tags"] == {"owner": "\udfff"}
    assert "tags.cost is a number" in f["unknownReasons"]["tags.cost"]
    assert judge(doc, "VMBK-POWER-001")["vm-\ud800"].status == "pass"


# --- agent and guest facts (issue 10) -----------------------------------------------------------


def test_agent_without_provision_flag_is_installed_when_the_instance_view_reports_a_version() -> None:
    vms = [vm_row("reports", provision=None), vm_row("unknown-version", provision=None),
           vm_row("noview", provision=None), vm_row("off", provision=False), vm_row("by-hand", provision=False)]
    views = [instance_view(vms[0]["id"], agent_version="2.2.54.2"),
             instance_view(vms[1]["id"], agent_version="Unknown", status="Not Ready"),
             instance_view(vms[3]["id"], agent_version="Unknown", status="Not Ready"),
             instance_view(vms[4]["id"], agent_version="2.7.41491.1102")]
    doc = snapshot_doc(vms, instanceviews=views)
    f = facts_by_name(doc)
    assert f["reports"]["agent"]["installed"] is True
    assert "reports version 2.2.54.2" in f["reports"]["agent"]["installedFrom"]
    found = judge(doc, "VMBK-AGENT-001")
    assert {n: x.status for n, x in found.items()} == {
        "reports": "pass", "unknown-version": "unknown", "noview": "unknown", "off": "fail", "by-hand": "pass"}


@pytest.mark.parametrize(("value", "expected"), [
    (True, "pass"), ("TRUE", "pass"), ("1", "pass"), ("true", "pass"), (False, "fail"), ("FALSE", "fail"),
    ("0", "fail"), (None, "unknown"), (1, "unknown"), ("yes", "unknown"), ([True], "unknown"),
])
def test_use_vss_copy_backup_forms(value: Any, expected: str) -> None:
    rows = sql_vm("sql1")
    guest = [{"id": rows[0]["id"], "facts": {"useVssCopyBackup": value}}]
    found = judge(snapshot_doc(rows, guestfacts=guest), "VMBK-SQL-001")["sql1"]
    assert found.status == expected
    if expected == "unknown" and value is not None:
        assert "the VM's guestfacts row: facts.useVssCopyBackup is" in found.message


def test_null_guest_facts_are_not_reported_and_never_compare() -> None:
    vm = vm_row("vm1")
    guest = [{"id": vm["id"], "facts": {"dhcpEnabled": None, "httpProxy": None, "iaasVmProviderService": None}}]
    doc = snapshot_doc([vm], guestfacts=guest, guestconfigurationresources=[])
    assert facts_by_name(doc)["vm1"]["guest"] == {}
    assert judge(doc, "VMBK-DHCP-001")["vm1"].status == "unknown"
    guest[0]["facts"] = {"dhcpEnabled": "false"}
    assert judge(snapshot_doc([vm], guestfacts=guest, guestconfigurationresources=[]),
                 "VMBK-DHCP-001")["vm1"].status == "fail"


def test_guest_facts_not_an_object_is_unknown_with_the_row_named() -> None:
    rows = sql_vm("sql1")
    found = judge(snapshot_doc(rows, guestfacts=[{"id": rows[0]["id"], "facts": ["TRUE"]}]), "VMBK-SQL-001")
    assert found["sql1"].status == "unknown"
    assert "the VM's guestfacts row: facts is an array, expected an object" in found["sql1"].message


# --- instance-view nestings ----------------------------------------------------------------------


def _expand_body(vm: dict[str, Any]) -> dict[str, Any]:
    """The VM as `GET ...?$expand=instanceView` returns it: the instance view under properties."""
    view = rest_body("VirtualMachine_Get_InstanceView")
    return {"id": vm["id"], "name": vm["name"], "type": "Microsoft.Compute/virtualMachines",
            "location": "westeurope", "properties": {**vm["properties"], "instanceView": view}}


def _az_get_instance_view(vm: dict[str, Any]) -> dict[str, Any]:
    """`az vm get-instance-view` output: the VM with its properties flattened, instanceView at the top."""
    view = rest_body("VirtualMachine_Get_InstanceView")
    return {"id": vm["id"], "name": vm["name"], "type": "Microsoft.Compute/virtualMachines",
            "resourceGroup": "RG-App", "hardwareProfile": {"vmSize": "Standard_D2s_v3"}, "instanceView": view}


@pytest.mark.parametrize("shape", [_expand_body, _az_get_instance_view])
def test_instance_view_nestings_are_read(shape: Any) -> None:
    vm = vm_row("vm1", power=None)
    f = facts_by_name(snapshot_doc([vm], instanceviews=[shape(vm)]))["vm1"]
    assert f["instanceViewCollected"] is True and f["powerState"] == "running"
    assert f["agent"]["version"] == "2.7.41491.949" and f["agent"]["status"] == "Ready"


def test_a_vm_row_fetched_with_expand_carries_its_own_instance_view() -> None:
    vm = vm_row("vm1", power=None)
    f = facts_by_name(snapshot_doc([_expand_body(vm) | {"type": "microsoft.compute/virtualmachines"}]))["vm1"]
    assert f["instanceViewCollected"] is True and f["agent"]["version"] == "2.7.41491.949"


@pytest.mark.parametrize("row", [
    {"instanceView": None}, {"instanceView": "Ready"}, {"vmAgent": {"vmAgentVersion": "2.7.1"}},
    {"properties": {"instanceView": []}}, {},
])
def test_an_unrecognised_instance_view_shape_is_an_input_error(row: dict[str, Any]) -> None:
    vm = vm_row("vm1")
    with pytest.raises(InputError) as caught:
        snapshot.from_document(snapshot_doc([vm], instanceviews=[{"id": vm["id"], **row}]), "snap.json")
    [problem] = caught.value.problems
    assert (problem.file, problem.place) == ("snap.json", "/tables/instanceviews/0")
    assert vm["id"] in problem.reason and "none of the known shapes" in problem.reason


def test_unrecognised_instance_view_exits_2_naming_file_and_row(tmp_path: Path) -> None:
    vm = vm_row("vm1")
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(snapshot_doc([vm], instanceviews=[instance_view(vm["id"]), {"id": vm["id"]}])))
    proc = run("scan", "--snapshot", path, "--output-dir", tmp_path / "out")
    assert proc.returncode == 2
    assert "snap.json" in proc.stderr and "/tables/instanceviews/1" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "results.json").exists()


# --- ids in two letter cases ---------------------------------------------------------------------


def test_one_vm_id_in_two_letter_cases_within_one_file_is_one_vm() -> None:
    vm = vm_row("vm1")
    again = json.loads(json.dumps(vm))
    again["id"] = vm["id"].upper()
    again["properties"]["hardwareProfile"]["vmSize"] = "Standard_E8s_v5"
    vms = build_estate(snapshot.from_document(snapshot_doc([vm, again]), "t")).vms
    assert len(vms) == 1 and vms[0]["vmSize"] == "Standard_E8s_v5"  # the later row, as in a merge
    metrics = [{"id": vm["id"], "name": "Percentage CPU", "data": [{"timeStamp": "2026-11-19T02:00:00Z",
                                                                   "maximum": 10.0}]},
               {"id": vm["id"].lower(), "name": "percentage cpu", "data": [{"timeStamp": "2026-11-19T02:00:00Z",
                                                                          "maximum": 20.0}]}]
    policy = backup_policy_v1(time="2018-01-24T02:00:00Z", zone="UTC")
    doc = snapshot_doc([vm], recoveryservicesresources=[protected_item(vm["id"], policy["id"]), policy],
                       metrics=metrics)
    assert facts_by_name(doc)["vm1"]["pressure"]["samples"] == 1
