"""`collect` and live `scan` through the installed console script, the real SDKs and a fake Azure.

The fake `az` on PATH answers AzureCliCredential; the only address contacted is the fake server on
127.0.0.1 (its CA trusted through REQUESTS_CA_BUNDLE). A live scan must equal a scan of the
snapshot `collect` saved from the same server.
"""

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from backup_preflight import demo
from backup_preflight.snapshot import GRAPH_TABLES
from collect.fakeazure import TOKEN, Estate, Fault
from collect.test_collect_auth import fake_az
from results_helpers import findings_of
from shard_helpers import OUTPUTS

from cli_helpers import run


def demo_estate() -> tuple[Estate, list[str]]:
    doc = demo.generate(60, seed=5, subscriptions=2)
    tables = {name: doc["tables"][name] for name in GRAPH_TABLES}
    views = {row["id"].lower(): row["instanceView"] for row in doc["tables"]["instanceviews"]}
    # The demo leaves some views out on purpose ("not collected"); a live Azure has one for every VM.
    spare = next(iter(views.values()))
    for row in doc["tables"]["resources"]:
        if row["type"] == "microsoft.compute/virtualmachines":
            views.setdefault(row["id"].lower(), spare)
    # Azure Monitor has the demo's series (the pressure scenarios), moved by whole days to end
    # before now, and a generated one for every other VM.
    end = datetime.fromisoformat(doc["collectedAt"].replace("Z", "+00:00")).replace(minute=0, second=0)
    shift = timedelta(days=(datetime.now(UTC) - end).days)
    metrics: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for row in doc["tables"]["metrics"]:
        points = [{**p, "timeStamp": _iso(datetime.fromisoformat(p["timeStamp"].replace("Z", "+00:00")) + shift)}
                  for p in row["data"]]
        metrics.setdefault(row["id"].lower(), {})[row["name"].lower()] = points
    return (Estate(tables=tables, instance_views=views, metrics=metrics, synthetic_metrics=True),
            doc["scope"]["subscriptions"])


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def sign_in(fake: Any, tmp_path: Path, monkeypatch: Any, **env: str) -> None:
    """This test's environment pointed at the fake Azure, for the CLI's subprocesses: an `az` for
    AzureCliCredential first on PATH, the fake's CA trusted, and `env` besides."""
    fake_az(tmp_path, TOKEN)
    for name, value in {"PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
                        "REQUESTS_CA_BUNDLE": fake.ca_path, **env}.items():
        monkeypatch.setenv(name, value)


def live_flags(fake: Any, subs: list[str]) -> list[str]:
    """A live source of every subscription, from the fake, signed in with the fake `az`."""
    return [*(arg for sub in subs for arg in ("--subscription", sub)), "--arm-endpoint", fake.url,
            "--metrics-endpoint", fake.url, "--auth", "cli"]


def comparable(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text())
    for key in ("startedAt", "finishedAt", "source", "collectedAt"):  # two collections, two times
        doc["scan"].pop(key)
    doc["scan"].pop("configuration")  # the flags of each run
    return doc


def test_collect_then_scan_equals_a_live_scan(serve: Any, tmp_path: Path, monkeypatch: Any) -> None:
    estate, subs = demo_estate()
    fake = serve(estate)
    sign_in(fake, tmp_path, monkeypatch)
    flags = live_flags(fake, subs)

    snap = tmp_path / "estate.json.gz"
    collected = run("collect", *flags, "--output", snap)
    assert collected.returncode == 0, collected.stderr
    assert "0 scope errors" in collected.stdout
    assert TOKEN not in collected.stdout + collected.stderr

    offline = run("scan", "--snapshot", snap, "--output-dir", tmp_path / "offline")
    live = run("scan", *flags, "--output-dir", tmp_path / "live")
    assert offline.returncode == live.returncode == 1, live.stderr
    a, b = comparable(tmp_path / "offline" / "results.json"), comparable(tmp_path / "live" / "results.json")
    assert a == b
    assert a["coverage"]["vms"] == 60 and a["coverage"]["errors"] == []
    assert {"instanceviews", "resources", "metrics"} <= set(a["coverage"]["tables"])
    assert set(a["coverage"]["notCollected"]) == {"guestfacts"}
    # CPU and memory pressure are judged for every running VM: nothing unknown for want of metrics
    running = {r["id"].lower() for r in estate.tables["resources"] if r["type"] == "microsoft.compute/virtualmachines"
               and "PowerState/running" in json.dumps(r.get("properties"))}
    perf = [f for f in findings_of(a) if f["policyId"] in ("VMBK-PERF-001", "VMBK-PERF-002")
            and f["resourceId"].lower() in running]
    assert perf and not [f for f in perf if f["status"] == "unknown" and "pressure" in f["message"]]
    assert {f["status"] for f in perf} >= {"pass", "fail"}  # the demo's pressure scenarios still fail


