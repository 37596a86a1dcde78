"""Failed backup job rows without an error code: the vault's jobs REST list fills it in, through the real
azure-mgmt-recoveryservicesbackup client against the fake Azure (throttling, paging, a forbidden vault)."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from backup_preflight import snapshot
from backup_preflight.collect import Tuning, backup_jobs
from backup_preflight.collect.backup_jobs import BackupClients, job_filter, merge, parse_job_id, vaults_to_ask
from backup_preflight.collect.progress import Progress
from backup_preflight.estate import build_estate
from collect.fakeazure import (
    JOB_FILTER_TIME,
    TOKEN,
    Estate,
    FakeClock,
    FakeCredential,
    Fault,
    container_rows,
    job_body,
)
from collect.test_cli_live import comparable, sign_in
from job_helpers import JOB_TYPE, VAULT, job_estate

from arg import SUB
from cli_helpers import run as cli

OTHER_VAULT = VAULT.replace("rsv-weu", "rsv-neu")
AGENT_CODE = "UserErrorGuestAgentStatusUnavailable"
AGENT_MESSAGE = "VM Agent unable to communicate with Azure Backup"
FAST = Tuning(backoff_base=0.01, backoff_cap=0.05)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def live_estate(codes_in_rows: bool = False) -> Estate:
    """job_helpers' estate with its jobs two days old: vm-noagent's failure (vault rsv-weu) and
    vm-stopped's (vault rsv-neu) carry no errorDetails in Resource Graph, unless `codes_in_rows`;
    rsv-weu's jobs list has vm-noagent's job with the code, and jobs of the window that no row names."""
    doc = job_estate()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    recovery = doc["tables"]["recoveryservicesresources"]
    for row in recovery:
        if row["type"] != JOB_TYPE or row["name"] == "job-3":  # job-3 keeps its code and its date
            continue
        row["properties"]["startTime"] = _iso(start)
        if row["name"] == "job-2":
            row["id"] = row["id"].replace(VAULT, OTHER_VAULT)
        if row["name"] in ("job-1", "job-2") and not codes_in_rows:
            row["properties"].pop("errorDetails", None)
    if codes_in_rows:
        recovery[-2]["properties"]["errorDetails"][0]["errorCode"] = 400240  # numeric, as the REST model says
    details = [{"errorCode": AGENT_CODE, "errorString": AGENT_MESSAGE, "errorTitle": "",
                "recommendations": ["Ensure the VM agent is running."]}]
    listed = [job_body(VAULT, "other-1", "vm-gone", _iso(start), details=[{"errorCode": 1, "errorString": "x"}]),
              job_body(VAULT, "JOB-1", "vm-noagent", _iso(start + timedelta(minutes=1)), details=details)]
    return Estate(tables={"resources": doc["tables"]["resources"], "recoveryservicesresources": recovery,
                          "guestconfigurationresources": [], "resourcecontainers": container_rows([SUB])},
                  vault_jobs={VAULT.lower(): listed})


def _live(fake: Any, *args: Any) -> Any:
    return cli(*args, "--subscription", SUB, "--arm-endpoint", fake.url, "--auth", "cli", "--no-instance-view",
               "--no-metrics")


def test_a_row_without_error_code_gets_it_from_the_vaults_jobs_list(serve: Any, tmp_path: Path,
                                                                    monkeypatch: Any) -> None:
    fake = serve(live_estate())
    snap = tmp_path / "estate.json"
    sign_in(fake, tmp_path, monkeypatch)
    collected = _live(fake, "collect", "--output", snap)
    assert collected.returncode == 0, collected.stderr
    # one list per vault with such rows, filtered to the failed VM backups of the last 14 days
    asked = {r.path.split("/vaults/")[1].split("/")[0]: r for r in fake.jobs_requests()}
    assert sorted(asked) == ["rsv-neu", "rsv-weu"] and len(fake.jobs_requests()) == 2
    terms = dict(re.findall(r"(\w+) eq '([^']*)'", asked["rsv-weu"].params["$filter"]))
    assert (terms["status"], terms["operation"], terms["backupManagementType"]) == ("Failed", "Backup", "AzureIaasVM")
    start, end = (datetime.strptime(terms[k], JOB_FILTER_TIME).replace(tzinfo=UTC) for k in ("startTime", "endTime"))
    assert end - start == timedelta(days=14) and abs(datetime.now(UTC) - end) < timedelta(minutes=5)
    rows = {r["name"]: r for r in json.loads(snap.read_text())["tables"]["recoveryservicesresources"]
            if r["type"] == JOB_TYPE}
    assert rows["job-1"]["properties"]["errorDetails"][0]["errorCode"] == AGENT_CODE
    assert rows["job-1"]["errorDetailsFrom"] == "rest"
    assert "errorDetails" not in rows["job-2"]["properties"] and "errorDetailsFrom" not in rows["job-2"]
    assert "other-1" not in rows  # the list fills rows in; which jobs there are is Resource Graph's to say

    offline = cli("scan", "--snapshot", snap, "--output-dir", tmp_path / "offline")
    live = _live(fake, "scan", "--output-dir", tmp_path / "live")
    assert offline.returncode == live.returncode == 1, live.stderr
    doc = comparable(tmp_path / "live" / "results.json")
    assert doc == comparable(tmp_path / "offline" / "results.json")
    by_vm = {d["resourceName"]: d for d in doc["jobDiagnosis"]}
    job = by_vm["vm-noagent"]["lastFailedJob"]
    assert (job["errorCode"], job["message"], job["errorDetailsFrom"]) == (AGENT_CODE, AGENT_MESSAGE, "rest")
    assert [c["cause"] for c in by_vm["vm-noagent"]["causes"]] == ["vm-agent", "backup-extension"]
    assert by_vm["vm-noagent"]["failingCauses"] == ["vm-agent"]
    assert "errorCode" not in by_vm["vm-stopped"]["lastFailedJob"]  # its vault's list had nothing for it
    summary = (tmp_path / "live" / "summary.md").read_text().split("### Last failed backup jobs", 1)[1]
    row = next(line for line in summary.splitlines() if line.startswith("| vm-noagent"))
    assert f"{AGENT_CODE} – {AGENT_MESSAGE}" in row and "vm-agent: failing" in row
    page = (tmp_path / "live" / "report.html").read_text()
    island = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert island and AGENT_CODE in island[1]  # the VM card is drawn from this data


def test_a_vault_whose_list_is_forbidden_is_a_coverage_error_naming_it(serve: Any, tmp_path: Path,
                                                                       monkeypatch: Any) -> None:
    estate = live_estate()
    estate.forbidden_vaults = {OTHER_VAULT.lower()}
    fake = serve(estate)
    sign_in(fake, tmp_path, monkeypatch)
    proc = _live(fake, "scan", "--output-dir", tmp_path / "out")
    assert proc.returncode == 3, proc.stderr
    assert "rsv-neu" in proc.stdout
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    [error] = results["coverage"]["errors"]
    assert error["scope"].lower() == f"vault {OTHER_VAULT}".lower() and error["status"] == 403
    assert error["table"] == "recoveryservicesresources" and "AuthorizationFailed" in error["message"]
    assert "failed jobs of vault rsv-neu" in (tmp_path / "out" / "summary.md").read_text()
    assert len(fake.jobs_requests(403)) == 1  # a 403 is not retried
    by_vm = {d["resourceName"]: d for d in results["jobDiagnosis"]}
    assert by_vm["vm-noagent"]["lastFailedJob"]["errorCode"] == AGENT_CODE  # the other vault still answered


def test_rows_that_carry_their_code_ask_no_vault(serve: Any, run: Any) -> None:
    fake = serve(live_estate(codes_in_rows=True))
    snap, collector = run(fake)
    assert fake.jobs_requests() == [] and collector.stats.jobs_requests == 0
    assert not snap.errors


def test_throttling_waits_and_a_failing_page_is_retried_alone(serve: Any, run: Any, clock: FakeClock) -> None:
    estate = live_estate()
    estate.jobs_page_size = 1
    fake = serve(estate)
    fake.add_fault(Fault(lambda r: r.kind == "backupjobs", status=429, headers={"Retry-After": "7"}))
    fake.add_fault(Fault(lambda r: r.kind == "backupjobs", status=429))  # no Retry-After: backoff
    fake.add_fault(Fault(lambda r: r.kind == "backupjobs" and "rsv-weu" in r.path and "skiptoken" in r.path.lower(),
                         status=503))
    credential = FakeCredential()
    snap, collector = run(fake, tuning=FAST, credential=credential)
    assert not snap.errors
    assert set(credential.scopes) == {(f"{fake.url}/.default",)}  # the --arm-endpoint's own scope
    assert 7 in clock.waits
    weu = [r for r in fake.jobs_requests() if "rsv-weu" in r.path]
    # page 1, its second page (the 503, then again, resuming from its skip token); the 429s came first
    assert [r.status for r in weu if r.status != 429] == [200, 503, 200]
    assert weu[-1].params["$skiptoken"] == "1"
    assert collector.stats.jobs_requests == len(fake.jobs_requests())
    [row] = [r for r in snap.tables["recoveryservicesresources"] if r.get("name") == "job-1"]
    assert row["properties"]["errorDetails"][0]["errorCode"] == AGENT_CODE


def test_a_list_that_keeps_failing_names_the_vault_and_keeps_the_rows(serve: Any, run: Any) -> None:
    fake = serve(live_estate())
    fake.add_fault(Fault(lambda r: r.kind == "backupjobs" and "rsv-weu" in r.path, drop=True, times=99))
    snap, _ = run(fake, tuning=FAST)
    [error] = snap.errors
    assert "rsv-weu" in error["scope"] and error["status"] is None and "gave up after 5 tries" in error["message"]
    assert len([r for r in fake.jobs_requests() if "rsv-weu" in r.path]) == 5
    assert sum(r["type"] == JOB_TYPE for r in snap.tables["recoveryservicesresources"]) == 3
    assert TOKEN not in json.dumps(snap.errors)


def test_backup_clients_follow_the_arm_endpoint_and_its_token_scope() -> None:
    clients = BackupClients(object(), "https://management.usgovcloudapi.net",  # type: ignore[arg-type]
                            "https://management.core.usgovcloudapi.net/.default", FakeClock(), FAST,
                            Progress(live=False))
    client, _ = clients.get(SUB)
    assert client._config.base_url == "https://management.usgovcloudapi.net"
    assert client._config.credential_scopes == ["https://management.core.usgovcloudapi.net/.default"]
    assert clients.get(SUB.upper())[0] is client
    clients.close()


# -- which rows ask, and what the answer fills in -----------------------------------------------------------


def _row(job_id: str, **props: Any) -> dict[str, Any]:
    return {"id": job_id, "type": "Microsoft.RecoveryServices/vaults/backupJobs", "properties": props}


def test_only_failed_vm_backup_rows_without_a_code_ask_their_vault() -> None:
    a = f"{VAULT}/backupJobs/a"
    rows = [_row(a, status="Failed"),
            _row(f"{VAULT.upper()}/BACKUPJOBS/b", status="failed", errorDetails=[{"errorString": "x"}]),
            _row(f"{VAULT}/backupJobs/c", status="Failed", errorDetails=[{"errorCode": 400240}]),
            _row(f"{VAULT}/backupJobs/d", status="Completed"),
            _row(f"{VAULT}/backupJobs/e", status="Failed", operation="Restore"),
            _row(f"{VAULT}/backupJobs/f", status="Failed", jobType="AzureWorkloadJob"),
            _row(f"{OTHER_VAULT}/backupJobs/g", status="Failed", jobType="AzureIaaSVMJobV2", errorDetails=[]),
            {"id": f"{VAULT}/backupJobs/h", "type": JOB_TYPE},  # no properties at all: no status, not failed
            {"id": f"{VAULT}/backupJobs/i", "type": JOB_TYPE, "properties": ["not", "an", "object"]},
            _row("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1", status="Failed")]
    asked = vaults_to_ask(rows)
    assert {k: [r["id"].rsplit("/", 1)[1] for r in v] for k, v in asked.items()} == {
        (SUB, "RG-Backup", "rsv-weu"): ["a", "b"], (SUB, "RG-Backup", "rsv-neu"): ["g"]}
    assert parse_job_id(f"{VAULT}/backupJobs/") is None and parse_job_id(f"{VAULT}/backupPolicies/p") is None


def test_merge_fills_rows_by_job_name_and_the_estate_reads_a_numeric_code_by_its_message() -> None:
    vm = f"/subscriptions/{SUB}/resourceGroups/RG-App/providers/Microsoft.Compute/virtualMachines/vm1"
    row = _row(f"{VAULT.lower()}/backupjobs/7DDEAD57", status="Failed", operation="Backup", dataSourceId=vm,
               startTime="2026-11-19T02:00:00Z")
    row["type"] = JOB_TYPE
    untouched = _row(f"{VAULT}/backupJobs/other", status="Failed")
    listed = [job_body(VAULT, "7ddead57", "vm1", "2026-11-19T02:00:05.000000Z", details=[
        {"errorCode": 400240, "errorString": "Backup failed with an internal error - Please retry the operation in "
                                             "a few minutes.", "recommendations": []}]),
              job_body(VAULT, "other", "vm2", "2026-11-19T02:00:05.000000Z", details=[])]
    before = copy.deepcopy(untouched)
    assert merge([row, untouched], listed) == 1
    assert untouched == before
    doc = {"schemaVersion": 1, "tables": {"resources": [{"id": vm, "type": "microsoft.compute/virtualmachines",
                                                        "name": "vm1", "properties": {}}],
                                          "recoveryservicesresources": [row]}}
    [vm_facts] = build_estate(snapshot.from_document(doc, "t")).vms
    job = vm_facts["backup"]["lastFailedJob"]
    assert (job["errorCode"], job["errorDetailsFrom"]) == ("400240", "rest")
    assert job["documentedCode"].startswith("BackUpOperationFailed")  # V1 and V2 share the documented message


@given(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2099, 12, 31)))
def test_filter_times_read_back_with_the_services_format(moment: datetime) -> None:
    """strptime's `%I:%M:%S %p` is the independent oracle for the hand-written 12-hour clock."""
    terms = dict(re.findall(r"(\w+) eq '([^']*)'", job_filter(moment.replace(tzinfo=UTC))))
    assert datetime.strptime(terms["endTime"], JOB_FILTER_TIME) == moment.replace(microsecond=0)
    assert datetime.strptime(terms["startTime"], JOB_FILTER_TIME) == moment.replace(microsecond=0) - timedelta(days=14)


def test_a_list_longer_than_the_page_bound_is_reported_not_cut_silently(serve: Any, run: Any,
                                                                         monkeypatch: Any) -> None:
    monkeypatch.setattr(backup_jobs, "MAX_PAGES", 1)
    estate = live_estate()
    estate.jobs_page_size = 1
    fake = serve(estate)
    snap, _ = run(fake)
    [error] = snap.errors
    assert "rsv-weu" in error["scope"] and "more than 1 pages" in error["message"]
    assert len([r for r in fake.jobs_requests() if "rsv-weu" in r.path]) == 1
