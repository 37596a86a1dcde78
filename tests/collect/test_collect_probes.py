"""`--probe-guest`: the probe through the real azure-mgmt-compute `begin_run_command` and its poller,
against the fake Azure's Run Command operation (202, Azure-AsyncOperation, Azure's message format).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import msgspec

from backup_preflight import probes
from backup_preflight.collect import ProbeSettings, Tuning
from backup_preflight.report import schemas
from collect.fakeazure import Estate, Fault, GuestProbe, make_estate, subscription_ids
from collect.test_cli_live import demo_estate, sign_in
from probes.test_linux_script import DYNAMIC_ADDR, connect_stub, ip_stub
from probes.test_probe_outputs import RECORDED
from results_helpers import findings_of

from cli_helpers import run as run_cli

FAST = Tuning(backoff_base=0.5, backoff_cap=2.0)


def vm_rows(estate: Estate) -> list[dict[str, Any]]:
    return [r for r in estate.tables["resources"] if r["type"] == "microsoft.compute/virtualmachines"]


def power_code(row: dict[str, Any]) -> str | None:
    view = (row["properties"].get("extended") or {}).get("instanceView") or {}
    return (view.get("powerState") or {}).get("code")


def running(estate: Estate) -> list[str]:
    return [r["id"] for r in vm_rows(estate) if power_code(r) == "PowerState/running"]


def make_windows(estate: Estate, vm_id: str) -> None:
    row = next(r for r in vm_rows(estate) if r["id"] == vm_id)
    row["properties"]["storageProfile"]["osDisk"]["osType"] = "Windows"


def output(vm_id: str, **facts: Any) -> str:
    return json.dumps({"probe": probes.MARKER, "vmId": vm_id, "collectedAt": "2026-11-29T06:00:00Z",
                       "dhcpEnabled": True, "storageReachable": True, **facts})


def settings(**kwargs: Any) -> ProbeSettings:
    return ProbeSettings(**{"poll_interval": 0.01, "timeout": 20.0, **kwargs})


def test_running_vms_are_probed_with_the_script_of_their_os(serve: Any, run: Any) -> None:
    subs = subscription_ids(1)
    estate = make_estate(6, subs)
    linux, windows, other = running(estate)
    make_windows(estate, windows)
    estate.guest_probes[linux.lower()] = GuestProbe(stdout=output(linux, dhcpEnabled=False), polls=2,
                                                    stderr="sh: 1: waagent: not found")
    estate.guest_probes[windows.lower()] = GuestProbe(
        stdout="WARNING: profile\n" + output(windows, useVssCopyBackup="TRUE"), windows=True)
    estate.guest_probes[other.lower()] = GuestProbe(stdout=output("/printed/elsewhere"))
    fake = serve(estate)
    snap, collector = run(fake, subscriptions=subs, tuning=FAST,
                          probe=settings(storage_host="st{region}.blob.core.windows.net"))

    assert snap.errors == []
    rows = {r["id"]: r for r in snap.tables["guestfacts"]}
    assert list(rows) == [linux, windows, other]  # ids as ARG wrote them: the runner's, not the printed one
    assert rows[linux]["facts"]["dhcpEnabled"] is False
    assert rows[windows]["facts"]["useVssCopyBackup"] == "TRUE"
    assert rows[linux]["collectedAt"] == "2026-11-29T06:00:00Z"
    posts = {r.path.split("?")[0].rsplit("/", 2)[1]: r.body for r in fake.run_requests(status=202)}
    assert len(posts) == 3  # deallocated VMs are never probed
    win_body = posts[windows.rsplit("/", 1)[1]]
    lin_body = posts[linux.rsplit("/", 1)[1]]
    assert win_body["commandId"] == "RunPowerShellScript" and lin_body["commandId"] == "RunShellScript"
    assert f"$env:BP_VM_ID = '{windows}'" in win_body["script"]
    assert f"BP_VM_ID='{linux}'; export BP_VM_ID" in lin_body["script"]
    assert "BP_STORAGE_HOST='stwesteurope.blob.core.windows.net'; export BP_STORAGE_HOST" in lin_body["script"]
    assert "\n".join(lin_body["script"]).endswith("export BP_STORAGE_HOST\n" + probes.script("linux"))
    assert collector.stats.probe_requests == 3
    jsonschema.validate(msgspec.json.decode(msgspec.json.encode(snap.to_document())),
                        json.loads(schemas.text("snapshot")))


def test_vms_where_the_probe_cannot_run_are_coverage_errors_naming_them(serve: Any, run: Any) -> None:
    subs = subscription_ids(1)
    estate = make_estate(10, subs)
    conflict, failed, stuck, silent, fine = running(estate)
    estate.guest_probes.update({
        conflict.lower(): GuestProbe(conflict=True),
        failed.lower(): GuestProbe(fail=("VMAgentStatusCommunicationError", "VM 'vm000002' has not reported status "
                                         "for VM agent or extensions.")),
        stuck.lower(): GuestProbe(never_finishes=True),
        silent.lower(): GuestProbe(stdout="", stderr="sh: 1: Syntax error: end of file unexpected"),
        fine.lower(): GuestProbe(stdout=output(fine)),
    })
    fake = serve(estate)
    snap, _ = run(fake, subscriptions=subs, tuning=FAST, probe=settings(timeout=1.0))

    assert [r["id"] for r in snap.tables["guestfacts"]] == [fine]
    errors = {e["scope"]: e for e in snap.errors}
    assert set(errors) == {f"vm {vm}" for vm in (conflict, failed, stuck, silent)}
    assert all(e["table"] == "guestfacts" for e in errors.values())
    assert errors[f"vm {conflict}"]["status"] == 409 and "in progress" in errors[f"vm {conflict}"]["message"]
    assert "Run Command failed: VMAgentStatusCommunicationError" in errors[f"vm {failed}"]["message"]
    assert "vm-agent cause" in errors[f"vm {failed}"]["message"]
    assert "no result within 1 s" in errors[f"vm {stuck}"]["message"]
    assert "printed no result: sh: 1: Syntax error" in errors[f"vm {silent}"]["message"]
    assert len(fake.run_requests(status=409)) == 1  # a conflict is not retried into another conflict


def test_throttling_and_failed_polls_are_retried_without_running_the_script_twice(serve: Any, run: Any,
                                                                                   clock: Any) -> None:
    subs = subscription_ids(1)
    estate = make_estate(6, subs)
    vms = running(estate)
    for vm in vms:
        estate.guest_probes[vm.lower()] = GuestProbe(stdout=output(vm), polls=2)
    fake = serve(estate)
    fake.add_fault(Fault(lambda r: r.kind == "runcommand", status=429, headers={"Retry-After": "7"}, times=2))
    fake.add_fault(Fault(lambda r: r.kind == "operation", status=503, times=2))
    fake.add_fault(Fault(lambda r: r.kind == "operation", drop=True, times=1))
    snap, _ = run(fake, subscriptions=subs, tuning=FAST, probe=settings())

    assert snap.errors == []
    assert sorted(r["id"] for r in snap.tables["guestfacts"]) == sorted(vms)
    assert len(fake.run_requests(status=429)) == 2
    assert len(fake.run_requests(status=202)) == len(vms)  # each script ran once
    assert 7.0 in clock.waits  # the 429's Retry-After held the subscription's commands


def test_commands_in_flight_are_bounded_per_subscription(serve: Any, run: Any) -> None:
    subs = subscription_ids(2)
    estate = make_estate(12, subs, running_every=1)
    for vm in running(estate):
        estate.guest_probes[vm.lower()] = GuestProbe(stdout=output(vm), polls=4)
    fake = serve(estate)
    snap, _ = run(fake, subscriptions=subs, tuning=FAST, probe=settings(per_subscription=2, workers=8))

    assert snap.errors == [] and len(snap.tables["guestfacts"]) == 12
    assert set(fake.most_commands_running) == {s.lower() for s in subs}
    assert max(fake.most_commands_running.values()) <= 2
    posts = [r.path.split("?")[0].lower() for r in fake.run_requests()]
    assert len(posts) == len(set(posts)) == 12  # one command per VM


def test_a_running_vm_without_an_os_type_is_named_not_probed(serve: Any, run: Any) -> None:
    subs = subscription_ids(1)
    estate = make_estate(2, subs, running_every=1)
    first, second = running(estate)
    next(r for r in vm_rows(estate) if r["id"] == first)["properties"]["storageProfile"] = {}
    estate.guest_probes[second.lower()] = GuestProbe(stdout=output(second))
    fake = serve(estate)
    snap, _ = run(fake, subscriptions=subs, tuning=FAST, probe=settings())
    assert [r["id"] for r in snap.tables["guestfacts"]] == [second]
    assert snap.errors == [{"scope": f"vm {first}", "table": "guestfacts", "status": None,
                            "message": "not probed: OS type None is neither Linux nor Windows"}]
    assert len(fake.run_requests()) == 1


def test_a_vm_whose_agent_is_not_ready_is_named_not_probed(serve: Any, run: Any) -> None:
    subs = subscription_ids(1)
    estate = make_estate(4, subs, running_every=1)
    down, *others = running(estate)
    estate.instance_views[down.lower()]["vmAgent"]["statuses"][0]["displayStatus"] = "Not Ready"
    for vm in running(estate):
        estate.guest_probes[vm.lower()] = GuestProbe(stdout=output(vm))
    fake = serve(estate)
    snap, _ = run(fake, subscriptions=subs, tuning=FAST, instance_view=True, probe=settings())
    assert [r["id"] for r in snap.tables["guestfacts"]] == others
    assert [e["scope"] for e in snap.errors] == [f"vm {down}"]
    assert snap.errors[0]["message"].startswith("not probed: the VM agent reports 'Not Ready'")
    assert len(fake.run_requests()) == len(others)  # no command sent to wait 90 minutes for the agent


def test_without_probe_guest_nothing_runs_in_the_guests(serve: Any, run: Any) -> None:
    subs = subscription_ids(1)
    estate = make_estate(4, subs)
    for vm in running(estate):
        estate.guest_probes[vm.lower()] = GuestProbe(stdout=output(vm))
    fake = serve(estate)
    snap, _ = run(fake, subscriptions=subs)
    assert "guestfacts" not in snap.tables and fake.run_requests() == []


def test_a_live_scan_with_probe_guest_leaves_no_in_guest_policy_unknown_for_want_of_a_collector(
        serve: Any, tmp_path: Path, monkeypatch: Any) -> None:
    """End to end through the console script: the real Linux script travels in the Run Command body and
    runs here (its `ip` and connect commands stubbed); Windows VMs answer with a recorded output."""
    estate, subs = demo_estate()
    guest_bin = tmp_path / "guest-bin"
    guest_bin.mkdir()
    ip_stub(guest_bin, addr=DYNAMIC_ADDR)
    log = connect_stub(guest_bin, ("168.63.129.16", "stwesteurope.blob.core.windows.net"))
    (tmp_path / "root").mkdir()
    guest_env = {"PATH": f"{guest_bin}{os.pathsep}{os.environ['PATH']}", "BP_ROOT": str(tmp_path / "root")}
    windows_output = (RECORDED / "windows-sql-vss-copy.json").read_text()
    vms = running(estate)
    for row in vm_rows(estate):
        if row["id"] not in vms:
            continue
        if row["properties"]["storageProfile"]["osDisk"]["osType"] == "Windows":
            stdout = json.loads(windows_output)["value"][0]["message"]
            estate.guest_probes[row["id"].lower()] = GuestProbe(stdout=stdout, windows=True)
        else:
            estate.guest_probes[row["id"].lower()] = GuestProbe(execute=guest_env)
    fake = serve(estate)
    sign_in(fake, tmp_path, monkeypatch)
    live = [arg for sub in subs for arg in ("--subscription", sub)] + ["--arm-endpoint", fake.url, "--auth", "cli",
                                                                 "--no-metrics"]

    proc = run_cli("scan", *live, "--probe-guest", "--probe-storage-host", "st{region}.blob.core.windows.net",
                   "--output-dir", tmp_path / "out")
    # The demo has VMs whose agent is not Ready: not probed, named, and the scan is incomplete (exit 3).
    down = {vm for vm in vms if agent_status(estate, vm) not in (None, "Ready")}
    assert down and proc.returncode == 3, proc.stderr
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    errors = doc["coverage"]["errors"]
    assert {e["scope"] for e in errors} == {f"vm {vm}" for vm in down}
    assert all("VM agent reports" in e["message"] and e["table"] == "guestfacts" for e in errors)
    assert doc["coverage"]["tables"]["guestfacts"] == len(vms) - len(down)
    assert "168.63.129.16:80" in log.read_text().split()
    probed = {vm.lower() for vm in vms if vm not in down}
    guest_policies = ("VMBK-DHCP-001", "VMBK-SQL-001", "VMBK-EXT-004")
    judged = [f for f in findings_of(doc) if f["policyId"] in guest_policies and f["resourceId"].lower() in probed]
    assert {f["policyId"] for f in judged if f["status"] != "notApplicable"} == set(guest_policies)
    waiting = [f for f in judged if any(e.startswith("guest.") and e.endswith("was not collected")
                                        for e in f["evidence"])]
    assert waiting == []


def agent_status(estate: Estate, vm: str) -> str | None:
    statuses = (estate.instance_views.get(vm.lower(), {}).get("vmAgent") or {}).get("statuses") or [{}]
    return statuses[0].get("displayStatus")