def test_a_live_scan_in_parts_equals_one_held_whole(serve: Any, tmp_path: Path, monkeypatch: Any) -> None:
    """With more VMs than a part, the collected rows are set aside in an unnamed temporary file and judged a
    part at a time (here in parts of one VM, two at once), with the same reports as the estate held whole."""
    estate, subs = demo_estate()
    spare = tmp_path / "tmp"
    spare.mkdir()
    fake = serve(estate)
    sign_in(fake, tmp_path, monkeypatch, TMPDIR=str(spare))
    flags = live_flags(fake, subs)
    reports = {}
    for size, jobs in (("0", "1"), ("1", "2"), ("1", "1")):
        out = tmp_path / f"{size}-{jobs}"
        done = run("scan", *flags, "--part-size", size, "--jobs", jobs, "--output-dir", out, "-v")
        assert done.returncode == 1, done.stderr
        in_parts = re.search(r"judged 60 VMs in (\d+) part\(s\) of up to 1 VMs", done.stderr)
        assert (in_parts is not None and int(in_parts[1]) == len(subs)) == (size == "1"), done.stderr
        reports[size, jobs] = _masked_run(out)
    assert reports["0", "1"] == reports["1", "2"] == reports["1", "1"]
    scan = json.loads((tmp_path / "1-2" / "results.json").read_text())["scan"]
    assert scan["source"]["kind"] == "live" and scan["source"]["files"] == []
    assert not list(spare.iterdir())  # nothing left behind in the temporary folder


def _masked_run(out: Path) -> dict[str, str]:
    """The five reports with what differs between two collections of one estate masked: the run's times, the
    time of collection, the hash of what was collected (which holds that time) and the flags given."""
    scan = json.loads((out / "results.json").read_text())["scan"]
    own = [scan["startedAt"], scan["finishedAt"], scan["collectedAt"], scan["source"]["sha256"],
           scan["source"]["sha256"][:12], json.dumps(scan["configuration"])]
    texts = {}
    for name in OUTPUTS:
        text = (out / name).read_text(encoding="utf-8")
        if name == "results.json":
            text = json.dumps(json.loads(text), indent=1)
        for value in own:
            text = text.replace(value, "<run>")
        texts[name] = re.sub(r'(<testsuites [^>]*) time="[0-9.]+"', r'\1 time="<duration>"', text, count=1)
    return texts


@pytest.mark.parametrize("part_size", ["0", "1"], ids=["held whole", "in parts"])
@pytest.mark.parametrize("answer", ["403", "no rows"])
def test_a_forbidden_subscription_is_named_and_exits_3(serve: Any, tmp_path: Path, monkeypatch: Any,
                                                       part_size: str, answer: str) -> None:
    """Whether Resource Graph refuses the subscription (403) or silently leaves its rows out."""
    estate, subs = demo_estate()
    if answer == "403":
        estate.forbidden_subscriptions = {subs[1]}
    else:
        estate.hidden_subscriptions = {subs[1].lower()}
    fake = serve(estate)
    sign_in(fake, tmp_path, monkeypatch)
    proc = run("scan", "--subscription", subs[0], "--subscription", subs[1], "--arm-endpoint", fake.url,
               "--auth", "cli", "--no-instance-view", "--no-metrics", "--part-size", part_size,
               "--output-dir", tmp_path / "out")
    assert proc.returncode == 3, proc.stderr
    assert subs[1] in proc.stdout
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert any(subs[1] in e["scope"] for e in results["coverage"]["errors"])
    assert subs[1] in (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    assert subs[1] in (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert results["coverage"]["vms"] > 0  # the readable subscription was still scanned
    assert subs[1] in (tmp_path / "out" / "summary.md").read_text()


def test_no_token_is_a_clear_error_without_traceback(serve: Any, tmp_path: Path, monkeypatch: Any) -> None:
    estate, subs = demo_estate()
    fake = serve(estate)
    sign_in(fake, tmp_path, monkeypatch)
    (tmp_path / "bin" / "az").write_text("#!/bin/sh\necho 'Please run az login to setup account.' >&2\nexit 1\n")
    proc = run("collect", "--subscription", subs[0], "--arm-endpoint", fake.url, "--auth", "cli",
               "--metrics-endpoint", fake.url, "--output", tmp_path / "s.json")
    assert proc.returncode == 3
    assert "nothing collected" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "s.json").exists()


def test_custom_query_policies_are_collected_and_replayed(serve: Any, tmp_path: Path, monkeypatch: Any) -> None:
    kql = "resources | where type =~ 'microsoft.recoveryservices/vaults' | project id, name, softDelete"
    vault = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.RecoveryServices/vaults/"
    estate, subs = demo_estate()
    estate.custom[kql] = [{"id": vault + "good", "name": "good", "softDelete": "AlwaysOn"},
                          {"id": vault + "bad", "name": "bad", "softDelete": "Disabled"}]
    fake = serve(estate)
    sign_in(fake, tmp_path, monkeypatch)
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "vault.json").write_text(json.dumps({
        "id": "MY-VAULT-001", "title": "Vault soft delete is on", "cause": "backup-protection",
        "severity": "high", "target": "resourceGraphQuery", "query": kql,
        "assert": {"field": "row.softDelete", "in": ["Enabled", "AlwaysOn"]},
        "message": "Vault {name} has soft delete {row.softDelete}", "remediation": "Enable it."}))
    live = ["--subscription", subs[0], "--arm-endpoint", fake.url, "--auth", "cli", "--no-instance-view",
            "--no-metrics"]
    snap = tmp_path / "s.json"
    assert run("collect", *live, "--policies", policies, "--output", snap).returncode == 0
    assert len(json.loads(snap.read_text())["queries"]) == 1
    proc = run("scan", "--snapshot", snap, "--policies", policies, "--output-dir", tmp_path / "out")
    assert proc.returncode == 1
    findings = findings_of(json.loads((tmp_path / "out" / "results.json").read_text()))
    assert {(f["resourceName"], f["status"]) for f in findings} == {("good", "pass"), ("bad", "fail")}
    # a snapshot collected without the policy cannot answer it: unknown, and it says how to fix that
    bare = tmp_path / "bare.json"
    assert run("collect", *live, "--output", bare).returncode == 0
    proc = run("scan", "--snapshot", bare, "--policies", policies, "--output-dir", tmp_path / "out2",
               "--fail-on", "never")
    [finding] = findings_of(json.loads((tmp_path / "out2" / "results.json").read_text()))
    assert finding["status"] == "unknown" and "collect --policies" in finding["message"]


