"""A snapshot file judged in parts (`scan --part-size`) gives exactly the run a scan of it whole gives.

The oracle is the scan that holds the estate whole (`--part-size 0`), the path every other test pins
down. Each estate here is judged in parts of one VM, so every subscription starts in a part of its own
and any row reaching into another subscription must be found and the parts joined.
"""

from __future__ import annotations

import errno
import gc
import gzip
import json
import logging
import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backup_preflight import cli, demo, judging, scan, snapshot
from backup_preflight.errors import InputError, Problem
from backup_preflight.estate import parts
from backup_preflight.estate.index import Index
from backup_preflight.estate.network import NetworkModel
from backup_preflight.estate.parts import NONE, SHARED, owner, subscription_of
from backup_preflight.findings import Finding, with_status, without_status
from backup_preflight.judging import _in_order, judge_in_parts
from backup_preflight.policy.loader import PolicySet, bundled_policy_dir, load_policies
from backup_preflight.policy.parameters import parse_cli_params
from backup_preflight.results import Gate
from backup_preflight.whatif.parse import load_what_ifs
from held_helpers import packed_part
from scan_helpers import outcome, rehome, write_row_lines
from whatif import plan as whatif_plan

from cli_helpers import run

POLICIES = load_policies([bundled_policy_dir()])


def both(path: Path, policies: PolicySet = POLICIES, shard: str | None = None) -> tuple[dict, dict]:
    """The run of the estate held whole, and in parts of one VM; the parts judged here and, three at once, in
    child processes (`--jobs 3`, the file read by two processes however small) must give the same run."""
    whole = scan.snapshot_source([path], 0)
    apart = scan.snapshot_source([path], 1)
    with mock.patch.object(parts, "APART_BYTES", 0):
        forked = scan.snapshot_source([path], 1, 3)
    forked.jobs = 3
    assert whole.split is None and apart.split is not None
    as_of = "2026-11-24T06:00:00Z"
    here = outcome(scan.run_scan(apart, policies, Gate(), as_of=as_of, shard=shard))
    assert outcome(scan.run_scan(forked, policies, Gate(), as_of=as_of, shard=shard)) == here
    return outcome(scan.run_scan(whole, policies, Gate(), as_of=as_of, shard=shard)), here


def estate(vms: int = 120, subscriptions: int = 4, seed: int = 5) -> dict[str, Any]:
    return demo.generate(vms, seed=seed, subscriptions=subscriptions)


