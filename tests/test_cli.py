"""End to end through the installed `backup-preflight` console script."""

import json
from pathlib import Path

from backup_preflight.findings import STATUSES
from results_helpers import findings_of

from arg import snapshot_doc, vm_row
from cli_helpers import run


def test_scan_demo_writes_results_and_exits_1(tmp_path: Path) -> None:
    proc = run("scan", "--demo", "--output-dir", tmp_path / "out")
    assert proc.returncode == 1, proc.stderr
    assert "Failing policies" in proc.stdout and "exit 1" in proc.stdout
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["schemaVersion"] == 2
    assert results["tool"]["name"] == "backup-preflight"
    scan = results["scan"]
    assert {"startedAt", "finishedAt", "source", "policySetSha256", "parameters"} <= set(scan)
    assert scan["source"]["kind"] == "demo" and len(scan["source"]["sha256"]) == 64
    assert {p["id"] for p in results["policies"]} >= {"VMBK-AGENT-003", "VMBK-NET-001"}
    vms, policies = results["coverage"]["vms"], len(results["policies"])
    assert len(findings_of(results)) == vms * policies   # one finding per (policy, VM)
    statuses = {f["status"] for f in findings_of(results)}
    assert {"pass", "fail", "unknown"} <= statuses <= set(STATUSES)
    finding = next(f for f in findings_of(results) if f["status"] == "fail")
    assert {"policyId", "resourceId", "resourceName", "status", "severity", "message", "evidence",
            "remediation"} <= set(finding)
    assert finding["evidence"] and finding["remediation"]
    assert results["summary"]["byStatus"]["fail"] == sum(f["status"] == "fail" for f in findings_of(results))
    assert results["coverage"]["errors"] == []


def test_fail_on_never_exits_0(tmp_path: Path) -> None:
    assert run("scan", "--demo", "--fail-on", "never", "--output-dir", tmp_path).returncode == 0


def test_rescanning_a_saved_snapshot_is_identical_apart_from_timestamps(tmp_path: Path) -> None:
    snap = tmp_path / "estate.json.gz"
    assert run("demo-estate", "--vms", "120", "--seed", "3", "--output", snap).returncode == 0
    docs = []
    for name in ("a", "b"):
        assert run("scan", "--snapshot", snap, "--output-dir", tmp_path / name).returncode in (0, 1)
        doc = json.loads((tmp_path / name / "results.json").read_text())
        del doc["scan"]["startedAt"], doc["scan"]["finishedAt"]
        docs.append(doc)
    assert docs[0] == docs[1]
    assert docs[0]["scan"]["source"]["files"][0]["format"] == "snapshot"


def test_empty_scan_fails_closed_with_3(tmp_path: Path) -> None:
    snap = tmp_path / "empty.json"
    snap.write_text(json.dumps(snapshot_doc([])))
    proc = run("scan", "--snapshot", snap, "--output-dir", tmp_path / "out")
    assert proc.returncode == 3
    assert "incomplete" in proc.stdout


def test_collection_errors_make_the_scan_incomplete(tmp_path: Path) -> None:
    doc = snapshot_doc([vm_row()])
    doc["errors"] = [{"scope": "subscription 1111", "table": "resources", "status": 403, "message": "Forbidden"}]
    snap = tmp_path / "partial.json"
    snap.write_text(json.dumps(doc))
    proc = run("scan", "--snapshot", snap, "--output-dir", tmp_path / "out", "--fail-on", "never")
    assert proc.returncode == 3
    assert "subscription 1111" in proc.stdout
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["coverage"]["errors"][0]["scope"] == "subscription 1111"


def test_bad_snapshot_is_exit_2_with_one_clear_line_and_no_outputs(tmp_path: Path) -> None:
    snap = tmp_path / "bad.json"
    snap.write_text('{"schemaVersion": 1, "tables": {"resources": [{"id": "/x", "type": "t", "properties": 3}]}}')
    proc = run("scan", "--snapshot", snap, "--output-dir", tmp_path / "out")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"backup-preflight: error: {snap}: /tables/resources/0/properties: "
                                   "'properties' must be an object, found a number")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_bad_policy_is_exit_2_and_leaves_previous_reports_alone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("scan", "--demo", "--output-dir", out).returncode == 1
    before = (out / "results.json").read_bytes()
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "p.json").write_text(json.dumps({
        "id": "MY-POLICY-1", "title": "t", "cause": "vm-agent", "severity": "high", "message": "m",
        "remediation": "r", "assert": {"field": "agent.verison", "exists": True}}))
    proc = run("scan", "--demo", "--policies", policies, "--output-dir", out)
    assert proc.returncode == 2
    assert "/assert/field: unknown field 'agent.verison'; did you mean 'agent.version'?" in proc.stderr
    assert (out / "results.json").read_bytes() == before
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []


def test_validate_names_file_pointer_and_nearest_field(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({
        "id": "MY-POLICY-1", "title": "t", "cause": "vm-agent", "severity": "high", "message": "m",
        "remediation": "r", "assert": {"allOf": [{"field": "powerstate", "equals": "running"}]}}))
    proc = run("validate", path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"backup-preflight: error: {path}: /assert/allOf/0/field: unknown field "
                                   "'powerstate'; did you mean 'powerState'?")
    ok = run("validate")
    assert ok.returncode == 0 and "policies valid" in ok.stdout


