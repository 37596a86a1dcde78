"""Probe output as Azure's Run Command returns it, and as files given to `--snapshot`.

No PowerShell here: the Windows script's output is tested on recorded Run Command results in the
documented shape (one status per stream, `ComponentStatus/StdOut/succeeded`); the Linux shape is
one message, `Enable succeeded: \\n[stdout]\\n...\\n[stderr]\\n...`.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from backup_preflight import demo, probes, scan
from backup_preflight.estate.guest import guest_types
from backup_preflight.report import console, markdown
from backup_preflight.results import Gate
from probes.test_linux_script import KEYS
from scan_helpers import policies

from arg import rid, snapshot_doc, vm_row
from cli_helpers import run

RECORDED = Path(__file__).parent / "recorded"
SQL_VM = ("/subscriptions/6a8c2a3e-0b1f-4c5e-9d2a-1f3b4c5d6e7f/resourceGroups/RG-SQL/providers/"
          "Microsoft.Compute/virtualMachines/")


def recorded(name: str) -> dict[str, Any] | None:
    statuses = json.loads((RECORDED / f"{name}.json").read_text())["value"]
    stdout, _ = probes.streams(statuses)
    return probes.parse_streams(stdout)


@pytest.mark.parametrize(("name", "expected"), [
    ("windows-sql-vss-copy", {"dhcpEnabled": True, "useVssCopyBackup": "TRUE", "iaasVmProviderService": "Automatic",
                              "storageReachable": True, "agentServiceState": "Running"}),
    ("windows-static-ip", {"dhcpEnabled": False, "useVssCopyBackup": False, "iaasVmProviderService": "Manual",
                           "httpProxy": "proxy.contoso.local:8080", "wireServerReachable": False}),
    ("windows-no-provider-yet", {"iaasVmProviderService": None, "storageReachable": None}),
])
def test_recorded_windows_results_parse_into_facts(name: str, expected: dict[str, Any]) -> None:
    doc = recorded(name)
    assert doc is not None and doc["os"] == "Windows"
    assert {k: doc[k] for k in expected} == expected
    row = probes.to_row(doc, SQL_VM + "override")
    assert row["id"] == SQL_VM + "override"  # the runner's id wins over the printed one
    assert row["collectedAt"] == doc["collectedAt"] and "vmId" not in row["facts"]


def test_a_blocked_script_prints_no_result_and_says_why() -> None:
    statuses = json.loads((RECORDED / "windows-blocked.json").read_text())["value"]
    stdout, stderr = probes.streams(statuses)
    assert probes.parse_streams(stdout) is None
    assert "running scripts is disabled" in stderr


def test_linux_run_command_message_is_split_into_streams() -> None:
    doc = {"probe": probes.MARKER, "vmId": "/x", "dhcpEnabled": True}
    message = f"Enable succeeded: \n[stdout]\n{json.dumps(doc)}\n\n[stderr]\nsh: 12: waagent: not found\n"
    stdout, stderr = probes.streams([{"code": "ProvisioningState/succeeded", "message": message}])
    assert probes.parse_streams(stdout) == doc
    assert stderr == "sh: 12: waagent: not found"


def test_both_scripts_print_the_same_keys_and_the_schema_types_them() -> None:
    ordered = probes.script("windows").split("[ordered]@{", 1)[1].split("} | ConvertTo-Json", 1)[0]
    windows_keys = set(re.findall(r"^\s+(\w+)\s+=", ordered, re.MULTILINE))
    assert windows_keys == KEYS
    assert KEYS - {"probe", "vmId", "collectedAt", "os"} <= set(guest_types())
    assert guest_types()["storageReachable"] == "boolean" and guest_types()["agentVersion"] == "string"


def test_probe_script_command_prints_the_shipped_scripts() -> None:
    for os_name in ("linux", "windows"):
        proc = run("probe-script", "--os", os_name)
        assert proc.returncode == 0 and proc.stdout == probes.script(os_name)
    assert run("probe-script", "--os", "macos").returncode == 2


def windows_sql_estate() -> dict[str, Any]:
    vm = vm_row("sql01", os="Windows", rg="RG-SQL")
    sql = {"id": rid("sqlvm", "sql01", "RG-SQL"), "type": "microsoft.sqlvirtualmachine/sqlvirtualmachines",
           "name": "sql01", "location": "westeurope", "properties": {"virtualMachineResourceId": vm["id"]}}
    return snapshot_doc([vm, sql])


def statuses_of(result: Any, vm_id: str) -> dict[str, str]:
    return {f.policy_id: f.status for f in result.findings if f.resource_id.lower() == vm_id.lower()}


def test_probe_output_files_are_guestfacts_rows(tmp_path: Path) -> None:
    doc = windows_sql_estate()
    vm_id = doc["tables"]["resources"][0]["id"]
    (tmp_path / "estate.json").write_text(json.dumps(doc))
    before = scan.run_scan(scan.snapshot_source([tmp_path / "estate.json"]), policies(), Gate())
    wanted = ("VMBK-DHCP-001", "VMBK-SQL-001", "VMBK-EXT-004")
    assert {statuses_of(before, vm_id)[p] for p in wanted} == {"unknown"}

    out = recorded("windows-sql-vss-copy")
    assert out is not None
    out["vmId"] = vm_id.upper()  # ids from the guest need not match ARG's case
    static = recorded("windows-static-ip")
    (tmp_path / "probes.json").write_text(json.dumps([out, static]))  # a list, as Ansible collects it
    source = scan.snapshot_source([tmp_path / "estate.json", tmp_path / "probes.json"])
    assert source.files[1]["format"] == "probe-output"
    after = scan.run_scan(source, policies(), Gate())
    assert {p: statuses_of(after, vm_id)[p] for p in wanted} == dict.fromkeys(wanted, "pass")

    (tmp_path / "one.json").write_text(json.dumps({**out, "useVssCopyBackup": "FALSE"}))  # one object
    single = scan.run_scan(scan.snapshot_source([tmp_path / "estate.json", tmp_path / "one.json"]), policies(),
                           Gate())
    assert statuses_of(single, vm_id)["VMBK-SQL-001"] == "fail"


def test_probe_output_without_a_vm_id_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "estate.json").write_text(json.dumps(windows_sql_estate()))
    out = recorded("windows-static-ip")
    assert out is not None
    (tmp_path / "probes.json").write_text(json.dumps([out, {**out, "vmId": None}]))
    proc = run("scan", "--snapshot", tmp_path / "estate.json", "--snapshot", tmp_path / "probes.json",
               "--output-dir", tmp_path / "out")
    assert proc.returncode == 2
    assert f"{tmp_path / 'probes.json'}: /1/vmId: probe output names no VM" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_reports_name_the_policies_waiting_for_in_guest_facts(tmp_path: Path) -> None:
    (tmp_path / "estate.json").write_text(json.dumps(windows_sql_estate()))
    proc = run("scan", "--snapshot", tmp_path / "estate.json", "--output-dir", tmp_path / "out")
    summary = (tmp_path / "out" / "summary.md").read_text()
    for text in (proc.stdout, summary):
        line = next(line for line in text.splitlines() if line.startswith("Unknown for want of in-guest facts"))
        assert "VMBK-DHCP-001 (1 VM), VMBK-EXT-004 (1 VM), VMBK-SQL-001 (1 VM)" in line
        assert "--probe-guest" in line and "probe-script --os" in line and "runCommand/action" in line

    vm_id = windows_sql_estate()["tables"]["resources"][0]["id"]
    out = recorded("windows-sql-vss-copy")
    assert out is not None
    (tmp_path / "probe.json").write_text(json.dumps({**out, "vmId": vm_id}))
    probed = run("scan", "--snapshot", tmp_path / "estate.json", "--snapshot", tmp_path / "probe.json",
                 "--output-dir", tmp_path / "out2")
    assert "in-guest facts" not in probed.stdout + (tmp_path / "out2" / "summary.md").read_text()


def test_a_probe_that_disagrees_with_the_network_model_is_noted_on_the_outbound_finding(tmp_path: Path) -> None:
    doc = demo.generate(40, seed=3, subscriptions=1)
    doc["tables"].pop("guestfacts", None)
    (tmp_path / "estate.json").write_text(json.dumps(doc))
    first = scan.run_scan(scan.snapshot_source([tmp_path / "estate.json"]), policies(), Gate())
    net = {f.resource_id: f for f in first.findings if f.policy_id == "VMBK-NET-001"}
    allowed = [vm for vm, f in net.items() if f.status == "pass"][:2]
    blocked = next(vm for vm, f in net.items() if f.status == "fail")
    rows = [{"probe": probes.MARKER, "vmId": allowed[0], "storageReachable": False,
             "storageEndpoint": "st1.blob.core.windows.net:443", "collectedAt": "2026-11-20T05:40:00Z"},
            {"probe": probes.MARKER, "vmId": allowed[1], "storageReachable": True},
            {"probe": probes.MARKER, "vmId": blocked, "storageReachable": True}]
    (tmp_path / "probes.json").write_text(json.dumps(rows))
    result = scan.run_scan(scan.snapshot_source([tmp_path / "estate.json", tmp_path / "probes.json"]),
                           policies(), Gate())
    after = {f.resource_id: f for f in result.findings if f.policy_id == "VMBK-NET-001"}

    odd = after[allowed[0]]
    assert odd.status == "pass"  # the verdict stays the model's; the disagreement is stated
    assert odd.annotations["observedInGuest"] == {"storageReachable": False, "agrees": False,
                                                 "endpoint": "st1.blob.core.windows.net:443",
                                                 "collectedAt": "2026-11-20T05:40:00Z"}
    assert "model allows outbound TCP 443" in odd.message and "st1.blob.core.windows.net:443 failed" in odd.message
    assert odd.evidence[-1].startswith("disagreement: in-guest probe at 2026-11-20T05:40:00Z")

    agreeing = after[allowed[1]]
    assert agreeing.annotations["observedInGuest"]["agrees"] is True and agreeing.message == ""

    reverse = after[blocked]
    assert reverse.status == "fail"
    assert reverse.evidence[:-1] == net[blocked].evidence  # the model's evidence, then the guest's
    assert "succeeded" in reverse.evidence[-1] and reverse.message.startswith(net[blocked].message)
    assert "egressDeviceDeclared=true" in reverse.message
    # The probe asked about 443 only: the 8443 policy is not annotated.
    assert not any("observedInGuest" in f.annotations for f in result.findings if f.policy_id == "VMBK-NET-002")
    # A pass that the guest contradicts would show nowhere but results.json: the summaries name it.
    console_text = io.StringIO()
    console.render(result, console_text)
    for text in (console_text.getvalue(), markdown.render(result)):
        line = next(x for x in text.splitlines() if "disagrees with the network model" in x)
        assert "on 2 outbound findings" in line
        assert f"{odd.resource_name} (VMBK-NET-001: model allows, the connect failed)" in line
        assert f"{reverse.resource_name} (VMBK-NET-001: model blocks, the connect succeeded)" in line
    assert "disagrees" not in markdown.render(first)