def first(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(r for rows in doc["tables"].values() for r in rows if r.get("type", "").lower() == kind)


@pytest.mark.parametrize("doc", [estate(), demo.demo_document(), estate(vms=40, subscriptions=1)],
                         ids=["four subscriptions", "the demo", "one subscription"])
def test_parts_give_the_whole_scan(tmp_path: Path, doc: dict[str, Any]) -> None:
    whole, parts = both(write_row_lines(doc, tmp_path / "s.json"))
    assert parts == whole
    assert whole["coverage"]["vms"] == len([r for r in doc["tables"]["resources"]
                                            if r["type"] == "microsoft.compute/virtualmachines"])


def test_a_shard_records_the_same_groups_in_parts(tmp_path: Path) -> None:
    whole, parts = both(write_row_lines(estate(), tmp_path / "s.json"), shard="one")
    assert parts == whole and whole["run"]["shard"]["groups"]["VMBK-SCHED-001"]


def joined(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "judged again" in r.getMessage()]


@pytest.mark.parametrize("kind", ["microsoft.network/networkinterfaces", "microsoft.network/virtualnetworks",
                                  "microsoft.network/networksecuritygroups", "microsoft.network/routetables"])
def test_rows_in_another_subscription_join_the_parts(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                     kind: str) -> None:
    doc = estate()
    row = first(doc, kind)
    other = next(s for s in doc["scope"]["subscriptions"] if s not in row["id"])
    path = write_row_lines(rehome(doc, row["id"], other), tmp_path / "s.json")
    with caplog.at_level(logging.INFO, logger="backup_preflight"):
        whole, parts = both(path)
    assert parts == whole
    assert any("joined with their parts" in m for m in joined(caplog)), "the reference went unnoticed"


@pytest.mark.parametrize("kind", ["microsoft.network/networksecuritygroups", "microsoft.network/virtualnetworks"])
def test_a_hub_without_vms_is_read_alongside_not_joined(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                        kind: str) -> None:
    doc = estate()
    rows = [r for r in doc["tables"]["resources"] if r["type"] == kind]
    hub = "00000000-0000-4000-8000-00000000000f"
    for row in rows[:2]:
        doc = rehome(doc, row["id"], hub)
    with caplog.at_level(logging.INFO, logger="backup_preflight"):
        whole, parts = both(write_row_lines(doc, tmp_path / "s.json"))
    assert parts == whole
    said = joined(caplog)
    assert said and all("read alongside" in m for m in said)


@pytest.mark.parametrize(("home", "said"), [(None, "joined with their parts"),
                                             ("00000000-0000-4000-8000-00000000000f", "read alongside")])
def test_a_vault_in_another_subscription_brings_its_backup_policies(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                                    home: str | None, said: str) -> None:
    """Protected items go with the VMs they protect; the backup policy they name stays in the vault's
    subscription, so a part that misses it is joined with the part holding the vault, or reads the
    vault's subscription alongside when that holds no VMs."""
    doc = estate()
    item = first(doc, "microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems")
    vault = item["id"].split("/backupFabrics/")[0]
    other = home or next(s for s in doc["scope"]["subscriptions"] if s not in item["id"])
    path = write_row_lines(rehome(doc, vault, other), tmp_path / "s.json")
    with caplog.at_level(logging.INFO, logger="backup_preflight"):
        whole, parts = both(path)
    assert parts == whole
    assert joined(caplog) and all(said in m for m in joined(caplog)), joined(caplog)
    source = item["properties"]["sourceResourceId"].lower()
    spread = [f for f in whole["findings"] if f["policy_id"] == "VMBK-SCHED-001" and f["resource_id"].lower() == source]
    assert [f["status"] for f in spread] in (["pass"], ["fail"])  # its schedule was read from the moved policy


def test_jobs_naming_vms_by_friendly_name_in_a_vault_elsewhere_join_the_parts(tmp_path: Path,
                                                                             caplog: pytest.LogCaptureFixture) -> None:
    """Such a job stays with its vault; a part whose protected items point at that vault looks its jobs up
    by (vault, name), so the miss must be noted. No item of the vault names a backup policy here: the
    jobs are the only rows the VMs' parts reach for."""
    doc = estate()
    job = next(r for r in doc["tables"]["recoveryservicesresources"] if r["type"].endswith("/backupjobs")
               and "dataSourceId" not in r["properties"] and r["properties"]["status"] == "Failed")
    vault = job["id"].split("/backupJobs/")[0]
    for row in doc["tables"]["recoveryservicesresources"]:
        if row["id"].startswith(vault + "/"):
            row["properties"].pop("policyId", None)
    other = next(s for s in doc["scope"]["subscriptions"] if s not in job["id"])
    path = write_row_lines(rehome(doc, vault, other), tmp_path / "s.json")
    with caplog.at_level(logging.INFO, logger="backup_preflight"):
        whole, parts = both(path)
    assert parts == whole and joined(caplog)
    name = job["properties"]["entityFriendlyName"]
    assert any(d["resourceName"] == name for d in whole["diagnoses"]), "the job was not matched in the whole scan"


def test_a_gateway_in_another_subscription_is_read_by_every_part(tmp_path: Path) -> None:
    """A gateway is found by the subnet it names, not by id: a VM behind its VNet learns of it whatever
    subscription holds the gateway, so gateways go to every part."""
    doc = estate()
    gateway = first(doc, "microsoft.network/virtualnetworkgateways")
    other = next(s for s in doc["scope"]["subscriptions"] if s not in gateway["id"])
    whole, parts = both(write_row_lines(rehome(doc, gateway["id"], other), tmp_path / "s.json"))
    assert parts == whole
    assert any("has virtual network gateway" in e for f in whole["findings"] for e in f["evidence"])


@pytest.mark.parametrize(("home", "said"), [(None, "joined with their parts"),
                                             ("00000000-0000-4000-8000-00000000000f", "read alongside")])
def test_a_load_balancer_in_another_subscription_is_found_by_the_nics_in_its_pool(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, home: str | None, said: str) -> None:
    """A NIC names its load balancer only by the id of a backend pool: a part that misses the load balancer
    must be joined with its subscription, or read it alongside, or the NIC's outbound access is unknown."""
    doc = estate()
    nic = first(doc, "microsoft.network/networkinterfaces")
    other = home or next(s for s in doc["scope"]["subscriptions"] if s not in nic["id"])
    lb_id = f"/subscriptions/{other}/resourceGroups/rg-hub/providers/Microsoft.Network/loadBalancers/lb-internal"
    fixture = (Path(__file__).parents[1] / "fixtures" / "network" / "loadbalancer.json").read_text()
    lb = json.loads(fixture.replace("/subscriptions/subid/resourceGroups/rg1/providers/Microsoft.Network/loadBalancers/"
                                    "lb1", lb_id))
    lb.update(subscriptionId=other, resourceGroup="rg-hub", name="lb-internal")
    del lb["properties"]["frontendIPConfigurations"][0]["properties"]["publicIPAddress"]  # internal only
    doc["tables"]["resources"].append(lb)
    for config in nic["properties"]["ipConfigurations"]:
        config["properties"]["loadBalancerBackendAddressPools"] = [{"id": f"{lb_id}/backendAddressPools/pool"}]
        config["properties"].pop("publicIPAddress", None)
    with caplog.at_level(logging.INFO, logger="backup_preflight"):
        whole, parts = both(write_row_lines(doc, tmp_path / "s.json"))
    assert parts == whole
    assert joined(caplog) and all(said in m for m in joined(caplog)), joined(caplog)
    reached = [e for f in whole["findings"] if f["policy_id"] == "VMBK-NET-001" for e in f["evidence"]
               if "load balancer 'lb-internal'" in e]
    assert reached, "the NIC's load balancer was not read"

def test_jobs_naming_a_vm_by_id_go_with_it_wherever_their_vault_is(tmp_path: Path) -> None:
    """A VM whose protected item is gone keeps its jobs of the last 14 days; they name it by id from a vault
    in another subscription that nothing else in the VM's subscription points at."""
    doc = estate()
    rows = doc["tables"]["recoveryservicesresources"]
    job = next(r for r in rows if r["type"].endswith("/backupjobs") and "dataSourceId" in r["properties"]
               and r["properties"]["status"] == "Failed")
    vm = job["properties"]["dataSourceId"].lower()
    other = next(s for s in doc["scope"]["subscriptions"] if s not in job["id"])
    doc["tables"]["recoveryservicesresources"] = [
        r for r in rows if not (r["type"].endswith("/protecteditems") and
                                r["properties"].get("sourceResourceId", "").lower() == vm)]
    for r in doc["tables"]["recoveryservicesresources"]:
        if r["type"].endswith("/backupjobs") and r["properties"].get("dataSourceId", "").lower() == vm:
            r["id"] = f"/subscriptions/{other}/resourceGroups/rg-elsewhere/providers/Microsoft.RecoveryServices/" \
                      f"vaults/elsewhere/backupJobs/{r['name']}"
    whole, parts = both(write_row_lines(doc, tmp_path / "s.json"))
    assert parts == whole
    assert any(d["resourceId"].lower() == vm for d in whole["diagnoses"]), "the job was not matched in the whole scan"


def test_groups_across_subscriptions_join_the_parts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    by_name = load_policies([bundled_policy_dir()], parse_cli_params(["VMBK-SCHED-001.groupKey=resourceGroup",
                                                                      "VMBK-SCHED-001.maximumPerSlot=1"]))
    with caplog.at_level(logging.INFO, logger="backup_preflight"):
        whole, parts = both(write_row_lines(estate(), tmp_path / "s.json"), by_name)
    assert parts == whole and joined(caplog)
    assert any(f["status"] == "fail" for f in whole["findings"] if f["policy_id"] == "VMBK-SCHED-001")


@pytest.mark.parametrize(("table", "kind", "target"), [
    ("recoveryservicesresources", "microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems",
     "sourceResourceId"),
    # nothing else an SQL registration leads to is looked up by id: only the join of the copies finds it
    ("resources", "microsoft.sqlvirtualmachine/sqlvirtualmachines", "virtualMachineResourceId")])
def test_copies_of_a_row_naming_vms_in_two_subscriptions_join_them(tmp_path: Path, table: str, kind: str,
                                                                   target: str) -> None:
    doc = estate()
    rows = [r for r in doc["tables"][table] if r["type"] == kind]
    elsewhere = next(r for r in rows if r["id"].split("/")[2] != rows[0]["id"].split("/")[2])
    copy = json.loads(json.dumps(rows[0]))
    copy["properties"][target] = elsewhere["properties"][target]
    doc["tables"][table].append(copy)  # a later copy replaces the first, as in Index
    whole, parts = both(write_row_lines(doc, tmp_path / "s.json"))
    assert parts == whole


def test_rows_without_a_subscription_in_their_id(tmp_path: Path) -> None:
    doc = estate(vms=30, subscriptions=2)
    nic = first(doc, "microsoft.network/networkinterfaces")
    moved = json.loads(json.dumps(doc).replace(f'"{nic["id"]}', '"/nics/' + nic["id"].rsplit("/", 1)[1]))
    path = write_row_lines(moved, tmp_path / "s.json")
    whole, parts = both(path)
    assert parts == whole


@pytest.mark.parametrize(("table", "row", "expected"), [
    ("resources", {"id": "/SUBSCRIPTIONS/ABC/resourceGroups/r/providers/Microsoft.Network/networkInterfaces/n",
                   "type": "microsoft.network/networkinterfaces"}, "abc"),
    ("resources", {"id": "/subscriptions/a/resourceGroups/r/providers/Microsoft.SqlVirtualMachine/"
                         "sqlVirtualMachines/v", "type": "microsoft.sqlvirtualmachine/sqlvirtualmachines",
                   "properties": {"virtualMachineResourceId": "/subscriptions/B/x"}}, "b"),
    ("recoveryservicesresources", {"id": "/subscriptions/a/x/providers/Microsoft.RecoveryServices/vaults/v/"
                                         "backupJobs/j", "type": "microsoft.recoveryservices/vaults/backupjobs",
                                   "properties": {"entityFriendlyName": "vm1"}}, "a"),
    ("recoveryservicesresources", {"id": "/subscriptions/a/x/providers/Microsoft.RecoveryServices/vaults/v/"
                                         "backupPolicies/p",
                                   "type": "microsoft.recoveryservices/vaults/backuppolicies"}, "a"),
    ("resourcecontainers", {"id": "/subscriptions/a", "type": "microsoft.resources/subscriptions"}, "a"),
    ("resourcecontainers", {"id": "/subscriptions/A/resourceGroups/r",
                            "type": "microsoft.resources/subscriptions/resourcegroups"}, "a"),
    ("resourcecontainers", {"id": "/providers/Microsoft.Management/managementGroups/m",
                            "type": "microsoft.management/managementgroups"}, SHARED),
    ("instanceviews", {"id": "/subscriptions/c/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/v"}, "c"),
    ("resources", {"id": "no/subscription", "type": "t"}, NONE),
])
def test_where_a_row_goes(table: str, row: dict[str, Any], expected: str) -> None:
    key = owner(table, row)
    assert (key and subscription_of(key)) == expected


def test_part_size_on_the_command_line(tmp_path: Path) -> None:
    path = write_row_lines(estate(vms=30, subscriptions=2), tmp_path / "s.json")
    outputs = {}
    for size, jobs in (("0", "1"), ("1", "1"), ("1", "2"), ("1", "auto")):
        out = tmp_path / f"{size}-{jobs}"
        assert run("scan", "--snapshot", path, "--part-size", size, "--jobs", jobs, "--output-dir", out).returncode == 1
        # the run's times, and its duration in whole seconds (junit's `time`), which a second's tick can change
        outputs[size, jobs] = {name: re.sub(r'(startedAt|finishedAt|timestamp)("?[:=] *|" value=)"[^"]*"|'
                                            r'(?<=<testsuites )([^>]*) time="[0-9.]+"', r"\3",
                                            (out / name).read_text(encoding="utf-8"))
                               for name in ("results.json", "junit.xml", "findings.csv", "summary.md")}
    assert outputs["0", "1"] == outputs["1", "1"] == outputs["1", "2"] == outputs["1", "auto"]
    refused = run("scan", "--snapshot", path, "--part-size", "-5")
    assert refused.returncode == 2 and "expected a whole number of VMs" in refused.stderr
    refused = run("scan", "--snapshot", path, "--jobs", "0")
    assert refused.returncode == 2
    assert "expected auto or a whole number of jobs at once (1 or more), found '0'" in refused.stderr


def test_exemptions_a_baseline_and_every_pass_in_junit_read_parts_judged_elsewhere_as_a_list(tmp_path: Path) -> None:
    """Parts judged in child processes hold their plain passes as numbers (plain_passes.py): exempting,
    marking against a baseline and listing every pass in junit.xml give what the estate held whole gives."""
    doc = estate(vms=60, subscriptions=3)
    path = write_row_lines(doc, tmp_path / "s.json")
    vm = next(r["id"] for r in doc["tables"]["resources"] if r["type"].lower() == "microsoft.compute/virtualmachines")
    exemptions = tmp_path / "exemptions.json"
    exemptions.write_text(json.dumps({"exemptions": [
        {"id": "EX-1", "causes": ["outbound-connectivity", "vm-agent"], "resources": ["*"], "category": "waiver",
         "justification": "accepted for the test estate", "owner": "ops@contoso.example", "expiresOn": "2099-01-01"},
        {"id": "EX-2", "causes": ["backup-protection"], "resources": [vm], "category": "mitigated",
         "justification": "protected another way", "owner": "ops@contoso.example", "expiresOn": "2020-01-01"}]}))
    first = tmp_path / "first"  # a baseline in which every agent was too old: what passes now is fixed since
    assert run("scan", "--snapshot", path, "--part-size", "0", "--output-dir", first, "--param",
               "minimumLinuxAgent=99.0", "--param", "minimumWindowsAgent=99.0").returncode == 1
    outputs = {}
    for size, jobs in (("0", "1"), ("7", "2")):
        out = tmp_path / f"{size}-{jobs}"
        done = run("scan", "--snapshot", path, "--part-size", size, "--jobs", jobs, "--output-dir", out,
                   "--exemptions", exemptions, "--baseline", first / "results.json", "--junit-passes", "each")
        assert done.returncode in (0, 1), done.stderr
        outputs[size, jobs] = {name: re.sub(r'(startedAt|finishedAt|timestamp)("?[:=] *|" value=)"[^"]*"|'
                                            r'(?<=<testsuites )([^>]*) time="[0-9.]+"', r"\3",
                                            (out / name).read_text(encoding="utf-8"))
                               for name in ("results.json", "junit.xml", "findings.csv", "summary.md")}
    assert outputs["0", "1"] == outputs["7", "2"]
    summary = json.loads((tmp_path / "7-2" / "results.json").read_text(encoding="utf-8"))["summary"]
    assert summary["byStatus"]["exempt"] > 0 and summary["exempt"]["expired"] > 0
    assert summary["baseline"]["unchanged"] > 0
    fixed = json.loads((tmp_path / "7-2" / "results.json").read_text(encoding="utf-8"))["scan"]["baseline"]["fixed"]
    assert any(f["now"] == "pass" for f in fixed)
    assert outputs["7", "2"]["junit.xml"].count("<testcase") > summary["byStatus"]["pass"], "every pass a testcase"


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain: read back from the file", "gzip: from a spill file"])
def test_rows_are_read_back_from_the_file_or_a_spill_of_its_text(tmp_path: Path, gzipped: bool) -> None:
    path = write_row_lines(estate(), tmp_path / "s.json")
    if gzipped:
        path = tmp_path / "s.json.gz"
        path.write_bytes(gzip.compress((tmp_path / "s.json").read_bytes(), mtime=0))
    whole, split = both(path)
    assert split == whole
    source = scan.snapshot_source([path], 1)
    assert source.split is not None and (source.split._spill is not None) == gzipped
    source.split.close()


@pytest.mark.parametrize("jobs", [1, 3], ids=["here", "in child processes"])
def test_a_file_written_to_while_it_is_judged_in_parts_is_refused(tmp_path: Path, jobs: int) -> None:
    """Rows are read again from the file by place: if it changed since it was checked and hashed, the places
    no longer hold those rows, and the scan stops (exit 2, no report) rather than judge other text."""
    path = write_row_lines(estate(), tmp_path / "s.json")
    source = scan.snapshot_source([path], 1)
    source.jobs = jobs
    with path.open("ab") as handle:
        handle.write(b"\n")
    with pytest.raises(InputError) as caught:
        scan.run_scan(source, POLICIES, Gate(), as_of="2026-11-24T06:00:00Z")
    assert caught.value.problems == [Problem(str(path), "", "changed while it was being scanned; scan it again once "
                                                             "nothing writes to it")]


_TEMPORARY_FILE = parts.tempfile.TemporaryFile  # the real one, before a test replaces it


class _FillsUp:
    """A spill file whose folder fills up after the first rows (`fails` names the call that finds out)."""

    def __init__(self, fails: str) -> None:
        self._file = _TEMPORARY_FILE()
        self._fails, self._written = fails, 0

    def write(self, data: bytes) -> int:
        self._written += 1
        if self._fails == "write" and self._written > 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._file.write(data)

    def flush(self) -> None:
        if self._fails == "flush":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def fileno(self) -> int:
        return self._file.fileno()

    def close(self) -> None:
        self._file.close()


@pytest.mark.parametrize("fails", ["open", "write", "flush"])
def test_a_temporary_folder_that_cannot_take_the_rows_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str], fails: str) -> None:
    """Only a gzipped file's rows are set aside (a plain file's are read again from the file itself)."""
    plain = write_row_lines(estate(vms=30, subscriptions=2), tmp_path / "s.json")
    path = tmp_path / "s.json.gz"
    path.write_bytes(gzip.compress(plain.read_bytes()))

    def full(*_: Any, **__: Any) -> Any:
        if fails == "open":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return _FillsUp(fails)

    monkeypatch.setattr(parts.tempfile, "TemporaryFile", full)
    assert cli.main(["scan", "--snapshot", str(path), "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "TMPDIR" in err and "Traceback" not in err
    assert f"{path}: cannot set its rows aside in the temporary folder" in err  # the file it names
    assert not (tmp_path / "out").exists()


def test_a_snapshot_that_cannot_be_read_is_not_blamed_on_the_temporary_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The disk under the snapshot failing mid-read is the environment failing (exit 4), as for a file read
    whole, not a full temporary folder."""
    path = write_row_lines(estate(vms=30, subscriptions=2), tmp_path / "s.json")
    chunks = snapshot._chunks

    def failing(handle: Any, label: str, *args: Any) -> Any:
        read = chunks(handle, label, *args)
        if label != str(path):  # the policy files
            yield from read
            return
        yield next(read)
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(snapshot, "_chunks", failing)
    assert cli.main(["scan", "--snapshot", str(path), "--output-dir", str(tmp_path / "out"), "--part-size", "1"]) == 4
    err = capsys.readouterr().err
    assert "Input/output error" in err and "TMPDIR" not in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_no_part_outlives_its_judging(tmp_path: Path) -> None:
    """Each part's estate (its rows, facts and network model) is let go before the next is built: only
    the findings and what the reports need of the VMs stay."""
    doc = estate()
    for row in doc["tables"]["recoveryservicesresources"]:  # VMs with a last failed job are kept for diagnosis
        if row["type"].lower().endswith("/protecteditems"):
            row["properties"]["lastBackupStatus"] = "Failed"
    source = scan.snapshot_source([write_row_lines(doc, tmp_path / "s.json")], 1)
    assert source.split is not None
    judged = judge_in_parts(source.split, POLICIES, datetime(2026, 11, 24, tzinfo=UTC), None, 1)
    gc.collect()
    assert judged.failed_jobs and judged.vms == 120
    assert not [o for o in gc.get_objects() if isinstance(o, NetworkModel | Index)]


@given(st.lists(st.sampled_from(["/subscriptions/a/vm1", "/subscriptions/A/vm2", "/subscriptions/b/VM3",
                                 "/subscriptions/c/vm4", "/subscriptions/b/vm5", "query:x/0"]),
                unique_by=str.lower), st.lists(st.integers(0, 3)), st.integers(1, 4), st.lists(st.booleans()),
       st.lists(st.sampled_from(["pass", "fail", "unknown"])))
def test_findings_of_parts_come_in_one_scans_order(ids: list[str], homes: list[int], streams: int,
                                                   packed: list[bool], statuses: list[str]) -> None:
    """Oracle: one sort of all the findings by policy, then VM id ignoring case. A stream is a list (a part
    judged here) or a part's findings packed and unpacked (judged in a child: plain passes held as numbers)."""
    policies = POLICIES.policies[:3]
    everything = [Finding(p.id, rid, "", status, "high", "c", "" if status == "pass" else "why")
                  for p in policies for rid in ids
                  for status in [statuses[len(rid) % len(statuses)] if statuses else "pass"]]
    split: list[list[Finding]] = [[] for _ in range(streams)]
    for n, rid in enumerate(ids):  # a VM's findings all in one stream
        split[(homes[n] if n < len(homes) else n) % streams].extend(f for f in everything if f.resource_id == rid)
    position = {p.id: i for i, p in enumerate(policies)}
    for stream in split:
        stream.sort(key=lambda f: (position[f.policy_id], f.resource_id.lower()))
    expected = sorted(everything, key=lambda f: (position[f.policy_id], f.resource_id.lower()))
    streamed = [packed_part(s) if n < len(packed) and packed[n] else s for n, s in enumerate(split)]
    joined = _in_order(PolicySet(policies), streamed)
    assert len(joined) == len(expected) and list(joined) == expected
    held = list(joined.objects())  # every finding not a pass among them, in order (a list's passes too)
    assert [f for f in held if f.status != "pass"] == [f for f in expected if f.status != "pass"]
    assert list(with_status(joined, ("fail",))) == [f for f in expected if f.status == "fail"]
    assert list(without_status(joined, ("pass",))) == [f for f in expected if f.status != "pass"]
    assert list(with_status(joined, ("pass",))) == [f for f in expected if f.status == "pass"]


def test_a_what_if_on_a_split_estate_gives_the_whole_scan(tmp_path: Path) -> None:
    """`verify --what-if` and `scan --what-if` judge the current estate and the one the deployment would leave in
    parts, as they would judge them whole (tests/whatif/test_in_parts.py for more plans)."""
    path = write_row_lines(whatif_plan.estate_doc(), tmp_path / "s.json")
    rule = whatif_plan.rule_body("DenyStorage443", 50)
    plan_file = tmp_path / "whatif.json"
    plan_file.write_text(json.dumps(whatif_plan.az_output(whatif_plan.change("Create", rule["id"], after=rule))))
    what_if = load_what_ifs([plan_file])
    as_of = "2026-11-24T06:00:00Z"
    whole = scan.run_scan(scan.snapshot_source([path], 0), POLICIES, Gate(), as_of=as_of, what_if=what_if)
    parts = scan.snapshot_source([path], 1)
    assert parts.split is not None
    assert outcome(scan.run_scan(parts, POLICIES, Gate(), as_of=as_of, what_if=what_if)) == outcome(whole)
    assert [f.annotations.get("baseline") for f in whole.findings].count("new") == 3  # the rule reaches 3 VMs


def test_types_in_any_letter_case_are_placed_as_in_lowercase(tmp_path: Path) -> None:
    """REST bodies spell types `Microsoft.RecoveryServices/vaults/...`; a vault in another subscription
    protects VMs, so its items must still go with the VMs whatever the case of their type."""
    doc = estate()
    item = first(doc, "microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems")
    vault = item["id"].split("/backupFabrics/")[0]
    other = next(s for s in doc["scope"]["subscriptions"] if s not in item["id"])
    doc = rehome(doc, vault, other)
    for rows in doc["tables"].values():
        for row in rows:
            if isinstance(row.get("type"), str):
                row["type"] = row["type"].upper()
    whole, parts = both(write_row_lines(doc, tmp_path / "s.json"))
    assert parts == whole


@pytest.mark.parametrize(("resource_id", "expected"), [
    ("/subscriptions/ABC/resourceGroups/r", "abc"), ("/subscriptions/abc", "abc"), ("/subscriptions/", NONE),
    ("/subscriptions", NONE),
    ("subscriptions/abc/resourceGroups/r", NONE), ("/resourceGroups/subscriptions/abc", NONE), ("", NONE),
    ("/providers/Microsoft.Management/managementGroups/m", NONE)])
def test_the_subscription_an_id_names(resource_id: str, expected: str) -> None:
    assert subscription_of(resource_id) == expected


PROBED_QUERY = "resources | where type =~ 'microsoft.compute/virtualmachines' | project id, name, allowed"


def test_guest_observations_of_vms_and_of_a_query_s_rows_are_the_whole_scan_s(tmp_path: Path) -> None:
    """The probe's Storage connect annotates the outbound findings, the VMs' (judged in their part) and those
    of a custom outbound query naming the VMs (judged once, outside the parts): once each, as held whole,
    although a NIC in another subscription has a part judged again, joined with another."""
    doc = estate()
    nic = first(doc, "microsoft.network/networkinterfaces")
    doc = rehome(doc, nic["id"], next(s for s in doc["scope"]["subscriptions"] if s not in nic["id"]))
    for i, row in enumerate(doc["tables"]["guestfacts"]):
        row["facts"]["storageReachable"] = i % 3 != 0
        row["facts"]["storageEndpoint"] = f"acct{i}.blob.core.windows.net"
    vms = [r for r in doc["tables"]["resources"] if r["type"].lower() == "microsoft.compute/virtualmachines"]
    doc["queries"] = {snapshot.query_key(PROBED_QUERY): {"query": PROBED_QUERY, "rows": [
        {"id": r["id"], "name": r["name"], "allowed": i % 2 == 0} for i, r in enumerate(vms)]}}
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "q.json").write_text(json.dumps({
        "id": "MY-NET-001", "title": "Storage is allowed", "cause": "outbound-connectivity", "severity": "high",
        "target": "resourceGraphQuery", "query": PROBED_QUERY,
        "parameters": {"ports": {"type": "array", "default": [443]},
                       "destinations": {"type": "array", "default": ["Storage"]}},
        "assert": {"field": "row.allowed", "equals": True}, "message": "{name} is not allowed",
        "remediation": "Allow it."}))
    policies = load_policies([bundled_policy_dir(), folder])
    whole, split = both(write_row_lines(doc, tmp_path / "s.json"), policies)
    assert split == whole
    observed = [f for f in whole["findings"] if "observedInGuest" in (f["notes"] or {})]
    assert {f["policy_id"] for f in observed} == {"VMBK-NET-001", "MY-NET-001"}
    assert any(f["message"].startswith("Disagreement") for f in observed if f["policy_id"] == "MY-NET-001")
    assert all(f["evidence"].count(e) == 1 for f in observed for e in f["evidence"]), "noted once"


def test_a_part_still_being_judged_when_it_is_joined_is_stopped(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """With --jobs, the part holding a NIC that another part's VMs use is still running when that other part
    comes back: it is stopped, not judged twice, and the run is the whole scan's."""
    doc = estate()
    row = first(doc, "microsoft.network/networkinterfaces")
    other = next(s for s in doc["scope"]["subscriptions"] if s not in row["id"])
    path = write_row_lines(rehome(doc, row["id"], other), tmp_path / "s.json")
    elsewhere = judging._PartJudge.elsewhere

    def late(judge: Any, part: Any) -> Any:
        if part.owned == {other}:
            time.sleep(1.5)  # still running when the part that reaches into it is done
        return elsewhere(judge, part)

    monkeypatch.setattr(judging._PartJudge, "elsewhere", late)
    forked = scan.snapshot_source([path], 1)
    forked.jobs = 4
    as_of = "2026-11-24T06:00:00Z"
    with caplog.at_level(logging.DEBUG, logger="backup_preflight"):
        parts = outcome(scan.run_scan(forked, POLICIES, Gate(), as_of=as_of))
    assert parts == outcome(scan.run_scan(scan.snapshot_source([path], 0), POLICIES, Gate(), as_of=as_of))
    assert any("joined into a larger one" in r.getMessage() for r in caplog.records), "nothing was stopped"


@pytest.mark.parametrize(("jobs", "subscriptions", "said"), [
    (1, 2, "2 part(s) of up to 1 VMs, one at a time in this process"),
    (2, 2, "2 part(s) of up to 1 VMs, up to 2 at once in child processes"),
    (3, 2, "2 part(s) of up to 1 VMs, up to 2 at once in child processes"),  # no more jobs than parts
    (2, 1, "1 part(s) of up to 1 VMs, one at a time in this process")])  # a lone part needs no child
def test_the_log_says_how_the_parts_were_judged(tmp_path: Path, caplog: pytest.LogCaptureFixture, jobs: int,
                                                subscriptions: int, said: str) -> None:
    path = write_row_lines(estate(vms=30, subscriptions=subscriptions), tmp_path / "s.json")
    source = scan.snapshot_source([path], 1)
    source.jobs = jobs
    with caplog.at_level(logging.INFO, logger="backup_preflight"):
        scan.run_scan(source, POLICIES, Gate())
    assert f"judged 30 VMs in {said}" in [r.getMessage() for r in caplog.records]