def test_usage_errors_are_exit_2(tmp_path: Path) -> None:
    assert run("scan").returncode == 2
    assert run("scan", "--demo", "--snapshot", tmp_path / "x.json").returncode == 2
    assert run("scan", "--demo", "--fail-on", "urgent").returncode == 2
    proc = run("scan", "--demo", "--param", "noSuchParameter=1", "--output-dir", tmp_path)
    assert proc.returncode == 2 and "no policy declares a parameter 'noSuchParameter'" in proc.stderr


def test_a_blank_shard_name_is_a_usage_error(tmp_path: Path) -> None:
    """An empty name was accepted, and then the run was recorded as no shard at all: merge could not tell."""
    for name in ("", "   "):
        proc = run("scan", "--demo", "--shard-name", name, "--output-dir", tmp_path / "out")
        assert proc.returncode == 2 and not (tmp_path / "out").exists()
        assert proc.stderr.splitlines()[-1] == (f"backup-preflight scan: error: argument --shard-name: expected a "
                                                f"name for this shard, found {name!r}")


def test_a_negative_or_fractional_number_of_ci_annotations_is_a_usage_error(tmp_path: Path) -> None:
    """-1 was accepted (and read as 0)."""
    for command in (("scan", "--demo"), ("merge", tmp_path / "results.json")):
        for value in ("-1", "2.5", "ten"):
            proc = run(*command, "--ci-annotations", value, "--output-dir", tmp_path / "out")
            assert proc.returncode == 2 and not (tmp_path / "out").exists()
            assert proc.stderr.splitlines()[-1].endswith("error: argument --ci-annotations: expected a whole "
                                                         f"number of annotations (0 or more), found {value!r}")


def test_a_policy_folder_without_policies_is_exit_2_as_the_exit_code_tables_say(tmp_path: Path) -> None:
    """The tables said exit 3 for "nothing was evaluated (0 VMs or 0 policies)"; no policies never gets that far."""
    empty, out = tmp_path / "empty", tmp_path / "out"
    empty.mkdir()
    proc = run("scan", "--demo", "--policies", empty, "--output-dir", out)
    assert (proc.returncode, proc.stderr) == (2, f"backup-preflight: error: {empty}: folder holds no *.json policy "
                                                 "files\n")
    assert not out.exists()
    root = Path(__file__).parents[1]
    for doc in (root / "README.md", root / "docs" / "reports.md"):
        rows = {line.split("|")[1].strip(): line for line in doc.read_text(encoding="utf-8").splitlines()
                if line.startswith(("| 2 |", "| 3 |"))}
        assert "a policy folder without any `*.json` policy file" in rows["2"], doc
        assert "0 policies" not in rows["3"], doc


def test_policies_lists_every_cause() -> None:
    proc = run("policies")
    assert proc.returncode == 0
    for cause in ("outbound-connectivity", "vm-agent", "backup-extension", "sql-vss-backup", "guest-shutdown",
                  "schedule-spread", "resource-pressure", "guest-dhcp", "backup-protection"):
        assert cause in proc.stdout


def test_python_dash_m_works() -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "backup_preflight", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("backup-preflight ")


def test_probe_results_merge_in_as_another_snapshot(tmp_path: Path) -> None:
    vm = vm_row("vm1")
    main = tmp_path / "collected.json"
    main.write_text(json.dumps(snapshot_doc([vm])))
    probes = tmp_path / "probes.json"
    probes.write_text(json.dumps({"schemaVersion": 1, "tables": {"guestfacts": [
        {"id": vm["id"].lower(), "collectedAt": "2026-11-20T05:00:00Z", "facts": {"dhcpEnabled": False}}]}}))
    out = tmp_path / "out"
    alone = run("scan", "--snapshot", main, "--output-dir", out, "--fail-on", "never")
    assert alone.returncode == 0
    status = {f["policyId"]: f["status"] for f in findings_of(json.loads((out / "results.json").read_text()))}
    assert status["VMBK-DHCP-001"] == "unknown"
    merged = run("scan", "--snapshot", main, "--snapshot", probes, "--output-dir", out, "--fail-on", "never")
    assert merged.returncode == 0
    results = json.loads((out / "results.json").read_text())
    status = {f["policyId"]: f["status"] for f in findings_of(results)}
    assert status["VMBK-DHCP-001"] == "fail"
    assert [f["path"] for f in results["scan"]["source"]["files"]] == [str(main), str(probes)]


def test_non_finite_parameter_is_exit_2_with_one_line_and_no_outputs(tmp_path: Path) -> None:
    proc = run("scan", "--demo", "--param", "maximumCpuPercent=nan", "--output-dir", tmp_path / "out")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("backup-preflight: error: --param: maximumCpuPercent: parameter "
                                   "'maximumCpuPercent' (number): found NaN: NaN and infinities cannot be "
                                   "compared; give a finite number")
    assert not (tmp_path / "out").exists()