def test_metrics_that_cannot_be_read_name_the_vms_and_exit_3(serve: Any, tmp_path: Path, monkeypatch: Any) -> None:
    estate, subs = demo_estate()
    fake = serve(estate)
    sign_in(fake, tmp_path, monkeypatch)
    fake.add_fault(Fault(lambda r: r.kind == "metrics" and subs[0] in r.path, status=503, times=999))
    proc = run("scan", "--subscription", subs[0], "--arm-endpoint", fake.url, "--metrics-endpoint", fake.url,
               "--auth", "cli", "--no-instance-view", "--metrics-days", "2", "--output-dir", tmp_path / "out")
    assert proc.returncode == 3, proc.stderr
    failed = {i for r in fake.metrics_requests() for i in r.resource_ids}
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert failed and {e["scope"] for e in results["coverage"]["errors"]} == {f"vm {i}" for i in failed}
    assert all(e["table"] == "metrics" and e["status"] == 503 for e in results["coverage"]["errors"])
    [start] = {r.params["starttime"] for r in fake.metrics_requests()}  # whole hours, the same for all
    [end] = {r.params["endtime"] for r in fake.metrics_requests()}
    assert start.endswith(":00:00.000Z")
    assert datetime.fromisoformat(end[:19]) - datetime.fromisoformat(start[:19]) == timedelta(days=2)


def test_no_metrics_asks_azure_monitor_nothing(serve: Any, tmp_path: Path, monkeypatch: Any) -> None:
    estate, subs = demo_estate()
    fake = serve(estate)
    sign_in(fake, tmp_path, monkeypatch)
    proc = run("scan", "--subscription", subs[0], "--arm-endpoint", fake.url, "--auth", "cli", "--no-instance-view",
               "--no-metrics", "--fail-on", "never", "--output-dir", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert fake.metrics_requests() == []
    assert "metrics" in json.loads((tmp_path / "out" / "results.json").read_text())["coverage"]["notCollected"]
    # without --metrics-endpoint an endpoint of no known cloud cannot be guessed: one clear line, exit 3
    proc = run("collect", "--subscription", subs[0], "--arm-endpoint", fake.url, "--auth", "cli",
               "--output", tmp_path / "s.json")
    assert proc.returncode == 3 and "--metrics-endpoint URL, or --no-metrics" in proc.stderr
    assert fake.metrics_requests() == [] and not (tmp_path / "s.json").exists()
    bad = run("collect", "--subscription", subs[0], "--metrics-days", "0", "--output", tmp_path / "s.json")
    assert bad.returncode == 2 and "--metrics-days" in bad.stderr and "Traceback" not in bad.stderr


def test_an_output_that_cannot_be_written_is_refused_before_collecting(serve: Any, tmp_path: Path,
                                                                      monkeypatch: Any) -> None:
    """It was found after the whole collection, as an internal error (exit 4), and the rows were lost."""
    estate, subs = demo_estate()
    fake = serve(estate)
    sign_in(fake, tmp_path, monkeypatch)
    folder = tmp_path / "folder"
    folder.mkdir()
    proc = run("collect", *live_flags(fake, subs), "--output", folder)
    assert (proc.returncode, proc.stderr) == (2, f"backup-preflight: error: --output {folder}: is a folder; give "
                                                 "the name of a file\n")
    assert fake.requests == [] and not any(folder.iterdir())
